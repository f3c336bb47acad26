"""Compiled predictors: a fitted pipeline turned into the cheapest exact prediction path.

scikit-learn validates its input on every call (about 2.5 ms per single-row predict for
an impute + scale + logistic regression pipeline here, most of it in input checks). The
input is already checked by the feature schema, so a predictor applies the imputer and
the scaler with plain numpy and, for linear models, evaluates ``X @ coef.T + intercept``
itself: the same operations in the same order as scikit-learn, so the results are the
same numbers. Other models get the preprocessed matrix through their own ``predict``
with scikit-learn's repeated validation switched off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from sklearn import linear_model
from sklearn.pipeline import Pipeline

Predictor = Callable[[np.ndarray], np.ndarray]

_LINEAR_CLASSIFIERS = (
    linear_model.LogisticRegression,
    linear_model.SGDClassifier,
    linear_model.RidgeClassifier,
    linear_model.RidgeClassifierCV,
)
_LINEAR_REGRESSORS = (
    linear_model.LinearRegression,
    linear_model.Ridge,
    linear_model.RidgeCV,
    linear_model.Lasso,
    linear_model.LassoCV,
    linear_model.ElasticNet,
    linear_model.ElasticNetCV,
    linear_model.SGDRegressor,
)


def compile_predictor(pipeline: Pipeline) -> Predictor:
    steps = dict(pipeline.steps)
    statistics = np.asarray(steps["impute"].statistics_, dtype=np.float64)
    center = np.asarray(steps["scale"].mean_, dtype=np.float64)
    scale = np.asarray(steps["scale"].scale_, dtype=np.float64)
    model = steps["model"]

    def preprocess(matrix: np.ndarray) -> np.ndarray:
        x = np.array(matrix, dtype=np.float64)  # a copy: the caller's matrix stays as it was
        missing = np.isnan(x)
        if missing.any():
            x[missing] = np.broadcast_to(statistics, x.shape)[missing]
        x -= center
        x /= scale
        return x

    if type(model) in _LINEAR_CLASSIFIERS:
        return _linear_classifier(model, preprocess)
    if type(model) in _LINEAR_REGRESSORS:
        return _linear_regressor(model, preprocess)

    def predict(matrix: np.ndarray) -> np.ndarray:
        x = preprocess(matrix)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(model.predict(x))

    return predict


def _linear_classifier(model: Any, preprocess: Callable[[np.ndarray], np.ndarray]) -> Predictor:
    # RidgeClassifier keeps a 1-D coef_ for two classes; the others a (1, p) or (k, p) one.
    coef_t = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64)).T
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    classes = np.asarray(model.classes_)

    def predict(matrix: np.ndarray) -> np.ndarray:
        scores = preprocess(matrix) @ coef_t + intercept
        if scores.shape[1] == 1:
            return classes[(scores[:, 0] > 0).astype(int)]
        return classes[scores.argmax(axis=1)]

    return predict


def _linear_regressor(model: Any, preprocess: Callable[[np.ndarray], np.ndarray]) -> Predictor:
    coef_t = np.asarray(model.coef_, dtype=np.float64).T
    intercept = np.asarray(model.intercept_, dtype=np.float64)

    def predict(matrix: np.ndarray) -> np.ndarray:
        values = preprocess(matrix) @ coef_t + intercept
        return values.reshape(len(matrix))

    return predict
