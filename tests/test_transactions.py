"""sqml_train joins the caller's transaction; outside one, its writes are committed at once."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from .helpers import SETOSA, VIRGINICA, Db


def test_training_inside_a_transaction_is_rolled_back_with_it(iris, connect):
    iris.conn.execute("CREATE TABLE notes (text TEXT)")
    iris.conn.commit()
    before_counts, before_schema = iris.counts(), iris.schema()
    iris.conn.execute("BEGIN")
    iris.conn.execute("INSERT INTO notes VALUES ('in the transaction')")
    result = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    assert result["deployed"] is True
    assert iris.conn.in_transaction
    assert iris.counts()["sqml_models"] == 1
    other = Db(connect(), iris.path)
    assert other.counts() == before_counts  # not committed yet
    iris.conn.execute("ROLLBACK")
    assert iris.counts() == before_counts
    assert iris.schema() == before_schema
    assert iris.rows("SELECT * FROM notes") == []


def test_training_inside_a_transaction_is_committed_with_it(iris, connect):
    iris.conn.execute("BEGIN")
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    iris.conn.execute("COMMIT")
    other = Db(connect(), iris.path)
    assert other.counts()["sqml_deployments"] == 1
    assert other.predict("e", SETOSA) == 0.0


@pytest.mark.parametrize("isolation_level", [None, ""])
def test_outside_a_transaction_another_connection_sees_the_model_at_once(
    connect, db_path, isolation_level
):
    db = Db(connect(isolation_level=isolation_level), db_path)
    db.load("iris")
    result = db.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    assert db.conn.in_transaction is False
    other = Db(connect(), db_path)
    assert other.active_model_id("e") == result["model_id"]
    assert other.predict("e", SETOSA) == 0.0
    assert other.value("SELECT count(*) FROM dataset_iris") == 150


def test_a_failed_run_inside_a_transaction_is_rolled_back_with_it(iris):
    iris.conn.execute("CREATE VIEW one_class AS SELECT * FROM dataset_iris WHERE target = 0")
    iris.conn.commit()
    before = iris.counts()
    iris.conn.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="training run 1 failed"):
        iris.train("e", "classification", "logistic_regression", "one_class", "target")
    assert iris.conn.in_transaction
    assert iris.value("SELECT status FROM sqml_runs WHERE id = 1") == "failed"
    iris.conn.execute("ROLLBACK")
    assert iris.counts() == before


def test_training_inside_a_write_statement(iris):
    """INSERT ... SELECT sqml_train(...): the writes are part of that statement."""
    iris.conn.execute("CREATE TABLE results (result TEXT)")
    iris.conn.execute(
        "INSERT INTO results SELECT sqml_train('e', 'classification', 'logistic_regression',"
        " 'dataset_iris', 'target')"
    )
    iris.conn.commit()
    result = json.loads(iris.value("SELECT result FROM results"))
    assert result["deployed"] is True
    assert iris.active_model_id("e") == result["model_id"]
    assert iris.predict("e", SETOSA) == 0.0

    before = iris.counts()
    with pytest.raises(sqlite3.OperationalError, match="unknown algorithm 'nope'"):
        iris.conn.execute(
            "INSERT INTO results SELECT sqml_train('e', 'classification', 'nope',"
            " 'dataset_iris', 'target')"
        )
    iris.conn.commit()
    assert iris.counts() == before
    assert iris.value("SELECT count(*) FROM results") == 1


def test_load_dataset_inside_a_transaction_is_rolled_back_with_it(db):
    db.conn.execute("BEGIN")
    db.load("wine")
    db.conn.execute("ROLLBACK")
    assert db.value("SELECT count(*) FROM sqlite_master WHERE name = 'dataset_wine'") == 0


def test_predictions_follow_a_rollback(iris):
    """A ROLLBACK moves neither data_version nor total_changes; the cache must still see it."""
    iris.train("e", "classification", "dummy", "dataset_iris", "target")
    dummy_class = iris.predict("e", SETOSA)
    flower, truth = (VIRGINICA, 2.0) if dummy_class == 0.0 else (SETOSA, 0.0)
    committed = iris.predict("e", flower)
    assert committed == dummy_class

    iris.conn.execute("BEGIN")
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    assert iris.predict("e", flower) == truth  # the new model, inside the transaction
    iris.conn.execute("ROLLBACK")
    assert iris.value("SELECT count(*) FROM sqml_models") == 1
    assert iris.predict("e", flower) == committed  # back to the committed deployment

    iris.conn.execute("BEGIN")
    iris.train("new", "classification", "dummy", "dataset_iris", "target")
    iris.predict("new", SETOSA)
    iris.conn.execute("ROLLBACK")
    with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'new'"):
        iris.predict("new", SETOSA)


def test_a_run_named_in_an_error_exists_even_inside_a_write_statement(iris):
    iris.conn.execute("CREATE VIEW one_class AS SELECT * FROM dataset_iris WHERE target = 0")
    iris.conn.execute("CREATE TABLE results (result TEXT)")
    iris.conn.commit()
    with pytest.raises(sqlite3.OperationalError) as error:
        iris.conn.execute(
            "INSERT INTO results SELECT sqml_train('e', 'classification',"
            " 'logistic_regression', 'one_class', 'target')"
        )
    iris.conn.commit()
    assert "run record is undone with that statement" in str(error.value)
    named = re.search(r"training run (\d+) failed", str(error.value))
    if named:
        run = iris.rows("SELECT status, error FROM sqml_runs WHERE id = ?", (int(named[1]),))
        assert run and run[0][0] == "failed" and run[0][1]


def test_training_inside_a_write_statement_in_autocommit_mode(iris):
    """As the sqlite3 shell runs it: no transaction around the INSERT, whose writes then
    include the run's (SQLite accepts a BEGIN there but refuses its COMMIT)."""
    iris.conn.commit()
    iris.conn.isolation_level = None
    iris.conn.execute("CREATE TABLE results (result TEXT)")
    iris.conn.execute(
        "INSERT INTO results SELECT sqml_train('e', 'classification', 'logistic_regression',"
        " 'dataset_iris', 'target')"
    )
    assert not iris.conn.in_transaction
    result = json.loads(iris.value("SELECT result FROM results"))
    assert result["deployed"] is True and iris.predict("e", SETOSA) == 0.0
    with pytest.raises(sqlite3.OperationalError, match="unknown algorithm 'nope'"):
        iris.conn.execute(
            "INSERT INTO results SELECT sqml_train('e', 'classification', 'nope',"
            " 'dataset_iris', 'target')"
        )
    assert iris.value("SELECT count(*) FROM results") == 1
    assert iris.value("SELECT count(*) FROM sqml_runs") == 1
