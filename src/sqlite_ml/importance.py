"""Permutation importance per feature, on (a sample of) the test split, at training time.

A feature's importance is how much the score drops when its values are shuffled among
the rows (all the encoded columns of a one-hot or target-encoded feature move together),
averaged over a few repeats: accuracy for classification, R² for regression, and for
clustering the share of rows that change cluster. Kept cheap: ``REPEATS`` shuffles of at
most ``MAX_ROWS`` rows, seeded by the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from .features import FeatureSchema

REPEATS = 3
MAX_ROWS = 1000


def _score(prediction_type: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if prediction_type == "classification":
        return float(skm.accuracy_score(truth, predicted))
    if prediction_type == "regression":
        return float(skm.r2_score(truth, predicted)) if len(truth) >= 2 else 0.0
    return float(np.mean(truth == predicted))  # clustering: agreement with the real run


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
    importances: dict[str, float] = {}
    start = 0
    for feature in schema.features:
        block = slice(start, start + feature.width())
        start = block.stop
        drops = []
        for _ in range(REPEATS):
            shuffled = x.copy()
            shuffled[:, block] = x[rng.permutation(len(x))][:, block]
            drops.append(baseline - _score(prediction_type, truth, model.predict(shuffled)))
        importances[feature.name] = float(np.mean(drops))
    ranked = sorted(importances.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked)
