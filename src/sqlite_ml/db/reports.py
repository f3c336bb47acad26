"""Read-only queries behind the faces' reports (the CLI's tables, the HTML report, the
Datasette dashboard): the leaderboard, experiments and their runs, a run's record.

Nothing here writes. A database opened read-only may come from an older sqlite-ml and
lack the ``sqml_leaderboard`` view: its query is then run as it is written in
``schema.py``, the one home of the leaderboard's SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .schema import LEADERBOARD_SELECT

Row = tuple[Any, ...]


def has_sqml_tables(conn: sqlite3.Connection) -> bool:
    return _exists(conn, "table", "sqml_experiments")


def _exists(conn: sqlite3.Connection, kind: str, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name)
    ).fetchone()
    return row is not None


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


_LEADERBOARD_COLUMNS = (
    "experiment, model_id, run_id, algorithm, metric, score, metrics, hyperparams, "
    "deployed, created_at, rank, decision, p_value, improvement_interval"
)


def leaderboard_rows(conn: sqlite3.Connection) -> list[Row]:
    """The leaderboard (every model, best first within each experiment): the view's rows,
    or its query where the view is missing or of another shape."""
    order = " ORDER BY experiment, rank, model_id"
    if _exists(conn, "view", "sqml_leaderboard"):
        try:
            return conn.execute(
                f"SELECT {_LEADERBOARD_COLUMNS} FROM sqml_leaderboard{order}"  # noqa: S608
            ).fetchall()
        except sqlite3.OperationalError:
            pass  # a view of another shape: run the query of this version
    query = LEADERBOARD_SELECT
    if not _has_column(conn, "sqml_experiments", "metric"):  # 0.1.x: every run by 'score'
        query = query.replace("coalesce(e.metric, 'score')", "'score'")
    if not _has_column(conn, "sqml_runs", "deploy_decision"):  # before schema version 3
        query = query.replace("r.deploy_decision", "NULL")
    return conn.execute(
        f"SELECT {_LEADERBOARD_COLUMNS} FROM ({query}){order}"  # noqa: S608
    ).fetchall()


def metrics_by_model(conn: sqlite3.Connection) -> list[Row]:
    """(model_id, name, value) of every metric, oldest first."""
    return conn.execute("SELECT model_id, name, value FROM sqml_metrics ORDER BY id").fetchall()


def experiment_names(conn: sqlite3.Connection) -> list[str]:
    return [str(row[0]) for row in conn.execute("SELECT name FROM sqml_experiments ORDER BY name")]


def prediction_types(conn: sqlite3.Connection) -> dict[str, str]:
    """Every experiment's prediction type, by name."""
    return {
        str(r[0]): str(r[1])
        for r in conn.execute("SELECT name, prediction_type FROM sqml_experiments")
    }


def experiment_row(conn: sqlite3.Connection, name: str) -> Row | None:
    """(id, prediction_type, deciding metric) of an experiment, None when there is none."""
    metric = "metric" if _has_column(conn, "sqml_experiments", "metric") else "NULL"
    return conn.execute(
        f"SELECT id, prediction_type, coalesce({metric}, 'score') FROM sqml_experiments"  # noqa: S608
        " WHERE name = ?",
        (name,),
    ).fetchone()


def run_rows(conn: sqlite3.Connection, experiment_id: int) -> list[Row]:
    """(run_id, start_time, status, algorithm, score, deployed, fit_time, error, model_id,
    pid, host, heartbeat_at) of every run of an experiment, oldest first (the last three
    NULL in a database older than schema version 3)."""
    process = (
        "r.pid, r.host, r.heartbeat_at"
        if _has_column(conn, "sqml_runs", "heartbeat_at")
        else "NULL, NULL, NULL"
    )
    return conn.execute(
        f"""SELECT o.run_id, o.start_time, o.status, o.algorithm, o.score, o.deployed,
                  o.fit_time, o.error, o.model_id, {process}
             FROM sqml_runs_overview AS o
             JOIN sqml_runs AS r ON r.id = o.run_id
            WHERE r.experiment_id = ?
            ORDER BY o.run_id""",  # noqa: S608 - two fixed column lists
        (experiment_id,),
    ).fetchall()


def run_training_data(conn: sqlite3.Connection, run_id: int) -> Sequence[Any] | None:
    """(dataset, target, feature_names JSON) a run was trained on."""
    return conn.execute(
        "SELECT dataset, target, feature_names FROM sqml_runs WHERE id = ?", (run_id,)
    ).fetchone()


# The run settings the reports show beside each run (3: issue 14 added the last four).
_RUN_SETTINGS = (
    "dataset",
    "target",
    "split_strategy",
    "test_size",
    "seed",
    "test_rows",
    "hyperparams",
    "split_scheme",
    "key_column",
    "test_fingerprint",
    "deploy_decision",
)


def run_settings(conn: sqlite3.Connection, experiment_id: int | None = None) -> list[Row]:
    """(id, then the columns of ``_RUN_SETTINGS``) of every run (of one experiment when
    given), NULL for columns an older database lacks."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(sqml_runs)")}
    selected = ", ".join(c if c in present else f"NULL AS {c}" for c in _RUN_SETTINGS)
    sql = f"SELECT id, {selected} FROM sqml_runs"  # noqa: S608
    if experiment_id is None:
        return conn.execute(sql + " ORDER BY id").fetchall()
    return conn.execute(sql + " WHERE experiment_id = ? ORDER BY id", (experiment_id,)).fetchall()


def run_experiment(conn: sqlite3.Connection, run_id: int) -> Row | None:
    """(experiment name, prediction type, deciding metric, model id) of a run."""
    metric = "e.metric" if _has_column(conn, "sqml_experiments", "metric") else "NULL"
    return conn.execute(
        f"SELECT e.name, e.prediction_type, coalesce({metric}, 'score'),"  # noqa: S608
        " (SELECT max(id) FROM sqml_models WHERE run_id = r.id)"
        " FROM sqml_runs AS r JOIN sqml_experiments AS e ON e.id = r.experiment_id"
        " WHERE r.id = ?",
        (run_id,),
    ).fetchone()
