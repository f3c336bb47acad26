"""sqml_train and sqml_predict for every algorithm of the catalogue, on small tables."""

from __future__ import annotations

import math

import pytest

from sqlite_ml.ml.catalogue import ALGORITHMS

from .helpers import IRIS_FEATURES

# Clustering has its own tests (test_clustering.py): no target, other metrics.
CASES = [
    (kind, algorithm) for kind in ("classification", "regression") for algorithm in ALGORITHMS[kind]
]
LIBRARIES = {"xgboost": "xgboost", "lightgbm": "lightgbm"}
METRICS = {
    "classification": {"score", "accuracy", "f1", "precision", "recall"},
    "regression": {"score", "r2", "mae", "rmse"},
}
DIABETES_FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


def test_the_issue_algorithms_are_all_in_the_catalogue():
    assert {
        "dummy",
        "logistic_regression",
        "sgd",
        "ridge",
        "ridge_cv",
        "decision_tree",
        "ada_boost",
        "bagging",
        "gradient_boosting",
        "random_forest",
        "knn",
        "mlp",
        "svc",
    } <= set(ALGORITHMS["classification"])
    assert {
        "dummy",
        "linear_regression",
        "sgd",
        "ridge",
        "ridge_cv",
        "elastic_net",
        "elastic_net_cv",
        "lasso",
        "lasso_cv",
        "decision_tree",
        "ada_boost",
        "bagging",
        "gradient_boosting",
        "random_forest",
        "knn",
        "mlp",
        "svr",
    } <= set(ALGORITHMS["regression"])


def assert_same_as_sklearn(db, experiment, model_id, table, names, rows=6):
    """sqml_predict (objects and arrays, with a NULL too) equals scikit-learn's own predict."""
    reference = db.reference(model_id)
    samples = [
        list(row[:-1])
        for row in db.rows(f"SELECT * FROM {table} ORDER BY rowid LIMIT ?", (rows,))  # noqa: S608
    ]
    samples.append([None, *samples[0][1:]])  # imputed
    for i, features in enumerate(samples):
        if i % 2:
            features = dict(zip(names, features, strict=True))  # type: ignore[assignment]
        predicted = db.predict(experiment, features)
        expected = reference(features)
        if isinstance(expected, str):
            assert predicted == expected
        else:
            # Classes are identical; numbers agree to 1e-9 relative (the single-row path of
            # linear models sums in plain Python, in another order than BLAS does).
            assert isinstance(predicted, float)
            assert predicted == pytest.approx(float(expected), rel=1e-9, abs=1e-12), (i, features)


@pytest.mark.parametrize(("kind", "algorithm"), CASES, ids=[f"{k}-{a}" for k, a in CASES])
def test_train_and_predict(small, kind, algorithm):
    db = small
    table, names = (
        ("iris_small", IRIS_FEATURES)
        if kind == "classification"
        else ("diabetes_small", DIABETES_FEATURES)
    )
    result = db.train("exp", kind, algorithm, table, "target")

    assert result["experiment_name"] == "exp"
    assert result["prediction_type"] == kind
    assert result["algorithm"] == algorithm
    assert result["deployed"] is True  # the experiment's first model
    assert isinstance(result["score"], float) and math.isfinite(result["score"])
    run_id, model_id = result["run_id"], result["model_id"]
    assert db.value("SELECT status FROM sqml_runs WHERE id = ?", (run_id,)) == "success"
    assert db.value("SELECT run_id FROM sqml_models WHERE id = ?", (model_id,)) == run_id
    library = db.value("SELECT library FROM sqml_models WHERE id = ?", (model_id,))
    assert library == LIBRARIES.get(algorithm, "scikit-learn")

    stored = dict(db.rows("SELECT name, value FROM sqml_metrics WHERE model_id = ?", (model_id,)))
    assert METRICS[kind] <= set(stored)
    assert stored == pytest.approx(result["metrics"])
    assert stored["score"] == result["score"]
    assert stored["score"] == stored["accuracy" if kind == "classification" else "r2"]
    if kind == "classification":
        assert 0 <= stored["accuracy"] <= 1
    else:
        assert stored["rmse"] >= 0 and stored["mae"] >= 0

    assert_same_as_sklearn(db, "exp", model_id, table, names)
    # in SQL, a numeric prediction is a REAL
    features_sql = "json_array(" + ", ".join(f'"{name}"' for name in names) + ")"
    typed = db.rows(
        f"SELECT typeof(sqml_predict('exp', {features_sql})) FROM {table} LIMIT 2"  # noqa: S608
    )
    assert typed == [("real",), ("real",)]


# Two classes take other code paths than iris's three (e.g. a 1-D coef_ for ridge).
CLASSIFIERS = list(ALGORITHMS["classification"])


@pytest.mark.parametrize("algorithm", CLASSIFIERS)
def test_binary_text_labels(small, algorithm):
    """Two classes given as TEXT: the label comes back as stored, as scikit-learn predicts."""
    db = small
    db.conn.execute(
        'CREATE TABLE two_kinds AS SELECT "sepal length (cm)", "sepal width (cm)",'
        ' "petal length (cm)", "petal width (cm)",'
        " CASE target WHEN 1 THEN 'versicolor' ELSE 'virginica' END AS species"
        " FROM dataset_iris WHERE target > 0 AND rowid % 3 = 0"
    )
    result = db.train("kinds", "classification", algorithm, "two_kinds", "species")
    assert_same_as_sklearn(db, "kinds", result["model_id"], "two_kinds", IRIS_FEATURES, rows=8)
    labels = {
        row[0]
        for row in db.rows(
            'SELECT sqml_predict(\'kinds\', json_array("sepal length (cm)", "sepal width (cm)",'
            ' "petal length (cm)", "petal width (cm)")) FROM two_kinds'
        )
    }
    assert labels <= {"versicolor", "virginica"}
