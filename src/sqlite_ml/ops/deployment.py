"""Domain: deploying a chosen model of an experiment (``sqml_deploy``).

Every deployment is a new row in ``sqml_deployments``; the experiment's previous active
row is switched off in the same savepoint, so history is kept and exactly one row is
active. A rollback records the history row it went back to, and the next rollback walks
on from there, so repeated rollbacks step back through earlier deployments.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..db import records as store
from ..db.transactions import savepoint
from ..errors import SqmlError, describe, unknown
from ..ml import persistence
from ..scoring import better
from . import runs
from .experiments import require_experiment

STRATEGIES = ("best_score", "most_recent", "rollback")


def _servable(model: store.StoredModel) -> bool:
    return model.format == persistence.FORMAT


# Row ids are SQLite INTEGERs: a number beyond them can name no model.
_MAX_ROW_ID = 2**63 - 1


def model_id_of(strategy: object) -> int | None:
    """An integer model id given as a number or as text of digits; None for a name."""
    if isinstance(strategy, bool):
        return None
    number: int | None = None
    if isinstance(strategy, int):
        number = strategy
    elif isinstance(strategy, float) and strategy.is_integer():
        number = int(strategy)
    elif isinstance(strategy, str) and strategy.strip().isascii() and strategy.strip().isdigit():
        number = int(strategy.strip()) if len(strategy.strip()) <= 20 else _MAX_ROW_ID + 1
    if number is not None and not 0 < number <= _MAX_ROW_ID:
        raise SqmlError(
            f"model id {describe(strategy)} is not a model id (a positive SQLite integer); "
            "give a model id of the experiment or one of "
            + ", ".join(f"'{name}'" for name in STRATEGIES)
        )
    return number


def deploy(conn: sqlite3.Connection, experiment_name: object, strategy: object) -> dict[str, Any]:
    experiment = require_experiment(conn, experiment_name)
    model_id = model_id_of(strategy)
    restored: int | None = None
    if model_id is not None:
        chosen, label = _by_id(conn, experiment, model_id), "specific"
    elif strategy == "best_score":
        chosen, label = _best(conn, experiment), "best_score"
    elif strategy == "most_recent":
        chosen, label = _most_recent(conn, experiment), "most_recent"
    elif strategy == "rollback":
        (chosen, restored), label = _rollback(conn, experiment), "rollback"
    else:
        raise unknown(
            "deployment strategy",
            strategy,
            STRATEGIES,
            hint=f" or a model id of experiment '{experiment.name}'",
        )
    with savepoint(conn):
        runs.sweep_interrupted(conn)
        store.deploy(conn, experiment.id, chosen, label, restored)
    return {"experiment_name": experiment.name, "model_id": chosen, "strategy": label}


def _by_id(conn: sqlite3.Connection, experiment: store.Experiment, model_id: int) -> int:
    model = store.find_model(conn, model_id)
    if model is None or model.experiment_id != experiment.id:
        ids = [m.id for m in store.experiment_models(conn, experiment.id, "score")]
        raise SqmlError(
            f"model {model_id} does not belong to experiment '{experiment.name}'; its models: "
            f"{', '.join(map(str, ids)) or 'none yet'}"
        )
    if not _servable(model):
        raise SqmlError(
            f"model {model_id} was stored by sqlite-ml 0.1.x as a pickle, which sqlite-ml "
            "never loads; deploy another model"
        )
    return model_id


def _candidates(conn: sqlite3.Connection, experiment: store.Experiment) -> list[store.StoredModel]:
    models = [
        m
        for m in store.experiment_models(conn, experiment.id, experiment.deciding_metric)
        if _servable(m)
    ]
    if not models:
        raise SqmlError(
            f"experiment '{experiment.name}' has no model that can be deployed yet; "
            "train one with sqml_train first"
        )
    return models


def _best(conn: sqlite3.Connection, experiment: store.Experiment) -> int:
    metric = experiment.deciding_metric
    scored = [m for m in _candidates(conn, experiment) if m.metric_value is not None]
    if not scored:
        raise SqmlError(
            f"no model of experiment '{experiment.name}' has the metric '{metric}' recorded"
        )
    best = scored[0]
    for model in scored[1:]:  # on a tie the most recent model wins
        assert model.metric_value is not None and best.metric_value is not None
        if not better(metric, best.metric_value, model.metric_value):
            best = model
    return best.id


def _most_recent(conn: sqlite3.Connection, experiment: store.Experiment) -> int:
    return _candidates(conn, experiment)[-1].id


def _rollback(conn: sqlite3.Connection, experiment: store.Experiment) -> tuple[int, int]:
    """The model of the deployment before the active one in history, and that row's
    place in history (which the new rollback row records)."""
    history = store.deployments(conn, experiment.id)
    active = [d for d in history if d.active]
    if not active:
        raise SqmlError(f"experiment '{experiment.name}' has no active deployment to roll back")
    position = active[-1].history_position
    earlier = [d for d in history if d.id < position]
    if not earlier:
        raise SqmlError(
            f"experiment '{experiment.name}' has no earlier deployment to roll back to "
            f"(model {active[-1].model_id} is the first one in its history)"
        )
    target = earlier[-1]
    model = store.find_model(conn, target.model_id)
    if model is None or not _servable(model):
        raise SqmlError(
            f"the previous deployment of experiment '{experiment.name}' is model "
            f"{target.model_id}, which cannot be served (a 0.1.x pickle or a deleted model); "
            "deploy a model id or 'best_score' instead"
        )
    return target.model_id, target.history_position
