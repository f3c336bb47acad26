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
RowPredictor = Callable[[list[float]], Any]

# Plain-Python evaluation of one row beats numpy's per-call overhead up to about this many
# multiply-adds (classes x features); larger models go through the matrix path.
_ROW_PATH_MAX_TERMS = 400
# A result closer to the decision boundary (or to zero, for regression) than this share
# of the terms' magnitude is recomputed exactly the way scikit-learn computes it.
_ROW_PATH_GUARD = 1e-9

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


def compile_row_predictor(pipeline: Pipeline, exact: Predictor) -> RowPredictor:
    """One row at a time: linear models evaluated in plain Python with the imputer and
    scaler folded into the weights (about a tenth of the matrix path's cost); anything
    else, or a result too close to a tie to trust the folded arithmetic, uses ``exact``."""

    def through_matrix(row: list[float]) -> Any:
        return exact(np.array([row], dtype=np.float64))[0]

    steps = dict(pipeline.steps)
    model = steps["model"]
    if type(model) not in _LINEAR_CLASSIFIERS + _LINEAR_REGRESSORS:
        return through_matrix
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    if coef.size > _ROW_PATH_MAX_TERMS:
        return through_matrix
    scale = np.asarray(steps["scale"].scale_, dtype=np.float64)
    center = np.asarray(steps["scale"].mean_, dtype=np.float64)
    folded = coef / scale
    weights = [list(map(float, row)) for row in folded]
    intercepts = [float(b) for b in np.atleast_1d(model.intercept_) - folded @ center]
    fill = [float(value) for value in steps["impute"].statistics_]
    classes = list(np.asarray(model.classes_)) if hasattr(model, "classes_") else None

    def scores(row: list[float]) -> tuple[list[float], float]:
        x = [fill[i] if value != value else value for i, value in enumerate(row)]  # NaN
        out = []
        magnitude = 0.0
        for w, b in zip(weights, intercepts, strict=True):
            terms = [wi * xi for wi, xi in zip(w, x, strict=True)]
            out.append(sum(terms) + b)
            magnitude = max(magnitude, sum(map(abs, terms)) + abs(b))
        return out, magnitude * _ROW_PATH_GUARD

    if classes is None:

        def regress(row: list[float]) -> Any:
            (value,), margin = scores(row)
            return value if abs(value) > margin else through_matrix(row)

        return regress

    def classify(row: list[float]) -> Any:
        values, margin = scores(row)
        if len(values) == 1:
            if abs(values[0]) > margin:
                return classes[1] if values[0] > 0 else classes[0]
            return through_matrix(row)
        ranked = sorted(range(len(values)), key=values.__getitem__, reverse=True)
        if values[ranked[0]] - values[ranked[1]] > 2 * margin:
            return classes[ranked[0]]
        return through_matrix(row)

    return classify
