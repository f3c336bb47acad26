"""The schema of the ``sqml_*`` tables, and the migrations that bring any earlier one up.

The layout keeps every table and column of sqlite-ml 0.1.x, so queries and databases
written for it keep working; later versions only add columns, tables and views.
Migrations are forward-only and idempotent: ``ensure_schema`` brings a database of any
earlier version (or none) up to ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import sqlite3

from ..errors import SqmlError
from ..scoring import LOWER_IS_BETTER
from .transactions import savepoint

SCHEMA_VERSION = 3

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
# version 1 added the first ones, versions 2 and 3 those marked so.
_ADDED_COLUMNS = {
    "sqml_experiments": [
        "random_state INTEGER",
        "metric TEXT",  # 2
        "note TEXT",  # 3: issue 16 (sqml_note)
    ],
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
        "note TEXT",  # 3: issue 16 (sqml_note)
        # 3: issue 16: the stage a run has reached, as JSON, written while it trains.
        "progress TEXT",
        "pid INTEGER",  # 3: issue 15 (the training process, its host and its last sign of life)
        "host TEXT",  # 3: issue 15
        "heartbeat_at DATETIME",  # 3: issue 15
        "importance_budget REAL",  # 3: issue 15 (seconds permutation importance could take)
        "split_scheme TEXT",  # 3: issues 12 and 14: 'hash', 'stratified_hash', 'last', 'position'
        "key_column TEXT",  # 3: issues 12 and 14: the rows' key column, NULL for rowid
        "engine TEXT",  # 3: issue 12: 'memory', 'stream' or 'dask'
        "engine_details TEXT",  # 3: issue 12: JSON: chunks, epochs, sample, tasks per worker
        "dask_scheduler TEXT",  # 3: issue 12: the scheduler's address, for engine 'dask'
        "dask_workers INTEGER",  # 3: issue 12: how many workers the cluster had
        "test_fingerprint TEXT",  # 3: issue 14 (JSON: count and digest of the test keys)
        "deploy_decision TEXT",  # 3: issue 14 (JSON: what the deployment compared, and why)
    ],
    "sqml_models": [
        "format TEXT",
        "digest TEXT",
        "feature_schema TEXT",
        "feature_importance TEXT",  # 2
        "training_summary TEXT",  # 3: issue 14 (JSON: per-feature summaries for drift)
        # 3: issue 11: the native form (ml/native_format.py) and its SHA-256, and which
        # path serves the model ('native' or 'python') with the reason it is not native.
        "native_model BLOB",  # 3: issue 11
        "native_digest TEXT",  # 3: issue 11
        "serving TEXT",  # 3: issue 11
        "serving_reason TEXT",  # 3: issue 11
    ],
    "sqml_metrics": [],
    "sqml_deployments": ["strategy TEXT", "restored_deployment_id INTEGER"],  # 2: restored_...
}

# Tables added by version 2, and by version 3 those marked so.
_NEW_TABLES = {
    "sqml_search_trials": f"""CREATE TABLE IF NOT EXISTS sqml_search_trials (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        run_id INTEGER NOT NULL REFERENCES sqml_runs(id),
        candidate INTEGER NOT NULL, params TEXT NOT NULL, scoring TEXT NOT NULL,
        mean_score REAL, std_score REAL, rank INTEGER NOT NULL, fit_time REAL)""",
    # 3: issue 13. The pretrained embedding models used (never their weights): one row per
    # model name and digest (SHA-256 over its files, listed in files as JSON).
    "sqml_pretrained": f"""CREATE TABLE IF NOT EXISTS sqml_pretrained (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        name TEXT NOT NULL, backend TEXT NOT NULL, version TEXT, digest TEXT NOT NULL,
        files TEXT NOT NULL, dimension INTEGER NOT NULL, source TEXT NOT NULL,
        uses INTEGER NOT NULL DEFAULT 1, last_used_at DATETIME, UNIQUE(name, digest))""",
    # 3: issue 16: tags of experiments (run_id NULL) and of runs (sqml_tag).
    "sqml_tags": f"""CREATE TABLE IF NOT EXISTS sqml_tags (
        id INTEGER PRIMARY KEY, {_TIMESTAMPS},
        experiment_id INTEGER NOT NULL REFERENCES sqml_experiments(id),
        run_id INTEGER REFERENCES sqml_runs(id),
        key TEXT NOT NULL, value TEXT NOT NULL)""",
}

# Columns added to the tables of version 2 and later (nullable, as above).
_ADDED_TO_NEW_TABLES = {
    # 3: issue 12: JSON list of the Dask workers that ran the candidate's folds
    "sqml_search_trials": ["workers TEXT"],
}

_INDEXES = [
    "CREATE INDEX IF NOT EXISTS sqml_runs_experiment ON sqml_runs(experiment_id)",
    "CREATE INDEX IF NOT EXISTS sqml_models_run ON sqml_models(run_id)",
    "CREATE INDEX IF NOT EXISTS sqml_metrics_model ON sqml_metrics(model_id, name)",
    "CREATE INDEX IF NOT EXISTS sqml_deployments_experiment"
    " ON sqml_deployments(experiment_id, active)",
    "CREATE INDEX IF NOT EXISTS sqml_search_trials_run ON sqml_search_trials(run_id)",
    # 3: issue 16: one value per key and experiment or run.
    "CREATE UNIQUE INDEX IF NOT EXISTS sqml_tags_key"
    " ON sqml_tags(experiment_id, coalesce(run_id, 0), key)",
    "CREATE INDEX IF NOT EXISTS sqml_tags_run ON sqml_tags(run_id)",  # 3: issue 16
    # 3: issue 15: a model's deployments, for the trigger that keeps them
    "CREATE INDEX IF NOT EXISTS sqml_deployments_model ON sqml_deployments(model_id)",
    # 3: issue 15: the runs the next writer checks for a dead training process
    "CREATE INDEX IF NOT EXISTS sqml_runs_pending ON sqml_runs(status) WHERE status = 'pending'",
]

# A pending run whose heartbeat is older than this was left by a process that is gone: its
# heartbeat thread writes every HEARTBEAT_SECONDS (ops/runs.py), waits included.
HEARTBEAT_SECONDS = 10
HEARTBEAT_STALE_SECONDS = 120
_STALE = f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-{HEARTBEAT_STALE_SECONDS} seconds')"
# A run's status as the views show it: 'interrupted' for a pending run whose heartbeat
# stopped (the next writer records it; this shows it before any writer comes).
SHOWN_STATUS = (
    "CASE WHEN sqml_runs.status = 'pending' AND sqml_runs.heartbeat_at IS NOT NULL"
    f" AND sqml_runs.heartbeat_at < {_STALE} THEN 'interrupted' ELSE sqml_runs.status END"
)


# 3: issue 15: the store's integrity, kept by triggers (SQLite enforces FOREIGN KEY only
# where each connection turns it on): no row points at a parent that is not there, no
# parent leaves children behind, rows never change parents or ids, and a deployment names a
# model of its own experiment whose run succeeded.
def _refusal(name: str, when: str, message: str) -> str:
    text = message.replace("'", "''")
    return f"CREATE TRIGGER IF NOT EXISTS {name} {when} BEGIN SELECT RAISE(ABORT, '{text}'); END"


_TRIGGERS = {
    name: _refusal(name, when, message)
    for name, when, message in (
        (
            "sqml_experiments_keep_children",
            "BEFORE DELETE ON sqml_experiments WHEN EXISTS"
            " (SELECT 1 FROM sqml_runs WHERE experiment_id = OLD.id)"
            " OR EXISTS (SELECT 1 FROM sqml_deployments WHERE experiment_id = OLD.id)",
            "sqml_experiments: this experiment still has runs or deployments; delete its"
            " deployments, metrics, models, search trials and runs first",
        ),
        (
            "sqml_runs_keep_children",
            "BEFORE DELETE ON sqml_runs WHEN EXISTS"
            " (SELECT 1 FROM sqml_models WHERE run_id = OLD.id)"
            " OR EXISTS (SELECT 1 FROM sqml_search_trials WHERE run_id = OLD.id)",
            "sqml_runs: this run still has models or search trials; delete them first",
        ),
        (
            "sqml_models_keep_children",
            "BEFORE DELETE ON sqml_models WHEN EXISTS"
            " (SELECT 1 FROM sqml_metrics WHERE model_id = OLD.id)"
            " OR EXISTS (SELECT 1 FROM sqml_deployments WHERE model_id = OLD.id)",
            "sqml_models: this model still has metrics or deployments; delete them first",
        ),
        *(
            (
                f"sqml_{table}_keep_{column}",
                f"BEFORE UPDATE OF {column} ON sqml_{table} WHEN NEW.{column} IS NOT OLD.{column}",
                f"sqml_{table}: {what} never changes",
            )
            for table, column, what in (
                ("experiments", "id", "an experiment's id"),
                ("runs", "id", "a run's id"),
                ("runs", "experiment_id", "a run's experiment"),
                ("models", "id", "a model's id"),
                ("models", "run_id", "a model's run"),
                ("metrics", "model_id", "a metric's model"),
                ("search_trials", "run_id", "a search trial's run"),
            )
        ),
        *(
            (
                f"sqml_{table}_need_{parent}",
                f"BEFORE INSERT ON sqml_{table} WHEN NOT EXISTS"  # noqa: S608 - our names
                f" (SELECT 1 FROM sqml_{parent}s WHERE id = NEW.{parent}_id)",
                f"sqml_{table}: its {parent}_id names no {parent}",
            )
            for table, parent in (
                ("runs", "experiment"),
                ("models", "run"),
                ("metrics", "model"),
                ("search_trials", "run"),
            )
        ),
        *(
            (
                f"sqml_deployments_own_model_{name}",
                f"BEFORE {event} ON sqml_deployments WHEN NOT EXISTS"  # noqa: S608 - ours
                " (SELECT 1 FROM sqml_models AS m JOIN sqml_runs AS r ON r.id = m.run_id"
                " WHERE m.id = NEW.model_id AND r.experiment_id = NEW.experiment_id"
                " AND r.status = 'success')",
                "sqml_deployments: a deployment must name a model of its own experiment"
                " whose run succeeded",
            )
            for name, event in (
                ("insert", "INSERT"),
                ("update", "UPDATE OF experiment_id, model_id"),
            )
        ),
    )
}

# Same columns as 0.1.x's view; rebuilt on migration so that it reads every run.
_RUNS_OVERVIEW = f"""CREATE VIEW sqml_runs_overview AS
SELECT
    sqml_runs.id AS run_id,
    sqml_experiments.name AS experiment,
    sqml_runs.created_at AS start_time,
    {SHOWN_STATUS} AS status,
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
             WHERE sqml_models.run_id = sqml_runs.id AND sqml_deployments.active) AS deployed,
    sqml_runs.pid AS pid,
    sqml_runs.host AS host,
    sqml_runs.heartbeat_at AS heartbeat_at
FROM sqml_runs
JOIN sqml_experiments ON sqml_experiments.id = sqml_runs.experiment_id"""  # noqa: S608

# Every model with its experiment's deciding metric, best first within each experiment.
# Metrics go into JSON with 17 significant digits, so they read back as the stored REALs.
_LOWER_IS_BETTER_SQL = ", ".join(f"'{name}'" for name in LOWER_IS_BETTER)
# The leaderboard as a query: the view below, and what the reports read where a database
# opened read-only has no such view yet.
LEADERBOARD_SELECT = f"""
SELECT experiment, model_id, run_id, algorithm, metric, score, metrics, hyperparams,
       deployed, created_at,
       rank() OVER (PARTITION BY experiment_id ORDER BY score IS NULL,
           CASE WHEN metric IN ({_LOWER_IS_BETTER_SQL}) THEN score END ASC,
           CASE WHEN metric NOT IN ({_LOWER_IS_BETTER_SQL}) THEN score END DESC) AS rank,
       decision, p_value, improvement_interval
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
           m.created_at AS created_at,
           -- 3: issue 14: how the automatic deployment decided (sqml_runs.deploy_decision)
           CASE WHEN json_valid(r.deploy_decision)
                THEN json_extract(r.deploy_decision, '$.summary') END AS decision,
           CASE WHEN json_valid(r.deploy_decision)
                THEN json_extract(r.deploy_decision, '$.gate.p_value') END AS p_value,
           CASE WHEN json_valid(r.deploy_decision)
                THEN json_extract(r.deploy_decision, '$.gate.interval') END
               AS improvement_interval
      FROM sqml_models AS m
      JOIN sqml_runs AS r ON r.id = m.run_id
      JOIN sqml_experiments AS e ON e.id = r.experiment_id
)
"""  # noqa: S608

_VIEWS = {
    "sqml_runs_overview": _RUNS_OVERVIEW,
    "sqml_leaderboard": f"CREATE VIEW sqml_leaderboard AS{LEADERBOARD_SELECT}"
    "ORDER BY experiment, rank, model_id DESC",
}


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
    wanted = {*_BASE_TABLES, *_NEW_TABLES, "sqml_meta", *_VIEWS, *_TRIGGERS}
    present = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master"
            " WHERE type IN ('table', 'view', 'trigger') AND name LIKE 'sqml%'"
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
    for table, ddl in _NEW_TABLES.items():
        conn.execute(ddl)
        existing = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in _ADDED_TO_NEW_TABLES.get(table, []):
            if column.split()[0] not in existing:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    for index in _INDEXES:
        conn.execute(index)
    for view, ddl in _VIEWS.items():
        conn.execute(f"DROP VIEW IF EXISTS {view}")
        conn.execute(ddl)
    for trigger in _TRIGGERS.values():
        conn.execute(trigger)
    conn.execute(
        "INSERT INTO sqml_meta(key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )
