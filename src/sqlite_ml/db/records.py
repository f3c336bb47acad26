"""Records of the ``sqml_*`` tables: the only code that reads and writes experiments, runs,
models, metrics, search trials and deployments (``schema.py`` creates the tables)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import SqmlError
from .transactions import changed_rows, now


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    prediction_type: str
    random_state: int | None
    metric: str | None = None  # None: 'score'

    @property
    def deciding_metric(self) -> str:
        return self.metric or "score"


@dataclass(frozen=True)
class ActiveModel:
    """What the active deployment of an experiment points at (the blob is read separately)."""

    deployment_id: int
    model_id: int
    digest: str | None
    score: float | None
    format: str | None  # None: written by sqlite-ml 0.1.x (a pickle we never load)
    schema_json: str | None
    # Whose model it is, read with it: the lookup refuses a model of another experiment, of
    # a run that did not succeed, or one that is missing (store integrity, issue 15).
    model_found: bool = True
    run_experiment_id: int | None = None
    run_status: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """What a run recorded about its data and split (what naming its test rows needs)."""

    id: int
    experiment_id: int
    experiment: str
    prediction_type: str
    status: str
    algorithm: str
    dataset: str
    target: str  # '' for clustering without a target
    test_size: float
    split_strategy: str
    seed: int | None
    options: str | None
    split_scheme: str | None  # None: made before split schemes were recorded
    key_column: str | None  # None: the rowid
    test_fingerprint: str | None
    model_id: int | None
    data_digest: str | None = None
    test_rows: int | None = None


def find_run(conn: sqlite3.Connection, run_id: int) -> RunRecord | None:
    row = conn.execute(
        """SELECT r.id, r.experiment_id, e.name, e.prediction_type, r.status, r.algorithm,
                  r.dataset, r.target, r.test_size, r.split_strategy, r.seed, r.options,
                  r.split_scheme, r.key_column, r.test_fingerprint,
                  (SELECT max(id) FROM sqml_models WHERE run_id = r.id), r.data_digest,
                  r.test_rows
             FROM sqml_runs AS r JOIN sqml_experiments AS e ON e.id = r.experiment_id
            WHERE r.id = ?""",
        (run_id,),
    ).fetchone()
    return RunRecord(*row) if row else None


def model_run_id(conn: sqlite3.Connection, model_id: int) -> int | None:
    row = conn.execute("SELECT run_id FROM sqml_models WHERE id = ?", (model_id,)).fetchone()
    return None if row is None else int(row[0])


def find_experiment(conn: sqlite3.Connection, name: str) -> Experiment | None:
    row = conn.execute(
        "SELECT id, name, prediction_type, random_state, metric FROM sqml_experiments"
        " WHERE name = ?",
        (name,),
    ).fetchone()
    return Experiment(*row) if row else None


def experiment_names(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM sqml_experiments ORDER BY name")]


def create_experiment(
    conn: sqlite3.Connection, name: str, prediction_type: str, random_state: int
) -> Experiment:
    stamp = now()
    cursor = conn.execute(
        "INSERT INTO sqml_experiments(created_at, updated_at, name, prediction_type, random_state)"
        " VALUES (?, ?, ?, ?, ?)",
        (stamp, stamp, name, prediction_type, random_state),
    )
    assert cursor.lastrowid is not None
    return Experiment(cursor.lastrowid, name, prediction_type, random_state)


def set_experiment_random_state(conn: sqlite3.Connection, experiment_id: int, seed: int) -> None:
    conn.execute(
        "UPDATE sqml_experiments SET random_state = ?, updated_at = ? WHERE id = ?",
        (seed, now(), experiment_id),
    )


def set_experiment_metric(conn: sqlite3.Connection, experiment_id: int, metric: str) -> None:
    conn.execute(
        "UPDATE sqml_experiments SET metric = ?, updated_at = ? WHERE id = ?",
        (metric, now(), experiment_id),
    )


def rename_experiment(conn: sqlite3.Connection, experiment_id: int, name: str) -> None:
    conn.execute(
        "UPDATE sqml_experiments SET name = ?, updated_at = ? WHERE id = ?",
        (name, now(), experiment_id),
    )


def run_experiment_id(conn: sqlite3.Connection, run_id: int) -> int | None:
    """The experiment a run belongs to; None when there is no such run."""
    row = conn.execute("SELECT experiment_id FROM sqml_runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else int(row[0])


def experiment_run_ids(conn: sqlite3.Connection, experiment_id: int) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM sqml_runs WHERE experiment_id = ? ORDER BY id", (experiment_id,)
    )
    return [int(row[0]) for row in rows]


def set_note(
    conn: sqlite3.Connection, experiment_id: int, run_id: int | None, text: str | None
) -> None:
    """The free-text note of an experiment (``run_id`` None) or of one of its runs."""
    if run_id is None:
        conn.execute(
            "UPDATE sqml_experiments SET note = ?, updated_at = ? WHERE id = ?",
            (text, now(), experiment_id),
        )
    else:
        conn.execute(
            "UPDATE sqml_runs SET note = ?, updated_at = ? WHERE id = ? AND experiment_id = ?",
            (text, now(), run_id, experiment_id),
        )


def set_tag(
    conn: sqlite3.Connection, experiment_id: int, run_id: int | None, key: str, value: str | None
) -> None:
    """Set (or, with ``value`` None, remove) a tag of an experiment or of one of its runs."""
    where = "experiment_id = ? AND coalesce(run_id, 0) = ? AND key = ?"
    owner = (experiment_id, run_id or 0, key)
    if value is None:
        conn.execute(f"DELETE FROM sqml_tags WHERE {where}", owner)  # noqa: S608
        return
    stamp = now()
    conn.execute(
        f"UPDATE sqml_tags SET value = ?, updated_at = ? WHERE {where}",  # noqa: S608
        (value, stamp, *owner),
    )
    if changed_rows(conn) == 0:
        conn.execute(
            "INSERT INTO sqml_tags(created_at, updated_at, experiment_id, run_id, key, value)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (stamp, stamp, experiment_id, run_id, key, value),
        )


def tags(conn: sqlite3.Connection, experiment_id: int, run_id: int | None) -> dict[str, str]:
    """The tags of an experiment (``run_id`` None) or of one of its runs, by key."""
    rows = conn.execute(
        "SELECT key, value FROM sqml_tags WHERE experiment_id = ? AND coalesce(run_id, 0) = ?"
        " ORDER BY key",
        (experiment_id, run_id or 0),
    )
    return {str(key): str(value) for key, value in rows}


def create_run(conn: sqlite3.Connection, experiment_id: int, fields: Mapping[str, object]) -> int:
    stamp = now()
    columns = ["created_at", "updated_at", "status", "experiment_id", *fields]
    values = [stamp, stamp, "pending", experiment_id, *fields.values()]
    cursor = conn.execute(
        f"INSERT INTO sqml_runs({', '.join(columns)}) VALUES ({', '.join('?' for _ in values)})",  # noqa: S608
        values,
    )
    conn.execute("UPDATE sqml_experiments SET updated_at = ? WHERE id = ?", (stamp, experiment_id))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def update_run(conn: sqlite3.Connection, run_id: int, fields: Mapping[str, object]) -> bool:
    """Update a run's own columns; ``fields`` keys come from our code, never from users.
    False when the run is gone (its experiment was deleted meanwhile)."""
    assignments = ", ".join(f"{column} = ?" for column in ["updated_at", *fields])
    conn.execute(
        f"UPDATE sqml_runs SET {assignments} WHERE id = ?",  # noqa: S608
        [now(), *fields.values(), run_id],
    )
    return changed_rows(conn) > 0


def insert_model(
    conn: sqlite3.Connection,
    run_id: int,
    blob: bytes,
    digest: str,
    feature_schema: str,
    library: str = "scikit-learn",
    model_format: str = "skops",
    feature_importance: str | None = None,
    serving: NativeForm | None = None,
    training_summary: str | None = None,
) -> int:
    stamp = now()
    native = serving or NativeForm(None, None, None, None)
    cursor = conn.execute(
        "INSERT INTO sqml_models(created_at, updated_at, run_id, library, data, format, digest,"
        " feature_schema, feature_importance, training_summary, native_model, native_digest,"
        " serving, serving_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            stamp,
            stamp,
            run_id,
            library,
            blob,
            model_format,
            digest,
            feature_schema,
            feature_importance,
            training_summary,
            native.blob,
            native.digest,
            native.serving,
            native.reason,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def insert_metrics(conn: sqlite3.Connection, model_id: int, metrics: Mapping[str, float]) -> None:
    stamp = now()
    conn.executemany(
        "INSERT INTO sqml_metrics(created_at, updated_at, model_id, name, value)"
        " VALUES (?, ?, ?, ?, ?)",
        [(stamp, stamp, model_id, name, value) for name, value in metrics.items()],
    )


def active_model(
    conn: sqlite3.Connection, experiment_id: int, metric: str = "score"
) -> ActiveModel | None:
    """The active deployment; its score is the model's ``metric`` row in sqml_metrics."""
    row = conn.execute(
        """SELECT d.id, d.model_id, m.digest,
                  (SELECT value FROM sqml_metrics
                    WHERE model_id = d.model_id AND name = ?
                      AND typeof(value) IN ('real', 'integer') ORDER BY id DESC LIMIT 1),
                  m.format, m.feature_schema, m.id IS NOT NULL, r.experiment_id, r.status
             FROM sqml_deployments AS d
             LEFT JOIN sqml_models AS m ON m.id = d.model_id
             LEFT JOIN sqml_runs AS r ON r.id = m.run_id
            WHERE d.experiment_id = ? AND d.active
            ORDER BY d.id DESC LIMIT 1""",
        (metric, experiment_id),
    ).fetchone()
    if row is None:
        return None
    return ActiveModel(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], row[8])


def _lacks_native_columns(error: sqlite3.OperationalError) -> bool:
    """A database of schema version 2 (opened without migrating it: read-only, or by a
    plugin) has no native form columns yet."""
    return "no such column" in str(error)


@dataclass(frozen=True)
class NativeForm:
    """What a model row records of its native form (all None before it was decided)."""

    blob: bytes | None
    digest: str | None
    serving: str | None
    reason: str | None


def native_form(conn: sqlite3.Connection, model_id: int) -> NativeForm:
    try:
        row = conn.execute(
            "SELECT native_model, native_digest, serving, serving_reason FROM sqml_models"
            " WHERE id = ?",
            (model_id,),
        ).fetchone()
    except sqlite3.OperationalError as error:
        if not _lacks_native_columns(error):
            raise
        row = None
    if row is None:
        return NativeForm(None, None, None, None)
    blob = None if row[0] is None else bytes(row[0])
    return NativeForm(blob, row[1], row[2], row[3])


def record_native_form(
    conn: sqlite3.Connection,
    model_id: int,
    blob: bytes | None,
    digest: str | None,
    serving: str,
    reason: str | None,
) -> None:
    """Record which path serves a model (and its native form); a model whose path is
    already recorded keeps it."""
    conn.execute(
        "UPDATE sqml_models SET native_model = ?, native_digest = ?, serving = ?,"
        " serving_reason = ?, updated_at = ? WHERE id = ? AND serving IS NULL",
        (blob, digest, serving, reason, now(), model_id),
    )


def model_record(conn: sqlite3.Connection, model_id: int) -> ActiveModel | None:
    """A stored model as a deployment would point at it (deployment id 0: none)."""
    row = conn.execute(
        "SELECT 0, id, digest, NULL, format, feature_schema FROM sqml_models WHERE id = ?",
        (model_id,),
    ).fetchone()
    return ActiveModel(*row) if row else None


@dataclass(frozen=True)
class Deployment:
    id: int
    model_id: int
    strategy: str | None
    restored_deployment_id: int | None
    active: bool

    @property
    def history_position(self) -> int:
        """Where this deployment stands in history: a rollback stands where the deployment
        it restored stood, so the next rollback walks on from there."""
        return self.restored_deployment_id or self.id


def deployments(conn: sqlite3.Connection, experiment_id: int) -> list[Deployment]:
    """An experiment's deployments, oldest first."""
    rows = conn.execute(
        "SELECT id, model_id, strategy, restored_deployment_id, active FROM sqml_deployments"
        " WHERE experiment_id = ? ORDER BY id",
        (experiment_id,),
    ).fetchall()
    return [Deployment(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


@dataclass(frozen=True)
class StoredModel:
    id: int
    experiment_id: int
    format: str | None
    metric_value: float | None


def experiment_models(
    conn: sqlite3.Connection, experiment_id: int, metric: str
) -> list[StoredModel]:
    """An experiment's models with their value of ``metric`` (None when not recorded)."""
    rows = conn.execute(
        """SELECT m.id, r.experiment_id, m.format,
                  (SELECT value FROM sqml_metrics
                    WHERE model_id = m.id AND name = ?
                      AND typeof(value) IN ('real', 'integer') ORDER BY id DESC LIMIT 1)
             FROM sqml_models AS m JOIN sqml_runs AS r ON r.id = m.run_id
            WHERE r.experiment_id = ? ORDER BY m.id""",
        (metric, experiment_id),
    ).fetchall()
    return [StoredModel(*row) for row in rows]


def find_model(conn: sqlite3.Connection, model_id: int) -> StoredModel | None:
    row = conn.execute(
        "SELECT m.id, r.experiment_id, m.format, NULL FROM sqml_models AS m"
        " JOIN sqml_runs AS r ON r.id = m.run_id WHERE m.id = ?",
        (model_id,),
    ).fetchone()
    return StoredModel(*row) if row else None


def feature_importance(conn: sqlite3.Connection, model_id: int) -> str | None:
    row = conn.execute(
        "SELECT feature_importance FROM sqml_models WHERE id = ?", (model_id,)
    ).fetchone()
    return None if row is None else row[0]


def importance_skipped(conn: sqlite3.Connection, model_id: int) -> bool:
    """Whether the model's run was told not to compute importance (a budget of 0)."""
    try:
        row = conn.execute(
            "SELECT r.importance_budget FROM sqml_models AS m JOIN sqml_runs AS r"
            " ON r.id = m.run_id WHERE m.id = ?",
            (model_id,),
        ).fetchone()
    except sqlite3.OperationalError:  # a database older than schema version 3
        return False
    return row is not None and row[0] == 0


def training_summary(conn: sqlite3.Connection, model_id: int) -> str | None:
    row = conn.execute(
        "SELECT training_summary FROM sqml_models WHERE id = ?", (model_id,)
    ).fetchone()
    return None if row is None or not isinstance(row[0], str) else row[0]


def insert_search_trials(
    conn: sqlite3.Connection, run_id: int, scoring: str, trials: list[dict[str, object]]
) -> None:
    stamp = now()
    conn.executemany(
        "INSERT INTO sqml_search_trials(created_at, updated_at, run_id, candidate, params,"
        " scoring, mean_score, std_score, rank, fit_time, workers)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                stamp,
                stamp,
                run_id,
                trial["candidate"],
                trial["params"],
                scoring,
                trial["mean_score"],
                trial["std_score"],
                trial["rank"],
                trial["fit_time"],
                trial.get("workers"),
            )
            for trial in trials
        ],
    )


def deploy(
    conn: sqlite3.Connection,
    experiment_id: int,
    model_id: int,
    strategy: str,
    restored_deployment_id: int | None = None,
) -> int:
    """Record a deployment and make it the experiment's only active one."""
    stamp = now()
    cursor = conn.execute(
        "INSERT INTO sqml_deployments(created_at, updated_at, experiment_id, model_id, active,"
        " strategy, restored_deployment_id) VALUES (?, ?, ?, ?, TRUE, ?, ?)",
        (stamp, stamp, experiment_id, model_id, strategy, restored_deployment_id),
    )
    deployment_id = cursor.lastrowid
    conn.execute(
        "UPDATE sqml_deployments SET active = FALSE, updated_at = ?"
        " WHERE experiment_id = ? AND active AND id != ?",
        (stamp, experiment_id, deployment_id),
    )
    assert deployment_id is not None
    return deployment_id


def model_blob(conn: sqlite3.Connection, model_id: int) -> bytes:
    """The stored bytes of a model."""
    row = conn.execute("SELECT data FROM sqml_models WHERE id = ?", (model_id,)).fetchone()
    if row is None:
        raise SqmlError(f"model {model_id} is missing from sqml_models")
    data = row[0]
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return bytes(data or b"")


@dataclass(frozen=True)
class PendingRun:
    id: int
    pid: int | None
    host: str | None
    heartbeat_at: str | None


def pending_runs(conn: sqlite3.Connection) -> list[PendingRun]:
    """Every run still marked 'pending', with what says whether its process lives."""
    rows = conn.execute(
        "SELECT id, pid, host, heartbeat_at FROM sqml_runs WHERE status = 'pending'"
    ).fetchall()
    return [PendingRun(*row) for row in rows]


def mark_interrupted(conn: sqlite3.Connection, run_id: int, error: str) -> None:
    """A pending run whose process is gone: 'interrupted', with why."""
    stamp = now()
    conn.execute(
        "UPDATE sqml_runs SET status = 'interrupted', error = ?, finished_at = ?, updated_at = ?"
        " WHERE id = ? AND status = 'pending'",
        (error, stamp, stamp, run_id),
    )


def touch_run(conn: sqlite3.Connection, run_id: int) -> None:
    """The heartbeat of a run still training."""
    conn.execute(
        "UPDATE sqml_runs SET heartbeat_at = ? WHERE id = ? AND status = 'pending'",
        (now(), run_id),
    )


def database_file(conn: sqlite3.Connection) -> str | None:
    """The file of the connection's main database (None for memory or temporary ones)."""
    for _, name, path in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(path) if path else None
    return None


@dataclass(frozen=True)
class ModelRun:
    """A stored model with its experiment and the record of the run that trained it
    (``run``: every column of its ``sqml_runs`` row, by name, so columns added by later
    schema versions are there when the database has them)."""

    model_id: int
    experiment_name: str
    prediction_type: str
    format: str | None
    digest: str | None
    schema_json: str | None
    run: dict[str, object]


def model_run(conn: sqlite3.Connection, model_id: int) -> ModelRun | None:
    cursor = conn.execute(
        "SELECT m.id, e.name, e.prediction_type, m.format, m.digest, m.feature_schema, r.*"
        " FROM sqml_models AS m JOIN sqml_runs AS r ON r.id = m.run_id"
        " JOIN sqml_experiments AS e ON e.id = r.experiment_id WHERE m.id = ?",
        (model_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    names = [column[0] for column in cursor.description]
    run = dict(zip(names[6:], row[6:], strict=True))
    return ModelRun(row[0], row[1], row[2], row[3], row[4], row[5], run)


def model_ids(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM sqml_models ORDER BY id")]
