"""Hyperparameter search: every candidate cross-validated on the training split, in order.

The loop is ours rather than GridSearchCV's so that each fold of each candidate reports
progress (a bar that moves, and ``sqml_runs.progress`` for other connections) and each
candidate's own record (parameters, mean and standard deviation of the fold scores, rank, fit
time) lands in ``sqml_search_trials``. Folds are not shuffled (stratified for
classification), and random search samples with the run's seed: a repeated run tries the
same candidates on the same folds and finds the same scores.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.model_selection import (
    KFold,
    ParameterGrid,
    ParameterSampler,
    StratifiedKFold,
    cross_validate,
)
from sklearn.pipeline import Pipeline

from ..errors import SqmlError
from ..ml import metrics
from ..scoring import SCORE_MEANS
from . import progress


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    scoring: str
    trials: list[dict[str, Any]]


def _silhouette(estimator: Pipeline, x: np.ndarray, y: Any = None) -> float:
    transformed = estimator[:-1].transform(x)
    return metrics.clustering_metrics(transformed, estimator[-1].predict(transformed))["score"]


def candidates(
    kind: str, grid: dict[str, list[Any]], n_iter: int, seed: int
) -> list[dict[str, Any]]:
    if kind == "grid":
        return list(ParameterGrid(grid))
    total = math.prod(len(values) for values in grid.values())
    return list(ParameterSampler(grid, n_iter=min(n_iter, total), random_state=seed))


def run_search(
    pipeline: Pipeline,
    prediction_type: str,
    tried: list[dict[str, Any]],
    cv: int,
    x: np.ndarray,
    y: np.ndarray | None,
) -> SearchResult:
    """Cross-validate each candidate (model parameters) on ``x``/``y``; best first by rank."""
    if len(x) < cv:
        raise SqmlError(
            f"search_args cv is {cv} but the training split has only {len(x)} rows; "
            "use a smaller cv or more data"
        )
    folds = StratifiedKFold(cv) if prediction_type == "classification" else KFold(cv)
    splits = list(folds.split(x, y))
    scoring = SCORE_MEANS[prediction_type]
    scorer: Any = _silhouette if prediction_type == "clustering" else scoring
    trials: list[dict[str, Any]] = []
    total = len(tried) * len(splits)  # progress counts folds: a slow candidate still moves
    progress.report("search", 0, total)
    for number, params in enumerate(tried):
        candidate = clone(pipeline).set_params(**{f"model__{k}": v for k, v in params.items()})
        scores, fit_times = [], []
        for fold, split in enumerate(splits):
            result = cross_validate(candidate, x, y, cv=[split], scoring=scorer, error_score=np.nan)
            scores.append(float(result["test_score"][0]))
            fit_times.append(float(result["fit_time"][0]))
            progress.report("search", number * len(splits) + fold + 1, total)
        folded = np.asarray(scores, dtype=np.float64)
        finite = bool(np.isfinite(folded).all())
        trials.append(
            {
                "candidate": number + 1,
                "parameters": params,
                "params": json.dumps(params, sort_keys=True, default=str),
                "mean_score": float(folded.mean()) if finite else None,
                "std_score": float(folded.std()) if finite else None,
                "fit_time": float(np.mean(fit_times)),
            }
        )
    means = np.array([-t["mean_score"] if t["mean_score"] is not None else np.inf for t in trials])
    for trial, rank in zip(trials, rankdata(means, method="min"), strict=True):
        trial["rank"] = int(rank)
    if all(t["mean_score"] is None for t in trials):
        raise SqmlError(
            f"every one of the {len(trials)} search candidates failed in cross-validation "
            "(check search_params against the algorithm's documentation)"
        )
    best = min(trials, key=lambda t: (t["rank"], t["candidate"]))
    return SearchResult(dict(best["parameters"]), scoring, trials)
