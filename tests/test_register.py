"""register(): schema creation, idempotence, connection settings, version functions."""

from __future__ import annotations

import importlib.metadata
import json
import sqlite3
import sys

import pytest
import sklearn

import sqlite_ml
from sqlite_ml.db import schema as store

from .helpers import SETOSA, expected_mode

REQUIRED_COLUMNS = {
    "sqml_experiments": {"id", "created_at", "updated_at", "name", "prediction_type"},
    "sqml_runs": {
        "id",
        "created_at",
        "updated_at",
        "status",
        "algorithm",
        "dataset",
        "target",
        "test_size",
        "split_strategy",
        "experiment_id",
        # added by this version
        "seed",
        "hyperparams",
        "error",
        "fit_time",
        "data_digest",
        "feature_names",
        "feature_types",
        "library_versions",
    },
    "sqml_models": {"id", "created_at", "updated_at", "run_id", "library", "data"},
    "sqml_metrics": {"id", "created_at", "updated_at", "model_id", "name", "value"},
    "sqml_deployments": {"id", "created_at", "updated_at", "experiment_id", "model_id", "active"},
}
OVERVIEW_COLUMNS = ["run_id", "experiment", "start_time", "status", "algorithm", "score"]


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_creates_every_table_and_column(db):
    for table, required in REQUIRED_COLUMNS.items():
        assert db.value("SELECT type FROM sqlite_master WHERE name = ?", (table,)) == "table"
        assert required <= columns(db.conn, table), table


def test_runs_overview_view_has_the_01x_columns(db):
    assert db.value("SELECT type FROM sqlite_master WHERE name = 'sqml_runs_overview'") == "view"
    cursor = db.conn.execute("SELECT * FROM sqml_runs_overview LIMIT 0")
    names = [description[0] for description in cursor.description]
    assert names[: len(OVERVIEW_COLUMNS)] == OVERVIEW_COLUMNS


def test_schema_version_is_stored(db):
    stored = db.value("SELECT value FROM sqml_meta WHERE key = 'schema_version'")
    assert int(stored) == store.SCHEMA_VERSION >= 1


def test_schema_is_committed_for_other_connections(db, connect):
    other = connect(register=False)
    names = {row[0] for row in other.execute("SELECT name FROM sqlite_master")}
    assert {"sqml_meta", *REQUIRED_COLUMNS, "sqml_runs_overview"} <= names


def test_register_twice_on_same_connection(iris):
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    before_schema, before_counts = iris.schema(), iris.counts()
    sqlite_ml.register(iris.conn)
    sqlite_ml.register(iris.conn)
    assert iris.schema() == before_schema
    assert iris.counts() == before_counts
    assert iris.predict("e", SETOSA) == 0.0
    assert iris.train("e", "classification", "dummy", "dataset_iris", "target")["run_id"] == 2


def test_register_on_second_connection_to_same_file(iris, connect):
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    before_schema, before_counts = iris.schema(), iris.counts()
    other = connect()
    assert other.execute("SELECT sqml_predict('e', ?)", (json.dumps(SETOSA),)).fetchone() == (0.0,)
    assert iris.schema() == before_schema
    assert iris.counts() == before_counts
    assert iris.predict("e", SETOSA) == 0.0


def test_register_refuses_a_newer_schema(db, connect):
    db.conn.execute("UPDATE sqml_meta SET value = '999' WHERE key = 'schema_version'")
    db.conn.commit()
    with pytest.raises(sqlite_ml.SqmlError, match="999.*upgrade sqlite-ml"):
        connect()


def test_register_needs_a_connection():
    with pytest.raises(TypeError, match="sqlite3.Connection"):
        sqlite_ml.register("not a connection")  # type: ignore[arg-type]


@pytest.mark.parametrize("isolation_level", [None, "", "DEFERRED", "IMMEDIATE"])
def test_register_keeps_isolation_level_and_transaction_state(connect, db_path, isolation_level):
    conn = connect(register=False, isolation_level=isolation_level)
    sqlite_ml.register(conn)  # fresh file: creates the schema
    assert conn.isolation_level == isolation_level
    assert conn.in_transaction is False
    sqlite_ml.register(conn)  # up to date: nothing to do
    assert conn.isolation_level == isolation_level
    assert conn.in_transaction is False


def test_register_inside_an_open_transaction_leaves_it_open(connect):
    conn = connect(register=False, isolation_level=None)
    conn.execute("CREATE TABLE mine (x)")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO mine VALUES (1)")
    sqlite_ml.register(conn)
    assert conn.in_transaction is True
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM mine").fetchone() == (0,)


def test_register_keeps_row_factory_and_functions_work_with_row(db_path, connect):
    conn = connect(register=False)
    conn.row_factory = sqlite3.Row
    sqlite_ml.register(conn)
    assert conn.row_factory is sqlite3.Row
    loaded = conn.execute("SELECT sqml_load_dataset('iris') AS result").fetchone()
    assert isinstance(loaded, sqlite3.Row)
    assert json.loads(loaded["result"])["size"] == 150
    trained = conn.execute(
        "SELECT sqml_train('e', 'classification', 'logistic_regression', 'dataset_iris',"
        " 'target') AS result"
    ).fetchone()
    assert json.loads(trained["result"])["deployed"] is True
    row = conn.execute(
        "SELECT sqml_predict('e', ?) AS p, sqml_predict_batch('e', ?) AS b",
        (json.dumps(SETOSA), json.dumps([SETOSA])),
    ).fetchone()
    assert isinstance(row, sqlite3.Row)
    assert row["p"] == 0.0
    assert json.loads(row["b"]) == [0.0]
    assert conn.row_factory is sqlite3.Row


def test_functions_work_with_bytes_text_factory(connect):
    conn = connect(register=False)
    conn.text_factory = bytes
    sqlite_ml.register(conn)
    assert conn.text_factory is bytes
    conn.execute("CREATE TABLE t (x REAL, label TEXT)")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?)", [(i, "yes" if i >= 10 else "no") for i in range(20)]
    )
    result = conn.execute(
        "SELECT sqml_train('e', 'classification', 'logistic_regression', 't', 'label')"
    ).fetchone()[0]
    assert isinstance(result, bytes)
    assert json.loads(result)["deployed"] is True
    assert conn.execute("SELECT sqml_predict('e', '[19]')").fetchone()[0] == b"yes"
    assert conn.execute("SELECT sqml_version()").fetchone()[0] == sqlite_ml.__version__.encode()
    assert conn.text_factory is bytes


def test_version_functions(db):
    assert db.value("SELECT sqml_version()") == sqlite_ml.__version__
    assert db.value("SELECT sqml_version()") == importlib.metadata.version("sqlite-ml")
    assert db.value("SELECT sqml_python_version()") == sys.version
    assert db.value("SELECT sqml_sklearn_version()") == sklearn.__version__


def test_bytes_text_factory_keeps_precise_sql_errors(connect):
    """The C-API binding must not silently fall back because of the caller's text_factory."""
    conn = connect(register=False)
    conn.text_factory = bytes
    sqlite_ml.register(conn)
    assert sqlite_ml.binding_mode(conn) == expected_mode()
    with pytest.raises(sqlite3.OperationalError, match="unknown dataset 'nope'"):
        conn.execute("SELECT sqml_load_dataset('nope')").fetchone()


def dict_rows(cursor: sqlite3.Cursor, row: tuple) -> dict:
    return {
        description[0]: value for description, value in zip(cursor.description, row, strict=True)
    }


def test_register_with_a_dict_row_factory(connect):
    """register() must not read its own queries through the caller's row_factory."""
    conn = connect(register=False)
    conn.row_factory = dict_rows
    sqlite_ml.register(conn)
    assert conn.row_factory is dict_rows
    assert sqlite_ml.binding_mode(conn) == expected_mode()
    row = conn.execute("SELECT sqml_load_dataset('iris') AS loaded").fetchone()
    assert json.loads(row["loaded"])["size"] == 150
