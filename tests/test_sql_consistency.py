"""One SQL surface: every prediction function takes the same feature forms, and mistakes
are named in our own words (a misspelled key, a JSON error's position, a float label, a
training set of one class)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from .helpers import IRIS_FEATURES, VERSICOLOR


@pytest.fixture
def flowers(iris):
    iris.train("flowers", "classification", "logistic_regression", "dataset_iris", "target")
    return iris


def error_of(db, sql, params=()):
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value(sql, params)
    return str(error.value)


def test_predict_proba_takes_an_object_an_array_or_values_one_by_one(flowers):
    by_name = json.dumps(dict(zip(IRIS_FEATURES, VERSICOLOR, strict=True)))
    as_array = json.dumps(VERSICOLOR)
    texts = {
        flowers.value("SELECT sqml_predict_proba('flowers', ?)", (by_name,)),
        flowers.value("SELECT sqml_predict_proba('flowers', ?)", (as_array,)),
        flowers.value("SELECT sqml_predict_proba('flowers', ?, ?, ?, ?)", VERSICOLOR),
    }
    assert len(texts) == 1
    probabilities = json.loads(texts.pop())
    predicted = flowers.value("SELECT sqml_predict('flowers', ?, ?, ?, ?)", VERSICOLOR)
    assert max(probabilities, key=probabilities.get) == repr(predicted)
    # From a table's columns, as sqml_predict takes them.
    row = flowers.value(
        'SELECT sqml_predict_proba(\'flowers\', "sepal length (cm)", "sepal width (cm)",'
        ' "petal length (cm)", "petal width (cm)") FROM dataset_iris WHERE rowid = 51'
    )
    assert json.loads(row) == probabilities
    message = error_of(flowers, "SELECT sqml_predict_proba('flowers', 1, 2, 3)")
    assert "sqml_predict_proba got 3 feature values but the model expects 4" in message


def test_a_model_of_one_feature_takes_its_value_alone(db):
    db.conn.execute("CREATE TABLE t (x REAL, y INTEGER)")
    db.conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, int(i >= 20)) for i in range(40)])
    db.conn.commit()
    db.train("one", "classification", "logistic_regression", "t", "y")
    assert db.value("SELECT sqml_predict('one', 35.0)") == 1.0
    assert db.value("SELECT sqml_predict('one', 2)") == 0.0
    assert db.value("SELECT sqml_predict('one', '[35]')") == 1.0
    proba = json.loads(db.value("SELECT sqml_predict_proba('one', 35.0)"))
    assert proba == json.loads(db.value("SELECT sqml_predict_proba('one', '{\"x\": 35}')"))
    assert proba["1.0"] > 0.5


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sqml_predict('flowers', ?)",
        "SELECT sqml_predict_proba('flowers', ?)",
        "SELECT sqml_predict_batch('flowers', json_array(json(?)))",
    ],
)
def test_a_misspelled_feature_key_is_named(flowers, sql):
    features = dict(zip(IRIS_FEATURES, VERSICOLOR, strict=True))
    features["petal widht (cm)"] = features.pop("petal width (cm)")
    message = error_of(flowers, sql, (json.dumps(features),))
    assert "unknown feature 'petal widht (cm)'; did you mean 'petal width (cm)'?" in message
    assert "lack 'petal width (cm)'" in message
    # An extra key alone is no error (json_object(*) of a whole row carries the target).
    features["petal width (cm)"] = 1.3
    assert flowers.value("SELECT sqml_predict('flowers', ?)", (json.dumps(features),)) == 1.0


@pytest.mark.parametrize(
    ("options", "position"),
    [('{"hyperparams": {"C": 2,}}', "line 1 column 25 (char 24)"), ("{", "line 1 column 2")],
)
def test_options_json_errors_say_where(iris, options, position):
    message = error_of(
        iris,
        "SELECT sqml_train('e', 'classification', 'logistic_regression', 'dataset_iris',"
        " 'target', 0.25, 'shuffle', ?)",
        (options,),
    )
    assert "options is not valid JSON (" in message and position in message


def test_a_float_target_is_shown_as_a_plain_number(db):
    db.conn.execute("CREATE TABLE wine (x REAL, quality REAL)")
    db.conn.executemany(
        "INSERT INTO wine VALUES (?, ?)", [(i, [5.0, 6.0, 7.4][i % 3]) for i in range(30)]
    )
    db.conn.commit()
    message = error_of(
        db, "SELECT sqml_train('w', 'classification', 'logistic_regression', 'wine', 'quality')"
    )
    assert "the target holds 7.4;" in message and "np.float64" not in message
    assert "use prediction type 'regression'" in message


@pytest.mark.parametrize(("label", "shown"), [("a", "('a')"), (3, "(3)")])
def test_one_class_is_refused_in_our_words(db, label, shown):
    db.conn.execute("CREATE TABLE lonely (x REAL, y)")
    db.conn.executemany("INSERT INTO lonely VALUES (?, ?)", [(i, label) for i in range(10)])
    db.conn.commit()
    message = error_of(
        db, "SELECT sqml_train('l', 'classification', 'logistic_regression', 'lonely', 'y')"
    )
    expected = (
        f"target 'y' of dataset 'lonely' has a single class {shown} in its 10 row(s) with a "
        "target; classification needs at least two classes"
    )
    assert expected in message
    assert db.rows("SELECT status, error FROM sqml_runs") == [("failed", expected)]


def test_a_training_split_of_one_class_is_said_so_when_the_algorithm_needs_two(db):
    db.conn.execute("CREATE TABLE series (x REAL, y INTEGER)")
    db.conn.executemany("INSERT INTO series VALUES (?, ?)", [(i, int(i >= 30)) for i in range(40)])
    db.conn.commit()
    message = error_of(
        db,
        "SELECT sqml_train('s', 'classification', 'logistic_regression', 'series', 'y', 0.25,"
        " 'last')",
    )
    assert "has a single class (0) in the 30 row(s) of its training split" in message
    assert "split 'stratified'" in message
    # an algorithm that learns from one class still trains (and scores what it can)
    dummy = db.train("d", "classification", "dummy", "series", "y", 0.25, "last")
    assert dummy["score"] == 0.0
