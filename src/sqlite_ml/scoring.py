"""How models are scored, in words every layer shares: the metric names recorded per
prediction type, which way each one is better, and which metric ``score`` stands for.

The store's leaderboard view ranks by these directions, the domain deploys by them and the
faces label their charts with them; the numbers themselves are computed in
``ml/metrics.py``.
"""

from __future__ import annotations

METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "classification": (
        "score",
        "accuracy",
        "f1",
        "precision",
        "recall",
        "balanced_accuracy",
        # Recorded for models that give class probabilities (ml/metrics.probability_metrics).
        "roc_auc",
        "average_precision",
        "log_loss",
    ),
    "regression": ("score", "r2", "mae", "mse", "rmse", "max_error"),
    "clustering": ("score", "silhouette", "calinski_harabasz", "davies_bouldin"),
}

# What the ``score`` metric of a prediction type is (the default deciding metric).
SCORE_MEANS = {"classification": "accuracy", "regression": "r2", "clustering": "silhouette"}

# Errors and distances: smaller is better. Every other metric: larger is better.
LOWER_IS_BETTER = ("mae", "mse", "rmse", "max_error", "davies_bouldin", "log_loss")

# Metrics only a model with class probabilities has.
PROBABILITY_METRICS = ("roc_auc", "average_precision", "log_loss")


def better(metric: str, candidate: float, incumbent: float) -> bool:
    """Whether ``candidate`` strictly beats ``incumbent`` on ``metric``."""
    return candidate < incumbent if metric in LOWER_IS_BETTER else candidate > incumbent


def metric_label(prediction_type: str, metric: str) -> str:
    """How a face names an experiment's deciding metric: ``score`` says what it is
    ('accuracy', 'r2', 'silhouette'), any other metric is its own name."""
    if metric == "score":
        return SCORE_MEANS.get(prediction_type, "score")
    return metric
