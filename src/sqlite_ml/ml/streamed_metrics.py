"""Test metrics accumulated chunk by chunk, and bounded samples of rows (no SQL here).

* Classification: the confusion counts; every metric is then computed by the same
  scikit-learn functions as in memory, on one row per (truth, prediction) pair weighted by
  its count. Counts are integers, exact in float64, so the metrics are bit for bit those
  of the in-memory computation on the same rows.
* Regression: sums of errors and the target's moments (Chan's merge): R², MSE, RMSE,
  MAE and max error exactly, up to floating-point rounding (sums in another order).
* Clustering: silhouette, Calinski-Harabasz and Davies-Bouldin need every pair or every
  cluster's rows, so they are computed on a bounded sample of test rows (``BottomK``):
  approximate, and recorded as such on the run.

``BottomK`` keeps the k rows with the smallest seeded hash of their key: a uniform sample
without replacement, the same whatever the chunking, in bounded memory.
"""

from __future__ import annotations

import math

import numpy as np

from . import metrics
from .splits import hash_unit


class ClassificationTally:
    def __init__(self, classes: np.ndarray):
        self.classes = classes  # sorted, as np.unique gives them
        self.counts = np.zeros((len(classes), len(classes)), dtype=np.int64)

    def _codes(self, labels: np.ndarray) -> np.ndarray:
        codes = np.searchsorted(self.classes, labels)
        codes = np.clip(codes, 0, len(self.classes) - 1)
        if not (self.classes[codes] == labels).all():
            raise ValueError("a label outside the classes found in the first pass")
        return codes

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        if not len(truth):
            return
        k = len(self.classes)
        pairs = self._codes(truth) * k + self._codes(np.asarray(predicted, dtype=truth.dtype))
        self.counts += np.bincount(pairs, minlength=k * k).reshape(k, k)

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def metrics(self) -> dict[str, float]:
        truth, predicted = np.nonzero(self.counts)
        weights = self.counts[truth, predicted].astype(np.float64)
        return metrics.classification_metrics(
            self.classes[truth], self.classes[predicted], sample_weight=weights
        )


class RegressionTally:
    def __init__(self) -> None:
        self.rows = 0
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations of the target from its mean
        self.squared_errors = 0.0
        self.absolute_errors = 0.0
        self.max_error = 0.0

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        if not len(truth):
            return
        truth = np.asarray(truth, dtype=np.float64)
        errors = truth - np.asarray(predicted, dtype=np.float64)
        self.squared_errors += float(np.dot(errors, errors))
        self.absolute_errors += float(np.abs(errors).sum())
        self.max_error = max(self.max_error, float(np.abs(errors).max()))
        count, mean = len(truth), float(truth.mean())
        m2 = float(np.sum((truth - mean) ** 2))
        total = self.rows + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.rows * count / total
        self.rows = total

    def metrics(self) -> dict[str, float]:
        if not self.rows:
            return {"score": math.nan, "r2": math.nan}
        mse = self.squared_errors / self.rows
        if self.rows < 2:
            r2 = math.nan
        elif self.m2 == 0:  # scikit-learn's rule for a constant target
            r2 = 1.0 if self.squared_errors == 0 else 0.0
        else:
            r2 = 1.0 - self.squared_errors / self.m2
        return {
            "score": r2,
            "r2": r2,
            "mae": self.absolute_errors / self.rows,
            "mse": mse,
            "rmse": math.sqrt(mse),
            "max_error": self.max_error,
        }


class BottomK:
    """The ``size`` rows with the smallest ``hash_unit(key, seed)``, with their labels."""

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.priority = np.empty(0)
        self.matrix: np.ndarray | None = None
        self.labels: np.ndarray | None = None

    def update(self, keys: np.ndarray, matrix: np.ndarray, labels: np.ndarray) -> None:
        if not len(keys) or self.size == 0:
            return
        priority = hash_unit(keys, self.seed)
        if self.matrix is None:
            self.matrix = matrix[:0].copy()
            self.labels = labels[:0].copy()
        if len(self.priority) >= self.size:  # only rows that can still enter
            enter = priority < self.priority.max()
            priority, matrix, labels = priority[enter], matrix[enter], labels[enter]
            if not len(priority):
                return
        assert self.labels is not None
        all_priority = np.concatenate([self.priority, priority])
        all_matrix = np.concatenate([self.matrix, matrix])
        all_labels = np.concatenate([self.labels, labels])
        if len(all_priority) > self.size:
            keep = np.argpartition(all_priority, self.size - 1)[: self.size]
        else:
            keep = np.arange(len(all_priority))
        keep = keep[np.argsort(all_priority[keep], kind="stable")]
        self.priority = all_priority[keep]
        self.matrix, self.labels = all_matrix[keep], all_labels[keep]

    def threshold(self) -> float:
        """The largest kept priority (rows at or below it are in the sample)."""
        return float(self.priority.max()) if len(self.priority) else -1.0
