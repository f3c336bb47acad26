"""Per-column imputation and scaling, for runs whose ``preprocess`` option asks for it.

Both keep their fitted state in the attributes the compiled predictors read
(``statistics_``; ``mean_`` and ``scale_``) and transform with the same numpy operations,
in the same order, as ``predictors.compile_predictor``: ``x[missing] = fill`` then
``x -= mean_; x /= scale_``. Every scaling is written as a centre and a divisor, so
min-max, max-abs and robust scaling share the fast prediction path with standard scaling.
Runs without ``preprocess`` keep scikit-learn's SimpleImputer and StandardScaler.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent", "zero", "error")
SCALE_STRATEGIES = ("standard", "min_max", "max_abs", "robust", "none")


def _most_frequent(column: np.ndarray) -> float:
    values, counts = np.unique(column, return_counts=True)
    return float(values[np.argmax(counts)])  # ties: the smallest value, as SimpleImputer


def _fill_value(strategy: str, column: np.ndarray) -> float:
    present = column[~np.isnan(column)]
    if strategy in ("zero", "error") or not len(present):
        return 0.0
    if strategy == "mean":
        return float(np.mean(present))
    if strategy == "median":
        return float(np.median(present))
    return _most_frequent(present)


def _centre_and_divisor(strategy: str, column: np.ndarray) -> tuple[float, float]:
    if strategy == "none" or not len(column):
        return 0.0, 1.0
    if strategy == "standard":
        centre, divisor = float(np.mean(column)), float(np.std(column))
    elif strategy == "min_max":
        centre = float(np.min(column))
        divisor = float(np.max(column)) - centre
    elif strategy == "max_abs":
        centre, divisor = 0.0, float(np.max(np.abs(column)))
    else:  # robust: median and interquartile range
        q25, median, q75 = np.percentile(column, [25, 50, 75])
        centre, divisor = float(median), float(q75 - q25)
    # A constant column: leave it unscaled, as scikit-learn's scalers do.
    return centre, divisor if divisor != 0 and np.isfinite(divisor) else 1.0


class ColumnImputer(TransformerMixin, BaseEstimator):
    """Fills NaN per column: ``strategies[i]`` is one of ``IMPUTE_STRATEGIES``."""

    def __init__(self, strategies: tuple[str, ...] = ()):
        self.strategies = strategies

    def fit(self, X: Any, y: Any = None) -> ColumnImputer:
        x = np.asarray(X, dtype=np.float64)
        self.statistics_ = np.array(
            [_fill_value(s, x[:, i]) for i, s in enumerate(self.strategies)], dtype=np.float64
        )
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        x = np.array(X, dtype=np.float64)
        missing = np.isnan(x)
        if missing.any():
            x[missing] = np.broadcast_to(self.statistics_, x.shape)[missing]
        return x


class ColumnScaler(TransformerMixin, BaseEstimator):
    """Scales per column: ``strategies[i]`` is one of ``SCALE_STRATEGIES``."""

    def __init__(self, strategies: tuple[str, ...] = ()):
        self.strategies = strategies

    def fit(self, X: Any, y: Any = None) -> ColumnScaler:
        x = np.asarray(X, dtype=np.float64)
        pairs = [_centre_and_divisor(s, x[:, i]) for i, s in enumerate(self.strategies)]
        self.mean_ = np.array([p[0] for p in pairs], dtype=np.float64)
        self.scale_ = np.array([p[1] for p in pairs], dtype=np.float64)
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        x = np.array(X, dtype=np.float64)
        x -= self.mean_
        x /= self.scale_
        return x
