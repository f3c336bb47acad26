"""Permutation importance per feature, computed on (a sample of) the test split at training
time and stored with the model; read back by ``sqml_feature_importance``.

A feature's importance is how much the score drops when its values are shuffled among
the rows (all the encoded columns of a one-hot or target-encoded feature move together),
averaged over a few repeats: accuracy for classification, R² for regression, and for
clustering the share of rows that change cluster.

It is bounded so that it never dominates training: it gets a time budget (by default the
fit's own time, at least ``MIN_BUDGET`` seconds; the run's option ``importance`` sets
seconds, or ``false`` skips it), written on the run. The rows are sampled (at most
``MAX_ROWS``, fewer for a wide table: about ``CELLS`` cells a shuffled copy); the first
prediction measures what a shuffled copy costs, and ``REPEATS`` repeats are kept only
when every feature fits in the budget that way, else one. Features are taken in a seeded
random order and the work stops when the budget is spent (one stacked prediction may end
after it); features left out are not in the result, and the run's warnings say how many
were covered.
"""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from .. import jsontext
from ..db import records as store
from ..errors import SqmlError
from ..ml.features import FeatureSchema
from .experiments import require_active_model, require_experiment

REPEATS = 3
MAX_ROWS = 1000
MIN_ROWS = 50
CELLS = 200_000  # rows x columns of one shuffled copy, at most (rows permitting MIN_ROWS)
MIN_BUDGET = 0.25  # seconds: a tiny model's fit is too quick to measure a budget by
_CELLS_PER_CALL = 2_000_000  # 16 MB of float64 per stacked prediction


class ImportanceCoverage(UserWarning):
    """Recorded in a run's warnings when importance covered only some features."""


@dataclass(frozen=True)
class Importance:
    values: dict[str, float]  # feature -> importance, most important first
    features: int  # features the model has
    rows: int
    repeats: int
    seconds: float


@dataclass(frozen=True)
class Bounded:
    """What a run records of its importance: the values (None when skipped) and the
    time it took and could take."""

    values: dict[str, float] | None
    timings: dict[str, float | None]  # importance_time, importance_budget


def bounded(
    request: Any,
    model: Any,
    schema: FeatureSchema,
    x: np.ndarray,
    y: np.ndarray | None,
    seed: int,
    fit_seconds: float,
) -> Bounded:
    """A run's importance within the budget its options and fit time give (every engine
    calls this: in memory, streamed, Dask)."""
    budget = budget_for(request.options.importance, fit_seconds)
    if budget <= 0:
        return Bounded(None, {"importance_time": None, "importance_budget": 0.0})
    found = permutation_importance(request.prediction_type, model, schema, x, y, seed, budget)
    return Bounded(found.values, {"importance_time": found.seconds, "importance_budget": budget})


def rows_for(width: int) -> int:
    """How many test rows importance samples for a table ``width`` columns wide."""
    return min(MAX_ROWS, max(MIN_ROWS, CELLS // max(1, width)))


def budget_for(option: bool | float, fit_seconds: float) -> float:
    """Seconds importance may take: the option's, or the fit's own time (0: skipped)."""
    if option is False:
        return 0.0
    if option is True:
        return max(fit_seconds, MIN_BUDGET)
    return float(option)


def _score(prediction_type: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if prediction_type == "regression":
        return float(skm.r2_score(truth, predicted)) if len(truth) >= 2 else 0.0
    # accuracy; for clustering, agreement with the model's own clusters
    return float(np.mean(truth == predicted))


def permutation_importance(
    prediction_type: str,
    model: Any,
    schema: FeatureSchema,
    x: np.ndarray,
    y: np.ndarray | None,
    seed: int,
    budget: float,
) -> Importance:
    """Importances within ``budget`` seconds. ``x`` is the encoded test split."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows = min(len(x), rows_for(x.shape[1]))
    if len(x) > rows:
        pick = np.sort(rng.choice(len(x), rows, replace=False))
        x = x[pick]
        y = None if y is None else y[pick]
    baseline_prediction = np.asarray(model.predict(x))
    copy_seconds = max(time.perf_counter() - started, 1e-6)
    truth = baseline_prediction if y is None else y
    baseline = _score(prediction_type, truth, baseline_prediction)
    features = list(schema.features)
    # Copies the rest of the budget pays for, as the first (unstacked) prediction costs:
    # a cautious guess, as stacked copies cost less each.
    affordable = int(max(0.0, budget - (time.perf_counter() - started)) / copy_seconds)
    repeats = REPEATS if affordable >= REPEATS * len(features) else 1
    # A seeded random order: when the budget ends first, the covered features are a sample.
    order = [features[i] for i in rng.permutation(len(features))]
    offsets = {}
    start = 0
    for feature in features:
        offsets[feature.name] = slice(start, start + feature.width())
        start += feature.width()
    shuffles = [
        (feature.name, offsets[feature.name], rng.permutation(len(x)))
        for feature in order
        for _ in range(repeats)
    ]
    drops: dict[str, list[float]] = {}
    # Many shuffled copies per predict call (most models cost more per call than per row),
    # but few enough that one call stays a small part of the budget.
    per_call = max(1, min(_CELLS_PER_CALL // max(1, x.size), max(1, affordable // 8)))
    for first in range(0, len(shuffles), per_call):
        if time.perf_counter() - started > budget and drops:
            break
        chunk = shuffles[first : first + per_call]
        stacked = np.concatenate([x] * len(chunk))
        for i, (_, block, order_rows) in enumerate(chunk):
            copy = slice(i * len(x), (i + 1) * len(x))
            stacked[copy, block] = x[order_rows][:, block]
        predicted = np.asarray(model.predict(stacked))
        for i, (name, _, _) in enumerate(chunk):
            part = predicted[i * len(x) : (i + 1) * len(x)]
            drops.setdefault(name, []).append(baseline - _score(prediction_type, truth, part))
    importances = {name: float(np.mean(values)) for name, values in drops.items()}
    ranked = dict(sorted(importances.items(), key=lambda item: (-item[1], item[0])))
    if len(ranked) < len(features):
        warnings.warn(
            ImportanceCoverage(
                f"permutation importance covers {len(ranked)} of {len(features)} features "
                f"(a random sample, {repeats} repeat(s) on {len(x)} rows) within its budget "
                f"of {budget:.3g} s"
            ),
            stacklevel=2,
        )
    return Importance(ranked, len(features), len(x), repeats, time.perf_counter() - started)


def feature_importance(conn: sqlite3.Connection, experiment_name: object) -> str:
    """The deployed model's stored permutation importance, as JSON text, largest first."""
    experiment = require_experiment(conn, experiment_name)
    active = require_active_model(conn, experiment)
    stored = store.feature_importance(conn, active.model_id)
    if stored is None:
        skipped = store.importance_skipped(conn, active.model_id)
        why = (
            "it was trained with the option importance false"
            if skipped
            else "it was trained by an earlier version of sqlite-ml"
        )
        raise SqmlError(
            f"the deployed model {active.model_id} of experiment '{experiment.name}' has no "
            f"stored feature importance ({why}); retrain the experiment to compute it"
        )
    try:
        values = jsontext.loads(stored) if isinstance(stored, str) else None
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise SqmlError(
            f"the stored feature importance of model {active.model_id} is damaged; retrain"
        )
    ranked = sorted(values.items(), key=lambda item: -item[1] if _number(item[1]) else 0)
    return json.dumps(dict(ranked))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
