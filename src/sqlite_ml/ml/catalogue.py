"""Algorithms: one line maps a name to an estimator class, per prediction type."""

from __future__ import annotations

from typing import Any

import lightgbm
import xgboost
from sklearn import (
    cluster,
    dummy,
    ensemble,
    linear_model,
    mixture,
    naive_bayes,
    neighbors,
    neural_network,
    svm,
    tree,
)

from ..errors import unknown
from ..estimators import BirchClusters, XGBoostClassifier

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
        "hist_gradient_boosting": ensemble.HistGradientBoostingClassifier,
        "extra_trees": ensemble.ExtraTreesClassifier,
        "xgboost": XGBoostClassifier,
        "lightgbm": lightgbm.LGBMClassifier,
        "perceptron": linear_model.Perceptron,
        "gaussian_nb": naive_bayes.GaussianNB,
        # Counts-like, non-negative inputs: scaled to [0, 1] by default (NON_NEGATIVE_INPUT).
        "multinomial_nb": naive_bayes.MultinomialNB,
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
        "hist_gradient_boosting": ensemble.HistGradientBoostingRegressor,
        "extra_trees": ensemble.ExtraTreesRegressor,
        "xgboost": xgboost.XGBRegressor,
        "lightgbm": lightgbm.LGBMRegressor,
    },
    "clustering": {
        "kmeans": cluster.KMeans,
        "mini_batch_kmeans": cluster.MiniBatchKMeans,
        "birch": BirchClusters,
        "gaussian_mixture": mixture.GaussianMixture,
    },
}

# Defaults that differ from the library's: LightGBM quiet and bit-for-bit repeatable
# (its documented switches for that); XGBoost repeats exactly with its defaults.
_DEFAULT_PARAMS: dict[type[Any], dict[str, Any]] = {
    lightgbm.LGBMClassifier: {"verbose": -1, "deterministic": True, "force_col_wise": True},
    lightgbm.LGBMRegressor: {"verbose": -1, "deterministic": True, "force_col_wise": True},
    # One component (the library's default) is one cluster, which no clustering score rates.
    mixture.GaussianMixture: {"n_components": 3},
}

PREDICTION_TYPES = tuple(ALGORITHMS)

# Estimators that refuse negative inputs: a run without ``preprocess`` scales their columns
# to [0, 1] (min-max on the training rows) instead of standard scaling.
NON_NEGATIVE_INPUT: frozenset[type[Any]] = frozenset({naive_bayes.MultinomialNB})

# How an algorithm trains on a stream of chunks (streamed training, docs/big-tables.md):
# 'partial_fit' (scikit-learn's incremental learning, one call per chunk, `epochs` passes),
# or the library's own external-data interface.
STREAMING: dict[str, dict[str, str]] = {
    "classification": {
        "sgd": "partial_fit",
        "perceptron": "partial_fit",
        "gaussian_nb": "partial_fit",
        "multinomial_nb": "partial_fit",
        "mlp": "partial_fit",
        "xgboost": "xgboost",
        "lightgbm": "lightgbm",
    },
    "regression": {
        "sgd": "partial_fit",
        "mlp": "partial_fit",
        "xgboost": "xgboost",
        "lightgbm": "lightgbm",
    },
    "clustering": {"mini_batch_kmeans": "partial_fit", "birch": "partial_fit"},
}


def streaming_method(prediction_type: str, algorithm: str) -> str | None:
    """How ``algorithm`` streams (see ``STREAMING``), None when it cannot."""
    return STREAMING[prediction_type].get(algorithm)


def require_prediction_type(prediction_type: object) -> str:
    if prediction_type not in ALGORITHMS:
        raise unknown("prediction type", prediction_type, PREDICTION_TYPES)
    assert isinstance(prediction_type, str)
    return prediction_type


def estimator_class(prediction_type: str, algorithm: object) -> type[Any]:
    available = ALGORITHMS[prediction_type]
    if not isinstance(algorithm, str) or algorithm not in available:
        raise unknown(
            "algorithm",
            algorithm,
            list(available),
            context=f" for prediction type '{prediction_type}'",
        )
    return available[algorithm]


def make_estimator(
    estimator_cls: type[Any], seed: int, hyperparams: dict[str, Any] | None = None
) -> Any:
    """A fresh estimator; seeded when it has randomness, so a run can be repeated exactly."""
    estimator = estimator_cls(**_DEFAULT_PARAMS.get(estimator_cls, {}))
    # get_params, not the signature: XGBoost takes its parameters through **kwargs.
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=seed)
    if hyperparams:
        estimator.set_params(**hyperparams)
    return estimator


def parameter_names(estimator_cls: type[Any]) -> list[str]:
    """The hyperparameters an algorithm accepts, as its ``get_params`` names them."""
    return sorted(make_estimator(estimator_cls, 0).get_params(deep=False))


def all_estimator_classes() -> list[type[Any]]:
    return [cls for algorithms in ALGORITHMS.values() for cls in algorithms.values()]
