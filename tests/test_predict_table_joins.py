"""sqml_predict_table joins like a table: a key that means something for every source,
lookups instead of rescans, and a clear error (never 0 rows, never wrong pairs) where
row_id is not a key. The issue's own examples first."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from .helpers import Db, expected_mode

pytestmark = pytest.mark.skipif(
    expected_mode() != "native", reason="this run does not use the native binding"
)

NO_KEY = "has no rowid, so row_id cannot be joined or filtered on"


@pytest.fixture
def holdout(db: Db) -> Db:
    """The issue's setup: 3,000 rows, a view of every fifth."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    y = (x @ [1.0, -2.0, 0.5] > 0).astype(int)
    db.conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a REAL, b REAL, c REAL, y INTEGER)")
    db.conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        [
            (i + 1, *map(float, row), int(label))
            for i, (row, label) in enumerate(zip(x, y, strict=True))
        ],
    )
    db.conn.execute("CREATE VIEW train_rows AS SELECT a, b, c, y FROM t")
    db.conn.execute("CREATE VIEW holdout AS SELECT * FROM t WHERE id % 5 = 0")
    db.conn.commit()
    db.train("e", "classification", "logistic_regression", "train_rows", "y")
    return db


def scored() -> int:
    from sqlite_ml import _native

    return _native.native_counts()[0]


def one_by_one(db: Db, ids: list[int]) -> dict[int, float]:
    return {i: db.value("SELECT sqml_predict('e', a, b, c) FROM t WHERE id = ?", (i,)) for i in ids}


def test_the_issues_examples_are_errors_not_wrong_answers(holdout: Db) -> None:
    db = holdout
    for join in ("p.row_id = h.id", "p.row_id = h.rowid"):
        with pytest.raises(sqlite3.OperationalError) as error:
            db.value(
                "SELECT count(*) FROM holdout h"  # noqa: S608
                f" JOIN sqml_predict_table('e', 'holdout') p ON {join}"
            )
        assert str(error.value) == (
            f"sqml_predict_table: view 'holdout' {NO_KEY} (a row number would pair "
            "predictions with the wrong rows); name a key column: "
            "sqml_predict_table(experiment, source, 'key column'), and join on it"
        ), join


def test_a_view_joins_on_the_key_column_it_names(holdout: Db) -> None:
    db = holdout
    before = scored()
    rows = db.rows(
        "SELECT h.id, p.row_id, p.prediction FROM holdout h"
        " JOIN sqml_predict_table('e', 'holdout', 'id') p ON p.row_id = h.id ORDER BY h.id"
    )
    assert len(rows) == 600
    assert all(i == key for i, key, _ in rows)
    expected = one_by_one(db, [i for i, _, _ in rows])
    assert [prediction for _, _, prediction in rows] == [expected[i] for i, _, _ in rows]
    # the view's rows predicted once for the whole join, not once per outer row
    assert scored() - before < 600 * 2 + 10


def test_joining_on_a_views_rowid_is_an_error(holdout: Db) -> None:
    with pytest.raises(sqlite3.OperationalError, match="a row_id looked up is NULL"):
        holdout.value(
            "SELECT count(*) FROM holdout h"
            " JOIN sqml_predict_table('e', 'holdout', 'id') p ON p.row_id = h.rowid"
        )


def test_a_table_joins_on_its_rowid_by_lookups(holdout: Db) -> None:
    db = holdout
    plan = " ".join(
        row[3]
        for row in db.rows(
            "EXPLAIN QUERY PLAN SELECT * FROM holdout h"
            " JOIN sqml_predict_table('e', 't') p ON p.row_id = h.id"
        )
    )
    assert "SCAN t" in plan and "VIRTUAL TABLE INDEX" in plan
    before = scored()
    rows = db.rows(
        "SELECT h.id, p.prediction FROM holdout h"
        " JOIN sqml_predict_table('e', 't') p ON p.row_id = h.id ORDER BY h.id"
    )
    assert scored() - before == 600  # one lookup per holdout row, nothing rescanned
    expected = one_by_one(db, [i for i, _ in rows[:50]])
    assert rows[:50] == [(i, expected[i]) for i, _ in rows[:50]]


def test_row_id_filters_and_in_lists_look_rows_up(holdout: Db) -> None:
    db = holdout
    before = scored()
    rows = db.rows(
        "SELECT row_id FROM sqml_predict_table('e', 't') WHERE row_id IN (5, 10, 99999)"
        " ORDER BY row_id"
    )
    assert rows == [(5,), (10,)]
    assert scored() - before == 2
    keyed = db.rows(
        "SELECT row_id, prediction FROM sqml_predict_table('e', 'holdout', 'id') WHERE row_id = 10"
    )
    assert keyed == [(10, one_by_one(db, [10])[10])]
    with pytest.raises(sqlite3.OperationalError, match=NO_KEY):
        db.rows("SELECT * FROM sqml_predict_table('e', 'holdout') WHERE row_id = 10")


def test_a_select_source_with_a_key(holdout: Db) -> None:
    db = holdout
    rows = db.rows(
        "SELECT t.id FROM t JOIN sqml_predict_table('e',"
        " 'SELECT id AS k, a, b, c FROM t WHERE id <= 40', 'k') p ON p.row_id = t.id"
        " ORDER BY t.id"
    )
    assert rows == [(i,) for i in range(1, 41)]


def test_keys_must_be_unique_and_present(holdout: Db) -> None:
    db = holdout
    db.conn.execute("CREATE VIEW grouped AS SELECT id % 7 AS g, a, b, c FROM t")
    db.conn.execute(
        "CREATE VIEW holes AS SELECT CASE WHEN id = 9 THEN NULL ELSE id END AS k, a, b, c FROM t"
    )
    with pytest.raises(sqlite3.OperationalError) as error:
        db.rows("SELECT * FROM sqml_predict_table('e', 'grouped', 'g')")
    assert str(error.value).startswith(
        "sqml_predict_table: key column 'g' of view 'grouped' is not unique (1 appears more "
        "than once)"
    )
    with pytest.raises(sqlite3.OperationalError, match="key column 'k' of view 'holes' is NULL"):
        db.rows("SELECT * FROM sqml_predict_table('e', 'holes', 'k')")
    # Ascending integer keys are checked without a hash until one is not above the last:
    # a repeat after a long ascending run, of the last key, or as a REAL, is still found.
    for late, shown in (("3", "3"), ("2999", "2999"), ("3000", "3000"), ("17.0", "17.0")):
        view = (
            f"CREATE VIEW late AS SELECT id AS k, a, b, c FROM t UNION ALL SELECT {late}, 0, 0, 0"  # noqa: S608
        )
        db.conn.execute(view)  # (late: one of the literals above)
        for sql in (
            "SELECT count(*) FROM sqml_predict_table('e', 'late', 'k')",
            "SELECT count(*) FROM t JOIN sqml_predict_table('e', 'late', 'k') p ON p.row_id = t.id",
        ):
            with pytest.raises(sqlite3.OperationalError) as error:
                db.rows(sql)
            assert f"key column 'k' of view 'late' is not unique ({shown} appears" in str(
                error.value
            ), (late, sql, str(error.value))
        db.conn.execute("DROP VIEW late")
    with pytest.raises(sqlite3.OperationalError, match="key column 'nope' is not a column of"):
        db.rows("SELECT * FROM sqml_predict_table('e', 'holdout', 'nope')")


def test_ascending_integer_keys_are_found_in_any_order_and_any_form(holdout: Db) -> None:
    """A made table whose keys are ascending integers (the usual view of a table) is
    searched by position, not hashed: joins in the source's order, in reverse, with gaps
    and absent keys, and keys asked as REAL (20.0), pair exactly as SQL's own join does;
    a source whose keys are not ascending takes the hash index and agrees."""
    db = holdout
    db.conn.execute("CREATE TABLE asked (k)")
    asked = [10, 5, 15, 15, 3000, 2995, 7, 12.0, 20.0, 20.5, 99999, -5, 0, 10]
    db.conn.executemany("INSERT INTO asked VALUES (?)", [(k,) for k in asked])
    db.conn.execute("CREATE VIEW shuffled AS SELECT * FROM holdout ORDER BY (id * 7919) % 601")
    expected = one_by_one(db, list(range(5, 3001, 5)))
    for source in ("holdout", "shuffled"):
        for order in ("h.id", "h.id DESC"):
            rows = db.rows(
                f"SELECT h.id, p.prediction FROM holdout h JOIN sqml_predict_table('e',"  # noqa: S608
                f" '{source}', 'id') p ON p.row_id = h.id ORDER BY {order}"
            )
            assert len(rows) == 600, (source, order)
            assert all(prediction == expected[i] for i, prediction in rows), (source, order)
        pairs = db.rows(
            f"SELECT a.k, p.row_id FROM asked a JOIN sqml_predict_table('e', '{source}', 'id')"  # noqa: S608
            " p ON p.row_id = a.k ORDER BY a.rowid"
        )
        sql_pairs = db.rows(
            "SELECT a.k, h.id FROM asked a JOIN holdout h ON h.id = a.k ORDER BY a.rowid"
        )
        assert pairs == sql_pairs, source
        assert db.rows(
            f"SELECT row_id FROM sqml_predict_table('e', '{source}', 'id')"  # noqa: S608
            " WHERE row_id IN (3000, 5, 4, 2500) ORDER BY row_id"
        ) == [(5,), (2500,), (3000,)]


def test_text_keys_join_whatever_the_other_side_stores(holdout: Db) -> None:
    db = holdout
    db.conn.execute("CREATE TABLE codes (code TEXT PRIMARY KEY, a REAL, b REAL, c REAL)")
    db.conn.execute("INSERT INTO codes SELECT 'row-' || id, a, b, c FROM t WHERE id <= 20")
    db.conn.execute("CREATE TABLE numbers (n TEXT, m INTEGER)")
    db.conn.execute("INSERT INTO numbers SELECT id, id FROM t WHERE id <= 20")
    db.conn.execute("CREATE VIEW numbered AS SELECT CAST(id AS TEXT) AS k, a, b, c FROM t")
    rows = db.rows(
        "SELECT c.code FROM codes c JOIN sqml_predict_table('e', 'codes', 'code') p"
        " ON p.row_id = c.code"
    )
    assert len(rows) == 20
    # '7' (TEXT) against 7 (INTEGER): SQL's comparison decides, the lookup finds both
    joined = db.rows(
        "SELECT n.m FROM numbers n JOIN sqml_predict_table('e', 'numbered', 'k') p"
        " ON p.row_id = n.m ORDER BY n.m"
    )
    direct = db.rows(
        "SELECT n.m FROM numbers n JOIN (SELECT CAST(id AS TEXT) AS k FROM t) p"
        " ON p.k = n.m ORDER BY n.m"
    )
    assert joined == direct


def test_a_model_python_serves_joins_the_same_way(holdout: Db) -> None:
    db = holdout
    db.train("knn", "classification", "knn", "train_rows", "y")
    rows = db.rows(
        "SELECT h.id, p.prediction FROM holdout h"
        " JOIN sqml_predict_table('knn', 'holdout', 'id') p ON p.row_id = h.id"
    )
    assert len(rows) == 600
    with pytest.raises(sqlite3.OperationalError, match=NO_KEY):
        db.value(
            "SELECT count(*) FROM holdout h"
            " JOIN sqml_predict_table('knn', 'holdout') p ON p.row_id = h.id"
        )
    looked_up = db.rows("SELECT row_id FROM sqml_predict_table('knn', 't') WHERE row_id IN (3, 4)")
    assert sorted(looked_up) == [(3,), (4,)]
