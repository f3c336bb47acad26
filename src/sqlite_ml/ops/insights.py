"""Read-only views of the experiments for the faces (CLI, HTML report, Datasette dashboard).

The store is read through ``db/reports.py``, and the deployed model through the
``sqml_*`` SQL functions of the registered connection; nothing is written. Every score
shown is the experiment's own deciding metric (``score``, or the metric it deploys by),
labelled with what it is (``score`` of a classification is accuracy, ...).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..db import reports
from ..db.readers import read_rows
from ..db.relations import find_relation
from ..errors import SqmlError
from ..scoring import metric_label
from ..sqlite.rows import plain_rows
from .experiments import unknown_experiment

# Rows of the training table used to recompute a confusion matrix or residuals.
EVALUATION_ROW_LIMIT = 20_000


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


@dataclass(frozen=True)
class Evaluation:
    """How the deployed model does on rows of its training table, for a chart."""

    kind: str  # 'confusion_matrix' or 'residuals'
    source: str  # what the numbers were computed on, shown next to the chart
    labels: list[str] = field(default_factory=list)
    matrix: list[list[int]] = field(default_factory=list)
    actual: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)


def has_sqml_tables(conn: sqlite3.Connection) -> bool:
    with plain_rows(conn):
        return reports.has_sqml_tables(conn)


def _json_object(text: object) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
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
            )
        )
    return entries


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
        status=str(row[2]),
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
        value = json.loads(text) if isinstance(text, str) else None
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


def _label_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def evaluation(conn: sqlite3.Connection, info: Experiment) -> Evaluation | str:
    """The deployed model's confusion matrix (classification) or residuals (regression)
    on its training table, or a sentence saying why there is none."""
    deployed = info.deployed_run
    if deployed is None:
        return "no model of this experiment is deployed"
    with plain_rows(conn):
        row = reports.run_training_data(conn, deployed.run_id)
    if row is None:
        return "the deployed run's record is missing"
    dataset, target, feature_text = row
    if info.prediction_type == "classification":
        evaluated = _evaluate_function(conn, info.name, dataset, target)
        if evaluated is not None:
            return evaluated
    try:
        features = json.loads(feature_text) if isinstance(feature_text, str) else None
        if not isinstance(features, list) or not features:
            return "the deployed run did not record its feature names"
        return _recompute(conn, info, str(dataset), str(target), [str(f) for f in features])
    except SqmlError as error:
        return f"cannot evaluate on the training table {dataset!r}: {error.message}"
    except sqlite3.Error as error:
        return f"cannot evaluate on the training table {dataset!r}: {error}"


def _evaluate_function(
    conn: sqlite3.Connection, name: str, dataset: object, target: object
) -> Evaluation | None:
    """``sqml_evaluate(experiment, dataset, target)`` where this sqlite-ml has it."""
    try:
        with plain_rows(conn):
            (text,) = conn.execute(
                "SELECT sqml_evaluate(?, ?, ?)", (name, dataset, target)
            ).fetchone()
        result = json.loads(text)
        confusion = result["confusion_matrix"]
        labels = [_label_text(label) for label in confusion["labels"]]
        matrix = [[int(count) for count in row] for row in confusion["matrix"]]
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return None
    if len(matrix) != len(labels) or any(len(row) != len(labels) for row in matrix):
        return None
    return Evaluation(
        "confusion_matrix",
        f"sqml_evaluate on every row of the training table '{dataset}' (train and test rows)",
        labels=labels,
        matrix=matrix,
    )


def _recompute(
    conn: sqlite3.Connection, info: Experiment, dataset: str, target: str, features: list[str]
) -> Evaluation:
    """Predict the training table's labelled rows with ``sqml_predict_batch``."""
    with plain_rows(conn):
        relation = find_relation(conn, dataset)
        columns = [*features, target]
        rows = read_rows(conn, relation, columns, target, limit=EVALUATION_ROW_LIMIT + 1)
        truncated = len(rows) > EVALUATION_ROW_LIMIT
        rows = rows[:EVALUATION_ROW_LIMIT]
        batch = json.dumps(
            [dict(zip(features, row[:-1], strict=True)) for row in rows], default=_blob_text
        )
        (text,) = conn.execute("SELECT sqml_predict_batch(?, ?)", (info.name, batch)).fetchone()
    predicted = json.loads(text)
    actual = [row[-1] for row in rows]
    scope = f"the first {EVALUATION_ROW_LIMIT} labelled rows" if truncated else "every labelled row"
    source = (
        f"recomputed with the deployed model on {scope} of the training table '{dataset}' "
        "as it is now (train and test rows together)"
    )
    if info.prediction_type == "classification":
        labels = sorted(
            {_label_text(v) for v in [*actual, *predicted]}, key=lambda v: (_sort_key(v), v)
        )
        index = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for truth, guess in zip(actual, predicted, strict=True):
            matrix[index[_label_text(truth)]][index[_label_text(guess)]] += 1
        return Evaluation("confusion_matrix", source, labels=labels, matrix=matrix)
    pairs = [
        (truth, guess)
        for truth, guess in (
            (_number(_as_float(a)), _number(p)) for a, p in zip(actual, predicted, strict=True)
        )
        if truth is not None and guess is not None
    ]
    return Evaluation(
        "residuals",
        source,
        actual=[a for a, _ in pairs],
        predicted=[p for _, p in pairs],
    )


def _as_float(value: object) -> object:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _sort_key(label: str) -> tuple[int, float]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, 0.0)


def _blob_text(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"cannot send a {type(value).__name__} to sqml_predict_batch")
