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
def savepoint(conn: sqlite3.Connection, *, lock_first: bool = True) -> Iterator[bool]:
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

    ``lock_first=False`` is for a write made by a function that any query may call
    (``sqml_embed`` recording a model's use, from a trigger's INSERT as well): outside a
    transaction it opens a savepoint, which SQLite refuses while a write statement runs
    (the write then joins that statement), where BEGIN IMMEDIATE would be accepted and
    its COMMIT then fail, and the ROLLBACK after it abort the caller's statement.
    """
    if not conn.in_transaction and lock_first:
        # In autocommit mode a write statement of the caller may be running (the sqlite3
        # shell's INSERT ... SELECT sqml_train(...)): SQLite accepts BEGIN there but then
        # refuses its COMMIT. A savepoint is refused at once in that case, so it tells.
        if not _opened(conn, "SAVEPOINT sqml_write_probe"):
            yield False
            return
        conn.execute("RELEASE sqml_write_probe")
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
