"""Hyperparameter search: every candidate cross-validated on the training split, in order.

The loop is ours rather than GridSearchCV's so that each candidate reports progress and
its own record (parameters, mean and standard deviation of the fold scores, rank, fit
time) lands in ``sqml_search_trials``. Folds are not shuffled (stratified for
classification), and random search samples with the run's seed: a repeated run tries the
same candidates on the same folds and finds the same scores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
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
class CandidateFolds:
    """A candidate's fold scores and fit times, and where they ran (Dask worker names)."""

    scores: list[float]
    fit_times: list[float]
    workers: list[str] = field(default_factory=list)


# Runs every (candidate, fold) fit: (pipeline, candidates, folds, x, y, scorer, done), where
# ``done(candidate)`` is called as each candidate's last fold finishes, in any order; one
# CandidateFolds per candidate back, in order. In process: ``run_in_process``.
FoldRunner = Callable[
    [
        Pipeline,
        list[dict[str, Any]],
        list[tuple[np.ndarray, np.ndarray]],
        np.ndarray,
        "np.ndarray | None",
        Any,
        Callable[[int], None],
    ],
    list[CandidateFolds],
]


def with_params(pipeline: Pipeline, params: dict[str, Any]) -> Pipeline:
    return clone(pipeline).set_params(**{f"model__{k}": v for k, v in params.items()})


def score_folds(
    pipeline: Pipeline,
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray | None,
    folds: list[tuple[np.ndarray, np.ndarray]],
    scorer: Any,
) -> tuple[list[float], list[float]]:
    """Cross-validate one candidate on the given folds (scikit-learn's own fit-and-score),
    wherever it runs: here, or one fold per task on a Dask worker."""
    result = cross_validate(
        with_params(pipeline, params), x, y, cv=folds, scoring=scorer, error_score=np.nan
    )
    return [float(v) for v in result["test_score"]], [float(v) for v in result["fit_time"]]


def run_in_process(
    pipeline: Pipeline,
    candidates: list[dict[str, Any]],
    folds: list[tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray | None,
    scorer: Any,
    done: Callable[[int], None],
) -> list[CandidateFolds]:
    results = []
    for number, params in enumerate(candidates):
        scores, fit_times = score_folds(pipeline, params, x, y, folds, scorer)
        results.append(CandidateFolds(scores, fit_times))
        done(number)
    return results


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
    runner: FoldRunner | None = None,
) -> SearchResult:
    """Cross-validate each candidate (model parameters) on ``x``/``y``; best first by rank.
    ``runner`` runs the fits (in this process when None)."""
    if len(x) < cv:
        raise SqmlError(
            f"search_args cv is {cv} but the training split has only {len(x)} rows; "
            "use a smaller cv or more data"
        )
    splitter = StratifiedKFold(cv) if prediction_type == "classification" else KFold(cv)
    folds = [(train, test) for train, test in splitter.split(x, y)]
    scoring = SCORE_MEANS[prediction_type]
    scorer: Any = _silhouette if prediction_type == "clustering" else scoring
    finished = [0]

    def done(_: int) -> None:
        finished[0] += 1
        progress.report("search", finished[0], len(tried))

    progress.report("search", 0, len(tried))
    results = (runner or run_in_process)(pipeline, tried, folds, x, y, scorer, done)
    trials: list[dict[str, Any]] = []
    for number, (params, result) in enumerate(zip(tried, results, strict=True)):
        scores = np.asarray(result.scores, dtype=np.float64)
        finite = bool(np.isfinite(scores).all())
        trial = {
            "candidate": number + 1,
            "parameters": params,
            "params": json.dumps(params, sort_keys=True, default=str),
            "mean_score": float(scores.mean()) if finite else None,
            "std_score": float(scores.std()) if finite else None,
            "fit_time": float(np.mean(result.fit_times)),
        }
        if result.workers:
            trial["workers"] = json.dumps(sorted(set(result.workers)))
        trials.append(trial)
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
