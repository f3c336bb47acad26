"""A metric of per-row outputs, and the paired bootstrap of the difference between two
models' values of it on the same rows (the deployment gate): numpy only, no SQL.

Each resample draws as many rows as there are, with replacement, and scores both models
on the same drawn rows; the improvement is oriented so that positive is better for the
candidate (for a lower-is-better metric it is active minus candidate). Metrics that are
means of per-row terms (accuracy, mae, mse, rmse, r2, log_loss) are computed for many
resamples at once; the others call their metric function once per resample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..scoring import LOWER_IS_BETTER, SCORE_MEANS
from . import metrics

_CHUNK_CELLS = 4_000_000  # resampled row indexes held at once (32 MB of int64)


@dataclass(frozen=True)
class Outputs:
    """A model's outputs on the rows: predictions, and class probabilities (columns in
    ``classes`` order) when the metric needs them."""

    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    classes: Sequence[object] = ()


def metric_value(metric: str, prediction_type: str, truth: np.ndarray, outputs: Outputs) -> float:
    """The value of ``metric`` for these rows (NaN when undefined)."""
    name = SCORE_MEANS[prediction_type] if metric == "score" else metric
    if name in ("roc_auc", "average_precision", "log_loss"):
        if outputs.probabilities is None:
            return math.nan
        found = metrics.probability_metrics(truth, outputs.probabilities, outputs.classes)
        return found[name]
    return metrics.compute(prediction_type, truth, outputs.predictions).get(name, math.nan)


@dataclass(frozen=True)
class GateResult:
    improvement: float  # on all the rows, positive when the candidate is better
    interval: tuple[float, float]  # two-sided percentile interval at the confidence level
    p_value: float  # of "the improvement is at most min_improvement"
    resamples: int
    passed: bool


def paired_bootstrap(
    metric: str,
    prediction_type: str,
    truth: np.ndarray,
    candidate: Outputs,
    active: Outputs,
    *,
    min_improvement: float,
    confidence: float,
    resamples: int,
    seed: int,
) -> GateResult:
    """Whether the candidate beats the active model by more than ``min_improvement`` with
    ``confidence``: the share of resamples whose improvement is at most
    ``min_improvement`` (counting the observed data as one more) is the p-value, and the
    gate passes when it is below ``1 - confidence``."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    observed = sign * (
        metric_value(metric, prediction_type, truth, candidate)
        - metric_value(metric, prediction_type, truth, active)
    )
    differences = sign * _resampled_differences(
        metric, prediction_type, truth, candidate, active, resamples, seed
    )
    differences = differences[np.isfinite(differences)]
    if not len(differences) or not math.isfinite(observed):
        return GateResult(observed, (math.nan, math.nan), 1.0, 0, False)
    at_most = int(np.sum(differences <= min_improvement))
    p_value = (at_most + 1) / (len(differences) + 1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return GateResult(
        float(observed),
        (float(low), float(high)),
        float(p_value),
        len(differences),
        p_value < 1 - confidence,
    )


def _resampled_differences(
    metric: str,
    prediction_type: str,
    truth: np.ndarray,
    candidate: Outputs,
    active: Outputs,
    resamples: int,
    seed: int,
) -> np.ndarray:
    """Candidate minus active value of the metric on each resample."""
    rng = np.random.default_rng(seed)
    rows = len(truth)
    name = SCORE_MEANS[prediction_type] if metric == "score" else metric
    terms = _row_terms(name, prediction_type, truth, candidate, active)
    out = np.empty(resamples)
    per_chunk = max(1, _CHUNK_CELLS // max(1, rows))
    for start in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - start)
        drawn = rng.integers(0, rows, size=(count, rows))
        if terms is not None:
            out[start : start + count] = _from_terms(name, terms, drawn)
            continue
        for i, rows_drawn in enumerate(drawn):
            out[start + i] = metric_value(
                metric, prediction_type, truth[rows_drawn], _take(candidate, rows_drawn)
            ) - metric_value(metric, prediction_type, truth[rows_drawn], _take(active, rows_drawn))
    return out


def _take(outputs: Outputs, rows: np.ndarray) -> Outputs:
    probabilities = None if outputs.probabilities is None else outputs.probabilities[rows]
    return Outputs(outputs.predictions[rows], probabilities, outputs.classes)


def _row_terms(
    name: str, prediction_type: str, truth: np.ndarray, candidate: Outputs, active: Outputs
) -> dict[str, np.ndarray] | None:
    """Per-row terms whose resampled means give the metric, or None when it is not a
    mean of row terms (then it is computed per resample)."""
    if prediction_type == "classification" and name == "accuracy":
        return {
            "candidate": (candidate.predictions == truth).astype(np.float64),
            "active": (active.predictions == truth).astype(np.float64),
        }
    if prediction_type == "regression" and name in ("mae", "mse", "rmse", "r2"):
        y = np.asarray(truth, dtype=np.float64)
        errors = {
            side: y - np.asarray(outputs.predictions, dtype=np.float64)
            for side, outputs in (("candidate", candidate), ("active", active))
        }
        if name == "mae":
            return {side: np.abs(error) for side, error in errors.items()}
        terms = {side: error**2 for side, error in errors.items()}
        if name == "r2":
            terms.update({"y": y, "y2": y**2})
        return terms
    if name == "log_loss" and candidate.probabilities is not None:
        if active.probabilities is None:
            return None
        losses = {}
        for side, outputs in (("candidate", candidate), ("active", active)):
            assert outputs.probabilities is not None
            index = {label: i for i, label in enumerate(outputs.classes)}
            if not all(label in index for label in truth.tolist()):
                return None
            columns = np.array([index[label] for label in truth.tolist()])
            chosen = outputs.probabilities[np.arange(len(truth)), columns]
            eps = np.finfo(np.float64).eps
            losses[side] = -np.log(np.clip(chosen, eps, 1 - eps))
        return losses
    return None


def _from_terms(name: str, terms: dict[str, np.ndarray], drawn: np.ndarray) -> np.ndarray:
    candidate = terms["candidate"][drawn].mean(axis=1)
    active = terms["active"][drawn].mean(axis=1)
    if name == "rmse":
        return np.sqrt(candidate) - np.sqrt(active)
    if name == "r2":
        y, y2 = terms["y"][drawn].mean(axis=1), terms["y2"][drawn].mean(axis=1)
        spread = y2 - y**2
        with np.errstate(divide="ignore", invalid="ignore"):
            return (active - candidate) / spread  # (1 - c/s) - (1 - a/s)
    return candidate - active
