"""Test rows you can see: hashed splits keyed by rowid or key_column, recorded on the run,
and ``sqml_test_rows(run_id)``, whose rows give back the run's stored metrics."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from sqlite_ml.errors import SqmlError
from sqlite_ml.ml import metrics
from sqlite_ml.ops.held_out import held_out_rows

from .helpers import IRIS_FEATURES, expected_mode
from .test_splits import ordered_table

native_only = pytest.mark.skipif(
    expected_mode() != "native", reason="table-valued functions need the native binding"
)


def stored_metrics(db, model_id):
    return dict(db.rows("SELECT name, value FROM sqml_metrics WHERE model_id = ?", (model_id,)))


def rows_of_run(db, run_id, dataset, columns, key="rowid"):
    """The dataset's test rows of a run through sqml_test_rows, in key order."""
    selected = ", ".join(f'd."{c}"' for c in columns)
    return db.rows(
        f"SELECT t.row_id, {selected} FROM sqml_test_rows(?) AS t"  # noqa: S608
        f' JOIN "{dataset}" AS d ON d.{key} = t.row_id ORDER BY t.row_id',
        (run_id,),
    )


def predictions(db, experiment, rows):
    items = [list(row[1:]) for row in rows]
    return db.predict_batch(experiment, items)


@native_only
@pytest.mark.parametrize(
    "prediction_type, algorithm, dataset",
    [
        ("classification", "logistic_regression", "dataset_iris"),
        ("classification", "random_forest", "dataset_breast_cancer"),
        ("regression", "ridge", "dataset_diabetes"),
    ],
)
def test_metrics_recomputed_on_the_test_rows_equal_the_stored_ones(
    db, prediction_type, algorithm, dataset
):
    db.load(dataset.removeprefix("dataset_"))
    options = {"hyperparams": {"n_estimators": 10}} if algorithm == "random_forest" else None
    result = db.train_with("e", prediction_type, algorithm, dataset, "target", options)
    features = json.loads(
        db.value("SELECT feature_names FROM sqml_runs WHERE id = ?", (result["run_id"],))
    )
    rows = rows_of_run(db, result["run_id"], dataset, [*features, "target"])
    assert len(rows) == result["test_rows"] > 0
    truth = np.array([row[-1] for row in rows], dtype=float)
    predicted = np.array(db.predict_batch("e", [list(row[1:-1]) for row in rows]), dtype=float)
    recomputed = metrics.compute(prediction_type, truth, predicted)
    if prediction_type == "classification":
        blob_model = db.stored_model(result["model_id"])[0]
        x = np.array([row[1:-1] for row in rows], dtype=float)
        recomputed.update(
            metrics.probability_metrics(truth, blob_model.predict_proba(x), blob_model.classes_)
        )
    stored = stored_metrics(db, result["model_id"])
    assert set(stored) == {k for k, v in recomputed.items() if math.isfinite(v)}
    for name, value in stored.items():
        assert recomputed[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


@native_only
def test_clustering_metrics_recomputed_on_the_test_rows(iris):
    iris.conn.execute("CREATE VIEW measured AS SELECT rowid AS id, * FROM dataset_iris")
    result = iris.train_with(
        "c",
        "clustering",
        "kmeans",
        "measured",
        None,
        {"hyperparams": {"n_clusters": 3}, "key_column": "id", "features": list(IRIS_FEATURES)},
    )
    rows = rows_of_run(iris, result["run_id"], "measured", IRIS_FEATURES, key="id")
    assert len(rows) == result["test_rows"]
    pipeline = iris.stored_model(result["model_id"])[0]
    x = pipeline[:-1].transform(np.array([row[1:] for row in rows], dtype=float))
    recomputed = metrics.clustering_metrics(x, pipeline[-1].predict(x))
    for name, value in stored_metrics(iris, result["model_id"]).items():
        assert recomputed[name] == pytest.approx(value, rel=1e-12), name


@native_only
def test_text_labels_and_a_text_key_column_on_a_view(db):
    db.conn.execute("CREATE TABLE people (code TEXT, x REAL, y TEXT)")
    db.conn.executemany(
        "INSERT INTO people VALUES (?, ?, ?)",
        [(f"p{i:03d}", float(i % 13), "yes" if i % 13 > 6 else "no") for i in range(200)],
    )
    db.conn.execute("CREATE VIEW people_view AS SELECT * FROM people")
    db.conn.commit()
    result = db.train_with(
        "e", "classification", "decision_tree", "people_view", "y", {"key_column": "code"}
    )
    run = db.rows(
        "SELECT split_scheme, key_column, feature_names FROM sqml_runs WHERE id = ?",
        (result["run_id"],),
    )
    assert run == [("hash", "code", '["x"]')]  # the key column is not a feature
    rows = rows_of_run(db, result["run_id"], "people_view", ["x", "y"], key="code")
    assert len(rows) == result["test_rows"] and all(row[0].startswith("p") for row in rows)
    predicted = db.predict_batch("e", [{"x": row[1]} for row in rows])
    assert skm.accuracy_score([row[2] for row in rows], predicted) == result["metrics"]["accuracy"]


def test_the_split_is_by_key_hash_and_survives_appended_rows(db):
    db.load("iris")
    db.conn.execute("CREATE TABLE grows AS SELECT * FROM dataset_iris")
    db.conn.commit()
    first = db.train_with("e", "classification", "logistic_regression", "grows", "target")
    before = set(held_out_rows(db.conn, first["run_id"]).keys.tolist())
    db.conn.execute("INSERT INTO grows SELECT * FROM dataset_iris")
    db.conn.commit()
    second = db.train_with("e", "classification", "logistic_regression", "grows", "target")
    after = set(held_out_rows(db.conn, second["run_id"]).keys.tolist())
    assert {key for key in after if key <= 150} == before
    # The first run's test rows are still named: the new rows are not among them ...
    message = "changed since the run was trained"
    with pytest.raises(Exception, match=message):  # ... but the fingerprint tells
        held_out_rows(db.conn, first["run_id"])


def test_shuffle_share_is_close_to_test_size_and_stratified_is_exact(db):
    db.conn.execute("CREATE TABLE skewed (x REAL, y TEXT)")
    rows = [(float(i), "rare" if i % 10 == 0 else "common") for i in range(1000)]
    db.conn.executemany("INSERT INTO skewed VALUES (?, ?)", rows)
    db.conn.commit()
    shuffled = db.train_with("s", "classification", "dummy", "skewed", "y", None, 0.2)
    assert abs(shuffled["test_rows"] - 200) < 40
    stratified = db.train_with(
        "t", "classification", "dummy", "skewed", "y", None, 0.2, "stratified"
    )
    assert stratified["test_rows"] == 200
    keys = held_out_rows(db.conn, stratified["run_id"]).keys.tolist()
    assert sum(1 for key in keys if (key - 1) % 10 == 0) == 20  # rowid = i + 1
    scheme = db.value("SELECT split_scheme FROM sqml_runs WHERE id = ?", (stratified["run_id"],))
    assert scheme == "stratified_hash"


def test_last_keeps_its_meaning_and_names_its_rows(db):
    ordered_table(db)
    result = db.train_with(
        "e", "classification", "dummy", "series", "y", {"order_by": "t"}, 0.25, "last"
    )
    keys = held_out_rows(db.conn, result["run_id"]).keys.tolist()
    ts = [db.value("SELECT t FROM series WHERE rowid = ?", (key,)) for key in keys]
    assert sorted(ts) == list(range(30, 40))


def test_a_view_without_key_column_is_split_by_position_and_its_rows_are_not_named(iris):
    iris.conn.execute("CREATE VIEW flowers AS SELECT * FROM dataset_iris")
    result = iris.train("e", "classification", "logistic_regression", "flowers", "target")
    assert (
        iris.value("SELECT split_scheme FROM sqml_runs WHERE id = ?", (result["run_id"],))
        == "position"
    )
    with pytest.raises(Exception, match="train with the option key_column"):
        held_out_rows(iris.conn, result["run_id"])


def test_runs_made_before_split_schemes_are_not_named(iris):
    result = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    iris.conn.execute("UPDATE sqml_runs SET split_scheme = NULL, test_fingerprint = NULL")
    with pytest.raises(Exception, match="earlier sqlite-ml"):
        held_out_rows(iris.conn, result["run_id"])
    assert iris.predict("e", [5.1, 3.5, 1.4, 0.2]) == 0.0  # the old run keeps serving


@pytest.mark.parametrize(
    "setup, options, message",
    [
        (
            "CREATE TABLE k (id INTEGER, x REAL, y REAL)",
            {"key_column": "nope"},
            "unknown key_column column 'nope'",
        ),
        (
            "CREATE TABLE k (id INTEGER, x REAL, y REAL)",
            {"key_column": "y"},
            "option key_column names the target column",
        ),
    ],
)
def test_bad_key_columns_are_refused_before_anything_is_written(db, setup, options, message):
    db.conn.execute(setup)
    db.conn.executemany("INSERT INTO k VALUES (?, ?, ?)", [(i, i, i) for i in range(10)])
    assert message in db.train_error("e", "regression", "ridge", "k", "y", options)


@pytest.mark.parametrize(
    "values, message",
    [
        ([1, 2, 2, 3, 4, 5, 6, 7], "holds 2 in more than one row"),
        ([1, 2, None, 3, 4, 5, 6, 7], "is NULL in a row"),
    ],
)
def test_duplicate_or_null_keys_fail_the_run_with_the_reason(db, values, message):
    db.conn.execute("CREATE TABLE k (id INTEGER, x REAL, y REAL)")
    db.conn.executemany("INSERT INTO k VALUES (?, ?, ?)", [(v, i, i) for i, v in enumerate(values)])
    db.conn.commit()
    with pytest.raises(Exception, match=message):
        db.train_with("e", "regression", "ridge", "k", "y", {"key_column": "id"})


@native_only
def test_sqml_test_rows_errors(iris):
    with pytest.raises(Exception, match="there is no run 3"):
        iris.rows("SELECT * FROM sqml_test_rows(3)")
    with pytest.raises(Exception, match="run_id must be the id of a run"):
        iris.rows("SELECT * FROM sqml_test_rows('x')")
    with pytest.raises(Exception, match="needs its first 1 argument"):
        iris.rows("SELECT * FROM sqml_test_rows")


def test_a_0_3_0_database_gains_the_columns_and_its_runs_say_why_they_cannot_be_named(
    tmp_path, connect
):
    path = tmp_path / "old.db"
    shutil.copyfile(Path(__file__).parent / "data" / "sqlite-ml-0.3.0.db", path)
    conn = connect(path)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(sqml_runs)")}
    assert {"split_scheme", "key_column", "test_fingerprint", "deploy_decision"} <= columns
    assert conn.execute("SELECT value FROM sqml_meta WHERE key = 'schema_version'").fetchone() == (
        "3",
    )
    with pytest.raises(SqmlError, match="earlier sqlite-ml"):
        held_out_rows(conn, 1)
    # A new run is compared with the 0.3.0 model on its own test rows.
    result = json.loads(
        conn.execute(
            "SELECT sqml_train('iris', 'classification', 'decision_tree', 'dataset_iris', 'target')"
        ).fetchone()[0]
    )
    decision = result["deploy_decision"]
    assert decision["comparison"] == "active model scored on this run's test rows"
    assert decision["active_model_id"] == 1 and decision["active"] is not None
    assert len(held_out_rows(conn, result["run_id"]).keys) == result["test_rows"]
