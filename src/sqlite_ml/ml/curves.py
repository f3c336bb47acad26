"""ROC and precision-recall curves, and how well probabilities are calibrated, per class
(one-vs-rest) from class probabilities: numpy only, no SQL.

A curve has one point per distinct score, from the highest to the lowest: a row counts as
positive when its score is at least the point's threshold. The first point (threshold
+inf) predicts nothing positive: false and true positive rates 0, recall 0 and precision
1 by convention (as scikit-learn). The area under the ROC points (trapezoids) equals
scikit-learn's ``roc_auc_score``; the sum of precision times recall steps equals its
``average_precision_score``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ClassCurve:
    """The curve of one class against the rest."""

    label: object
    threshold: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    auc: float
    average_precision: float
    brier: float  # mean squared difference between probability and outcome
    calibration_error: float  # expected calibration error over CALIBRATION_BINS bins
    positives: int
    rows: int


def class_curve(label: object, positive: np.ndarray, scores: np.ndarray) -> ClassCurve:
    """The curve of ``scores`` (probabilities of ``label``) for the rows where
    ``positive`` is true; needs positive and negative rows both."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_truth = scores[order], positive[order].astype(np.float64)
    last_of_each = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_positives = np.cumsum(sorted_truth)[last_of_each]
    false_positives = (last_of_each + 1) - true_positives
    total_positive = float(sorted_truth.sum())
    total_negative = float(len(sorted_truth) - total_positive)
    tpr = np.r_[0.0, true_positives / total_positive]
    fpr = np.r_[0.0, false_positives / total_negative]
    precision = np.r_[1.0, true_positives / (true_positives + false_positives)]
    recall = tpr
    threshold = np.r_[np.inf, sorted_scores[last_of_each]]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    average_precision = float(np.sum(np.diff(recall) * precision[1:]))
    return ClassCurve(
        label,
        threshold,
        fpr,
        tpr,
        precision,
        recall,
        auc,
        average_precision,
        float(np.mean((scores - positive) ** 2)),
        calibration_error(positive, scores),
        int(total_positive),
        len(scores),
    )


def calibration_error(positive: np.ndarray, scores: np.ndarray) -> float:
    """Expected calibration error: over equal-width probability bins, the share of rows
    in a bin times the gap between its mean probability and its share of positives."""
    bins = np.minimum((scores * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    predicted = np.bincount(bins, weights=scores, minlength=CALIBRATION_BINS)
    observed = np.bincount(bins, weights=positive.astype(np.float64), minlength=CALIBRATION_BINS)
    return float(np.sum(np.abs(observed - predicted)) / len(scores))


def curves(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[object]
) -> list[ClassCurve]:
    """The positive class's curve for two classes (the second, as scikit-learn), else one
    per class against the rest; a class without positive or negative rows has none."""
    truth = np.asarray(y_true)
    columns = [1] if len(classes) == 2 else range(len(classes))
    found = []
    for column in columns:
        positive = truth == classes[column]
        if positive.any() and not positive.all():
            scores = np.asarray(probabilities[:, column], dtype=np.float64)
            found.append(class_curve(classes[column], positive, scores))
    return found


def thinned(curve: ClassCurve, points: int) -> np.ndarray:
    """Indexes of at most ``points`` points of the curve (first and last kept), evenly
    spread along it, for drawing."""
    size = len(curve.threshold)
    if size <= points:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, points).round().astype(np.int64))
