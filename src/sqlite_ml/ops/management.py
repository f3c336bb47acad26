"""Domain: managing experiments as MLflow users expect: delete one with everything it
owns, rename one, and attach tags and a free-text note to experiments and runs.

Each writes in one savepoint: all of it happens, or none. A rename is seen at once by
every connection: prediction looks deployed models up by name only after checking that
the database did not change (see ``ops/prediction.py``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..db import records as store
from ..db.ownership import delete_experiment_rows
from ..db.transactions import savepoint
from ..errors import SqmlError, describe
from .experiments import new_experiment_name, require_experiment

MAX_TAG_KEY = 250  # MLflow's limit for a tag key
MAX_TEXT = 100_000  # a note or a tag value: text for people, not data


def delete_experiment(conn: sqlite3.Connection, name: object) -> dict[str, Any]:
    """Delete the experiment and every row it owns in the ``sqml_*`` tables."""
    experiment = require_experiment(conn, name)
    with savepoint(conn):
        deleted = delete_experiment_rows(conn, experiment.id)
    return {"experiment_name": experiment.name, "deleted": deleted}


def rename_experiment(conn: sqlite3.Connection, old: object, new: object) -> dict[str, Any]:
    """Give an experiment another name; its runs, models and deployment stay as they are."""
    experiment = require_experiment(conn, old)
    name = new_experiment_name(new)
    if name != experiment.name:
        taken = store.find_experiment(conn, name)
        if taken is not None:
            raise SqmlError(
                f"cannot rename experiment '{experiment.name}' to '{name}': an experiment of "
                f"that name exists (delete it first with sqml_delete_experiment('{name}'))"
            )
        with savepoint(conn):
            store.rename_experiment(conn, experiment.id, name)
    return {"experiment_name": name, "previous_name": experiment.name}


def _run_of(conn: sqlite3.Connection, experiment: store.Experiment, run_id: object) -> int | None:
    """The run id an optional SQL argument names, checked to be a run of the experiment."""
    if run_id is None:
        return None
    if isinstance(run_id, float) and run_id.is_integer():
        run_id = int(run_id)
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise SqmlError(f"run_id must be an integer run id, got {describe(run_id)}")
    if store.run_experiment_id(conn, run_id) != experiment.id:
        runs = store.experiment_run_ids(conn, experiment.id)
        raise SqmlError(
            f"run {run_id} is not a run of experiment '{experiment.name}'; its runs: "
            f"{', '.join(map(str, runs)) or 'none yet'}"
        )
    return run_id


def _text(what: str, value: object, limit: int) -> str | None:
    """A tag value or note as TEXT (numbers as they print); None removes it."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise SqmlError(f"{what} must be text, got {describe(value)}")
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        raise SqmlError(f"{what} is {len(text)} characters long; at most {limit} are kept")
    return text


def _target(experiment: store.Experiment, run_id: int | None) -> dict[str, Any]:
    return {"experiment_name": experiment.name, "run_id": run_id}


def set_tag(
    conn: sqlite3.Connection, name: object, key: object, value: object, run_id: object = None
) -> dict[str, Any]:
    """Set a tag of the experiment (or of its run ``run_id``); NULL removes it. Answers
    every tag it then has."""
    experiment = require_experiment(conn, name)
    if not isinstance(key, str) or not key.strip():
        raise SqmlError(f"tag key must be non-empty text, got {describe(key)}")
    if len(key) > MAX_TAG_KEY:
        raise SqmlError(f"tag key is {len(key)} characters long; at most {MAX_TAG_KEY}")
    run = _run_of(conn, experiment, run_id)
    text = _text("tag value", value, MAX_TEXT)
    with savepoint(conn):
        store.set_tag(conn, experiment.id, run, key, text)
    return {**_target(experiment, run), "tags": store.tags(conn, experiment.id, run)}


def set_note(
    conn: sqlite3.Connection, name: object, text: object, run_id: object = None
) -> dict[str, Any]:
    """Set the free-text note of the experiment (or of its run ``run_id``); NULL or ''
    removes it."""
    experiment = require_experiment(conn, name)
    run = _run_of(conn, experiment, run_id)
    note = _text("note", text, MAX_TEXT) or None
    with savepoint(conn):
        store.set_note(conn, experiment.id, run, note)
    return {**_target(experiment, run), "note": note}
