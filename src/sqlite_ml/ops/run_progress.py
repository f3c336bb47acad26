"""A running run's progress in ``sqml_runs.progress``, so that another connection (the
dashboard, ``sqml runs``, a query) sees how far a training has got while it runs.

The column holds the last report as JSON: ``{"stage": "search", "done": 7, "total": 20,
"updated_at": "..."}``. It is written in a savepoint of its own (committed at once when
the training's statement only reads), at every new stage and at most once per
``INTERVAL`` seconds within one. Progress never fails nor stalls a training: a write that
cannot get the database's lock within ``LOCK_WAIT_MS`` is skipped (the next report tries
again), and after ``MAX_FAILURES`` such writes in a row the run writes no more progress.
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..db import records as store
from ..db.transactions import now, savepoint

INTERVAL = 1.0
LOCK_WAIT_MS = 200
MAX_FAILURES = 3


class RunProgress:
    """A progress listener (``progress.listening``) that records into the run's row."""

    def __init__(self, conn: sqlite3.Connection, run_id: int, interval: float | None = None):
        self.conn = conn
        self.run_id = run_id
        self.interval = INTERVAL if interval is None else interval
        self.stage: str | None = None
        self.written = 0.0
        self.failures = 0
        self.gave_up = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        moment = time.monotonic()
        finished = total > 0 and done >= total
        if self.gave_up or (
            stage == self.stage and not finished and moment - self.written < self.interval
        ):
            return
        self.stage, self.written = stage, moment
        text = json.dumps({"stage": stage, "done": done, "total": total, "updated_at": now()})
        conn = self.conn
        (waited,) = conn.execute("PRAGMA busy_timeout").fetchone()
        conn.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
        try:
            with savepoint(conn):
                store.update_run(conn, self.run_id, {"progress": text})
            self.failures = 0
        except sqlite3.Error:  # another connection writes (a heartbeat, another trainer)
            self.failures += 1
            self.gave_up = self.failures >= MAX_FAILURES
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(waited)}")
