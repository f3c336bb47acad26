"""Permutation importance per feature, computed on (a sample of) the test split at training
time and stored with the model; read back by ``sqml_feature_importance``.

A feature's importance is how much the score drops when its values are shuffled among
the rows (all the encoded columns of a one-hot or target-encoded feature move together),
averaged over a few repeats: accuracy for classification, R² for regression, and for
clustering the share of rows that change cluster. Kept cheap: ``REPEATS`` shuffles of at
most ``MAX_ROWS`` rows, seeded by the run.
"""

from __future__ import annotations

import json
import sqlite3
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
_CELLS_PER_CALL = 2_000_000  # 16 MB of float64 per stacked prediction


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
) -> dict[str, float]:
    """``{feature: importance}``, most important first. ``x`` is the encoded test split."""
    rng = np.random.default_rng(seed)
    if len(x) > MAX_ROWS:
        pick = np.sort(rng.choice(len(x), MAX_ROWS, replace=False))
        x = x[pick]
        y = None if y is None else y[pick]
    baseline_prediction = np.asarray(model.predict(x))
    truth = baseline_prediction if y is None else y
    baseline = _score(prediction_type, truth, baseline_prediction)
    shuffles: list[tuple[str, slice, np.ndarray]] = []
    start = 0
    for feature in schema.features:
        block = slice(start, start + feature.width())
        start = block.stop
        shuffles += [(feature.name, block, rng.permutation(len(x))) for _ in range(REPEATS)]
    drops: dict[str, list[float]] = {feature.name: [] for feature in schema.features}
    # Many shuffled copies per predict call: most models cost more per call than per row.
    per_call = max(1, _CELLS_PER_CALL // max(1, x.size))
    for first in range(0, len(shuffles), per_call):
        chunk = shuffles[first : first + per_call]
        stacked = np.concatenate([x] * len(chunk))
        for i, (_, block, order) in enumerate(chunk):
            rows = slice(i * len(x), (i + 1) * len(x))
            stacked[rows, block] = x[order][:, block]
        predicted = np.asarray(model.predict(stacked))
        for i, (name, _, _) in enumerate(chunk):
            part = predicted[i * len(x) : (i + 1) * len(x)]
            drops[name].append(baseline - _score(prediction_type, truth, part))
    importances = {name: float(np.mean(values)) for name, values in drops.items()}
    ranked = sorted(importances.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked)


def feature_importance(conn: sqlite3.Connection, experiment_name: object) -> str:
    """The deployed model's stored permutation importance, as JSON text, largest first."""
    experiment = require_experiment(conn, experiment_name)
    active = require_active_model(conn, experiment)
    stored = store.feature_importance(conn, active.model_id)
    if stored is None:
        raise SqmlError(
            f"the deployed model {active.model_id} of experiment '{experiment.name}' has no "
            "stored feature importance (it was trained by an earlier version of sqlite-ml); "
            "retrain the experiment to compute it"
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
