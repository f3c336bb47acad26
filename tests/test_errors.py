"""Misuse: a clear SQL error naming the bad value and the valid choices; nothing written."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from sqlite_ml.ml.catalogue import ALGORITHMS

from .helpers import IRIS_FEATURES, SETOSA


@pytest.fixture
def trained(iris):
    iris.train("existing", "classification", "logistic_regression", "dataset_iris", "target")
    return iris


def train_error(db, *args):
    """Call sqml_train with raw SQL arguments; return the error text; check nothing changed."""
    before_counts, before_schema = db.counts(), db.schema()
    placeholders = ", ".join("?" for _ in args)
    with pytest.raises(sqlite3.OperationalError) as error:
        db.conn.execute(f"SELECT sqml_train({placeholders})", args).fetchone()
    assert db.counts() == before_counts
    assert db.schema() == before_schema
    return str(error.value)


def test_unknown_algorithm(trained):
    message = train_error(trained, "new", "classification", "deep_magic", "dataset_iris", "target")
    assert "unknown algorithm 'deep_magic'" in message
    for algorithm in ALGORITHMS["classification"]:
        assert f"'{algorithm}'" in message
    # a regression-only algorithm is unknown for classification, and said so
    message = train_error(trained, "new", "classification", "lasso", "dataset_iris", "target")
    assert "unknown algorithm 'lasso' for prediction type 'classification'" in message


def test_unknown_prediction_type(trained):
    message = train_error(trained, "new", "ranking", "dummy", "dataset_iris", "target")
    assert "unknown prediction type 'ranking'" in message
    assert "'classification'" in message and "'regression'" in message
    assert "'clustering'" in message


def test_unknown_split_strategy(trained):
    message = train_error(
        trained, "new", "classification", "dummy", "dataset_iris", "target", 0.25, "kfold"
    )
    assert "unknown split strategy 'kfold'" in message
    assert "'shuffle'" in message


def test_unknown_dataset(trained):
    trained.conn.execute("CREATE VIEW my_view AS SELECT * FROM dataset_iris")
    trained.conn.commit()
    message = train_error(trained, "new", "classification", "dummy", "no_such_table", "target")
    assert "unknown dataset 'no_such_table'" in message
    assert "'dataset_iris'" in message and "'my_view'" in message
    assert "sqml_runs" not in message  # our own tables are not offered as datasets


def test_unknown_target_column(trained):
    message = train_error(trained, "new", "classification", "dummy", "dataset_iris", "species")
    assert "unknown target column 'species'" in message
    for column in [*IRIS_FEATURES, "target"]:
        assert f"'{column}'" in message


@pytest.mark.parametrize("test_size", [0, 1, 0.0, 1.0, -0.5, 1.5, "0.3", "abc", None])
def test_test_size_outside_zero_one(trained, test_size):
    message = train_error(
        trained, "new", "classification", "dummy", "dataset_iris", "target", test_size
    )
    assert "test_size must be a number strictly between 0 and 1" in message
    shown = "NULL" if test_size is None else str(test_size)
    assert f"got '{shown}'" in message or f"got {shown}" in message


def test_test_size_message_tells_a_number_from_text(trained):
    """The number 1.5 and the text '1.5' must not read the same in the message."""
    number = train_error(trained, "new", "classification", "dummy", "dataset_iris", "target", 1.5)
    text = train_error(trained, "new", "classification", "dummy", "dataset_iris", "target", "1.5")
    assert number != text


def test_prediction_type_conflicting_with_the_experiment(trained):
    trained.load("diabetes")
    message = train_error(trained, "existing", "regression", "dummy", "dataset_diabetes", "target")
    assert "experiment 'existing' has prediction type 'classification', not 'regression'" in (
        message
    )


@pytest.mark.parametrize("name", [None, "", 42])
def test_experiment_name_must_be_text(trained, name):
    message = train_error(trained, name, "classification", "dummy", "dataset_iris", "target")
    assert "experiment name must be non-empty text" in message


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("sqml_train('a', 'classification', 'dummy', 'dataset_iris')", "sqml_train takes 5 to 8 "),
        (
            "sqml_train('a', 'classification', 'dummy', 'dataset_iris', 'target', 0.2,"
            " 'shuffle', '{}', 'extra')",
            "sqml_train takes 5 to 8 arguments, got 9",
        ),
        ("sqml_predict('existing')", "sqml_predict takes 2 or more arguments, got 1"),
        ("sqml_predict_batch()", "sqml_predict_batch takes 2 arguments, got 0"),
        ("sqml_load_dataset()", "sqml_load_dataset takes 1 to 2 arguments, got 0"),
        ("sqml_load_dataset('iris', 't', 'x')", "sqml_load_dataset takes 1 to 2 arguments, got 3"),
        ("sqml_version(1)", "sqml_version takes 0 arguments, got 1"),
    ],
)
def test_wrong_argument_count(trained, call, expected):
    before_counts, before_schema = trained.counts(), trained.schema()
    with pytest.raises(sqlite3.OperationalError, match=re.escape(expected)) as error:
        trained.value(f"SELECT {call}")
    assert "usage: " in str(error.value)
    assert trained.counts() == before_counts
    assert trained.schema() == before_schema


def predict_error(db, experiment, features_text):
    before = db.counts()
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value("SELECT sqml_predict(?, ?)", (experiment, features_text))
    assert db.counts() == before
    return str(error.value)


def test_predict_unknown_experiment(trained):
    message = predict_error(trained, "nope", json.dumps(SETOSA))
    assert "unknown experiment 'nope'" in message
    assert "'existing'" in message


@pytest.mark.parametrize("text", ['{"sepal length (cm)": ', "[1, 2,", "not json", ""])
def test_predict_malformed_json(trained, text):
    message = predict_error(trained, "existing", text)
    assert "features is not valid JSON" in message


@pytest.mark.parametrize("text", ["5", '"setosa"', "null", "true"])
def test_predict_features_neither_object_nor_array(trained, text):
    message = predict_error(trained, "existing", text)
    assert "must be a JSON object keyed by column name or a JSON array" in message
    assert text in message


def test_predict_features_sql_null_or_number(trained):
    for value in (None, 3.5):
        with pytest.raises(sqlite3.OperationalError, match="features must be JSON text"):
            trained.value("SELECT sqml_predict('existing', ?)", (value,))


def test_predict_missing_feature_names_the_column(trained):
    features = dict(zip(IRIS_FEATURES, SETOSA, strict=True))
    del features["petal width (cm)"]
    message = predict_error(trained, "existing", json.dumps(features))
    assert "lack 'petal width (cm)'" in message
    assert "sepal length (cm)" in message  # the expected columns are listed


@pytest.mark.parametrize("values", [[5.1, 3.5, 1.4], [5.1, 3.5, 1.4, 0.2, 9.9], []])
def test_predict_array_of_the_wrong_length(trained, values):
    message = predict_error(trained, "existing", json.dumps(values))
    assert f"array of {len(values)} values but the model expects 4" in message
    assert "'sepal length (cm)', 'sepal width (cm)'" in message


@pytest.mark.parametrize("bad", ["abc", [1], {"x": 1}])
def test_predict_non_numeric_value_for_a_numeric_feature(trained, bad):
    features = dict(zip(IRIS_FEATURES, SETOSA, strict=True))
    features["sepal width (cm)"] = bad
    message = predict_error(trained, "existing", json.dumps(features))
    assert "feature 'sepal width (cm)' expects a number or null" in message
    assert json.dumps(bad) in message


def test_predict_without_a_deployed_model(iris):
    iris.conn.execute("CREATE TABLE one_class (x REAL, y TEXT)")
    iris.conn.executemany("INSERT INTO one_class VALUES (?, 'a')", [(i,) for i in range(10)])
    iris.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match="failed"):
        iris.train("broken", "classification", "logistic_regression", "one_class", "y")
    message = predict_error(iris, "broken", "[1]")
    assert "experiment 'broken' has no deployed model yet" in message
    with pytest.raises(sqlite3.OperationalError, match="'broken' has no deployed model yet"):
        iris.predict_batch("broken", [[1]])


def test_sql_errors_are_not_json_values(trained):
    """0.1.x returned {"error": ...} as a value; ours must be real SQL errors."""
    with pytest.raises(sqlite3.OperationalError):
        trained.value("SELECT sqml_predict('nope', '[1, 2, 3, 4]')")
    with pytest.raises(sqlite3.OperationalError):
        trained.value("SELECT sqml_load_dataset('nope')")
