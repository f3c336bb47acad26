"""Opening a database written by sqlite-ml 0.1.x: migrated in place, its pickles never run."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import pytest
from sklearn.datasets import load_iris

import sqlite_ml
from sqlite_ml.db.schema import SCHEMA_VERSION

from .helpers import IRIS_FEATURES, SETOSA, VIRGINICA, Db, trap_pickle

# sqlite-ml 0.1.x's sql/schema.sql, as it shipped.
SCHEMA_01X = """
CREATE TABLE IF NOT EXISTS sqml_experiments (
    id INTEGER PRIMARY KEY,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    name TEXT NOT NULL,
    prediction_type  TEXT NOT NULL,
    UNIQUE(name)
);
CREATE TABLE IF NOT EXISTS sqml_runs (
    id INTEGER PRIMARY KEY,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    status TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    dataset TEXT NOT NULL,
    target TEXT NOT NULL,
    test_size REAL NOT NULL,
    split_strategy TEXT NOT NULL,
    experiment_id INTEGER NOT NULL,
    FOREIGN KEY (experiment_id) REFERENCES sqml_experiments(id)
);
CREATE TABLE IF NOT EXISTS sqml_models (
    id INTEGER PRIMARY KEY,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    run_id INTEGER NOT NULL,
    library TEXT NOT NULL,
    data BLOB NOT NULL,
    FOREIGN KEY (run_id) REFERENCES sqml_runs(id)
);
CREATE TABLE IF NOT EXISTS sqml_metrics (
    id INTEGER PRIMARY KEY,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    model_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    FOREIGN KEY (model_id) REFERENCES sqml_models(id)
);
CREATE TABLE IF NOT EXISTS sqml_deployments (
    id INTEGER PRIMARY KEY,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    experiment_id INTEGER,
    model_id INTEGER,
    active BOOLEAN NOT NULL DEFAULT FALSE,
    FOREIGN KEY (experiment_id) REFERENCES sqml_experiments(id),
    FOREIGN KEY (model_id) REFERENCES sqml_models(id)
);
CREATE VIEW IF NOT EXISTS sqml_runs_overview AS
SELECT
    sqml_runs.id AS run_id,
    sqml_experiments.name AS experiment,
    sqml_runs.created_at AS start_time,
    sqml_runs.status AS status,
    sqml_runs.algorithm AS algorithm,
    json_extract(
        json_group_object(sqml_metrics.name, sqml_metrics.value)
            FILTER (WHERE sqml_metrics.name = 'score'),
        '$.score'
    ) AS score
FROM sqml_runs
  JOIN sqml_experiments ON sqml_experiments.id = sqml_runs.experiment_id
  LEFT JOIN sqml_models ON sqml_models.run_id = sqml_runs.id
  LEFT JOIN sqml_metrics ON sqml_metrics.model_id = sqml_models.id
GROUP BY sqml_runs.id;
"""


def write_01x_database(path: Path, marker: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_01X)
    iris = load_iris()
    columns = ", ".join(f"[{name}] REAL" for name in iris.feature_names)
    conn.execute(f"CREATE TABLE dataset_iris ({columns}, target REAL)")
    conn.executemany(
        "INSERT INTO dataset_iris VALUES (?, ?, ?, ?, ?)",
        [
            [*map(float, row), float(label)]
            for row, label in zip(iris.data, iris.target, strict=True)
        ],
    )
    conn.execute(
        "INSERT INTO sqml_experiments(name, prediction_type) VALUES ('iris', 'classification')"
    )
    conn.execute(
        "INSERT INTO sqml_runs(status, algorithm, dataset, target, test_size, split_strategy,"
        " experiment_id) VALUES ('success', 'logistic_regression', 'dataset_iris', 'target',"
        " 0.25, 'shuffle', 1)"
    )
    conn.execute(
        "INSERT INTO sqml_models(run_id, library, data) VALUES (1, 'scikit-learn', ?)",
        (trap_pickle(marker),),
    )
    conn.executemany(
        "INSERT INTO sqml_metrics(model_id, name, value) VALUES (1, ?, ?)",
        [("score", 0.5), ("accuracy", 0.5), ("f1", 0.5), ("precision", 0.5), ("recall", 0.5)],
    )
    conn.execute(
        "INSERT INTO sqml_deployments(experiment_id, model_id, active) VALUES (1, 1, TRUE)"
    )
    conn.commit()
    conn.close()


@pytest.fixture
def pickle_marker(tmp_path, db_path) -> Path:
    marker = tmp_path / "pickle-ran"
    write_01x_database(db_path, marker)
    return marker


def test_the_trap_pickle_really_runs_code_when_unpickled(tmp_path):
    sanity = tmp_path / "sanity"
    pickle.loads(trap_pickle(sanity))  # noqa: S301 - the test's own payload
    assert sanity.is_dir()


def test_register_migrates_a_01x_database_and_keeps_its_rows(pickle_marker, connect):
    raw = connect(register=False)
    old_runs = raw.execute("SELECT * FROM sqml_runs").fetchall()
    old_models = raw.execute("SELECT * FROM sqml_models").fetchall()
    old_metrics = raw.execute("SELECT * FROM sqml_metrics").fetchall()
    old_deployments = raw.execute("SELECT * FROM sqml_deployments").fetchall()

    db = Db(connect(), pickle_marker)
    runs = {row[1] for row in db.rows("PRAGMA table_info(sqml_runs)")}
    assert {"seed", "error", "fit_time", "data_digest", "hyperparams"} <= runs
    models = {row[1] for row in db.rows("PRAGMA table_info(sqml_models)")}
    assert {"format", "digest", "feature_schema"} <= models
    assert db.value("SELECT value FROM sqml_meta WHERE key = 'schema_version'") is not None

    width = len(old_runs[0])
    assert [row[:width] for row in db.rows("SELECT * FROM sqml_runs")] == old_runs
    width = len(old_models[0])
    assert [row[:width] for row in db.rows("SELECT * FROM sqml_models")] == old_models
    assert db.rows("SELECT * FROM sqml_metrics") == old_metrics
    width = len(old_deployments[0])
    assert [row[:width] for row in db.rows("SELECT * FROM sqml_deployments")] == old_deployments
    overview = db.rows(
        "SELECT run_id, experiment, status, algorithm, score FROM sqml_runs_overview"
    )
    assert overview == [(1, "iris", "success", "logistic_regression", 0.5)]

    # migrating again changes nothing
    schema = db.schema()
    sqlite_ml.register(db.conn)
    assert db.schema() == schema


def test_predicting_with_a_01x_pickle_is_refused_and_runs_nothing(pickle_marker, connect):
    db = Db(connect(), pickle_marker)
    with pytest.raises(sqlite3.OperationalError, match="retrain"):
        db.predict("iris", SETOSA)
    with pytest.raises(sqlite3.OperationalError, match="retrain"):
        db.predict_batch("iris", [SETOSA])
    assert not pickle_marker.exists()


def test_retraining_a_01x_experiment_deploys_a_safe_model(pickle_marker, connect):
    db = Db(connect(), pickle_marker)
    result = db.train("iris", "classification", "logistic_regression", "dataset_iris", "target")
    assert result["deployed"] is True
    assert result["score"] > 0.5
    assert result["seed"] == db.value("SELECT random_state FROM sqml_experiments WHERE id = 1")
    assert db.active_model_id("iris") == result["model_id"]
    assert db.value("SELECT count(*) FROM sqml_deployments WHERE active") == 1
    assert db.predict("iris", SETOSA) == 0.0
    assert db.predict("iris", dict(zip(IRIS_FEATURES, VIRGINICA, strict=True))) == 2.0
    assert db.value("SELECT format FROM sqml_models WHERE id = ?", (result["model_id"],)) == (
        "skops"
    )
    assert not pickle_marker.exists()


def test_a_01x_pickle_never_stays_deployed_over_a_servable_model(pickle_marker, connect):
    """Its score row says 0.99, but a pickle can never be served: any new model replaces it."""
    db = Db(connect(), pickle_marker)
    db.conn.execute("UPDATE sqml_metrics SET value = 0.99 WHERE name = 'score'")
    db.conn.commit()
    result = db.train("iris", "classification", "dummy", "dataset_iris", "target")
    assert result["score"] < 0.99
    assert result["deployed"] is True
    assert db.active_model_id("iris") == result["model_id"]
    assert db.predict("iris", SETOSA) in (0.0, 1.0, 2.0)
    better = db.train("iris", "classification", "logistic_regression", "dataset_iris", "target")
    assert better["deployed"] is True
    worse = db.train("iris", "classification", "dummy", "dataset_iris", "target")
    assert worse["deployed"] is False
    assert not pickle_marker.exists()


# What schema version 2 added to version 1 (the foundation's layout).
V2_COLUMNS = {
    "sqml_experiments": ["metric"],
    "sqml_runs": ["options", "importance_time"],
    "sqml_models": ["feature_importance"],
    "sqml_deployments": ["restored_deployment_id"],
}


def write_v1_database(path: Path) -> None:
    """A database as the foundation (schema version 1) left it, with one trained model:
    made with this version, then stripped of everything version 2 added."""
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    db = Db(conn, path)
    db.load("iris")
    db.train("iris", "classification", "logistic_regression", "dataset_iris", "target")
    for (trigger,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'sqml%'"
    ).fetchall():
        conn.execute(f"DROP TRIGGER {trigger}")  # version 3's (the store's integrity)
    conn.execute("DROP VIEW sqml_leaderboard")
    conn.execute("DROP TABLE sqml_search_trials")
    for table, added in V2_COLUMNS.items():
        for column in added:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("UPDATE sqml_meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def test_a_v1_database_migrates_in_place_and_keeps_serving(db_path, connect):
    write_v1_database(db_path)
    raw = connect(register=False)
    old_models = raw.execute("SELECT * FROM sqml_models").fetchall()
    assert not raw.execute(
        "SELECT 1 FROM sqlite_master WHERE name IN ('sqml_leaderboard', 'sqml_search_trials')"
    ).fetchall()

    db = Db(connect(), db_path)
    assert db.value("SELECT value FROM sqml_meta WHERE key = 'schema_version'") == str(
        SCHEMA_VERSION
    )
    for table, added in V2_COLUMNS.items():
        present = {row[1] for row in db.rows(f"PRAGMA table_info({table})")}
        assert set(added) <= present, table
    width = len(old_models[0])
    assert [row[:width] for row in db.rows("SELECT * FROM sqml_models")] == old_models
    assert db.predict("iris", SETOSA) == 0.0
    rows = db.rows("SELECT experiment, model_id, metric, deployed, rank FROM sqml_leaderboard")
    assert rows == [("iris", 1, "score", 1, 1)]
    with pytest.raises(sqlite3.OperationalError, match="no stored feature importance"):
        db.value("SELECT sqml_feature_importance('iris')")
    # training, search and deployment work on the migrated file
    db.train(
        "iris",
        "classification",
        "knn",
        "dataset_iris",
        "target",
        0.25,
        "shuffle",
        '{"search": "grid", "search_params": {"n_neighbors": [3, 5]}, "search_args": {"cv": 2}}',
    )
    assert db.value("SELECT count(*) FROM sqml_search_trials") == 2
    assert db.value("SELECT sqml_deploy('iris', 1)") == (
        '{"experiment_name": "iris", "model_id": 1, "strategy": "specific"}'
    )
    assert db.value("SELECT count(*) FROM sqml_deployments WHERE active") == 1


def test_a_01x_database_gets_the_v2_tables_too(pickle_marker, connect):
    db = Db(connect(), pickle_marker)
    names = {row[0] for row in db.rows("SELECT name FROM sqlite_master")}
    assert {"sqml_search_trials", "sqml_leaderboard"} <= names
    assert db.rows("SELECT experiment, model_id, score, deployed FROM sqml_leaderboard") == [
        ("iris", 1, 0.5, 1)
    ]
    with pytest.raises(sqlite3.OperationalError, match="no stored feature importance"):
        db.value("SELECT sqml_feature_importance('iris')")
    with pytest.raises(sqlite3.OperationalError, match="0.1.x as a pickle"):
        db.value("SELECT sqml_deploy('iris', 1)")
    assert not pickle_marker.exists()


def test_registering_a_current_database_writes_nothing(db, connect):
    db.load("iris")
    db.train("e", "classification", "dummy", "dataset_iris", "target")
    other = connect(register=False)
    version = other.execute("PRAGMA data_version").fetchone()[0]
    conn = connect()  # registers: ensure_schema on an up-to-date file
    assert conn.total_changes == 0
    assert other.execute("PRAGMA data_version").fetchone()[0] == version
