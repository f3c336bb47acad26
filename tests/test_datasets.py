"""sqml_load_dataset: scikit-learn's toy datasets as ordinary tables."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sklearn import datasets as skd

from .helpers import Db

LOADERS = {
    "iris": skd.load_iris,
    "digits": skd.load_digits,
    "wine": skd.load_wine,
    "breast_cancer": skd.load_breast_cancer,
    "diabetes": skd.load_diabetes,
}


def table_info(db: Db, table: str) -> list[tuple[str, str]]:
    quoted = '"' + table.replace('"', '""') + '"'
    return [(row[1], row[2]) for row in db.rows(f"PRAGMA table_info({quoted})")]


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_load_dataset_writes_the_table_and_describes_it(db, name):
    bunch = LOADERS[name]()
    feature_names = [str(feature) for feature in bunch.feature_names]
    result = db.load(name)
    assert set(result) == {"table", "feature_names", "target_names", "size"}
    assert result["table"] == f"dataset_{name}"
    assert result["feature_names"] == feature_names
    target_names = bunch.get("target_names")
    assert result["target_names"] == ([str(t) for t in target_names] if name != "diabetes" else [])
    assert result["size"] == len(bunch.data)

    assert table_info(db, f"dataset_{name}") == [(f, "REAL") for f in [*feature_names, "target"]]
    assert db.value(f"SELECT count(*) FROM dataset_{name}") == len(bunch.data)  # noqa: S608
    assert db.value(f"SELECT count(*) FROM dataset_{name} WHERE typeof(target) != 'real'") == 0  # noqa: S608
    first = db.rows(f"SELECT * FROM dataset_{name} ORDER BY rowid LIMIT 1")[0]  # noqa: S608
    assert list(first) == [*map(float, bunch.data[0]), float(bunch.target[0])]


@pytest.mark.parametrize("table", ['we"ird; DROP TABLE x;--', "[b]", "名前 with space", "it's"])
def test_load_dataset_into_a_custom_table_with_a_hostile_name(db, table):
    db.conn.execute("CREATE TABLE x (keep TEXT)")
    db.conn.execute("INSERT INTO x VALUES ('still here')")
    db.conn.commit()
    result = db.load("iris", table)
    assert result["table"] == table
    assert result["size"] == 150
    assert db.value("SELECT type FROM sqlite_master WHERE name = ?", (table,)) == "table"
    assert len(db.dump(table)) == 150
    assert db.rows("SELECT * FROM x") == [("still here",)]
    assert table_info(db, table)[-1] == ("target", "REAL")


def test_unknown_dataset_lists_the_available_ones(db):
    before = db.schema()
    with pytest.raises(sqlite3.OperationalError, match="unknown dataset 'titanic'") as error:
        db.load("titanic")
    for name in LOADERS:
        assert f"'{name}'" in str(error.value)
    assert db.schema() == before


@pytest.mark.parametrize("table", ["people", "PEOPLE"])
def test_refuses_to_overwrite_an_unrelated_table(db, table):
    db.conn.execute("CREATE TABLE people (name TEXT, age INTEGER)")
    db.conn.execute("INSERT INTO people VALUES ('Ada', 36)")
    db.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match=f"'{table}' already exists with other"):
        db.load("iris", table)
    assert db.rows("SELECT * FROM people") == [("Ada", 36)]
    assert table_info(db, "people") == [("name", "TEXT"), ("age", "INTEGER")]


def test_refuses_to_replace_a_view(db):
    db.conn.execute("CREATE VIEW v AS SELECT 1 AS one")
    with pytest.raises(sqlite3.OperationalError, match="'v' already exists as a view"):
        db.load("iris", "v")
    assert db.rows("SELECT * FROM v") == [(1,)]


@pytest.mark.parametrize("table", ["sqml_runs", "SQML_mine", "sqlite_stat9"])
def test_refuses_reserved_table_names(db, table):
    before = db.schema()
    with pytest.raises(sqlite3.OperationalError, match="'sqml_' or 'sqlite_'"):
        db.load("iris", table)
    assert db.schema() == before


def test_reloading_into_the_same_table_replaces_it(db):
    db.load("iris")
    db.conn.execute("DELETE FROM dataset_iris WHERE target = 2")
    db.conn.commit()
    assert db.value("SELECT count(*) FROM dataset_iris") == 100
    assert db.load("iris")["size"] == 150
    assert db.value("SELECT count(*) FROM dataset_iris") == 150
    db.load("wine", "t")
    assert db.load("wine", "t")["size"] == 178
    assert db.value("SELECT count(*) FROM t") == 178


def test_does_not_drop_a_temp_table_of_the_same_name(db):
    """A TEMP table shadows main: DROP TABLE on that name would drop the user's temp table."""
    db.conn.execute("CREATE TEMP TABLE scratch (note TEXT)")
    db.conn.execute("INSERT INTO scratch VALUES ('mine')")
    try:
        db.load("iris", "scratch")
    except sqlite3.OperationalError as error:
        assert "scratch" in str(error)
    assert db.rows("SELECT * FROM temp.scratch") == [("mine",)]


def test_load_dataset_returns_json_text(db):
    text = db.value("SELECT sqml_load_dataset('wine', 'w')")
    assert isinstance(text, str)
    assert json.loads(text)["table"] == "w"
    assert db.value("SELECT json_extract(sqml_load_dataset('wine', 'w2'), '$.size')") == 178


def test_does_not_drop_a_table_of_an_attached_database(db, tmp_path):
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE people (name TEXT, age INTEGER)")
    other.execute("INSERT INTO people VALUES ('Ada', 36)")
    other.commit()
    other.close()
    db.conn.execute("ATTACH DATABASE ? AS aux", (str(tmp_path / "other.db"),))
    try:
        db.load("iris", "people")
    except sqlite3.OperationalError as error:
        assert "people" in str(error)
    assert db.rows("SELECT * FROM aux.people") == [("Ada", 36)]
