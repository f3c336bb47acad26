"""How functions are bound: precise SQL errors by default, the stdlib fallback, DIRECTONLY."""

from __future__ import annotations

import json
import sqlite3

import pytest

import sqlite_ml

from .helpers import SETOSA, Db, expected_mode


def test_default_binding_gives_our_messages(db):
    assert sqlite_ml.binding_mode(db.conn) == expected_mode()
    with pytest.raises(sqlite3.OperationalError, match="^unknown dataset 'nope'; available: "):
        db.load("nope")


@pytest.fixture
def stdlib(monkeypatch, connect, db_path):
    monkeypatch.setenv("SQLITE_ML_BINDING", "stdlib")
    return Db(connect(), db_path)


def test_stdlib_fallback_works(stdlib):
    db = stdlib
    assert sqlite_ml.binding_mode(db.conn) == "stdlib"
    assert db.value("SELECT sqml_version()") == sqlite_ml.__version__
    assert db.load("iris")["size"] == 150
    result = db.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    assert result["deployed"] is True
    assert db.predict("e", SETOSA) == 0.0
    assert db.predict_batch("e", [SETOSA]) == [0.0]


def test_stdlib_fallback_errors_and_last_error(stdlib):
    db = stdlib
    db.load("iris")
    before = db.counts()
    with pytest.raises(sqlite3.OperationalError):
        db.train("e", "classification", "deep_magic", "dataset_iris", "target")
    assert db.counts() == before
    message = sqlite_ml.last_error(db.conn)
    assert message is not None
    assert "unknown algorithm 'deep_magic'" in message and "'logistic_regression'" in message
    with pytest.raises(sqlite3.OperationalError):
        db.value("SELECT sqml_predict('missing', '[1]')")
    assert sqlite_ml.last_error(db.conn).startswith("unknown experiment 'missing'")
    with pytest.raises(sqlite3.OperationalError):
        db.value("SELECT sqml_train('only one')")
    assert "sqml_train takes 5 to 8 arguments, got 1" in sqlite_ml.last_error(db.conn)


def test_last_error_is_per_connection(stdlib, connect):
    other = connect()
    with pytest.raises(sqlite3.OperationalError):
        other.execute("SELECT sqml_load_dataset('other')").fetchone()
    with pytest.raises(sqlite3.OperationalError):
        stdlib.load("mine")
    assert "'mine'" in sqlite_ml.last_error(stdlib.conn)
    assert "'other'" in sqlite_ml.last_error(other)


def test_sql_binding_mode_function(db, stdlib):
    # ``stdlib`` forces its mode after ``db`` was registered in this run's own mode.
    assert db.value("SELECT sqml_binding_mode()") == sqlite_ml.binding_mode(db.conn) != "stdlib"
    assert stdlib.value("SELECT sqml_binding_mode()") == "stdlib"


def connection_reusing_the_id_of(old_id, path, keep):
    """A fresh, unregistered connection that happens to get ``old_id`` (CPython reuses
    the memory of a freed object of the same size)."""
    for _ in range(200):
        conn = sqlite3.connect(path)
        if id(conn) == old_id:
            return conn
        keep.append(conn)
    pytest.skip("CPython did not reuse the connection's address")


def test_a_new_connection_does_not_inherit_a_closed_ones_mode_or_error(monkeypatch, db_path):
    monkeypatch.setenv("SQLITE_ML_BINDING", "stdlib")
    old = sqlite3.connect(db_path)
    sqlite_ml.register(old)
    with pytest.raises(sqlite3.OperationalError):
        old.execute("SELECT sqml_load_dataset('nope')").fetchone()
    assert sqlite_ml.last_error(old) is not None
    old_id = id(old)
    old.close()
    del old
    keep: list[sqlite3.Connection] = []
    new = connection_reusing_the_id_of(old_id, db_path, keep)
    try:
        assert sqlite_ml.binding_mode(new) is None
        assert sqlite_ml.last_error(new) is None
    finally:
        for conn in [new, *keep]:
            conn.close()


def test_writer_functions_cannot_run_from_a_view(db):
    db.conn.execute("CREATE VIEW sneaky AS SELECT sqml_load_dataset('iris', 'planted') AS x")
    db.conn.commit()
    before = db.schema()
    with pytest.raises(sqlite3.OperationalError, match="unsafe use of sqml_load_dataset"):
        db.rows("SELECT * FROM sneaky")
    assert db.schema() == before


def test_writer_functions_cannot_run_from_a_trigger(iris):
    db = iris
    db.conn.execute("CREATE TABLE t (x)")
    db.conn.execute(
        "CREATE TRIGGER on_insert AFTER INSERT ON t BEGIN"
        " SELECT sqml_train('planted', 'classification', 'dummy', 'dataset_iris', 'target');"
        " END"
    )
    db.conn.commit()
    before = db.counts()
    with pytest.raises(sqlite3.OperationalError, match="unsafe use of sqml_train"):
        db.conn.execute("INSERT INTO t VALUES (1)")
    db.conn.rollback()
    assert db.counts() == before
    assert db.rows("SELECT * FROM t") == []


def test_predictions_are_allowed_in_views(iris):
    db = iris
    db.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    db.conn.execute(
        "CREATE VIEW predicted AS SELECT target, sqml_predict('e', json_array("
        '"sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"))'
        " AS prediction FROM dataset_iris"
    )
    rows = db.rows("SELECT target, prediction FROM predicted")
    assert len(rows) == 150
    assert sum(target == predicted for target, predicted in rows) > 130
    assert json.loads(db.value("SELECT sqml_predict_batch('e', '[]') FROM predicted LIMIT 1")) == []


@pytest.fixture
def no_safe_binding(monkeypatch):
    """Neither the native nor the ctypes binding can be set up (as on a Python whose
    sqlite3 has no shared library to reach), and no SQLITE_ML_BINDING."""
    from sqlite_ml.sqlite import binders

    monkeypatch.delenv("SQLITE_ML_BINDING", raising=False)
    for mode in binders.SAFE_MODES:
        monkeypatch.setitem(binders._binders, mode, None)
        monkeypatch.setitem(binders._failures, mode, "cannot be set up (simulated)")


def test_the_stdlib_fallback_is_never_silent(no_safe_binding, connect):
    """Python's create_function cannot set SQLITE_DIRECTONLY, so in the stdlib binding a
    view or trigger could call the writer functions. It is never chosen by itself:
    registering fails, naming SQLITE_ML_BINDING=stdlib, and writes nothing; a view that
    calls a writer then finds no such function."""
    conn = connect(register=False)
    with pytest.raises(sqlite_ml.SqmlError, match="set SQLITE_ML_BINDING=stdlib to use it"):
        sqlite_ml.register(conn)
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.execute("CREATE VIEW sneaky AS SELECT sqml_load_dataset('iris', 'planted') AS x")
    with pytest.raises(sqlite3.OperationalError, match="no such function"):
        conn.execute("SELECT * FROM sneaky").fetchall()
    assert (
        conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'planted'").fetchone()[0] == 0
    )


def test_the_stdlib_binding_is_an_explicit_choice(no_safe_binding, monkeypatch, connect):
    monkeypatch.setenv("SQLITE_ML_BINDING", "stdlib")
    conn = connect()
    assert sqlite_ml.binding_mode(conn) == "stdlib"


def test_last_error_in_capi_mode(db):
    with pytest.raises(sqlite3.OperationalError) as error:
        db.load("nope")
    assert sqlite_ml.last_error(db.conn) == str(error.value)
