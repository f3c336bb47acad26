"""Read-only views of the experiments for the faces (CLI, HTML report, Datasette dashboard).

The store is read through ``db/reports.py``, and the deployed model through the
``sqml_*`` SQL functions of the registered connection; nothing is written. Every score
shown is the experiment's own deciding metric (``score``, or the metric it deploys by),
labelled with what it is (``score`` of a classification is accuracy, ...).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import jsontext
from ..db import reports
from ..scoring import metric_label
from ..sqlite.rows import plain_rows
from . import runs
from .experiments import unknown_experiment


@dataclass(frozen=True)
class ModelEntry:
    """One trained model on the leaderboard (columns of the ``sqml_leaderboard`` view)."""

    experiment: str
    model_id: int
    run_id: int
    algorithm: str
    metric: str
    score: float | None
    metrics: dict[str, float]
    hyperparams: dict[str, Any]
    deployed: bool
    created_at: str
    rank: int
    decision: str | None = None  # how the automatic deployment decided, in words
    p_value: float | None = None  # of the deploy_if gate, when it decided
    improvement_interval: tuple[float | None, float | None] | None = None
    metric_label: str = ""  # what the deciding metric is ('score' of a classifier: accuracy)


@dataclass(frozen=True)
class RunEntry:
    run_id: int
    created_at: str
    status: str
    algorithm: str
    score: float | None
    deployed: bool
    fit_time: float | None
    error: str | None
    model_id: int | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    name: str
    prediction_type: str
    metric: str
    runs: list[RunEntry]

    @property
    def deployed_run(self) -> RunEntry | None:
        return next((run for run in self.runs if run.deployed), None)

    @property
    def scored_runs(self) -> list[RunEntry]:
        return [run for run in self.runs if run.score is not None]


def has_sqml_tables(conn: sqlite3.Connection) -> bool:
    with plain_rows(conn):
        return reports.has_sqml_tables(conn)


def _json_object(text: object) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = jsontext.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def leaderboard(conn: sqlite3.Connection) -> list[ModelEntry]:
    """Every model of every experiment, best first within each experiment."""
    with plain_rows(conn):
        if not reports.has_sqml_tables(conn):
            return []
        rows = reports.leaderboard_rows(conn)
        types = reports.prediction_types(conn)
        # Read from the table: SQLite's JSON functions keep only 15 significant digits.
        metrics_by_model = _metrics_by_model(conn)
    entries = []
    for row in rows:
        metrics = metrics_by_model.get(int(row[1]), {})
        entries.append(
            ModelEntry(
                experiment=str(row[0]),
                model_id=int(row[1]),
                run_id=int(row[2]),
                algorithm=str(row[3]),
                metric=str(row[4]),
                score=_number(row[5]),
                metrics=metrics,
                hyperparams=_json_object(row[7]),
                deployed=bool(row[8]),
                created_at=str(row[9]),
                rank=int(row[10]),
                decision=row[11] if isinstance(row[11], str) else None,
                p_value=_number(row[12]),
                improvement_interval=_interval(row[13]),
                metric_label=metric_label(types.get(str(row[0]), ""), str(row[4])),
            )
        )
    return entries


def _interval(text: object) -> tuple[float | None, float | None] | None:
    if not isinstance(text, str):
        return None
    try:
        value = jsontext.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or len(value) != 2:
        return None
    return _number(value[0]), _number(value[1])


def _metrics_by_model(conn: sqlite3.Connection) -> dict[int, dict[str, float]]:
    """Every model's metrics but ``score`` (the latest value of each name)."""
    found: dict[int, dict[str, float]] = {}
    for model_id, name, value in reports.metrics_by_model(conn):
        number = _number(value)
        if number is not None and name != "score":
            found.setdefault(int(model_id), {})[str(name)] = number
    return found


def experiment_names(conn: sqlite3.Connection) -> list[str]:
    with plain_rows(conn):
        if not reports.has_sqml_tables(conn):
            return []
        return reports.experiment_names(conn)


def experiment(conn: sqlite3.Connection, name: str) -> Experiment:
    """An experiment and its runs, oldest first; a clear error names the known ones."""
    with plain_rows(conn):
        row = reports.experiment_row(conn, name) if reports.has_sqml_tables(conn) else None
        if row is None:
            raise unknown_experiment(name, experiment_names(conn))
        experiment_id, prediction_type, metric = row
        metrics_by_model = _metrics_by_model(conn)
        runs = [
            _run_entry(row, metrics_by_model, str(metric))
            for row in reports.run_rows(conn, experiment_id)
        ]
    label = metric_label(str(prediction_type), str(metric))
    return Experiment(str(name), str(prediction_type), label, runs)


def _run_entry(row: Sequence[Any], metrics: dict[int, dict[str, float]], deciding: str) -> RunEntry:
    """A run; its score is the experiment's deciding metric (``score`` or the metric the
    experiment deploys by)."""
    own = metrics.get(row[8], {}) if row[8] is not None else {}
    score = _number(row[4]) if deciding == "score" else own.get(deciding)
    return RunEntry(
        run_id=int(row[0]),
        created_at=str(row[1]),
        status=runs.shown_status(str(row[2]), row[9], row[10], row[11]),
        algorithm=str(row[3]),
        score=score,
        deployed=bool(row[5]),
        fit_time=_number(row[6]),
        error=row[7],
        model_id=row[8],
        metrics=own,
    )


def experiments(conn: sqlite3.Connection) -> list[Experiment]:
    return [experiment(conn, name) for name in experiment_names(conn)]


def feature_importances(conn: sqlite3.Connection, name: str) -> list[tuple[str, float]] | None:
    """``sqml_feature_importance(experiment)`` as (feature, importance), largest first;
    None when this sqlite-ml has no such function or the model gives none."""
    try:
        with plain_rows(conn):
            (text,) = conn.execute("SELECT sqml_feature_importance(?)", (name,)).fetchone()
    except sqlite3.Error:
        return None
    try:
        value = jsontext.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("importances"), (dict, list)):
        value = value["importances"]
    pairs: list[tuple[str, float]] = []
    if isinstance(value, dict):
        items: list[Any] = list(value.items())
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        if isinstance(item, dict):
            label = item.get("feature", item.get("name"))
            number = _number(item.get("importance", item.get("value")))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            label, number = item[0], _number(item[1])
        else:
            continue
        if label is not None and number is not None:
            pairs.append((str(label), number))
    pairs.sort(key=lambda pair: -abs(pair[1]))
    return pairs or None
