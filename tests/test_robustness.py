"""What a new user, or someone handing them a database, can throw at sqlite-ml."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

import sqlite_ml

from .helpers import IRIS_FEATURES, SETOSA, VERSICOLOR, VIRGINICA

NAMED = [dict(zip(IRIS_FEATURES, row, strict=True)) for row in (SETOSA, VERSICOLOR, VIRGINICA)]


@pytest.fixture
def trained(iris):
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    iris.conn.commit()
    return iris


def test_an_edited_schema_in_one_database_never_reaches_another(trained, tmp_path, connect):
    """The process-wide model cache is keyed by the blob's digest and the schema's text."""
    good_path, evil_path = tmp_path / "good.db", tmp_path / "evil.db"
    shutil.copy(trained.path, good_path)
    shutil.copy(trained.path, evil_path)
    evil = connect(evil_path)
    evil.execute(
        "UPDATE sqml_models SET feature_schema = json_set(feature_schema,"
        " '$.features[0].name', 'petal length (cm)', '$.features[1].name', 'petal width (cm)',"
        " '$.features[2].name', 'sepal length (cm)', '$.features[3].name', 'sepal width (cm)')"
    )
    evil.commit()
    evil_answer = json.loads(
        evil.execute("SELECT sqml_predict_batch('e', ?)", (json.dumps(NAMED),)).fetchone()[0]
    )
    good = connect(good_path)
    good_answer = json.loads(
        good.execute("SELECT sqml_predict_batch('e', ?)", (json.dumps(NAMED),)).fetchone()[0]
    )
    assert good_answer == [0.0, 1.0, 2.0]
    assert evil_answer != good_answer  # the edited schema is used where it was edited


def test_another_models_blob_under_a_recorded_digest_is_refused(trained):
    trained.train("e", "classification", "random_forest", "dataset_iris", "target")
    trained.conn.execute(
        "UPDATE sqml_models SET data = (SELECT data FROM sqml_models WHERE id = 2) WHERE id = 1"
    )
    trained.conn.execute("UPDATE sqml_deployments SET active = (model_id = 1)")
    trained.conn.commit()
    sqlite_ml.ops.prediction.MODELS._models.clear()  # as a new process would start
    with pytest.raises(sqlite3.OperationalError, match="does not match the SHA-256 recorded"):
        trained.predict("e", SETOSA)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("'{not json'", "feature schema is damaged"),
        ("'[1, 2]'", "feature schema is damaged"),
        ("json_remove(feature_schema, '$.features[0].name')", "has no text name"),
        ("json_set(feature_schema, '$.features', 5)", "not a non-empty list"),
        ("json_set(feature_schema, '$.features[1].kind', 'bogus')", "unknown kind 'bogus'"),
        ("json_set(feature_schema, '$.label_kind', 'bogus')", "unknown label kind"),
        ("json_remove(feature_schema, '$.features[3]')", "describes 3 model inputs"),
    ],
)
def test_a_damaged_feature_schema_is_a_clear_error(trained, edit, expected):
    trained.conn.execute(f"UPDATE sqml_models SET feature_schema = {edit}")  # noqa: S608
    trained.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match=expected) as error:
        trained.predict("e", SETOSA)
    assert "retrain" in str(error.value)


def test_deeply_nested_features(trained):
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(sqlite3.OperationalError, match="nested too deeply"):
        trained.value("SELECT sqml_predict('e', ?)", (deep,))


def test_fractional_and_huge_numeric_class_labels_are_refused_clearly(db):
    db.conn.execute("CREATE TABLE halves (x REAL, y REAL)")
    db.conn.executemany("INSERT INTO halves VALUES (?, ?)", [(i, 0.5 + i % 2) for i in range(20)])
    db.conn.execute("CREATE TABLE ids (x REAL, y INTEGER)")
    db.conn.executemany(
        "INSERT INTO ids VALUES (?, ?)", [(i, 2**53 + 1 + 2 * (i % 2)) for i in range(20)]
    )
    db.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match=r"whole numbers or text.*0\.5"):
        db.train("halves", "classification", "logistic_regression", "halves", "y")
    with pytest.raises(sqlite3.OperationalError, match=r"beyond 2\^53.*TEXT"):
        db.train("ids", "classification", "logistic_regression", "ids", "y")
    assert db.rows("SELECT status FROM sqml_runs") == [("failed",), ("failed",)]


def test_read_only_databases(trained, tmp_path):
    trained.conn.close()
    read_only = sqlite3.connect(f"file:{trained.path}?mode=ro", uri=True)
    try:
        sqlite_ml.register(read_only)  # nothing to create: works
        assert read_only.execute(
            "SELECT sqml_predict('e', ?)", (json.dumps(SETOSA),)
        ).fetchone() == (0.0,)
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            read_only.execute(
                "SELECT sqml_train('e', 'classification', 'dummy', 'dataset_iris', 'target')"
            ).fetchone()
    finally:
        read_only.close()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    fresh = sqlite3.connect(f"file:{empty}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite_ml.SqmlError, match="cannot create or update sqlite-ml's tables"):
            sqlite_ml.register(fresh)
    finally:
        fresh.close()


def test_damaged_sqml_tables(trained, connect):
    trained.conn.execute("UPDATE sqml_meta SET value = 'abc' WHERE key = 'schema_version'")
    trained.conn.commit()
    with pytest.raises(sqlite_ml.SqmlError, match="schema_version is 'abc'"):
        sqlite_ml.register(sqlite3.connect(trained.path))
    trained.conn.execute("UPDATE sqml_meta SET value = '1' WHERE key = 'schema_version'")
    trained.conn.execute("DROP VIEW sqml_runs_overview")
    trained.conn.commit()
    again = connect()
    assert again.execute("SELECT count(*) FROM sqml_runs_overview").fetchone() == (1,)
    # A stored score that is not a number does not decide: the active model is scored on
    # the new run's test rows instead (and beats a dummy there).
    trained.conn.execute("UPDATE sqml_metrics SET value = 'high' WHERE name = 'score'")
    trained.conn.commit()
    result = trained.train("e", "classification", "dummy", "dataset_iris", "target")
    decision = result["deploy_decision"]
    assert decision["comparison"] == "active model scored on this run's test rows"
    assert decision["active"] > result["score"] and not result["deployed"]


def test_nul_in_an_experiment_name_is_refused(iris):
    with pytest.raises(sqlite3.OperationalError, match=r"contains a NUL character"):
        iris.train("a\x00b", "classification", "dummy", "dataset_iris", "target")
    assert iris.counts()["sqml_experiments"] == 0


def test_attached_and_temporary_datasets(iris, tmp_path):
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE flowers AS SELECT 1 AS x, 'a' AS y")
    other.commit()
    other.close()
    iris.conn.execute("ATTACH DATABASE ? AS aux", (str(tmp_path / "other.db"),))
    iris.conn.execute("CREATE TABLE aux.iris_copy AS SELECT * FROM main.dataset_iris")
    iris.conn.execute("CREATE TEMP TABLE scratch AS SELECT * FROM dataset_iris")
    result = iris.train("aux", "classification", "dummy", "aux.iris_copy", "target")
    assert result["train_rows"] + result["test_rows"] == 150
    assert iris.value("SELECT dataset FROM sqml_runs") == "aux.iris_copy"
    with pytest.raises(sqlite3.OperationalError, match=r"'scratch'.*schema\.name") as error:
        iris.train("x", "classification", "dummy", "nope", "target")
    assert "'dataset_iris'" in str(error.value)


def test_a_busy_database_is_explained(iris, connect, db_path):
    iris.conn.execute("PRAGMA journal_mode = wal")
    iris.conn.commit()
    writer = connect(timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE held (x)")
    try:
        other = connect(timeout=0.1)
        with pytest.raises(sqlite3.OperationalError, match="locked by another connection"):
            other.execute(
                "SELECT sqml_train('e', 'classification', 'dummy', 'dataset_iris', 'target')"
            ).fetchone()
    finally:
        writer.rollback()
    assert iris.counts()["sqml_runs"] == 0
