"""sqml_predict_proba: {label: probability} of the deployed model, through SQL."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from .helpers import IRIS_FEATURES, SETOSA, VERSICOLOR, VIRGINICA

FLOWERS = [SETOSA, VERSICOLOR, VIRGINICA, [6.0, 2.9, 4.5, 1.5], [None, 3.0, None, 1.0]]


def proba(db, experiment, features):
    text = db.value("SELECT sqml_predict_proba(?, ?)", (experiment, json.dumps(features)))
    return json.loads(text)


def reference_proba(db, experiment, features):
    """scikit-learn's own predict_proba with the stored model, and its class order."""
    return reference(db, experiment)(features)


def reference(db, experiment):
    """The stored model loaded once (skops loading is slow), as a predict_proba function."""
    estimator, schema = db.stored_model(db.active_model_id(experiment))

    def predict_proba(features):
        row = estimator.predict_proba(schema.encode_records([features]))[0]
        return list(estimator.classes_), [float(p) for p in row]

    return predict_proba


def assert_matches_reference(db, experiment, records, exact=False):
    """Each record's probabilities sum to 1 and equal scikit-learn's; the last as dict."""
    predict_proba = reference(db, experiment)
    for features in records:
        got = proba(db, experiment, features)
        classes, expected = predict_proba(features)
        assert math.fsum(got.values()) == pytest.approx(1.0, abs=1e-12)
        assert list(got.values()) == (expected if exact else pytest.approx(expected, abs=1e-12))
    return got, classes


@pytest.fixture
def flowers(iris):
    iris.train("flowers", "classification", "logistic_regression", "dataset_iris", "target")
    return iris


def test_numeric_labels_sum_to_one_and_equal_scikit_learn(flowers):
    got, classes = assert_matches_reference(flowers, "flowers", FLOWERS)
    assert list(got) == ["0.0", "1.0", "2.0"] == [repr(float(c)) for c in classes]
    by_name = dict(zip(IRIS_FEATURES, VIRGINICA, strict=True))
    assert proba(flowers, "flowers", by_name) == proba(flowers, "flowers", VIRGINICA)


def test_the_predicted_label_is_the_most_probable_key(flowers):
    features = "json_array(" + ", ".join(f'"{name}"' for name in IRIS_FEATURES) + ")"
    rows = flowers.rows(
        f"SELECT sqml_predict('flowers', {features}),"  # noqa: S608
        f" sqml_predict_proba('flowers', {features}) FROM dataset_iris"
    )
    assert len(rows) == 150
    for predicted, text in rows:
        probabilities = json.loads(text)
        assert max(probabilities, key=probabilities.get) == str(predicted)
    # the documented SQL idiom: the probability of the predicted class
    best = flowers.value(
        "SELECT json_extract(sqml_predict_proba('flowers', :f),"
        " '$.\"' || sqml_predict('flowers', :f) || '\"')",
        {"f": json.dumps(SETOSA)},
    )
    assert best == max(proba(flowers, "flowers", SETOSA).values())


def test_two_classes(iris):
    iris.conn.execute("CREATE TABLE two AS SELECT * FROM dataset_iris WHERE target > 0")
    iris.train("two", "classification", "logistic_regression", "two", "target")
    got, _ = assert_matches_reference(iris, "two", FLOWERS)
    assert list(got) == ["1.0", "2.0"]
    assert 0.05 < proba(iris, "two", [6.0, 2.9, 4.9, 1.6])["2.0"] < 0.95


@pytest.mark.parametrize("algorithm", ["decision_tree", "knn", "mlp", "dummy"])
def test_other_classifiers_equal_scikit_learn_exactly(small, algorithm):
    small.train("other", "classification", algorithm, "iris_small", "target")
    assert_matches_reference(small, "other", FLOWERS, exact=True)


def test_text_labels_and_text_features(db):
    db.conn.execute("CREATE TABLE pets (weight REAL, colour TEXT, kind TEXT)")
    rows = [
        (4.0 + (i % 5), ["black", "white", "ginger"][i % 3], "cat" if i % 2 else "dog")
        for i in range(40)
    ] + [(30.0 + i, "brown", "horse") for i in range(10)]
    db.conn.executemany("INSERT INTO pets VALUES (?, ?, ?)", rows)
    db.conn.commit()
    db.train("pets", "classification", "logistic_regression", "pets", "kind")
    records = [
        {"weight": 5, "colour": "black"},
        [32, "brown"],
        {"weight": 6, "colour": "purple"},  # a colour never seen in training
        {"weight": None, "colour": None},
    ]
    got, classes = assert_matches_reference(db, "pets", records)
    assert list(got) == ["cat", "dog", "horse"] == classes
    assert max(proba(db, "pets", [32, "brown"]).items(), key=lambda kv: kv[1])[0] == "horse"


def test_a_second_connection_sees_the_newly_deployed_model(iris, connect):
    other = connect()
    sql = "SELECT sqml_predict_proba('switch', '[6, 3, 4.5, 1.5]')"
    iris.train("switch", "classification", "dummy", "dataset_iris", "target")
    first = json.loads(other.execute(sql).fetchone()[0])
    assert first == reference_proba_dict(iris, "switch", [6, 3, 4.5, 1.5])
    retrained = iris.train(
        "switch", "classification", "logistic_regression", "dataset_iris", "target"
    )
    assert retrained["deployed"]
    second = json.loads(other.execute(sql).fetchone()[0])
    assert second != first
    assert list(second.values()) == pytest.approx(
        list(reference_proba_dict(iris, "switch", [6, 3, 4.5, 1.5]).values()), abs=1e-12
    )


def reference_proba_dict(db, experiment, features):
    classes, values = reference_proba(db, experiment, features)
    return {repr(float(label)): value for label, value in zip(classes, values, strict=True)}


def test_huge_feature_values(flowers):
    got = proba(flowers, "flowers", [1e300, 1e300, 1e300, 1e300])
    assert got == {"0.0": 0.0, "1.0": 0.0, "2.0": 1.0}
    message = predict_proba_error(flowers, "flowers", "[1e308, -1e308, 1e308, 1e308]")
    assert "probabilities for these features are not numbers" in message


def predict_proba_error(db, *args):
    before = db.conn.total_changes
    placeholders = ", ".join("?" for _ in args)
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value(f"SELECT sqml_predict_proba({placeholders})", args)
    assert db.conn.total_changes == before
    return str(error.value)


def test_models_without_probabilities(small):
    small.train("svc", "classification", "svc", "iris_small", "target")
    small.train("ridge", "classification", "ridge", "iris_small", "target")
    small.train("sugar", "regression", "ridge", "diabetes_small", "target")
    message = predict_proba_error(small, "svc", json.dumps(SETOSA))
    assert "experiment 'svc'" in message and "algorithm 'svc'" in message
    assert "does not give class probabilities" in message
    assert "'logistic_regression'" in message and "probability=True" in message
    message = predict_proba_error(small, "ridge", json.dumps(SETOSA))
    assert "algorithm 'ridge'" in message and "'random_forest'" in message
    assert "'ridge'" not in message.split("gives them:")[1]
    message = predict_proba_error(small, "sugar", json.dumps([0.0] * 10))
    assert "regression model" in message and "use sqml_predict" in message


def test_bad_arguments(flowers):
    assert "unknown experiment 'nope'" in predict_proba_error(flowers, "nope", "[1, 2, 3, 4]")
    message = predict_proba_error(flowers, 7, "[1, 2, 3, 4]")
    assert "experiment name must be non-empty text" in message
    message = predict_proba_error(flowers, "flowers", "[1, 2")
    assert "features is not valid JSON" in message
    message = predict_proba_error(flowers, "flowers", "[1, 2, 3]")
    assert "array of 3 values but the model expects 4" in message
    assert "features must be JSON text" in predict_proba_error(flowers, "flowers", None)
    message = predict_proba_error(flowers, "flowers", '{"sepal length (cm)": 1}')
    assert "lack 'sepal width (cm)'" in message
    assert "takes 2 or more arguments, got 1" in predict_proba_error(flowers, "flowers")
    message = predict_proba_error(flowers, "flowers", "[1, 2, 3, 4]", 3)
    assert "sqml_predict_proba got 2 feature values but the model expects 4" in message


def test_no_deployed_model(db):
    db.conn.execute("CREATE TABLE one_class (x REAL, label TEXT)")
    db.conn.executemany("INSERT INTO one_class VALUES (?, 'only')", [(i,) for i in range(10)])
    db.conn.commit()
    with pytest.raises(sqlite3.OperationalError):
        db.train("lonely", "classification", "logistic_regression", "one_class", "label")
    assert "has no deployed model yet" in predict_proba_error(db, "lonely", "[1]")
