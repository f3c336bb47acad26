"""Runs that never lie: which process trains a run, whether it still lives, and the
heartbeat that tells other processes.

A run records the process id and host that train it. While it trains, a thread of that
process writes a heartbeat every ``HEARTBEAT_SECONDS`` through a connection of its own
(a file database reached through Python's sqlite3; elsewhere, as in the sqlite3 shell,
there is no heartbeat and ``heartbeat_at`` stays NULL). A pending run is shown
``interrupted``

* by the views (``sqml_runs_overview``) once its heartbeat is older than
  ``HEARTBEAT_STALE_SECONDS``;
* by ``sqml runs`` and the dashboard at once when its process, on this host, is gone;
* and it is recorded so (status ``interrupted``, with why) by the next writer
  (``sqml_train``, ``sqml_deploy``) for either reason.

A run made before this version (no pid, no heartbeat) cannot be judged and stays as it is.
"""

from __future__ import annotations

import gc
import os
import socket
import sqlite3
import threading
import types
from datetime import datetime, timedelta, timezone

from ..db import records as store
from ..db.schema import HEARTBEAT_SECONDS, HEARTBEAT_STALE_SECONDS

INTERRUPTED = "interrupted"


def host_name() -> str:
    return socket.gethostname()


def process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` of this host lives (None where this cannot be asked)."""
    if os.name != "posix" or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:  # a zombie has ended: only its parent has not collected it yet
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _stale(heartbeat_at: str | None) -> bool:
    if not heartbeat_at:
        return False
    try:
        beat = datetime.strptime(heartbeat_at[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now - beat > timedelta(seconds=HEARTBEAT_STALE_SECONDS)


def why_interrupted(pid: int | None, host: str | None, heartbeat_at: str | None) -> str | None:
    """Why a pending run's process is known to be gone; None while it may still train."""
    if pid is not None and host == host_name() and pid != os.getpid():
        if process_alive(int(pid)) is False:
            return (
                f"interrupted: its training process (pid {pid} on {host}) ended before it finished"
            )
    if _stale(heartbeat_at):
        return (
            f"interrupted: its training process (pid {pid} on {host}) stopped its heartbeat "
            f"at {heartbeat_at} UTC"
        )
    return None


def shown_status(status: str, pid: int | None, host: str | None, heartbeat_at: str | None) -> str:
    """A run's status as a reader shows it: a pending run whose process is gone is
    'interrupted' (without writing)."""
    if status == "pending" and why_interrupted(pid, host, heartbeat_at) is not None:
        return INTERRUPTED
    return status


def sweep_interrupted(conn: sqlite3.Connection) -> None:
    """Record every pending run whose process is gone as interrupted (writers call this
    inside their own transaction)."""
    for run in store.pending_runs(conn):
        why = why_interrupted(run.pid, run.host, run.heartbeat_at)
        if why is not None:
            store.mark_interrupted(conn, run.id, why)


def process_fields(beating: bool) -> dict[str, object]:
    """What a new run records about the process that trains it."""
    return {
        "pid": os.getpid(),
        "host": host_name(),
        "heartbeat_at": store.now() if beating else None,
    }


def heartbeat_path(conn: sqlite3.Connection) -> str | None:
    """The database file a heartbeat thread can open beside ``conn`` (same SQLite library:
    a Python sqlite3 connection), None where there is none."""
    if type(conn) is not sqlite3.Connection:
        return None
    try:
        return store.database_file(conn)
    except sqlite3.Error:
        return None


class Heartbeat:
    """While a run trains, a daemon thread writes its heartbeat every HEARTBEAT_SECONDS
    through a connection of its own (errors, such as a busy database, only skip a beat)."""

    def __init__(self, path: str | None, run_id: int):
        self.path = path
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.path is not None:
            self._thread = threading.Thread(
                target=self._beat, name=f"sqml-heartbeat-{self.run_id}", daemon=True
            )
            # This thread holds its connection's SQLite mutex (it runs inside a SQL
            # function) and waits for the new thread to start. A garbage collection in the
            # new thread that finalizes a sqlite3 cursor of that connection would block on
            # the mutex while holding the GIL: a deadlock (seen under Datasette). So no
            # automatic collection runs while the thread starts. (Collecting here first,
            # where the mutex is ours, cost 80 ms a run and the test suite 2.5x its time.)
            collecting = gc.isenabled()
            gc.disable()
            try:
                self._thread.start()
            finally:
                if collecting:
                    gc.enable()
        return self

    def _beat(self) -> None:
        assert self.path is not None
        try:
            conn = sqlite3.connect(self.path, timeout=HEARTBEAT_SECONDS, isolation_level=None)
        except sqlite3.Error:
            return
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    store.touch_run(conn, self.run_id)
                except sqlite3.Error:
                    continue
        finally:
            conn.close()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: types.TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_SECONDS + 1)
