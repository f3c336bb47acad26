"""Hostile SQL arguments to the prediction and dataset functions: odd types, extreme
numbers, NUL bytes, enormous or deeply nested JSON, keyword names. Each is either served
the way its documentation says or refused with a clear error; nothing is written."""

from __future__ import annotations

import json
import sqlite3

import pytest

from .helpers import SETOSA

PREDICTORS = ("sqml_predict", "sqml_predict_proba")


@pytest.fixture
def models(small):
    small.train("flowers", "classification", "logistic_regression", "iris_small", "target")
    small.train("sugar", "regression", "linear_regression", "diabetes_small", "target")
    return small


def error_of(db, sql, *args):
    before = db.conn.total_changes
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value(sql, args)
    assert db.conn.total_changes == before
    return str(error.value)


def test_batch_output_is_valid_json_when_a_prediction_is_not_finite(models):
    huge = [1e308, -1e308] * 5
    text = models.value("SELECT sqml_predict_batch('sugar', ?)", (json.dumps([huge, [0.0] * 10]),))
    assert models.value("SELECT json_valid(?)", (text,)) == 1
    first, second = json.loads(text)
    assert first is None and isinstance(second, float)
    assert models.value("SELECT sqml_predict('sugar', ?)", (json.dumps(huge),)) is None


BAD_FEATURES = [
    ("[1e400, 1, 1, 1]", "expects a number or null, got Infinity"),
    ("[NaN, 1, 1, 1]", "expects a number or null, got NaN"),
    ("[-Infinity, 1, 1, 1]", "expects a number or null, got -Infinity"),
    (json.dumps([10**400, 1, 1, 1]), "expects a number or null, got 1000"),
    ('["inf", 1, 1, 1]', 'expects a number or null, got "inf"'),
    ('["5\\u0000", 1, 1, 1]', 'expects a number or null, got "5\\u0000"'),
    ("[[1], 2, 3, 4]", "expects a number or null, got [1]"),
    ('[{"a": 1}, 2, 3, 4]', 'expects a number or null, got {"a": 1}'),
    ("[1, 2, 3, 4]\x00junk", "features is not valid JSON"),
    ("[" * 100_000, "nested too deeply"),
    ('"' + "a" * 1_000_000 + '"', "must be a JSON object keyed by column name"),
    (12345, "features must be JSON text"),
    (b"\xff\xfe", "features is not valid JSON"),
]


def test_bad_features(models):
    for features, expected in BAD_FEATURES:
        for function in PREDICTORS:
            message = error_of(models, f"SELECT {function}('flowers', ?)", features)
            assert expected in message, (features, function)
            assert len(message) < 600  # an enormous argument is shortened in the message


def test_odd_but_valid_features(models):
    for features in (
        json.dumps(SETOSA).encode(),  # JSON in a BLOB is read as text
        json.dumps([2**63, 1, 1, 1]),  # beyond SQLite's integers: still a number
        "[true, false, null, 1]",  # booleans are 1 and 0, null is missing
        '[" 5.1 ", "3.5", "1.4e0", "+0.2"]',  # numbers as text, as CSV imports leave them
    ):
        for function in PREDICTORS:
            assert models.value(f"SELECT {function}('flowers', ?)", (features,)) is not None


def test_bad_experiment_names(models):
    for name, expected in (
        (b"flowers", "experiment name must be non-empty text, got a BLOB of 7 bytes"),
        ("flowers\x00", "unknown experiment 'flowers\\0'"),
        (2**63 - 1, "experiment name must be non-empty text, got 9223372036854775807"),
        (None, "experiment name must be non-empty text, got NULL"),
        ("x" * 100_000, "unknown experiment 'xxx"),
    ):
        for sql in (
            "SELECT sqml_predict(?, '[1, 2, 3, 4]')",
            "SELECT sqml_predict_proba(?, '[1, 2, 3, 4]')",
            "SELECT sqml_predict_batch(?, '[[1, 2, 3, 4]]')",
            "SELECT sqml_evaluate(?, 'iris_small')",
        ):
            message = error_of(models, sql, name)
            assert expected in message and len(message) < 600


@pytest.mark.parametrize("table", ["select", "from", "main.x", "[x]", '"', " lead", "🌸 ü"])
def test_load_dataset_into_keyword_and_odd_table_names(db, table):
    assert db.load("iris", table)["table"] == table
    quoted = '"' + table.replace('"', '""') + '"'
    assert db.value(f"SELECT count(*) FROM main.{quoted}") == 150  # noqa: S608
    db.train("odd", "classification", "logistic_regression", table, "target")
    assert json.loads(db.value("SELECT sqml_evaluate('odd', ?)", (table,)))["rows"] == 150


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("iris", "x\x00y"), "names cannot contain NUL characters"),
        (("iris", "sqlite_master"), "would collide with sqlite-ml's or SQLite's own tables"),
        (("iris", "SQML_runs"), "would collide"),
        (("iris", b"tab"), "table must be a non-empty name, got a BLOB of 3 bytes"),
        (("iris", 12), "table must be a non-empty name, got 12"),
        (("iris", ""), "table must be a non-empty name, got ''"),
        ((b"iris",), "unknown dataset a BLOB of 4 bytes"),
        (("IRIS",), "unknown dataset 'IRIS'"),
    ],
)
def test_load_dataset_refuses(db, args, expected):
    before = db.schema()
    placeholders = ", ".join("?" for _ in args)
    assert expected in error_of(db, f"SELECT sqml_load_dataset({placeholders})", *args)
    assert db.schema() == before


def test_attached_schemas_with_keyword_and_dotted_names(models, tmp_path):
    conn = models.conn
    conn.execute('ATTACH DATABASE ? AS "select"', (str(tmp_path / "b.db"),))
    conn.execute('ATTACH DATABASE ? AS "we.ird"', (str(tmp_path / "c.db"),))
    conn.execute('CREATE TABLE "select"."from" AS SELECT * FROM dataset_iris WHERE rowid % 5 = 0')
    conn.execute('CREATE TABLE "we.ird"."t.x" AS SELECT * FROM dataset_iris WHERE rowid % 7 = 0')
    conn.commit()
    for dataset, rows in (("select.from", 30), ("SELECT.From", 30), ("we.ird.t.x", 21)):
        report = json.loads(models.value("SELECT sqml_evaluate('flowers', ?)", (dataset,)))
        assert report["rows"] == rows and report["dataset"] == dataset
    models.train("dotted", "classification", "logistic_regression", "we.ird.t.x", "target")
    for dataset in ("we.ird.", "we.ird.nope", "select."):
        message = error_of(models, "SELECT sqml_evaluate('flowers', ?)", dataset)
        assert f"unknown dataset '{dataset}'" in message
