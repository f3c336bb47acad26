"""A run that fails mid-training: status 'failed' with the error, and nothing else written."""

from __future__ import annotations

import sqlite3

import pytest

from .helpers import SETOSA


def user_tables(db):
    names = db.rows(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqml%'"
        " ORDER BY name"
    )
    return {name: db.dump(name) for (name,) in names}


def assert_failed_run_left_nothing_else(db, run_id, cause):
    status, error = db.rows("SELECT status, error FROM sqml_runs WHERE id = ?", (run_id,))[0]
    assert status == "failed"
    assert error and cause in error
    assert db.value("SELECT count(*) FROM sqml_models WHERE run_id = ?", (run_id,)) == 0
    assert (
        db.value(
            "SELECT count(*) FROM sqml_metrics WHERE model_id IN"
            " (SELECT id FROM sqml_models WHERE run_id = ?)",
            (run_id,),
        )
        == 0
    )
    assert (
        db.value(
            "SELECT count(*) FROM sqml_deployments WHERE model_id IN"
            " (SELECT id FROM sqml_models WHERE run_id = ?)",
            (run_id,),
        )
        == 0
    )
    assert db.value("SELECT status FROM sqml_runs_overview WHERE run_id = ?", (run_id,)) == (
        "failed"
    )


@pytest.fixture
def tables(db):
    db.conn.execute("CREATE TABLE one_class (x REAL, z REAL, label TEXT)")
    db.conn.executemany(
        "INSERT INTO one_class VALUES (?, ?, 'only')", [(i, i % 3) for i in range(20)]
    )
    db.conn.execute("CREATE TABLE prices (size REAL, price TEXT)")
    db.conn.executemany(
        "INSERT INTO prices VALUES (?, ?)",
        [(i, "expensive" if i == 7 else str(10 * i)) for i in range(20)],
    )
    db.conn.commit()
    return db


def test_single_class_training_fails_cleanly(tables):
    db = tables
    before_tables, before_counts = user_tables(db), db.counts()
    with pytest.raises(sqlite3.OperationalError, match=r"training run 1 failed: .*class") as error:
        db.train("single", "classification", "logistic_regression", "one_class", "label")
    assert "has a single class ('only')" in str(error.value)  # our words, not the solver's
    assert_failed_run_left_nothing_else(db, 1, "class")
    assert db.counts() == {**before_counts, "sqml_experiments": 1, "sqml_runs": 1}
    assert user_tables(db) == before_tables


def test_regression_on_text_target_fails_naming_the_value(tables):
    db = tables
    before = user_tables(db)
    with pytest.raises(
        sqlite3.OperationalError,
        match=r"training run 1 failed: target column 'price' holds 'expensive'.*classification",
    ):
        db.train("prices", "regression", "linear_regression", "prices", "price")
    assert_failed_run_left_nothing_else(db, 1, "'expensive'")
    assert user_tables(db) == before


def test_a_failed_run_keeps_the_previous_deployment(tables):
    db = tables
    db.load("iris")
    good = db.train("mixed", "classification", "logistic_regression", "dataset_iris", "target")
    db.conn.execute("CREATE VIEW iris_one_class AS SELECT * FROM dataset_iris WHERE target = 0")
    with pytest.raises(sqlite3.OperationalError, match="training run 2 failed"):
        db.train("mixed", "classification", "logistic_regression", "iris_one_class", "target")
    assert_failed_run_left_nothing_else(db, 2, "class")
    assert db.active_model_id("mixed") == good["model_id"]
    assert db.predict("mixed", SETOSA) == 0.0


def test_too_few_labelled_rows_fails_as_a_run(tables):
    db = tables
    db.conn.execute("CREATE TABLE tiny (x REAL, y REAL)")
    db.conn.execute("INSERT INTO tiny VALUES (1, 2), (2, NULL), (3, NULL)")
    with pytest.raises(sqlite3.OperationalError, match=r"training run 1 failed: .*1 row\(s\)"):
        db.train("tiny", "regression", "linear_regression", "tiny", "y")
    assert_failed_run_left_nothing_else(db, 1, "at least 2")


def test_an_interrupted_run_is_recorded_as_failed(iris, monkeypatch):
    """Ctrl-C during a fit (a KeyboardInterrupt) leaves the run 'failed: interrupted', not
    'pending' forever, and the interrupt goes on to the caller."""
    from sqlite_ml.ops import training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_fit_and_record", interrupted)
    request = training.validate(
        iris.conn, "e", "classification", "logistic_regression", "dataset_iris", "target",
        0.25, "shuffle", None,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        training.train(iris.conn, request)
    status, error = iris.conn.execute("SELECT status, error FROM sqml_runs").fetchone()
    assert (status, error) == ("failed", "interrupted")
    assert iris.counts()["sqml_models"] == 0
