"""A host program's database as a connection: sqlite-ml inside a program that is not
Python (the sqlite3 shell's ``.load``).

The native extension starts an interpreter there and hands over the host's ``sqlite3*``
handle. The domain code talks to that database through :class:`HostConnection`, a small
stand-in for ``sqlite3.Connection`` built on the extension's statement reader, so
training, prediction and the schema code are the same in every host.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .. import _native

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
