"""Class probabilities from a fitted pipeline, compiled once per loaded model.

Impute + scale + model pipelines (the default mean imputer and standard scaler, and the
per-column steps of ``preprocess``) get a cheap path:
logistic regression is evaluated in plain Python with the imputer and scaler folded into
its weights (one row costs about what ``sqml_predict`` costs), other classifiers get the
row imputed and scaled with numpy and then their own ``predict_proba`` with
scikit-learn's repeated input validation switched off. A pipeline of any other shape goes
through its own ``predict_proba`` unchanged.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..preprocessing import ColumnImputer, ColumnScaler
from . import threads

RowProbabilities = Callable[[list[float]], list[float]]

# Imputers and scalers that transform with exactly the numpy operations used below.
_IMPUTERS = (SimpleImputer, ColumnImputer)
_SCALERS = (StandardScaler, ColumnScaler)

# Above this many multiply-adds (classes x features) numpy beats plain Python on one row.
_ROW_PATH_MAX_TERMS = 400


def gives_probabilities(pipeline: Any) -> bool:
    """Whether the model has a usable ``predict_proba`` (an SVC trained without
    ``probability=True`` or an SGD classifier with hinge loss has the method name but
    scikit-learn reports it unavailable)."""
    return hasattr(pipeline, "predict_proba")


def gives_probabilities_by_default(estimator_cls: type[Any]) -> bool:
    """Whether an algorithm with its default parameters gives probabilities."""
    try:
        return gives_probabilities(estimator_cls())
    except Exception:  # noqa: BLE001 - a class that needs arguments: cannot tell, so no
        return False


def class_labels(pipeline: Any) -> list[Any]:
    """The labels a probability row is ordered by: the model's ``classes_``, or the
    component numbers 0..n-1 for a model without classes (a mixture of clusters)."""
    model = pipeline[-1] if isinstance(pipeline, Pipeline) else pipeline
    classes = getattr(model, "classes_", None)
    if classes is not None:
        return list(np.asarray(classes))
    return list(range(int(getattr(model, "n_components", 0))))


def compile_row_probabilities(pipeline: Any) -> RowProbabilities:
    """One row of encoded features (NaN where missing) to its class probabilities."""
    standard = _standard_steps(pipeline)
    if standard is None:
        return _through_pipeline(pipeline)
    fill, center, scale, model = standard
    through_model = _through_model(model, fill, center, scale)
    coef = np.atleast_2d(np.asarray(getattr(model, "coef_", np.zeros((0, 0))), dtype=np.float64))
    if type(model) is LogisticRegression and 0 < coef.size <= _ROW_PATH_MAX_TERMS:
        return _logistic(model, coef, fill, center, scale, through_model)
    return through_model


def _standard_steps(pipeline: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any] | None:
    """(imputer fill values, scaler centre, scaler scale, model) for an impute + scale +
    model pipeline whose steps transform as ``x[missing] = fill; x -= mean_; x /= scale_``
    (scikit-learn's mean imputer and standard scaler, and the per-column steps of a run
    trained with ``preprocess``); None for any other shape."""
    if not isinstance(pipeline, Pipeline) or [name for name, _ in pipeline.steps] != [
        "impute",
        "scale",
        "model",
    ]:
        return None
    impute, scale, model = (step for _, step in pipeline.steps)
    if type(impute) not in _IMPUTERS or type(scale) not in _SCALERS:
        return None
    if getattr(scale, "mean_", None) is None or getattr(scale, "scale_", None) is None:
        return None
    statistics = np.asarray(impute.statistics_, dtype=np.float64)
    if not np.isfinite(statistics).all():
        return None
    return (
        statistics,
        np.asarray(scale.mean_, dtype=np.float64),
        np.asarray(scale.scale_, dtype=np.float64),
        model,
    )


def _through_pipeline(pipeline: Any) -> RowProbabilities:
    def probabilities(row: list[float]) -> list[float]:
        with threads.predicting(1):
            return pipeline.predict_proba(np.array([row], dtype=np.float64))[0].tolist()

    return probabilities


def _through_model(
    model: Any, fill: np.ndarray, center: np.ndarray, scale: np.ndarray
) -> RowProbabilities:
    """Impute and scale with the same numpy operations as the pipeline's steps (so the
    same numbers), then the model's own ``predict_proba`` without re-validation."""

    def probabilities(row: list[float]) -> list[float]:
        x = np.array([row], dtype=np.float64)
        missing = np.isnan(x)
        if missing.any():
            x[missing] = np.broadcast_to(fill, x.shape)[missing]
        x -= center
        x /= scale
        with (
            sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
            threads.predicting(1),
        ):
            return model.predict_proba(x)[0].tolist()

    return probabilities


def _logistic(
    model: LogisticRegression,
    coef: np.ndarray,
    fill: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    exact: RowProbabilities,
) -> RowProbabilities:
    """scikit-learn's formulas in plain Python: two classes take the logistic function of
    the one decision value ([1 - p, p]); more take the softmax of one value per class.
    A row whose decision values overflow goes through ``exact``."""
    folded = coef / scale
    weights = [list(map(float, row)) for row in folded]
    intercepts = [float(b) for b in np.atleast_1d(model.intercept_) - folded @ center]
    fill_values = [float(value) for value in fill]
    binary = len(weights) == 1
    mul = operator.mul

    def probabilities(row: list[float]) -> list[float]:
        x = [fill_values[i] if value != value else value for i, value in enumerate(row)]  # NaN
        scores = [sum(map(mul, w, x)) + b for w, b in zip(weights, intercepts, strict=True)]
        if not all(map(math.isfinite, scores)):
            with np.errstate(all="ignore"):  # the caller reports a result that is not finite
                return exact(row)
        if binary:
            score = scores[0]
            if score >= 0:
                p = 1.0 / (1.0 + math.exp(-score))
            else:
                e = math.exp(score)
                p = e / (1.0 + e)
            return [1.0 - p, p]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    return probabilities
