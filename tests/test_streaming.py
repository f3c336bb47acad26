"""Streamed training (option stream), max_rows sampling and the engine record, through SQL
and the CLI on real database files."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from sqlite_ml.faces.cli import cli
from sqlite_ml.ml.splits import hash_unit

from .helpers import IRIS_FEATURES

STREAM = {"stream": True, "chunk_rows": 64, "random_state": 7}


def run_row(db, run_id):
    names = ("engine", "engine_details", "split_scheme", "key_column", "train_rows", "test_rows")
    row = db.rows(f"SELECT {', '.join(names)} FROM sqml_runs WHERE id = ?", (run_id,))[0]  # noqa: S608
    return dict(zip(names, row, strict=True))


@pytest.mark.parametrize(
    "algorithm",
    ["sgd", "perceptron", "gaussian_nb", "multinomial_nb", "mlp", "xgboost", "lightgbm"],
)
def test_every_streamable_classifier_trains_records_and_predicts(iris, algorithm):
    result = iris.train_with("s", "classification", algorithm, "dataset_iris", "target", STREAM)
    assert result["engine"] == "stream"
    run = run_row(iris, result["run_id"])
    assert run["engine"] == "stream" and run["split_scheme"] == "hash" and run["key_column"] is None
    details = json.loads(run["engine_details"])
    assert details["chunk_rows"] == 64 and details["rows_read_per_pass"] == 150
    assert details["automatic"] is False
    # The hashed split: a row is a test row when hash_unit(rowid, seed) < test_size.
    rowids = np.array([r[0] for r in iris.rows("SELECT rowid FROM dataset_iris")])
    test_rows = int((hash_unit(rowids, 7) < 0.25).sum())
    assert (run["train_rows"], run["test_rows"]) == (150 - test_rows, test_rows)
    assert iris.predict("s", [5.1, 3.5, 1.4, 0.2]) in (0.0, 1.0, 2.0)
    assert iris.value("SELECT count(*) FROM sqml_metrics WHERE name = 'accuracy'") == 1


def test_streamed_xgboost_is_as_good_as_in_memory_and_metrics_are_the_in_memory_ones(iris):
    mixed = "CREATE TABLE mixed AS SELECT * FROM dataset_iris ORDER BY (rowid * 7919) % 151"
    iris.conn.execute(mixed)
    streamed = iris.train_with("x", "classification", "xgboost", "mixed", "target", STREAM)
    assert streamed["metrics"]["accuracy"] >= 0.85
    # The recorded metrics equal scikit-learn's on the same test rows, predicted by the
    # stored model (exact: classification metrics come from integer counts).
    rows = iris.rows("SELECT rowid, * FROM mixed")
    keys = np.array([r[0] for r in rows])
    test = [r for r, t in zip(rows, hash_unit(keys, 7) < 0.25, strict=True) if t]
    predicted = iris.predict_batch("x", [list(r[1:5]) for r in test])
    accuracy = float(np.mean([p == r[5] for p, r in zip(predicted, test, strict=True)]))
    assert streamed["metrics"]["accuracy"] == accuracy


def test_streamed_regression_metrics_match_a_direct_computation(db):
    db.load("diabetes")
    result = db.train_with("r", "regression", "sgd", "dataset_diabetes", "target", STREAM)
    rows = db.rows("SELECT rowid, * FROM dataset_diabetes")
    keys = np.array([r[0] for r in rows])
    test = [r for r, t in zip(rows, hash_unit(keys, 7) < 0.25, strict=True) if t]
    predicted = np.array(db.predict_batch("r", [list(r[1:-1]) for r in test]))
    truth = np.array([r[-1] for r in test])
    from sklearn.metrics import mean_absolute_error, r2_score

    assert math.isclose(result["metrics"]["r2"], r2_score(truth, predicted), rel_tol=1e-9)
    assert math.isclose(
        result["metrics"]["mae"], mean_absolute_error(truth, predicted), rel_tol=1e-9
    )


def test_streamed_statistics_and_schema_equal_in_memory_ones(db):
    """Same rows in training: the streamed run's imputer and scaler equal those an
    in-memory fit gives on the same train rows, categories and digest included."""
    db.conn.execute("CREATE TABLE t (x REAL, c TEXT, y REAL)")
    rng = np.random.default_rng(1)
    values = [
        (None if i % 7 == 0 else float(rng.normal()), ["a", "b", "c"][i % 3], float(i % 5))
        for i in range(400)
    ]
    db.conn.executemany("INSERT INTO t VALUES (?, ?, ?)", values)
    preprocess = {"x": {"impute": "median", "scale": "robust"}}
    options = {**STREAM, "preprocess": preprocess}
    streamed = db.train_with("s", "regression", "sgd", "t", "y", options)
    schema = json.loads(
        db.value("SELECT feature_schema FROM sqml_models WHERE id = ?", (streamed["model_id"],))
    )
    assert [f["kind"] for f in schema["features"]] == ["numeric", "categorical"]
    assert schema["features"][1]["categories"] == ["a", "b", "c"]
    from sqlite_ml.ml import persistence
    from sqlite_ml.preprocessing import ColumnImputer, ColumnScaler

    blob = db.value("SELECT data FROM sqml_models WHERE id = ?", (streamed["model_id"],))
    pipeline = persistence.loads(blob, streamed["model_id"])
    keys = np.arange(1, 401)
    train = hash_unit(keys, 7) >= 0.25
    x = np.array(
        [[np.nan if v[0] is None else v[0]] + [float(v[1] == c) for c in "abc"] for v in values]
    )
    steps = ("median", "mean", "mean", "mean")
    imputer = ColumnImputer(steps).fit(x[train])
    scaler = ColumnScaler(("robust", "standard", "standard", "standard")).fit(
        imputer.transform(x[train])
    )
    assert np.allclose(pipeline.named_steps["impute"].statistics_, imputer.statistics_, rtol=1e-12)
    assert np.allclose(pipeline.named_steps["scale"].mean_, scaler.mean_, rtol=1e-12)
    assert np.allclose(pipeline.named_steps["scale"].scale_, scaler.scale_, rtol=1e-12)
    in_memory = db.train_with("m", "regression", "sgd", "t", "y", {"preprocess": preprocess})
    digests = db.rows("SELECT data_digest FROM sqml_runs ORDER BY id")
    assert digests[0] == digests[1], "the streamed data digest is the in-memory one"
    assert in_memory["run_id"] != streamed["run_id"]


def test_clustering_streams_with_mini_batch_kmeans_and_birch(iris):
    for algorithm in ("mini_batch_kmeans", "birch"):
        result = iris.train_with(algorithm, "clustering", algorithm, "dataset_iris", None, STREAM)
        details = json.loads(run_row(iris, result["run_id"])["engine_details"])
        assert details["clustering_metrics_sample_rows"] == result["test_rows"]
        assert "silhouette" in result["metrics"]


def test_views_stream_with_a_key_column_and_need_one(iris):
    iris.conn.execute("CREATE VIEW v AS SELECT rowid AS id, * FROM dataset_iris")
    error = iris.train_error("v", "classification", "sgd", "v", "target", {"stream": True})
    assert "key_column" in error and "has no rowid" in error
    options = {**STREAM, "key_column": "id", "features": list(IRIS_FEATURES)}
    result = iris.train_with("v", "classification", "gaussian_nb", "v", "target", options)
    assert run_row(iris, result["run_id"])["key_column"] == "id"
    table = iris.train_with("t", "classification", "gaussian_nb", "dataset_iris", "target", STREAM)
    assert (result["train_rows"], result["test_rows"]) == (table["train_rows"], table["test_rows"])


def test_epochs_are_passes_over_the_train_rows(iris):
    seen = []
    from sqlite_ml.ops import progress

    with progress.listening(lambda stage, done, total: seen.append(stage)):
        iris.train_with(
            "e", "classification", "sgd", "dataset_iris", "target", {**STREAM, "epochs": 3}
        )
    assert {"read", "epoch 1/3", "epoch 2/3", "epoch 3/3", "test"} <= set(seen)
    details = json.loads(iris.value("SELECT engine_details FROM sqml_runs"))
    assert details["epochs"] == 3


def test_streaming_refuses_what_it_cannot_do_clearly(iris):
    error = iris.train_error(
        "n", "classification", "svc", "dataset_iris", "target", {"stream": True}
    )
    assert "cannot learn from chunks" in error and "'sgd'" in error and "max_rows" in error
    error = iris.train_error(
        "n",
        "classification",
        "sgd",
        "dataset_iris",
        "target",
        {"stream": True},
        split_strategy="stratified",
    )
    assert "split strategy 'stratified'" in error
    error = iris.train_error(
        "n", "classification", "sgd", "dataset_iris", "target", {"stream": True, "max_rows": 10}
    )
    assert "exclude each other" in error
    error = iris.train_error("n", "classification", "sgd", "dataset_iris", "target", {"epochs": 0})
    assert "epochs must be an integer >= 1" in error


def test_streaming_starts_by_itself_above_the_threshold(iris, monkeypatch):
    monkeypatch.setenv("SQLITE_ML_STREAM_THRESHOLD", "1000")
    result = iris.train_with("a", "classification", "sgd", "dataset_iris", "target")
    assert result["engine"] == "stream"
    details = json.loads(run_row(iris, result["run_id"])["engine_details"])
    assert details["automatic"] is True and details["threshold_bytes"] == 1000
    # An algorithm that cannot stream stays in memory, as before.
    memory = iris.train_with("b", "classification", "svc", "dataset_iris", "target")
    assert "engine" not in memory and run_row(iris, memory["run_id"])["engine"] == "memory"


def test_max_rows_trains_in_memory_on_a_seeded_sample(iris):
    options = {"max_rows": 60, "sample": "stratified", "random_state": 3}
    first = iris.train_with("m", "classification", "svc", "dataset_iris", "target", options)
    again = iris.train_with("m", "classification", "svc", "dataset_iris", "target", options)
    assert first["train_rows"] + first["test_rows"] == 60
    assert first["metrics"] == again["metrics"]
    details = json.loads(run_row(iris, first["run_id"])["engine_details"])
    assert details == {
        "max_rows": 60,
        "sample": "stratified",
        "rows_available": 150,
        "rows_sampled": 60,
    }
    digests = iris.rows("SELECT DISTINCT data_digest FROM sqml_runs")
    assert len(digests) == 1  # the same sample both times
    error = iris.train_error(
        "m2",
        "regression",
        "ridge",
        "dataset_iris",
        "target",
        {"max_rows": 10, "sample": "stratified"},
    )
    assert "needs prediction type 'classification'" in error


def test_a_stratified_sample_keeps_class_shares(iris):
    iris.train_with(
        "m",
        "classification",
        "svc",
        "dataset_iris",
        "target",
        {"max_rows": 30, "sample": "stratified"},
    )
    # 30 of 150 rows, 10 per class: the split then puts them in train and test.
    assert iris.value("SELECT data_rows FROM sqml_runs") == 30


def test_the_cli_streams_and_shows_rows_read(db_path, iris):
    iris.conn.commit()
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "train",
            str(db_path),
            "c",
            "-t",
            "classification",
            "-a",
            "sgd",
            "-d",
            "dataset_iris",
            "-y",
            "target",
            "--options",
            json.dumps(STREAM),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "read..." in result.stderr and "test..." in result.stderr
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT engine FROM sqml_runs").fetchone() == ("stream",)
    conn.close()


def test_a_version_2_database_gains_the_engine_columns(connect, tmp_path):
    import shutil
    from pathlib import Path

    copy = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "data" / "sqlite-ml-0.3.0.db", copy)
    conn = connect(copy)
    conn.execute("SELECT count(*) FROM sqml_experiments").fetchone()
    columns = {row[1] for row in conn.execute("PRAGMA table_info(sqml_runs)")}
    assert {
        "engine",
        "engine_details",
        "split_scheme",
        "key_column",
        "dask_scheduler",
        "dask_workers",
    } <= columns
    trials = {row[1] for row in conn.execute("PRAGMA table_info(sqml_search_trials)")}
    assert "workers" in trials
    assert conn.execute("SELECT count(*) FROM sqml_runs WHERE engine IS NOT NULL").fetchone() == (
        0,
    )


def _watch_xgboost_training(monkeypatch, folder, fail=False):
    """Wrap xgboost.train: record the matrix it trains on and the cache files under
    ``folder`` at that moment; with ``fail``, fail as an XGBoost error would."""
    import xgboost

    seen = {}
    train = xgboost.train

    def watched(params, dtrain, *args, **kwargs):
        seen["matrix"] = type(dtrain).__name__
        seen["files"] = sorted(p.name for p in folder.rglob("*") if p.is_file())
        seen["folders"] = sorted(p.name for p in folder.iterdir())
        if fail:
            raise xgboost.core.XGBoostError("simulated failure in the middle of training")
        return train(params, dtrain, *args, **kwargs)

    monkeypatch.setattr(xgboost, "train", watched)
    return seen


def test_streamed_xgboost_trains_from_a_cache_on_disk_then_removes_it(iris, tmp_path, monkeypatch):
    from sqlite_ml.ml import boosted_streams

    cache = tmp_path / "cache"
    cache.mkdir()
    options = {**STREAM, "cache_dir": str(cache)}
    one_page = iris.train_with(
        "one", "classification", "xgboost", "dataset_iris", "target", options
    )
    # Pages of 30 rows (4 columns of float32): the train rows span several pages.
    monkeypatch.setattr(boosted_streams, "XGBOOST_PAGE_BYTES", 30 * 4 * 4)
    seen = _watch_xgboost_training(monkeypatch, cache)
    paged = iris.train_with("paged", "classification", "xgboost", "dataset_iris", "target", options)
    # XGBoost trained on its external-memory matrix, whose pages were files in a private
    # folder under cache_dir while it trained; nothing is left there afterwards.
    assert seen["matrix"] == "ExtMemQuantileDMatrix"
    assert len(seen["folders"]) == 1 and seen["folders"][0].startswith("sqml-xgboost-")
    assert any(name.endswith(".gradient_index.page") for name in seen["files"])
    assert list(cache.iterdir()) == []
    run = run_row(iris, paged["run_id"])
    details = json.loads(run["engine_details"])
    assert details["xgboost_matrix"] == "external_memory"
    assert details["xgboost_page_rows"] == 30
    assert details["xgboost_pages"] == math.ceil(run["train_rows"] / 30) > 1
    assert details["xgboost_cache_bytes"] > 0
    assert json.loads(run_row(iris, one_page["run_id"])["engine_details"])["xgboost_pages"] == 1
    # No row lost or repeated across pages: the same rows, the same model.
    flowers = [list(r) for r in iris.rows("SELECT * FROM dataset_iris")]
    features = [r[:4] for r in flowers]
    assert iris.predict_batch("paged", features) == iris.predict_batch("one", features)
    assert paged["metrics"] == one_page["metrics"]
    warnings = iris.value("SELECT warnings FROM sqml_runs WHERE id = ?", (paged["run_id"],))
    assert "cache" not in (warnings or "")


def test_the_xgboost_cache_goes_to_the_temporary_directory_by_default(iris, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = _watch_xgboost_training(monkeypatch, tmp_path)
    iris.train_with("x", "classification", "xgboost", "dataset_iris", "target", STREAM)
    assert [name for name in seen["folders"] if name.startswith("sqml-xgboost-")]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("sqml-xgboost-")]


def test_the_xgboost_cache_is_removed_when_training_fails(iris, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    seen = _watch_xgboost_training(monkeypatch, cache, fail=True)
    options = {**STREAM, "cache_dir": str(cache)}
    with pytest.raises(sqlite3.OperationalError, match="simulated failure"):
        iris.train_with("x", "classification", "xgboost", "dataset_iris", "target", options)
    status, error = iris.rows("SELECT status, error FROM sqml_runs")[0]
    assert status == "failed" and "simulated failure" in error
    assert seen["files"]  # the cache was written before training failed
    assert list(cache.iterdir()) == []


def test_option_cache_dir_is_checked_before_anything_is_written(iris, tmp_path):
    def error(options, algorithm="xgboost"):
        return iris.train_error("x", "classification", algorithm, "dataset_iris", "target", options)

    missing = tmp_path / "nowhere"
    assert f"directory '{missing}' does not exist" in error({**STREAM, "cache_dir": str(missing)})
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert f"'{a_file}' is not a directory" in error({**STREAM, "cache_dir": str(a_file)})
    assert "must be the path of a directory, got 3" in error({**STREAM, "cache_dir": 3})
    folder = str(tmp_path)
    sgd = error({**STREAM, "cache_dir": folder}, algorithm="sgd")
    assert "streamed XGBoost" in sgd and "algorithm 'sgd' keeps none" in sgd
    in_memory = error({"stream": False, "cache_dir": folder})
    assert "trains in memory" in in_memory
    assert "trains in memory" in error({"max_rows": 100, "cache_dir": folder})
    on_dask = error({**STREAM, "cache_dir": folder, "dask": "tcp://127.0.0.1:9"})
    assert "trains on the Dask cluster at tcp://127.0.0.1:9" in on_dask
