"""The native reader: rows of a SELECT straight into float64, and training's use of it."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from sqlite_ml.db import readers as data
from sqlite_ml.sqlite import native

from .helpers import Db, expected_mode

pytestmark = pytest.mark.skipif(
    expected_mode() != "native", reason="this run does not use the native binding"
)


@pytest.fixture
def numbers(db: Db) -> Db:
    db.conn.execute("CREATE TABLE n (a, b, c)")
    db.conn.executemany(
        "INSERT INTO n VALUES (?, ?, ?)",
        [(i, i / 4, None if i % 3 == 0 else -i) for i in range(1, 11)],
    )
    db.conn.commit()
    return db


def test_fill_matches_the_slow_path_with_nan_for_null(numbers):
    reader = native.reader(numbers.conn, "SELECT a, b, c FROM n ORDER BY rowid")
    assert reader is not None and reader.columns == 3
    block = np.empty((10, 3))
    assert reader.fill(block) == (10, False)
    assert reader.rows(1) == [] and reader.done
    slow = np.array(numbers.rows("SELECT a, b, c FROM n ORDER BY rowid"), dtype=np.float64)
    assert np.array_equal(block, slow, equal_nan=True)
    assert math.isnan(block[2, 2]) and block[0, 2] == -1


def test_fill_stops_at_text_and_rows_continue_there(numbers):
    numbers.conn.execute("UPDATE n SET b = 'x' WHERE a = 4")
    reader = native.reader(numbers.conn, "SELECT rowid, a, b FROM n ORDER BY rowid")
    assert reader is not None
    block, ids = np.empty((8, 2)), np.empty(8, dtype=np.int64)
    assert reader.fill(block, ids) == (3, True)
    assert ids[:3].tolist() == [1, 2, 3]
    assert reader.rows(2) == [[4, 4, "x"], [5, 5, 1.25]]
    assert reader.fill(block, ids) == (5, False)
    assert ids[:5].tolist() == [6, 7, 8, 9, 10]
    assert reader.done
    reader.close()


def test_reader_errors_are_sqlite_errors(numbers):
    with pytest.raises(sqlite3.OperationalError, match="no such table: nope"):
        native.reader(numbers.conn, "SELECT * FROM nope")
    with pytest.raises(sqlite3.ProgrammingError, match="only one SQL statement"):
        native.reader(numbers.conn, "SELECT 1; DROP TABLE n")
    reader = native.reader(numbers.conn, "SELECT a, b FROM n")
    with pytest.raises(ValueError, match="float64"):
        reader.fill(np.empty((2, 3)))
    with pytest.raises(ValueError, match="float64"):
        reader.fill(np.empty((2, 2), dtype=np.float32))


def test_training_reads_numbers_natively_and_text_the_slow_way(numbers, monkeypatch):
    relation = data.find_relation(numbers.conn, "n")
    calls = []
    original = native.reader

    def counting(conn, sql):
        reader = original(conn, sql)
        calls.append(reader)
        return reader

    monkeypatch.setattr(native, "reader", counting)
    block = data.read_numeric_matrix(numbers.conn, relation, ["a", "c"], "b", 10)
    assert len(calls) == 1 and block is not None
    assert block[:, 0].tolist() == list(range(1, 11))
    # numeric text: the native fill stops; numpy's path reads it as before
    numbers.conn.execute("UPDATE n SET c = '2.5' WHERE a = 2")
    block = data.read_numeric_matrix(numbers.conn, relation, ["a", "c"], "b", 10)
    assert block is not None and block[1, 1] == 2.5
    numbers.conn.execute("UPDATE n SET c = 'abc' WHERE a = 2")
    assert data.read_numeric_matrix(numbers.conn, relation, ["a", "c"], "b", 10) is None


def test_training_results_equal_with_and_without_the_native_reader(iris, connect, monkeypatch):
    first = iris.train("a", "regression", "linear_regression", "dataset_iris", "target")
    monkeypatch.setattr(native, "reader", lambda conn, sql: None)
    second = iris.train("a", "regression", "linear_regression", "dataset_iris", "target")
    assert first["metrics"] == second["metrics"]
