"""Metrics recorded for every model; ``score`` decides deployment unless an experiment
chose another metric (``metric`` option of ``sqml_train``). Their names and which way
each is better are in ``scoring.py``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
) -> dict[str, float]:
    """``sample_weight``: streamed training's confusion counts, one row per pair."""
    accuracy = float(skm.accuracy_score(y_true, y_pred, sample_weight=sample_weight))
    # The function f1_score, precision_score and recall_score each call: once, not thrice.
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, average="weighted", zero_division=0, sample_weight=sample_weight
    )
    return {
        "score": accuracy,
        "accuracy": accuracy,
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "balanced_accuracy": float(
            skm.balanced_accuracy_score(y_true, y_pred, sample_weight=sample_weight)
        ),
    }


def probability_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, classes: np.ndarray | Sequence[object]
) -> dict[str, float]:
    """Metrics of class probabilities (columns in ``classes`` order): ``roc_auc`` and
    ``average_precision`` (binary: of the second class, as scikit-learn; more classes:
    the mean over the classes of one-vs-rest, for each class that has both positive and
    negative test rows) and ``log_loss``. NaN where undefined (one class only, a test
    label the model never saw)."""
    classes = list(classes)
    scores = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(y_true)
    out = {"roc_auc": math.nan, "average_precision": math.nan, "log_loss": math.nan}
    if len(truth) == 0 or scores.ndim != 2 or scores.shape[1] != len(classes):
        return out
    columns = [1] if len(classes) == 2 else range(len(classes))
    aucs, precisions = [], []
    for column in columns:
        positive = truth == classes[column]
        if positive.all() or not positive.any():
            continue
        aucs.append(float(skm.roc_auc_score(positive, scores[:, column])))
        precisions.append(float(skm.average_precision_score(positive, scores[:, column])))
    if aucs:
        out["roc_auc"] = float(np.mean(aucs))
        out["average_precision"] = float(np.mean(precisions))
    known = np.isin(truth, np.asarray(classes, dtype=truth.dtype))
    if known.all():
        out["log_loss"] = float(skm.log_loss(truth, scores, labels=classes))
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    mse = float(skm.mean_squared_error(y_true, y_pred))
    r2 = float(skm.r2_score(y_true, y_pred)) if len(y_true) >= 2 else math.nan
    return {
        "score": r2,
        "r2": r2,
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "max_error": float(skm.max_error(y_true, y_pred)),
    }


def clustering_metrics(x: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Internal measures on the preprocessed rows; NaN when there are not 2..n-1 clusters."""
    clusters = len(np.unique(labels))
    if not 2 <= clusters < len(labels):
        return {"score": math.nan, "silhouette": math.nan}
    silhouette = float(skm.silhouette_score(x, labels))
    return {
        "score": silhouette,
        "silhouette": silhouette,
        "calinski_harabasz": float(skm.calinski_harabasz_score(x, labels)),
        "davies_bouldin": float(skm.davies_bouldin_score(x, labels)),
    }


def compute(prediction_type: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    if prediction_type == "classification":
        return classification_metrics(y_true, y_pred)
    return regression_metrics(y_true, y_pred)
