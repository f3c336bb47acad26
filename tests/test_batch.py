"""sqml_predict_batch: many predictions in one call, in order, equal to sqml_predict."""

from __future__ import annotations

import json
import sqlite3

import pytest

from .helpers import IRIS_FEATURES, SETOSA, VERSICOLOR, VIRGINICA


@pytest.fixture
def trained(iris):
    iris.train("flowers", "classification", "logistic_regression", "dataset_iris", "target")
    iris.load("diabetes")
    iris.train("sugar", "regression", "ridge", "dataset_diabetes", "target")
    return iris


def test_batch_of_arrays_and_objects_matches_single_predictions(trained):
    flowers = [VIRGINICA, SETOSA, VERSICOLOR, SETOSA]
    objects = [dict(zip(IRIS_FEATURES, flower, strict=True)) for flower in flowers]
    singles = [trained.predict("flowers", flower) for flower in flowers]
    assert trained.predict_batch("flowers", flowers) == singles
    assert trained.predict_batch("flowers", objects) == singles
    mixed = [objects[0], flowers[1], objects[2], flowers[3]]
    assert trained.predict_batch("flowers", mixed) == singles
    assert singles[0] == 2.0 and singles[1] == 0.0


def test_batch_over_a_whole_table_in_order(trained):
    columns = ", ".join(f"'{name}', \"{name}\"" for name in IRIS_FEATURES)
    text = trained.value(
        f"SELECT sqml_predict_batch('flowers', json_group_array(json_object({columns})))"  # noqa: S608
        " FROM (SELECT * FROM dataset_iris ORDER BY rowid)"
    )
    batch = json.loads(text)
    features = "json_array(" + ", ".join(f'"{name}"' for name in IRIS_FEATURES) + ")"
    singles = [
        row[0]
        for row in trained.rows(
            f"SELECT sqml_predict('flowers', {features}) FROM dataset_iris ORDER BY rowid"  # noqa: S608
        )
    ]
    assert len(batch) == 150
    assert batch == singles


def test_regression_batch(trained):
    rows = trained.rows("SELECT * FROM dataset_diabetes LIMIT 5")
    items = [list(row[:-1]) for row in rows]
    singles = [trained.predict("sugar", item) for item in items]
    # equal up to the last bits that a matrix product computed in another order may change
    assert trained.predict_batch("sugar", items) == pytest.approx(singles, rel=1e-12)


def test_empty_batch(trained):
    assert trained.value("SELECT sqml_predict_batch('flowers', '[]')") == "[]"


@pytest.mark.parametrize("text", ['{"sepal length (cm)": 1}', "5", '"x"', "null"])
def test_batch_must_be_an_array(trained, text):
    with pytest.raises(sqlite3.OperationalError, match="batch features must be a JSON array"):
        trained.value("SELECT sqml_predict_batch('flowers', ?)", (text,))


def test_batch_malformed_json(trained):
    with pytest.raises(sqlite3.OperationalError, match="batch features is not valid JSON"):
        trained.value("SELECT sqml_predict_batch('flowers', '[[1, 2')")


def test_batch_error_names_the_item(trained):
    good = dict(zip(IRIS_FEATURES, SETOSA, strict=True))
    missing = {k: v for k, v in good.items() if k != "petal length (cm)"}
    with pytest.raises(
        sqlite3.OperationalError, match=r"features \(item 2\) lack 'petal length \(cm\)'"
    ):
        trained.predict_batch("flowers", [good, SETOSA, missing])
    with pytest.raises(sqlite3.OperationalError, match=r"features \(item 1\) is an array of 3"):
        trained.predict_batch("flowers", [SETOSA, [1, 2, 3]])
    with pytest.raises(
        sqlite3.OperationalError, match=r"feature 'sepal width \(cm\)' \(item 0\) expects a number"
    ):
        trained.predict_batch("flowers", [[1, "wide", 3, 4]])
    with pytest.raises(
        sqlite3.OperationalError, match=r"features \(item 3\) must be a JSON object"
    ):
        trained.predict_batch("flowers", [SETOSA, SETOSA, SETOSA, 7])


def test_batch_unknown_experiment(trained):
    with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'nope'"):
        trained.predict_batch("nope", [SETOSA])
