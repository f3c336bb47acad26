"""Table and column names are names, never SQL; views work as datasets."""

from __future__ import annotations

import json
import sqlite3

import pytest

from .helpers import IRIS_FEATURES, SETOSA, VIRGINICA

HOSTILE_TABLE = "da\"ta'set [x]; DROP TABLE victim;-- 名前"
HOSTILE_FEATURES = (
    'fe"at',
    "it's",
    "[br]acket",
    "a b;c",
    "x); DROP TABLE victim;--",
    "ünï 名",
)
HOSTILE_TARGET = "tar\"get' [y]; --ß"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
def hostile(iris):
    db = iris
    db.conn.execute("CREATE TABLE victim (keep TEXT)")
    db.conn.execute("INSERT INTO victim VALUES ('safe')")
    columns = ", ".join(f"{q(name)} REAL" for name in HOSTILE_FEATURES[:4])
    columns += f", {q(HOSTILE_FEATURES[4])} TEXT, {q(HOSTILE_FEATURES[5])} REAL"
    db.conn.execute(f"CREATE TABLE {q(HOSTILE_TABLE)} ({columns}, {q(HOSTILE_TARGET)} TEXT)")
    rows = []
    for row in db.rows("SELECT * FROM dataset_iris"):
        label = ("setosa", "versicolor", "virginica")[int(row[4])]
        rows.append((*row[:4], "ab"[int(row[0] * 10) % 2], row[0] + row[1], label))
    db.conn.executemany(
        f"INSERT INTO {q(HOSTILE_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        rows,
    )
    db.conn.commit()
    return db


def other_tables(db):
    return [
        (name, db.dump(name))
        for (name,) in db.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqml%'"
            " ORDER BY name"
        )
    ]


def test_training_and_predicting_on_hostile_names(hostile):
    db = hostile
    before = other_tables(db)
    result = db.train(
        'exp "quoted"; --', "classification", "logistic_regression", HOSTILE_TABLE, HOSTILE_TARGET
    )
    assert result["deployed"] is True
    run = db.rows(
        "SELECT dataset, target, feature_names FROM sqml_runs WHERE id = ?", (result["run_id"],)
    )[0]
    assert run[:2] == (HOSTILE_TABLE, HOSTILE_TARGET)
    assert json.loads(run[2]) == list(HOSTILE_FEATURES)

    features = dict(zip(HOSTILE_FEATURES, [*SETOSA, "a", 8.6], strict=True))
    assert db.predict('exp "quoted"; --', features) == "setosa"
    assert db.predict('exp "quoted"; --', [*VIRGINICA, "b", 9.6]) == "virginica"
    assert db.predict_batch('exp "quoted"; --', [features]) == ["setosa"]
    assert other_tables(db) == before
    assert db.rows("SELECT * FROM victim") == [("safe",)]


def test_missing_hostile_feature_is_named_in_the_error(hostile):
    db = hostile
    db.train("e", "classification", "dummy", HOSTILE_TABLE, HOSTILE_TARGET)
    features = dict(zip(HOSTILE_FEATURES, [*SETOSA, "a", 8.6], strict=True))
    del features["x); DROP TABLE victim;--"]
    with pytest.raises(sqlite3.OperationalError, match=r"lack 'x\); DROP TABLE victim;--'"):
        db.predict("e", features)
    assert db.rows("SELECT * FROM victim") == [("safe",)]


def test_unknown_hostile_dataset_is_just_unknown(hostile):
    db = hostile
    before = other_tables(db)
    with pytest.raises(sqlite3.OperationalError, match="unknown dataset 'victim; DROP TABLE"):
        db.train("e", "classification", "dummy", "victim; DROP TABLE victim", "keep")
    with pytest.raises(sqlite3.OperationalError, match="unknown target column"):
        db.train("e", "classification", "dummy", "victim", 'keep" FROM victim; --')
    assert other_tables(db) == before


def test_a_view_is_a_dataset(iris):
    db = iris
    db.conn.execute(
        'CREATE VIEW "flowers view; --" AS SELECT "petal length (cm)" AS petal_length,'
        ' "petal width (cm)" AS petal_width,'
        " CASE target WHEN 0 THEN 'setosa' WHEN 1 THEN 'versicolor' ELSE 'virginica' END"
        " AS species FROM dataset_iris"
    )
    db.conn.commit()
    result = db.train("view", "classification", "decision_tree", "flowers view; --", "species")
    assert result["train_rows"] + result["test_rows"] == 150
    assert db.predict("view", {"petal_length": 1.4, "petal_width": 0.2}) == "setosa"
    assert db.predict("view", [6.0, 2.5]) == "virginica"


def test_dataset_and_target_names_ignore_ascii_case_like_sqlite(iris):
    result = iris.train("case", "classification", "dummy", "DATASET_IRIS", "TARGET")
    assert result["deployed"] is True
    assert iris.value("SELECT dataset || '/' || target FROM sqml_runs") == "dataset_iris/target"
    assert iris.predict("case", dict(zip(IRIS_FEATURES, SETOSA, strict=True))) in (0.0, 1.0, 2.0)
