"""Store: the schema of the ``sqml_*`` tables and the only code that writes them.

The layout keeps every table and column of sqlite-ml 0.1.x, so queries and databases
written for it keep working; later versions only add columns, tables and views.
Migrations are forward-only and idempotent: ``ensure_schema`` brings a database of any
earlier version (or none) up to ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import SqmlError

SCHEMA_VERSION = 1

_TIMESTAMPS = (
    "created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, "
    "updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"
)

# The 0.1.x tables, as it created them.
_BASE_TABLES = {
    "sqml_experiments": f"""CREATE TABLE IF NOT EXISTS sqml_experiments (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        name TEXT NOT NULL, prediction_type TEXT NOT NULL, UNIQUE(name))""",
    "sqml_runs": f"""CREATE TABLE IF NOT EXISTS sqml_runs (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        status TEXT NOT NULL, algorithm TEXT NOT NULL, dataset TEXT NOT NULL,
        target TEXT NOT NULL, test_size REAL NOT NULL, split_strategy TEXT NOT NULL,
        experiment_id INTEGER NOT NULL REFERENCES sqml_experiments(id))""",
    "sqml_models": f"""CREATE TABLE IF NOT EXISTS sqml_models (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        run_id INTEGER NOT NULL REFERENCES sqml_runs(id),
        library TEXT NOT NULL, data BLOB NOT NULL)""",
    "sqml_metrics": f"""CREATE TABLE IF NOT EXISTS sqml_metrics (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        model_id INTEGER NOT NULL REFERENCES sqml_models(id),
        name TEXT NOT NULL, value REAL NOT NULL)""",
    "sqml_deployments": f"""CREATE TABLE IF NOT EXISTS sqml_deployments (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        experiment_id INTEGER REFERENCES sqml_experiments(id),
        model_id INTEGER REFERENCES sqml_models(id),
        active BOOLEAN NOT NULL DEFAULT FALSE)""",
}

# Columns added by schema version 1 (all nullable, so ALTER TABLE can add them to 0.1.x data).
_ADDED_COLUMNS = {
    "sqml_experiments": ["random_state INTEGER"],
    "sqml_runs": [
        "seed INTEGER",
        "hyperparams TEXT",
        "error TEXT",
        "finished_at DATETIME",
        "fit_time REAL",
        "score_time REAL",
        "data_rows INTEGER",
        "train_rows INTEGER",
        "test_rows INTEGER",
        "data_digest TEXT",
        "feature_names TEXT",
        "feature_types TEXT",
        "library_versions TEXT",
        "warnings TEXT",
    ],
    "sqml_models": ["format TEXT", "digest TEXT", "feature_schema TEXT"],
    "sqml_metrics": [],
    "sqml_deployments": ["strategy TEXT"],
}

_INDEXES = [
    "CREATE INDEX IF NOT EXISTS sqml_runs_experiment ON sqml_runs(experiment_id)",
    "CREATE INDEX IF NOT EXISTS sqml_models_run ON sqml_models(run_id)",
    "CREATE INDEX IF NOT EXISTS sqml_metrics_model ON sqml_metrics(model_id, name)",
    "CREATE INDEX IF NOT EXISTS sqml_deployments_experiment"
    " ON sqml_deployments(experiment_id, active)",
]

# Same columns as 0.1.x's view; rebuilt on migration so that it reads every run.
_RUNS_OVERVIEW = """CREATE VIEW sqml_runs_overview AS
SELECT
    sqml_runs.id AS run_id,
    sqml_experiments.name AS experiment,
    sqml_runs.created_at AS start_time,
    sqml_runs.status AS status,
    sqml_runs.algorithm AS algorithm,
    (SELECT sqml_metrics.value FROM sqml_models
       JOIN sqml_metrics ON sqml_metrics.model_id = sqml_models.id
      WHERE sqml_models.run_id = sqml_runs.id AND sqml_metrics.name = 'score'
      ORDER BY sqml_metrics.id DESC LIMIT 1) AS score,
    sqml_runs.error AS error,
    sqml_runs.seed AS seed,
    sqml_runs.fit_time AS fit_time,
    (SELECT sqml_models.id FROM sqml_models WHERE sqml_models.run_id = sqml_runs.id
      ORDER BY sqml_models.id DESC LIMIT 1) AS model_id,
    EXISTS (SELECT 1 FROM sqml_deployments
              JOIN sqml_models ON sqml_models.id = sqml_deployments.model_id
             WHERE sqml_models.run_id = sqml_runs.id AND sqml_deployments.active) AS deployed
FROM sqml_runs
JOIN sqml_experiments ON sqml_experiments.id = sqml_runs.experiment_id"""

_savepoint_names = itertools.count(1)


def now() -> str:
    """UTC timestamp in CURRENT_TIMESTAMP's format, with milliseconds so runs order well."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[bool]:
    """All-or-nothing writes that nest inside the caller's own transaction, if any.

    Outside a transaction the outermost RELEASE commits; inside one, the caller's COMMIT
    or ROLLBACK decides, as with any other statement they run. SQLite refuses to open a
    savepoint while a write statement is running (``INSERT INTO t SELECT sqml_train(...)``);
    there our writes are part of that statement, which SQLite undoes whole if it fails.
    Yields whether the block got a savepoint of its own.
    """
    name = f"sqml_{next(_savepoint_names)}"
    try:
        conn.execute(f"SAVEPOINT {name}")
    except sqlite3.OperationalError as error:
        if "statements in progress" not in str(error):
            raise
        yield False
        return
    try:
        yield True
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def schema_version(conn: sqlite3.Connection) -> int:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqml_meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM sqml_meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise SqmlError(
            f"sqml_meta's schema_version is {row[0]!r}, not a version number; the sqlite-ml "
            "tables of this database are damaged"
        ) from None


def _schema_complete(conn: sqlite3.Connection) -> bool:
    """Every sqml table and the view exist (a table dropped by hand is made again)."""
    wanted = {*_BASE_TABLES, "sqml_meta", "sqml_runs_overview"}
    present = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name LIKE 'sqml%'"
        )
    }
    return wanted <= present


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create or migrate the sqml tables; a no-op (and no write) on an up-to-date database."""
    current = schema_version(conn)
    if current == SCHEMA_VERSION and _schema_complete(conn):
        return
    if current > SCHEMA_VERSION:
        raise SqmlError(
            f"this database uses sqlite-ml schema version {current}, newer than the "
            f"{SCHEMA_VERSION} this version understands; upgrade sqlite-ml"
        )
    try:
        with savepoint(conn):
            _create_or_migrate(conn)
    except sqlite3.OperationalError as error:
        raise SqmlError(
            f"cannot create or update sqlite-ml's tables (sqml_*) in this database: {error}"
        ) from error


def _create_or_migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS sqml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for table, ddl in _BASE_TABLES.items():
        conn.execute(ddl)
        existing = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in _ADDED_COLUMNS[table]:
            if column.split()[0] not in existing:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    for index in _INDEXES:
        conn.execute(index)
    conn.execute("DROP VIEW IF EXISTS sqml_runs_overview")
    conn.execute(_RUNS_OVERVIEW)
    conn.execute(
        "INSERT INTO sqml_meta(key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    prediction_type: str
    random_state: int | None


@dataclass(frozen=True)
class ActiveModel:
    """What the active deployment of an experiment points at (the blob is read separately)."""

    deployment_id: int
    model_id: int
    digest: str | None
    score: float | None
    format: str | None  # None: written by sqlite-ml 0.1.x (a pickle we never load)
    schema_json: str | None


def find_experiment(conn: sqlite3.Connection, name: str) -> Experiment | None:
    row = conn.execute(
        "SELECT id, name, prediction_type, random_state FROM sqml_experiments WHERE name = ?",
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


def update_run(conn: sqlite3.Connection, run_id: int, fields: Mapping[str, object]) -> None:
    """Update a run's own columns; ``fields`` keys come from our code, never from users."""
    assignments = ", ".join(f"{column} = ?" for column in ["updated_at", *fields])
    conn.execute(
        f"UPDATE sqml_runs SET {assignments} WHERE id = ?",  # noqa: S608
        [now(), *fields.values(), run_id],
    )


def insert_model(
    conn: sqlite3.Connection,
    run_id: int,
    blob: bytes,
    digest: str,
    feature_schema: str,
    library: str = "scikit-learn",
    model_format: str = "skops",
) -> int:
    stamp = now()
    cursor = conn.execute(
        "INSERT INTO sqml_models(created_at, updated_at, run_id, library, data, format, digest,"
        " feature_schema) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (stamp, stamp, run_id, library, blob, model_format, digest, feature_schema),
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


def active_model(conn: sqlite3.Connection, experiment_id: int) -> ActiveModel | None:
    """The active deployment; its score is the model's ``score`` row in sqml_metrics."""
    row = conn.execute(
        """SELECT d.id, d.model_id, m.digest,
                  (SELECT value FROM sqml_metrics
                    WHERE model_id = d.model_id AND name = 'score'
                      AND typeof(value) IN ('real', 'integer') ORDER BY id DESC LIMIT 1),
                  m.format, m.feature_schema
             FROM sqml_deployments AS d JOIN sqml_models AS m ON m.id = d.model_id
            WHERE d.experiment_id = ? AND d.active
            ORDER BY d.id DESC LIMIT 1""",
        (experiment_id,),
    ).fetchone()
    return ActiveModel(*row) if row else None


def deploy(conn: sqlite3.Connection, experiment_id: int, model_id: int, strategy: str) -> int:
    """Record a deployment and make it the experiment's only active one."""
    stamp = now()
    cursor = conn.execute(
        "INSERT INTO sqml_deployments(created_at, updated_at, experiment_id, model_id, active,"
        " strategy) VALUES (?, ?, ?, ?, TRUE, ?)",
        (stamp, stamp, experiment_id, model_id, strategy),
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
