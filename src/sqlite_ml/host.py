"""sqlite-ml inside a host program that is not Python (the sqlite3 shell's ``.load``).

The native extension starts an interpreter there, then calls :func:`bind` with the host's
``sqlite3*`` handle. The domain code talks to that database through :class:`HostConnection`,
a small stand-in for ``sqlite3.Connection`` built on the extension's statement reader, so
training, prediction and the schema code are the same in every host.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlite_ml

from . import _native, binding, store
from .bulk import predict_table_function
from .errors import SqmlError

Row = tuple[Any, ...]


class HostCursor:
    """The part of ``sqlite3.Cursor`` the domain code uses. Like Python's, it runs the
    statement (and reads its first row) as soon as it is made."""

    def __init__(self, reader: _native.Reader | _Prefetched, lastrowid: int | None):
        self._reader = reader
        self.lastrowid = lastrowid
        names = reader.names
        self.description = (
            tuple((name, None, None, None, None, None, None) for name in names) if names else None
        )

    def fetchone(self) -> Row | None:
        rows = self._reader.rows(1)
        return tuple(rows[0]) if rows else None

    def fetchmany(self, size: int = 1) -> list[Row]:
        return [tuple(row) for row in self._reader.rows(size)]

    def fetchall(self) -> list[Row]:
        rows: list[Row] = []
        while not self._reader.done:
            rows.extend(tuple(row) for row in self._reader.rows(4096))
        return rows

    def __iter__(self) -> Iterator[Row]:
        while not self._reader.done:
            yield from (tuple(row) for row in self._reader.rows(4096))

    def close(self) -> None:
        self._reader.close()


class HostConnection:
    """The part of ``sqlite3.Connection`` the domain code uses, on a host's handle."""

    row_factory = None
    text_factory = str

    def __init__(self, handle: int):
        self.handle = handle

    def execute(self, sql: str, parameters: Iterable[Any] | dict[str, Any] = ()) -> HostCursor:
        reader = _native.Reader(self.handle, sql, parameters)
        if reader.columns == 0:  # a statement without rows runs to its end now
            reader.rows(1)
            reader.close()
            return HostCursor(reader, _native.connection_state(self.handle)["last_insert_rowid"])
        return HostCursor(_Prefetched(reader), None)

    def executemany(self, sql: str, rows: Iterable[Any]) -> None:
        for parameters in rows:
            reader = _native.Reader(self.handle, sql, parameters)
            reader.rows(1)
            reader.close()

    @property
    def in_transaction(self) -> bool:
        return bool(_native.connection_state(self.handle)["in_transaction"])

    @property
    def total_changes(self) -> int:
        return int(_native.connection_state(self.handle)["total_changes"])

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")


class _Prefetched:
    """A reader whose first row was read at once, so errors surface at execute()."""

    def __init__(self, reader: _native.Reader):
        self._reader = reader
        self._first = reader.rows(1)
        self.names = reader.names
        self.columns = reader.columns

    @property
    def done(self) -> bool:
        return not self._first and self._reader.done

    def rows(self, n: int) -> list[list[Any]]:
        first, self._first = self._first, []
        if n <= len(first):
            return first
        return first + self._reader.rows(n - len(first))

    def close(self) -> None:
        self._reader.close()


class _HostOwner:
    """``sqml_binding_mode()`` in a host: owned by SQLite, it keeps the session and its
    connection object alive exactly as long as the host's database connection."""

    def __init__(self, session: Any, conn: HostConnection):
        self.session = session
        self.conn = conn

    def __call__(self) -> str:
        return "native-host"


def _ensure_schema_unless_read_only(conn: Any) -> bool:
    """Create or migrate the schema; False (nothing written) when the database cannot be
    written (``sqlite3 -readonly``, ``?mode=ro``, ``PRAGMA query_only``), so that a
    read-only database can still be read and predicted from."""
    try:
        store.ensure_schema(conn)
    except SqmlError as error:
        if "readonly database" not in str(error.__cause__ or ""):
            raise
        return False
    return True


def bind(handle: int) -> None:
    """Create or migrate the sqml schema in the host's database and register every
    function, the table-valued one included, through the extension."""
    from .data import plain_rows
    from .functions import new_session

    conn: Any = HostConnection(handle)
    with plain_rows(conn):
        writable = _ensure_schema_unless_read_only(conn)
    session = new_session(conn)
    if not writable:  # as the plugins do: functions now, the schema on the first write
        sqlite_ml._create_schema_on_first_write(session)
    session.mode = "native-host"
    owner = _HostOwner(session, conn)
    flags = binding._function_flags((True, False))
    _native.create_function(
        handle, "sqml_binding_mode", 0, flags, owner, binding.error_reporter(session, "mode")
    )
    for name, function in session.calls.items():
        _native.create_function(
            handle,
            name,
            -1,
            binding._function_flags(session.flags.get(name, (False, False))),
            function,
            binding.error_reporter(session, name),
        )
    _native.create_predict_table(
        handle,
        "sqml_predict_table",
        predict_table_function(session, handle),
        binding.error_reporter(session, "sqml_predict_table"),
    )
