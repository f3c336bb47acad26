"""sqml_train's eighth argument, options: each key through SQL, and every bad value refused
with a clear error before anything is written."""

from __future__ import annotations

import json

import pytest

from sqlite_ml.ops import progress

from .helpers import IRIS_FEATURES, SETOSA


def run_row(db, run_id):
    cursor = db.conn.execute("SELECT * FROM sqml_runs WHERE id = ?", (run_id,))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_hyperparams_reach_the_estimator_and_are_recorded(iris):
    result = iris.train_with(
        "e", "classification", "svc", "dataset_iris", "target", {"hyperparams": {"C": 10}}
    )
    run = run_row(iris, result["run_id"])
    hyperparams = json.loads(run["hyperparams"])
    assert hyperparams["C"] == 10 and hyperparams["kernel"] == "rbf"
    assert hyperparams["random_state"] == result["seed"]  # the full get_params, plain values
    assert json.loads(run["options"]) == {"hyperparams": {"C": 10}}
    estimator, _ = iris.stored_model(result["model_id"])
    assert estimator.named_steps["model"].C == 10


def test_boosted_hyperparams_are_plain_json(iris):
    result = iris.train_with(
        "e",
        "classification",
        "xgboost",
        "dataset_iris",
        "target",
        {"hyperparams": {"n_estimators": 3, "max_depth": 2}},
    )
    hyperparams = json.loads(run_row(iris, result["run_id"])["hyperparams"])  # strict JSON
    assert hyperparams["n_estimators"] == 3 and hyperparams["max_depth"] == 2
    assert hyperparams["random_state"] == result["seed"]
    assert hyperparams["missing"] == "nan"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"hyperparams": {"Cee": 1}},
            "unknown hyperparameter 'Cee' for algorithm 'svc'; valid: 'C'",
        ),
        ({"hyperparams": {"C": -1}}, "invalid hyperparameters for 'svc'"),
        ({"hyperparams": {"C": {"x": 1}}}, "hyperparameter 'C' must be a number"),
        ({"hyperparams": [1]}, "option hyperparams must be a JSON object"),
        ({"colour": 1}, "unknown option 'colour'; valid options: 'hyperparams'"),
        ({"search": "bayes"}, "unknown search 'bayes'; available: 'grid', 'random'"),
        ({"search": "grid"}, "search needs option search_params"),
        ({"search_params": {"C": [1]}}, "option search_params needs option search"),
        ({"search": "grid", "search_params": {"C": []}}, "search_params 'C' must be a non-empty"),
        ({"search": "grid", "search_params": {"D": [1]}}, "unknown hyperparameter 'D'"),
        ({"search": "grid", "search_params": {"C": [1, -2]}}, "invalid hyperparameters"),
        (
            {"search": "grid", "search_params": {"C": [1]}, "search_args": {"cv": 1}},
            "search_args.cv must be an integer >= 2",
        ),
        (
            {"search": "grid", "search_params": {"C": [1]}, "search_args": {"folds": 2}},
            "unknown search_args 'folds'; valid: 'cv', 'n_iter'",
        ),
        ({"features": []}, "option features must be a non-empty list"),
        ({"features": ["petal"]}, "unknown feature column 'petal'"),
        ({"features": ["target"]}, "option features lists the target column 'target'"),
        ({"random_state": -1}, "random_state must be an integer >= 0"),
        ({"random_state": "7"}, "random_state must be an integer >= 0"),
        ({"automatic_deploy": "no"}, "automatic_deploy must be true or false"),
        ({"metric": "mae"}, "unknown metric 'mae' for classification; available: 'score'"),
        ({"order_by": "target"}, "order_by applies to split strategy 'last' only"),
        ({"preprocess": {"nope": {}}}, "preprocess names 'nope', which is not a feature column"),
        (
            {"preprocess": {"petal width (cm)": {"impute": "mode"}}},
            "unknown impute 'mode' for preprocess 'petal width (cm)'; available: 'mean'",
        ),
        (
            {"preprocess": {"petal width (cm)": {"scale": "log"}}},
            "unknown scale 'log'",
        ),
        (
            {"preprocess": {"petal width (cm)": {"encode": "hash"}}},
            "unknown encode 'hash'",
        ),
        (
            {"preprocess": {"petal width (cm)": {"clip": 1}}},
            "unknown preprocess key 'clip' for 'petal width (cm)'",
        ),
    ],
)
def test_bad_options_are_refused_and_nothing_is_written(iris, options, expected):
    iris.train("e", "classification", "dummy", "dataset_iris", "target")
    message = iris.train_error("e", "classification", "svc", "dataset_iris", "target", options)
    assert expected in message


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", "42"])
def test_options_must_be_a_json_object(iris, text):
    before = iris.counts()
    with pytest.raises(Exception, match="options"):
        iris.train("e", "classification", "dummy", "dataset_iris", "target", 0.25, "shuffle", text)
    assert iris.counts() == before


def test_null_or_empty_options_mean_none(iris):
    first = iris.train(
        "e", "classification", "dummy", "dataset_iris", "target", 0.25, "shuffle", None
    )
    second = iris.train(
        "e", "classification", "dummy", "dataset_iris", "target", 0.25, "shuffle", ""
    )
    assert first["score"] == second["score"]


def test_features_chooses_the_columns(iris):
    chosen = ["petal length (cm)", "petal width (cm)"]
    result = iris.train_with(
        "e",
        "classification",
        "logistic_regression",
        "dataset_iris",
        "target",
        {"features": chosen},
    )
    run = run_row(iris, result["run_id"])
    assert json.loads(run["feature_names"]) == chosen
    assert iris.predict("e", {"petal length (cm)": 1.4, "petal width (cm)": 0.2}) == 0.0
    assert iris.predict("e", [6.0, 2.5]) == 2.0


def test_random_state_reproduces_a_run_across_experiments(iris):
    options = {"random_state": 7, "hyperparams": {"n_estimators": 5}}
    first = iris.train_with(
        "a", "classification", "random_forest", "dataset_iris", "target", options
    )
    second = iris.train_with(
        "b", "classification", "random_forest", "dataset_iris", "target", options
    )
    assert first["seed"] == second["seed"] == 7
    assert first["score"] == second["score"]
    assert first["metrics"] == second["metrics"]
    assert run_row(iris, second["run_id"])["seed"] == 7


def test_automatic_deploy_false_keeps_the_active_model(iris):
    low = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    high = iris.train_with(
        "e",
        "classification",
        "logistic_regression",
        "dataset_iris",
        "target",
        {"automatic_deploy": False},
    )
    assert high["score"] > low["score"] and high["deployed"] is False
    assert high["deploy_decision"]["summary"] == "not deployed: option automatic_deploy is false"
    assert iris.active_model_id("e") == low["model_id"]
    # the first model of a new experiment is not deployed either
    alone = iris.train_with(
        "f", "classification", "dummy", "dataset_iris", "target", {"automatic_deploy": False}
    )
    assert alone["deployed"] is False
    with pytest.raises(Exception, match="no deployed model"):
        iris.predict("f", SETOSA)


def test_metric_decides_deployment_and_is_remembered(db):
    db.load("diabetes")
    db.conn.execute("CREATE TABLE d AS SELECT * FROM dataset_diabetes LIMIT 120")
    first = db.train_with("e", "regression", "ridge", "d", "target", {"metric": "mae"})
    assert first["metric"] == "mae"
    assert db.value("SELECT metric FROM sqml_experiments WHERE name = 'e'") == "mae"
    # dummy has a much larger mean absolute error: lower is better, so it stays undeployed
    worse = db.train("e", "regression", "dummy", "d", "target")
    assert worse["metric"] == "mae"  # remembered without repeating the option
    assert worse["metrics"]["mae"] > first["metrics"]["mae"]
    assert worse["deployed"] is False
    better = db.train_with("e", "regression", "linear_regression", "d", "target")
    assert better["deployed"] is (better["metrics"]["mae"] < first["metrics"]["mae"])


def test_progress_reports_load_fit_and_each_search_candidate(iris):
    seen = []
    with progress.listening(lambda stage, done, total: seen.append((stage, done, total))):
        iris.train_with(
            "e",
            "classification",
            "svc",
            "dataset_iris",
            "target",
            {"search": "grid", "search_params": {"C": [0.5, 1, 2]}, "search_args": {"cv": 2}},
        )
    assert seen[0] == ("load", 150, 150)
    assert [s for s in seen if s[0] == "search"] == [("search", i, 3) for i in range(4)]
    assert seen[-2:] == [("fit", 0, 1), ("fit", 1, 1)]


def test_feature_names_recorded_for_every_column(iris):
    result = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    run = run_row(iris, result["run_id"])
    assert json.loads(run["feature_names"]) == list(IRIS_FEATURES)
    assert set(json.loads(run["feature_types"]).values()) == {"numeric"}
    versions = json.loads(run["library_versions"])
    assert {"xgboost", "lightgbm", "scikit-learn"} <= set(versions)
    assert run["data_rows"] == 150 and len(run["data_digest"]) == 64
    assert run["importance_time"] >= 0 and run["fit_time"] >= 0 and run["score_time"] >= 0


@pytest.mark.parametrize(
    ("algorithm", "hyperparams"),
    [
        ("xgboost", {"max_depth": -1}),
        ("xgboost", {"n_estimators": "many"}),
        ("lightgbm", {"num_leaves": -5}),
        ("lightgbm", {"boosting_type": "bogus"}),
    ],
)
def test_boosted_libraries_check_their_values_before_anything_is_written(
    iris, algorithm, hyperparams
):
    message = iris.train_error(
        "e", "classification", algorithm, "dataset_iris", "target", {"hyperparams": hyperparams}
    )
    assert f"invalid hyperparameters for '{algorithm}'" in message


def test_birch_values_are_checked_too(iris):
    message = iris.train_error(
        "c", "clustering", "birch", "dataset_iris", None, {"hyperparams": {"threshold": -1}}
    )
    assert "invalid hyperparameters for 'birch'" in message and "threshold" in message
