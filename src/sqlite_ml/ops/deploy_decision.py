"""Domain: whether a new run's model replaces the experiment's active one, decided on the
same test rows, and recorded on the run (``sqml_runs.deploy_decision``) with why.

- No active model (or a 0.1.x pickle, never served): the new model is deployed.
- The active model's run tested on the very rows this run tested on (same dataset,
  target, key column, split fingerprint and data digest): their stored metrics compare.
- Otherwise the active model is scored on this run's test rows (read again by key and
  encoded with the active model's own feature schema) and that value compares. When it
  cannot be (the dataset lacks one of its columns, labels of another kind, rows without
  keys and another encoding), the active model stays, and the record says why.
- With the option ``deploy_if`` (``min_improvement``, ``confidence``, ``resamples``) both
  models are always scored on this run's test rows and a seeded paired bootstrap decides
  (``ml/bootstrap.py``): the improvement, its interval and the p-value are recorded.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..db import records as store
from ..db.readers import read_rows_by_key
from ..db.relations import Relation, require_column
from ..errors import SqmlError, shorten
from ..ml import metrics, persistence
from ..ml.bootstrap import Outputs, metric_value, paired_bootstrap
from ..ml.features import NUMERIC, FeatureSchema
from ..ml.probabilities import class_labels, gives_probabilities
from ..scoring import PROBABILITY_METRICS, better, metric_label
from .options import DeployGate
from .prediction import LoadedModel, loaded_model
from .reading import encode


@dataclass
class Candidate:
    """What the new run brings to the decision."""

    run_id: int
    prediction_type: str
    dataset: Relation
    target: str | None
    key_column: str | None
    fingerprint: str | None
    data_digest: str
    schema: FeatureSchema
    # None for a streamed run, whose test rows are not held in memory:
    x_test: np.ndarray | None  # as read and encoded with the new schema, not preprocessed
    y_test: np.ndarray | None
    test_keys: np.ndarray | None
    outputs: Outputs | None
    value: float | None  # the deciding metric on the test rows
    seed: int


@dataclass
class Decision:
    deployed: bool
    comparison: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "deployed": self.deployed,
                "comparison": self.comparison,
                "summary": self.summary,
                **self.details,
            },
            allow_nan=False,
            default=str,
        )


class NotComparable(Exception):
    """The active model cannot be scored on the new run's test rows (the reason)."""


def candidate_outputs(
    prediction_type: str, pipeline: Any, x_test: np.ndarray, metric: str
) -> Outputs:
    """The new model's per-row outputs on its test rows (probabilities only when the
    deciding metric needs them)."""
    if prediction_type == "clustering":
        return Outputs(np.empty(0))
    predictions = np.asarray(pipeline.predict(x_test))
    if metric in PROBABILITY_METRICS and gives_probabilities(pipeline):
        return Outputs(predictions, pipeline.predict_proba(x_test), class_labels(pipeline))
    return Outputs(predictions)


def decide(
    conn: sqlite3.Connection,
    experiment: store.Experiment,
    candidate: Candidate,
    automatic: bool,
    gate: DeployGate | None,
) -> Decision:
    metric = experiment.deciding_metric
    label = metric_label(experiment.prediction_type, metric)
    rows_held = None if candidate.y_test is None else len(candidate.y_test)
    base = {"metric": metric, "candidate": _finite(candidate.value), "rows": rows_held}
    if not automatic:
        return Decision(False, "none", "not deployed: option automatic_deploy is false", base)
    active = store.active_model(conn, experiment.id, metric)
    if active is None or active.format != persistence.FORMAT:
        what = "no model is deployed" if active is None else "the active model is a 0.1.x pickle"
        return Decision(True, "no active model", f"deployed: {what}", base)
    if active.run_experiment_id != experiment.id or active.run_status != "success":
        # A deployment the store's checks refuse to serve (the tables were edited).
        what = (
            f"the active deployment's model {active.model_id} is not one this experiment can serve"
        )
        return Decision(True, "no active model", f"deployed: {what}", base)
    base["active_model_id"] = active.model_id
    if candidate.value is None:
        return Decision(
            False, "none", f"kept model {active.model_id}: this run has no {label}", base
        )
    active_run = _run_of(conn, active.model_id)
    if gate is None and active.score is not None and _same_test_rows(active_run, candidate):
        base["active"] = active.score
        deployed = better(metric, candidate.value, active.score)
        verb = "beats" if deployed else "does not beat"
        summary = (
            f"{label} {_number(candidate.value)} {verb} model {active.model_id}'s "
            f"{_number(active.score)} on the same test rows (stored metrics)"
        )
        return Decision(deployed, "same test rows", _outcome(deployed, active, summary), base)
    if candidate.x_test is None or candidate.y_test is None or candidate.outputs is None:
        return _streamed(candidate, active, gate, base, label)
    try:
        loaded = loaded_model(conn, active)
        active_outputs, active_value = _score_active(conn, loaded, candidate, metric)
    except NotComparable as reason:
        base["reason"] = str(reason)
        summary = (
            f"kept model {active.model_id}: it cannot be scored on this run's test rows "
            f"({reason}), so the two are not compared"
        )
        return Decision(False, "not comparable", summary, base)
    base["active"] = _finite(active_value)
    base["active_stored"] = _finite(active.score)
    rows = f"this run's {rows_held} test rows"
    if gate is not None:
        return _gated(experiment, candidate, active, active_outputs, gate, base, rows)
    deployed = not math.isfinite(active_value) or better(metric, candidate.value, active_value)
    verb = "beats" if deployed else "does not beat"
    summary = (
        f"{label} {_number(candidate.value)} {verb} model {active.model_id}'s "
        f"{_number(active_value)}, which it scored on {rows}"
    )
    return Decision(
        deployed,
        "active model scored on this run's test rows",
        _outcome(deployed, active, summary),
        base,
    )


def _streamed(
    candidate: Candidate,
    active: store.ActiveModel,
    gate: DeployGate | None,
    base: dict[str, Any],
    label: str,
) -> Decision:
    """A streamed run keeps no test rows in memory to score the active model on: a gate
    cannot run, and without one the stored metrics compare, said so."""
    if gate is not None:
        summary = (
            f"kept model {active.model_id}: option deploy_if needs the test rows in memory, "
            "and this run was streamed"
        )
        return Decision(False, "not comparable", summary, base)
    assert candidate.value is not None
    base["active"] = _finite(active.score)
    deployed = active.score is None or better(base["metric"], candidate.value, active.score)
    summary = (
        f"{label} {_number(candidate.value)} against model {active.model_id}'s stored "
        f"{_number(active.score) if active.score is not None else 'none'} (a streamed run: "
        "the active model was not scored on its test rows, which may differ)"
    )
    return Decision(deployed, "stored metrics", _outcome(deployed, active, summary), base)


def _gated(
    experiment: store.Experiment,
    candidate: Candidate,
    active: store.ActiveModel,
    active_outputs: Outputs,
    gate: DeployGate,
    base: dict[str, Any],
    rows: str,
) -> Decision:
    metric = experiment.deciding_metric
    label = metric_label(experiment.prediction_type, metric)
    assert candidate.y_test is not None and candidate.outputs is not None
    result = paired_bootstrap(
        metric,
        candidate.prediction_type,
        candidate.y_test,
        candidate.outputs,
        active_outputs,
        min_improvement=gate.min_improvement,
        confidence=gate.confidence,
        resamples=gate.resamples,
        seed=candidate.seed,
    )
    base["gate"] = {
        "min_improvement": gate.min_improvement,
        "confidence": gate.confidence,
        "resamples": result.resamples,
        "improvement": _finite(result.improvement),
        "interval": [_finite(result.interval[0]), _finite(result.interval[1])],
        "p_value": result.p_value,
        "passed": result.passed,
    }
    verdict = "passed" if result.passed else "refused"
    comparison = "<" if result.passed else ">="
    summary = (
        f"gate {verdict}: {label} improvement {_signed(result.improvement)} over model "
        f"{active.model_id} on {rows}, {round(gate.confidence * 100, 4):g}% interval "
        f"[{_signed(result.interval[0])}, {_signed(result.interval[1])}], p-value "
        f"{result.p_value:.4g} {comparison} {1 - gate.confidence:.4g} for an improvement "
        f"above {gate.min_improvement:g}"
    )
    return Decision(
        result.passed,
        "paired bootstrap on this run's test rows",
        _outcome(result.passed, active, summary),
        base,
    )


def _outcome(deployed: bool, active: store.ActiveModel, summary: str) -> str:
    return f"deployed: {summary}" if deployed else f"kept model {active.model_id}: {summary}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _number(value: float) -> str:
    return f"{value:.4f}"


def _signed(value: float) -> str:
    return f"{value:+.4f}" if math.isfinite(value) else "n/a"


def _run_of(conn: sqlite3.Connection, model_id: int) -> store.RunRecord | None:
    run_id = store.model_run_id(conn, model_id)
    return None if run_id is None else store.find_run(conn, run_id)


def _same_test_rows(run: store.RunRecord | None, candidate: Candidate) -> bool:
    """Whether the active model's run tested on exactly the candidate's test rows, with
    the same values: same dataset and target, same keys (fingerprint), same data."""
    return (
        run is not None
        and candidate.fingerprint is not None
        and run.test_fingerprint == candidate.fingerprint
        and run.dataset == candidate.dataset.name
        and (run.target or None) == candidate.target
        and run.key_column == candidate.key_column
        and run.data_digest == candidate.data_digest
    )


def _score_active(
    conn: sqlite3.Connection, loaded: LoadedModel, candidate: Candidate, metric: str
) -> tuple[Outputs, float]:
    """The active model's outputs and metric on the candidate's test rows."""
    if loaded.schema.label_kind != candidate.schema.label_kind:
        raise NotComparable(
            f"it predicts {loaded.schema.label_kind} labels, this run's target holds "
            f"{candidate.schema.label_kind} ones"
        )
    assert candidate.y_test is not None
    matrix = _active_matrix(conn, loaded.schema, candidate)
    estimator = loaded.estimator
    if candidate.prediction_type == "clustering":
        transformed = estimator[:-1].transform(matrix)
        found = metrics.clustering_metrics(transformed, estimator[-1].predict(transformed))
        name = "silhouette" if metric == "score" else metric
        return Outputs(np.empty(0)), found.get(name, math.nan)
    predictions = np.asarray(loaded.predict(matrix), dtype=candidate.y_test.dtype)
    outputs = Outputs(predictions)
    if metric in PROBABILITY_METRICS:
        if not gives_probabilities(estimator):
            raise NotComparable(f"it gives no class probabilities, which {metric} needs")
        outputs = Outputs(predictions, estimator.predict_proba(matrix), class_labels(estimator))
    return outputs, metric_value(metric, candidate.prediction_type, candidate.y_test, outputs)


def _active_matrix(
    conn: sqlite3.Connection, schema: FeatureSchema, candidate: Candidate
) -> np.ndarray:
    """The candidate's test rows encoded for the active model."""
    assert candidate.x_test is not None
    if schema.to_json() == candidate.schema.to_json():
        return candidate.x_test  # the same encoding: the same matrix
    if candidate.test_keys is not None:
        return _read_by_key(conn, schema, candidate)
    # Rows without keys cannot be read again; numeric columns can be taken as they are.
    positions = {name: i for i, name in enumerate(candidate.schema.names)}
    usable = candidate.schema.width == len(candidate.schema.names) and all(
        feature.kind == NUMERIC for feature in [*schema.features, *candidate.schema.features]
    )
    if not usable or any(name not in positions for name in schema.names):
        raise NotComparable(
            "this run's rows have no keys to read them again by, and the active model "
            "encodes other columns or encodes them otherwise"
        )
    return candidate.x_test[:, [positions[name] for name in schema.names]]


def _read_by_key(
    conn: sqlite3.Connection, schema: FeatureSchema, candidate: Candidate
) -> np.ndarray:
    relation = candidate.dataset
    try:
        columns = [require_column(relation, name, "feature") for name in schema.names]
    except SqmlError as error:
        raise NotComparable(
            f"dataset '{shorten(relation.name)}' lacks a column it needs: {error.message}"
        ) from None
    assert candidate.test_keys is not None
    keys = candidate.test_keys.tolist()
    found = read_rows_by_key(conn, relation, candidate.key_column, columns, keys)
    if len(found) != len(keys):
        raise NotComparable("some test rows could not be read again by key")
    try:
        return encode(schema, [found[key] for key in keys], lambda index: "")
    except SqmlError as error:
        raise NotComparable(f"a test row does not fit its features: {error.message}") from None
