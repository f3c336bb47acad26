"""Which rows of the ``sqml_*`` tables belong to an experiment: the one list that
deleting an experiment walks.

A table added later whose rows hang off an experiment, a run or a model gets one line in
``EXPERIMENT_ROWS``, and ``tests/test_experiment_management.py`` fails until it has it
(it looks for every ``sqml_*`` table with an ``experiment_id``, ``run_id`` or
``model_id`` column).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .transactions import changed_rows

# The rows of an experiment (the ``?`` is its id), of its runs and of their models.
_OWNED_BY = {
    "experiment": "?",
    "run": "(SELECT id FROM sqml_runs WHERE experiment_id = ?)",
    "model": "(SELECT m.id FROM sqml_models AS m JOIN sqml_runs AS r ON r.id = m.run_id"
    " WHERE r.experiment_id = ?)",
}


@dataclass(frozen=True)
class OwnedRows:
    """The rows of ``table`` whose ``column`` holds the id of one of the experiment's
    ``owner`` rows: the experiment itself, one of its runs or one of its models."""

    table: str
    column: str
    owner: str

    def delete(self, conn: sqlite3.Connection, experiment_id: int) -> int:
        operator = "=" if self.owner == "experiment" else "IN"
        conn.execute(
            f"DELETE FROM {self.table} WHERE {self.column} {operator} {_OWNED_BY[self.owner]}",  # noqa: S608 - our own names
            (experiment_id,),
        )
        return changed_rows(conn)


# Children before their parents, so that foreign keys or triggers that forbid orphans
# accept every step. Deployments go by experiment and by model (either may point here).
EXPERIMENT_ROWS: tuple[OwnedRows, ...] = (
    OwnedRows("sqml_tags", "experiment_id", "experiment"),
    OwnedRows("sqml_tags", "run_id", "run"),
    OwnedRows("sqml_search_trials", "run_id", "run"),
    OwnedRows("sqml_deployments", "experiment_id", "experiment"),
    OwnedRows("sqml_deployments", "model_id", "model"),
    OwnedRows("sqml_metrics", "model_id", "model"),
    OwnedRows("sqml_models", "run_id", "run"),
    OwnedRows("sqml_runs", "experiment_id", "experiment"),
    OwnedRows("sqml_experiments", "id", "experiment"),
)


def delete_experiment_rows(conn: sqlite3.Connection, experiment_id: int) -> dict[str, int]:
    """Delete every row of the experiment; how many rows each table lost. The caller
    holds a savepoint, so it is all or nothing."""
    deleted: dict[str, int] = {}
    for rows in EXPERIMENT_ROWS:
        deleted[rows.table] = deleted.get(rows.table, 0) + rows.delete(conn, experiment_id)
    return deleted
