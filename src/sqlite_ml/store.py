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
from .metrics import LOWER_IS_BETTER

SCHEMA_VERSION = 2

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

# Columns added since 0.1.x (all nullable, so ALTER TABLE can add them to older data):
# version 1 added the first ones, version 2 those marked so.
_ADDED_COLUMNS = {
    "sqml_experiments": ["random_state INTEGER", "metric TEXT"],  # 2: metric
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
        "options TEXT",  # 2
        "importance_time REAL",  # 2
    ],
    "sqml_models": [
        "format TEXT",
        "digest TEXT",
        "feature_schema TEXT",
        "feature_importance TEXT",  # 2
    ],
    "sqml_metrics": [],
    "sqml_deployments": ["strategy TEXT", "restored_deployment_id INTEGER"],  # 2: restored_...
}

# Tables added by version 2.
_NEW_TABLES = {
    "sqml_search_trials": f"""CREATE TABLE IF NOT EXISTS sqml_search_trials (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        run_id INTEGER NOT NULL REFERENCES sqml_runs(id),
        candidate INTEGER NOT NULL, params TEXT NOT NULL, scoring TEXT NOT NULL,
        mean_score REAL, std_score REAL, rank INTEGER NOT NULL, fit_time REAL)""",
}

_INDEXES = [
    "CREATE INDEX IF NOT EXISTS sqml_runs_experiment ON sqml_runs(experiment_id)",
    "CREATE INDEX IF NOT EXISTS sqml_models_run ON sqml_models(run_id)",
    "CREATE INDEX IF NOT EXISTS sqml_metrics_model ON sqml_metrics(model_id, name)",
    "CREATE INDEX IF NOT EXISTS sqml_deployments_experiment"
    " ON sqml_deployments(experiment_id, active)",
    "CREATE INDEX IF NOT EXISTS sqml_search_trials_run ON sqml_search_trials(run_id)",
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

# Every model with its experiment's deciding metric, best first within each experiment.
# Metrics go into JSON with 17 significant digits, so they read back as the stored REALs.
_LOWER_IS_BETTER_SQL = ", ".join(f"'{name}'" for name in LOWER_IS_BETTER)
_LEADERBOARD = f"""CREATE VIEW sqml_leaderboard AS
SELECT experiment, model_id, run_id, algorithm, metric, score, metrics, hyperparams,
       deployed, created_at,
       rank() OVER (PARTITION BY experiment_id ORDER BY score IS NULL,
           CASE WHEN metric IN ({_LOWER_IS_BETTER_SQL}) THEN score END ASC,
           CASE WHEN metric NOT IN ({_LOWER_IS_BETTER_SQL}) THEN score END DESC) AS rank
FROM (
    SELECT e.id AS experiment_id, e.name AS experiment, m.id AS model_id, r.id AS run_id,
           r.algorithm AS algorithm, coalesce(e.metric, 'score') AS metric,
           (SELECT value FROM sqml_metrics
             WHERE model_id = m.id AND name = coalesce(e.metric, 'score')
             ORDER BY id DESC LIMIT 1) AS score,
           (SELECT json_group_object(name, json(printf('%!.17g', value))) FROM sqml_metrics
             WHERE model_id = m.id AND typeof(value) IN ('real', 'integer')) AS metrics,
           r.hyperparams AS hyperparams,
           EXISTS (SELECT 1 FROM sqml_deployments AS d
                    WHERE d.model_id = m.id AND d.active) AS deployed,
           m.created_at AS created_at
      FROM sqml_models AS m
      JOIN sqml_runs AS r ON r.id = m.run_id
      JOIN sqml_experiments AS e ON e.id = r.experiment_id
)
ORDER BY experiment, rank, model_id DESC"""  # noqa: S608

_VIEWS = {"sqml_runs_overview": _RUNS_OVERVIEW, "sqml_leaderboard": _LEADERBOARD}

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
    wanted = {*_BASE_TABLES, *_NEW_TABLES, "sqml_meta", *_VIEWS}
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
    for ddl in _NEW_TABLES.values():
        conn.execute(ddl)
    for index in _INDEXES:
        conn.execute(index)
    for view, ddl in _VIEWS.items():
        conn.execute(f"DROP VIEW IF EXISTS {view}")
        conn.execute(ddl)
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
    feature_importance: str | None = None,
) -> int:
    stamp = now()
    cursor = conn.execute(
        "INSERT INTO sqml_models(created_at, updated_at, run_id, library, data, format, digest,"
        " feature_schema, feature_importance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                  m.format, m.feature_schema
             FROM sqml_deployments AS d JOIN sqml_models AS m ON m.id = d.model_id
            WHERE d.experiment_id = ? AND d.active
            ORDER BY d.id DESC LIMIT 1""",
        (metric, experiment_id),
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


def insert_search_trials(
    conn: sqlite3.Connection, run_id: int, scoring: str, trials: list[dict[str, object]]
) -> None:
    stamp = now()
    conn.executemany(
        "INSERT INTO sqml_search_trials(created_at, updated_at, run_id, candidate, params,"
        " scoring, mean_score, std_score, rank, fit_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
