"""Transactions for the store's writes: savepoints that nest in the caller's own, and the
timestamps every row gets."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

_savepoint_names = itertools.count(1)


def now() -> str:
    """UTC timestamp in CURRENT_TIMESTAMP's format, with milliseconds so runs order well."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def changed_rows(conn: sqlite3.Connection) -> int:
    """Rows the connection's last INSERT, UPDATE or DELETE changed (SQL's ``changes()``:
    a host's connection, such as the sqlite3 shell's, has no cursor ``rowcount``)."""
    return int(conn.execute("SELECT changes()").fetchone()[0])


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
