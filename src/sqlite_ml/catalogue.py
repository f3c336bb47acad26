"""Algorithms: one line maps a name to a scikit-learn estimator class, per prediction type."""

from __future__ import annotations

import inspect
from typing import Any

from sklearn import dummy, ensemble, linear_model, neighbors, neural_network, svm, tree

from .errors import SqmlError, choices, describe

ALGORITHMS: dict[str, dict[str, type[Any]]] = {
    "classification": {
        "dummy": dummy.DummyClassifier,
        "logistic_regression": linear_model.LogisticRegression,
        "sgd": linear_model.SGDClassifier,
        "ridge": linear_model.RidgeClassifier,
        "ridge_cv": linear_model.RidgeClassifierCV,
        "decision_tree": tree.DecisionTreeClassifier,
        "ada_boost": ensemble.AdaBoostClassifier,
        "bagging": ensemble.BaggingClassifier,
        "gradient_boosting": ensemble.GradientBoostingClassifier,
        "random_forest": ensemble.RandomForestClassifier,
        "knn": neighbors.KNeighborsClassifier,
        "mlp": neural_network.MLPClassifier,
        "svc": svm.SVC,
    },
    "regression": {
        "dummy": dummy.DummyRegressor,
        "linear_regression": linear_model.LinearRegression,
        "sgd": linear_model.SGDRegressor,
        "ridge": linear_model.Ridge,
        "ridge_cv": linear_model.RidgeCV,
        "elastic_net": linear_model.ElasticNet,
        "elastic_net_cv": linear_model.ElasticNetCV,
        "lasso": linear_model.Lasso,
        "lasso_cv": linear_model.LassoCV,
        "decision_tree": tree.DecisionTreeRegressor,
        "ada_boost": ensemble.AdaBoostRegressor,
        "bagging": ensemble.BaggingRegressor,
        "gradient_boosting": ensemble.GradientBoostingRegressor,
        "random_forest": ensemble.RandomForestRegressor,
        "knn": neighbors.KNeighborsRegressor,
        "mlp": neural_network.MLPRegressor,
        "svr": svm.SVR,
    },
}

PREDICTION_TYPES = tuple(ALGORITHMS)


def require_prediction_type(prediction_type: object) -> str:
    if prediction_type not in ALGORITHMS:
        raise SqmlError(
            f"unknown prediction type {describe(prediction_type)}; "
            f"available: {choices(PREDICTION_TYPES)}"
        )
    assert isinstance(prediction_type, str)
    return prediction_type


def estimator_class(prediction_type: str, algorithm: object) -> type[Any]:
    available = ALGORITHMS[prediction_type]
    if not isinstance(algorithm, str) or algorithm not in available:
        raise SqmlError(
            f"unknown algorithm {describe(algorithm)} for prediction type '{prediction_type}'; "
            f"available: {choices(available)}"
        )
    return available[algorithm]


def make_estimator(estimator_cls: type[Any], seed: int) -> Any:
    """A fresh estimator; seeded when it has randomness, so a run can be repeated exactly."""
    parameters = inspect.signature(estimator_cls).parameters
    return estimator_cls(random_state=seed) if "random_state" in parameters else estimator_cls()


def all_estimator_classes() -> list[type[Any]]:
    return [cls for algorithms in ALGORITHMS.values() for cls in algorithms.values()]
