"""Experiments by name: the one lookup (and the one wording of a name that is not one)
shared by prediction, deployment, evaluation, importance and the reports."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..db import records
from ..errors import SqmlError, describe, unknown


def require_experiment_name(name: object) -> str:
    """An experiment name as every function takes it: non-empty text."""
    if not isinstance(name, str) or not name.strip():
        raise SqmlError(f"experiment name must be non-empty text, got {describe(name)}")
    return name


def new_experiment_name(name: object) -> str:
    """A name a new experiment may take: non-empty text without NUL."""
    if "\x00" in require_experiment_name(name):
        raise SqmlError(f"experiment name {describe(name)} contains a NUL character")
    return str(name)


def unknown_experiment(name: object, known: Sequence[str]) -> SqmlError:
    """The error for a name that is not an experiment of the database."""
    return unknown(
        "experiment", name, known, listing="experiments in this database", empty="none yet"
    )


def require_experiment(conn: sqlite3.Connection, name: object) -> records.Experiment:
    """The experiment called ``name``; a clear error (listing the known ones) otherwise."""
    experiment_name = require_experiment_name(name)
    experiment = records.find_experiment(conn, experiment_name)
    if experiment is None:
        raise unknown_experiment(name, records.experiment_names(conn))
    return experiment


def require_active_model(
    conn: sqlite3.Connection, experiment: records.Experiment
) -> records.ActiveModel:
    """What the experiment's active deployment points at; a clear error when none."""
    active = records.active_model(conn, experiment.id)
    if active is None:
        raise SqmlError(
            f"experiment {describe(experiment.name)} has no deployed model yet; "
            "train one successfully with sqml_train first"
        )
    # The store's own triggers keep these true; a database edited without them (or whose
    # triggers were dropped) must not serve a model that is not the experiment's own.
    problem = None
    if not active.model_found:
        problem = "which is missing from sqml_models"
    elif active.run_experiment_id != experiment.id:
        problem = "which belongs to another experiment (or to no run)"
    elif active.run_status != "success":
        problem = f"whose run has status {describe(active.run_status)}, not 'success'"
    if problem is not None:
        raise SqmlError(
            f"experiment {describe(experiment.name)}'s active deployment "
            f"{active.deployment_id} points at model {active.model_id}, {problem}; the "
            "sqml_* tables were edited: deploy one of the experiment's own models "
            "(sqml_deploy) or retrain"
        )
    return active
