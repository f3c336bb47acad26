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


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[bool]:
    """All-or-nothing writes that nest inside the caller's own transaction, if any.

    Outside a transaction the block is a transaction of its own that takes the write lock
    first (``BEGIN IMMEDIATE``): SQLite then waits for another writer as long as the
    connection's busy timeout allows, where a transaction that read first could only fail
    at once ("database is locked") when it came to write. Inside the caller's transaction
    it is a savepoint, and the caller's COMMIT or ROLLBACK decides; that transaction's own
    BEGIN decided when it took the write lock (BEGIN IMMEDIATE waits, a plain BEGIN may
    fail when it first writes while another connection writes).

    SQLite refuses to begin anything while a write statement is running (``INSERT INTO t
    SELECT sqml_train(...)``); there our writes are part of that statement, which SQLite
    undoes whole if it fails. Yields whether the block got a transaction or savepoint of
    its own.
    """
    if not conn.in_transaction:
        if not _opened(conn, "BEGIN IMMEDIATE"):
            yield False
            return
        try:
            yield True
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return
    name = f"sqml_{next(_savepoint_names)}"
    if not _opened(conn, f"SAVEPOINT {name}"):
        yield False
        return
    try:
        yield True
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def _opened(conn: sqlite3.Connection, statement: str) -> bool:
    """Run BEGIN or SAVEPOINT; False when a write statement running on the connection
    (the one calling us) does not allow it."""
    try:
        conn.execute(statement)
    except sqlite3.OperationalError as error:
        text = str(error)
        if "statements in progress" in text or "within a transaction" in text:
            return False
        raise
    return True
