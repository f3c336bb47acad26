"""``register(conn, create_schema=False)``: what the Datasette and sqlite-utils plugins call
on connections their host opened (read-only ones included)."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest

import sqlite_ml
from sqlite_ml.faces.plugin_hosts import register_on_host

from .faces import sqml_tables
from .helpers import expected_mode


def test_registers_without_writing(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    sqlite3.connect(db).execute("CREATE TABLE t(x)").connection.close()
    conn = sqlite3.connect(db)
    sqlite_ml.register(conn, create_schema=False)
    assert conn.execute("SELECT sqml_version()").fetchone()[0] == sqlite_ml.__version__
    assert sqml_tables(db) == []
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("SELECT sqml_predict('iris', '{}')").fetchone()
    assert "this database has no sqlite-ml tables yet" in str(caught.value)
    conn.close()


def test_first_write_creates_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "lazy.db"
    conn = sqlite3.connect(db, isolation_level=None)
    sqlite_ml.register(conn, create_schema=False)
    info = json.loads(conn.execute("SELECT sqml_load_dataset('iris')").fetchone()[0])
    assert info["size"] == 150
    result = json.loads(
        conn.execute(
            "SELECT sqml_train('iris', 'classification', 'knn', 'dataset_iris', 'target')"
        ).fetchone()[0]
    )
    assert result["deployed"]
    conn.close()
    assert "sqml_experiments" in sqml_tables(db)


def test_read_only_connection(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    sqlite3.connect(db).execute("CREATE TABLE t(x)").connection.close()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sqlite_ml.register(conn, create_schema=False)
    assert sqlite_ml.binding_mode(conn) == expected_mode()
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("SELECT sqml_load_dataset('iris')").fetchone()
    assert "readonly" in str(caught.value)
    conn.close()
    assert sqml_tables(db) == []
    # The default still refuses clearly on a read-only database without the schema.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite_ml.SqmlError, match="cannot create or update sqlite-ml's tables"):
        sqlite_ml.register(conn)
    conn.close()


def test_host_with_another_sqlite_binding_gets_a_warning() -> None:
    class OtherConnection:  # what pysqlite3 or sqlean would hand over
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert register_on_host(OtherConnection(), "sqlite-utils") is False
    assert "not Python's sqlite3 module" in str(caught[0].message)
    conn = sqlite3.connect(":memory:")
    assert register_on_host(conn, "sqlite-utils") is True
    conn.close()
