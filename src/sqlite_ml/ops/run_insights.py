"""Read models for the reports about runs (beside ``insights.py``): each run's split and
hyperparameters and how its deployment was decided, a summary row per experiment, the
deployed model's evaluation on its own test rows (a seeded uniform sample when there are
many), and a side-by-side comparison of two runs, scored on the same rows. Writes
nothing."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..db import reports
from ..db.readers import read_rows_by_key
from ..db.relations import require_column
from ..errors import SqmlError
from ..ml import metrics
from ..ml.curves import curves, thinned
from ..ml.probabilities import class_labels, gives_probabilities
from ..scoring import LOWER_IS_BETTER
from ..sqlite.rows import plain_rows
from . import insights
from .held_out import HeldOutRows, held_out_rows
from .prediction import LoadedModel, model_by_id
from .reading import encode

# Test rows drawn for a chart; more are sampled uniformly (seeded by the run).
EVALUATION_ROW_LIMIT = 20_000


@dataclass(frozen=True)
class RunSettings:
    """How a run was trained and deployed, as the reports show it."""

    run_id: int
    dataset: str
    target: str
    split_strategy: str
    test_size: float | None
    seed: int | None
    test_rows: int | None
    hyperparams: dict[str, Any]
    split_scheme: str | None
    key_column: str | None
    fingerprint: str | None
    decision: dict[str, Any]

    @property
    def split_text(self) -> str:
        """'shuffle 25% by hash of rowid, seed 7' and the like."""
        share = "" if self.test_size is None else f" {self.test_size:.0%}"
        key = self.key_column or "rowid"
        how = {
            "hash": f"by hash of {key}",
            "stratified_hash": f"per class by hash of {key}",
            "last": f"last in {key} order",
            "position": "by position (no row key)",
        }.get(self.split_scheme or "", "(split not recorded)")
        seed = "" if self.seed is None else f", seed {self.seed}"
        return f"{self.split_strategy}{share} {how}{seed}"

    @property
    def decision_summary(self) -> str | None:
        summary = self.decision.get("summary")
        return summary if isinstance(summary, str) else None

    @property
    def gate(self) -> dict[str, Any] | None:
        gate = self.decision.get("gate")
        return gate if isinstance(gate, dict) else None


def run_settings(
    conn: sqlite3.Connection, experiment_name: str | None = None
) -> dict[int, RunSettings]:
    """Every run's settings by run id (of one experiment when named)."""
    with plain_rows(conn):
        if not reports.has_sqml_tables(conn):
            return {}
        experiment_id = None
        if experiment_name is not None:
            row = reports.experiment_row(conn, experiment_name)
            if row is None:
                return {}
            experiment_id = int(row[0])
        rows = reports.run_settings(conn, experiment_id)
    found = {}
    for row in rows:
        found[int(row[0])] = RunSettings(
            run_id=int(row[0]),
            dataset=str(row[1]),
            target=str(row[2]),
            split_strategy=str(row[3]),
            test_size=row[4] if isinstance(row[4], (int, float)) else None,
            seed=row[5] if isinstance(row[5], int) else None,
            test_rows=row[6] if isinstance(row[6], int) else None,
            hyperparams=insights._json_object(row[7]),
            split_scheme=row[8] if isinstance(row[8], str) else None,
            key_column=row[9] if isinstance(row[9], str) else None,
            fingerprint=row[10] if isinstance(row[10], str) else None,
            decision=insights._json_object(row[11]),
        )
    return found


@dataclass(frozen=True)
class ExperimentSummary:
    name: str
    prediction_type: str
    metric: str  # the deciding metric's label
    runs: int
    failed: int
    best: insights.RunEntry | None
    deployed: insights.RunEntry | None
    last_trained: str | None

    @property
    def direction(self) -> str:
        return "lower is better" if self.metric in LOWER_IS_BETTER else "higher is better"


def experiment_summary(info: insights.Experiment) -> ExperimentSummary:
    scored = info.scored_runs
    lower = info.metric in LOWER_IS_BETTER
    best = None
    if scored:
        best = (min if lower else max)(scored, key=lambda run: run.score or 0.0)
    return ExperimentSummary(
        info.name,
        info.prediction_type,
        info.metric,
        len(info.runs),
        sum(run.status != "success" for run in info.runs),
        best,
        info.deployed_run,
        max((run.created_at for run in info.runs), default=None),
    )


CURVE_POINTS = 400  # points drawn per curve


@dataclass(frozen=True)
class Curve:
    """One class's ROC and precision-recall curves (at most CURVE_POINTS points)."""

    label: str
    fpr: list[float]
    tpr: list[float]
    precision: list[float]
    recall: list[float]
    auc: float
    average_precision: float
    brier: float
    calibration_error: float


@dataclass(frozen=True)
class TestEvaluation:
    """A model scored on a run's test rows, for the charts."""

    kind: str  # 'confusion_matrix' or 'residuals'
    source: str  # which rows, in words
    labels: list[str] = field(default_factory=list)
    matrix: list[list[int]] = field(default_factory=list)
    actual: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)


def deployed_evaluation(
    conn: sqlite3.Connection, info: insights.Experiment
) -> TestEvaluation | str:
    """The deployed model on its run's test rows, or a sentence saying why not."""
    deployed = info.deployed_run
    if deployed is None or deployed.model_id is None:
        return "no model of this experiment is deployed"
    if info.prediction_type not in ("classification", "regression"):
        return f"a {info.prediction_type} model has no true values to compare with"
    return run_evaluation(conn, deployed.run_id, int(deployed.model_id), info.prediction_type)


def run_evaluation(
    conn: sqlite3.Connection, run_id: int, model_id: int, prediction_type: str
) -> TestEvaluation | str:
    try:
        with plain_rows(conn):
            held = held_out_rows(conn, run_id)
            keys, labels, sampled = _sample(held)
            model = model_by_id(conn, model_id)
            matrix = _matrix(conn, model, held, keys)
    except SqmlError as error:
        return f"its test rows cannot be shown: {error.message}"
    total = len(held.keys)
    scope = (
        f"a uniform random sample (seeded by the run) of {len(keys)} of the {total} test rows"
        if sampled
        else f"the {total} test rows"
    )
    source = (
        f"model {model_id} on {scope} of run {run_id} (from '{held.run.dataset}' as it is "
        "now; rows the model was not trained on)"
    )
    predicted = np.asarray(model.predict(matrix))
    if prediction_type == "regression":
        return TestEvaluation(
            "residuals",
            source,
            actual=np.asarray(labels, dtype=np.float64).tolist(),
            predicted=np.asarray(predicted, dtype=np.float64).tolist(),
        )
    names = sorted({*labels.tolist(), *predicted.tolist()}, key=_sort_key)
    index = {label: i for i, label in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    for truth, guess in zip(labels.tolist(), predicted.tolist(), strict=True):
        counts[index[truth], index[guess]] += 1
    found: list[Curve] = []
    if gives_probabilities(model.estimator):
        table = np.asarray(model.estimator.predict_proba(matrix), dtype=np.float64)
        if np.isfinite(table).all():
            for curve in curves(labels, table, class_labels(model.estimator)):
                kept = thinned(curve, CURVE_POINTS)
                found.append(
                    Curve(
                        _label_text(
                            curve.label.item() if hasattr(curve.label, "item") else curve.label
                        ),
                        curve.fpr[kept].tolist(),
                        curve.tpr[kept].tolist(),
                        curve.precision[kept].tolist(),
                        curve.recall[kept].tolist(),
                        curve.auc,
                        curve.average_precision,
                        curve.brier,
                        curve.calibration_error,
                    )
                )
    return TestEvaluation(
        "confusion_matrix",
        source,
        labels=[_label_text(label) for label in names],
        matrix=counts.tolist(),
        curves=found,
    )


def _sample(held: HeldOutRows) -> tuple[np.ndarray, np.ndarray, bool]:
    if len(held.keys) <= EVALUATION_ROW_LIMIT:
        return held.keys, held.labels, False
    rng = np.random.default_rng(held.run.seed or 0)
    pick = np.sort(rng.choice(len(held.keys), EVALUATION_ROW_LIMIT, replace=False))
    return held.keys[pick], held.labels[pick], True


def _matrix(
    conn: sqlite3.Connection, model: LoadedModel, held: HeldOutRows, keys: np.ndarray
) -> np.ndarray:
    """The rows with these keys, encoded for the model."""
    columns = [require_column(held.relation, name, "feature") for name in model.schema.names]
    values = keys.tolist()
    found = read_rows_by_key(conn, held.relation, held.run.key_column, columns, values)
    if len(found) != len(values):
        raise SqmlError(f"some test rows of run {held.run.id} could not be read by key")
    return encode(model.schema, [found[key] for key in values], lambda index: "")


def _label_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sort_key(label: object) -> tuple[int, float, str]:
    if isinstance(label, (int, float)):
        return (0, float(label), "")
    return (1, 0.0, str(label))


@dataclass(frozen=True)
class RunSide:
    run: insights.RunEntry
    experiment: str
    prediction_type: str
    metric: str  # the experiment's deciding metric's label
    settings: RunSettings | None


@dataclass(frozen=True)
class RunComparison:
    first: RunSide
    second: RunSide
    same_test_rows: bool
    # Both models scored on the first run's test rows: metric -> (first, second), or why not.
    on_first_rows: dict[str, tuple[float | None, float | None]] | str

    @property
    def metric_names(self) -> list[str]:
        names = {*self.first.run.metrics, *self.second.run.metrics}
        return sorted(names)


def _side(conn: sqlite3.Connection, run_id: int) -> RunSide:
    with plain_rows(conn):
        row = reports.run_experiment(conn, run_id) if reports.has_sqml_tables(conn) else None
    if row is None:
        raise SqmlError(f"there is no run {run_id} in this database")
    info = insights.experiment(conn, str(row[0]))
    run = next(r for r in info.runs if r.run_id == run_id)
    settings = run_settings(conn, info.name).get(run_id)
    return RunSide(run, info.name, info.prediction_type, info.metric, settings)


def compare_runs(conn: sqlite3.Connection, first_id: int, second_id: int) -> RunComparison:
    """Two runs side by side, and both models scored on the first run's test rows."""
    first, second = _side(conn, first_id), _side(conn, second_id)
    fingerprints = [
        side.settings.fingerprint if side.settings else None for side in (first, second)
    ]
    same = (
        fingerprints[0] is not None
        and fingerprints[0] == fingerprints[1]
        and (
            first.settings is not None
            and second.settings is not None
            and first.settings.dataset == second.settings.dataset
        )
    )
    return RunComparison(first, second, same, _on_first_rows(conn, first, second))


def _on_first_rows(
    conn: sqlite3.Connection, first: RunSide, second: RunSide
) -> dict[str, tuple[float | None, float | None]] | str:
    if first.prediction_type != second.prediction_type:
        return "the runs predict different kinds of things"
    if first.prediction_type not in ("classification", "regression"):
        return f"{first.prediction_type} models are not scored on rows with true values"
    if first.run.model_id is None or second.run.model_id is None:
        return "one of the runs has no model"
    try:
        with plain_rows(conn):
            held = held_out_rows(conn, first.run.run_id)
            values = []
            for side in (first, second):
                model = model_by_id(conn, int(side.run.model_id))  # type: ignore[arg-type]
                matrix = _matrix(conn, model, held, held.keys)
                values.append(_scores(first.prediction_type, model, matrix, held.labels))
    except SqmlError as error:
        return f"the runs cannot be scored on the same rows: {error.message}"
    except (ValueError, TypeError) as error:
        return f"the runs cannot be scored on the same rows: {error}"
    names = sorted({*values[0], *values[1]})
    return {name: (values[0].get(name), values[1].get(name)) for name in names}


def _scores(
    kind: str, model: LoadedModel, matrix: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    predicted = np.asarray(model.predict(matrix), dtype=labels.dtype)
    found = metrics.compute(kind, labels, predicted)
    if kind == "classification" and gives_probabilities(model.estimator):
        table = model.estimator.predict_proba(matrix)
        found.update(metrics.probability_metrics(labels, table, class_labels(model.estimator)))
    return {
        name: value for name, value in found.items() if math.isfinite(value) and name != "score"
    }
