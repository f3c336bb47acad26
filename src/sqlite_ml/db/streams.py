"""Reading a user's rows in chunks, for streamed training: never the whole table at once.

A chunk holds each row's key (its rowid, or the value of the key column the user named)
and either a float64 block (every cell a number or NULL, read by the native reader with
no Python object per value) or the rows as Python values (anything else: TEXT
categories, text labels, numbers stored as text). The statement is stepped a chunk at a
time, so memory holds one chunk whatever the table's size. Tables are read in rowid order
(the order the in-memory reader uses) and may be read by rowid range, which is how Dask
workers each read their own partition.

With ``relations.py`` and ``readers.py`` this is the only code that builds SQL from
user-supplied names, all of them quoted by ``names.quote_identifier``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SqmlError, shorten
from ..names import quote_identifier
from ..sqlite import native
from .relations import Relation, has_rowid

# A float64 holds every integer key up to this exactly.
_EXACT_KEYS = 2.0**53


@dataclass
class Chunk:
    """Rows of one read: ``keys`` and either ``block`` (float64, one column per selected
    column, NULL as NaN) or ``rows`` (Python values, the selected columns in order)."""

    keys: np.ndarray
    block: np.ndarray | None = None
    rows: list[tuple[object, ...]] | None = None

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class Profile:
    """What one scan tells about the rows with a target, before any chunk is read."""

    rows: int
    text_columns: frozenset[str]
    blob_columns: frozenset[str]
    target_has_text: bool
    rowid_bounds: tuple[int, int] | None  # (min, max) rowid; None: not a rowid table


def _read_error(relation: Relation, error: Exception) -> SqmlError:
    return SqmlError(f"cannot read dataset '{shorten(relation.name)}': {error}")


def _with_target(relation: Relation, target: str | None) -> str:
    if target is None:
        return f" FROM {relation.quoted} WHERE 1"
    return f" FROM {relation.quoted} WHERE {quote_identifier(target)} IS NOT NULL"


def profile(
    conn: sqlite3.Connection, relation: Relation, columns: Sequence[str], target: str | None
) -> Profile:
    """Rows with a target, which columns hold TEXT or BLOBs, and the rowid bounds: one scan."""
    parts = ["count(*)"]
    for column in columns:
        quoted = quote_identifier(column)
        parts += [
            f"coalesce(max(typeof({quoted}) = 'text'), 0)",
            f"coalesce(max(typeof({quoted}) = 'blob'), 0)",
        ]
    if target is not None:
        parts.append(f"coalesce(max(typeof({quote_identifier(target)}) IN ('text', 'blob')), 0)")
    rowid = has_rowid(conn, relation)
    if rowid:
        parts += ["min(rowid)", "max(rowid)"]
    sql = f"SELECT {', '.join(parts)}{_with_target(relation, target)}"  # noqa: S608
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    flags = row[1 : 1 + 2 * len(columns)]
    text = frozenset(c for i, c in enumerate(columns) if flags[2 * i])
    blob = frozenset(c for i, c in enumerate(columns) if flags[2 * i + 1])
    at = 1 + 2 * len(columns)
    target_text = bool(row[at]) if target is not None else False
    bounds = None
    if rowid and row[-2] is not None:
        bounds = (int(row[-2]), int(row[-1]))
    return Profile(int(row[0]), text, blob, target_text, bounds)


def distinct_text(
    conn: sqlite3.Connection, relation: Relation, column: str, target: str | None
) -> Iterator[str]:
    """Every distinct TEXT value of ``column`` among the rows with a target (SQLite
    deduplicates them in its own temporary b-tree, on disk when large)."""
    quoted = quote_identifier(column)
    sql = (
        f"SELECT DISTINCT {quoted}{_with_target(relation, target)}"  # noqa: S608
        f" AND typeof({quoted}) = 'text'"
    )
    try:
        for (value,) in conn.execute(sql):
            yield value
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def value_counts(
    conn: sqlite3.Connection, relation: Relation, column: str, target: str | None
) -> Iterator[tuple[object, int]]:
    """(value, rows) for each distinct non-NULL value of ``column`` among the rows with a
    target, counted by SQLite (GROUP BY), streamed."""
    quoted = quote_identifier(column)
    sql = (
        f"SELECT {quoted}, count(*){_with_target(relation, target)}"  # noqa: S608
        f" AND {quoted} IS NOT NULL GROUP BY {quoted}"
    )
    try:
        for value, count in conn.execute(sql):
            yield value, int(count)
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def database_file(conn: sqlite3.Connection, relation: Relation) -> str:
    """The file of the database holding ``relation`` (Dask workers open it themselves)."""
    schema = "main"
    if relation.sql_name and "." in relation.sql_name:
        schema = relation.sql_name.split(".", 1)[0].strip('"').replace('""', '"')
    for _, name, path in conn.execute("PRAGMA database_list"):
        if name == schema:
            if not path:
                break
            return str(path)
    raise SqmlError(
        f"dataset '{shorten(relation.name)}' is in an in-memory or temporary database; Dask "
        "workers read the database file themselves, so it must be a file on a shared path"
    )


def open_read_only(path: str) -> sqlite3.Connection:
    """A read-only connection to a database file (a Dask worker reading its partition)."""
    from urllib.parse import quote

    return sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, check_same_thread=False)


def require_key(conn: sqlite3.Connection, relation: Relation, key_column: str | None) -> None:
    """A streamed (hashed) split needs a key per row: the rowid, or a named key column."""
    if key_column is None and not has_rowid(conn, relation):
        raise SqmlError(
            f"a hashed split needs a key for every row, and {relation.kind} "
            f"'{shorten(relation.name)}' has no rowid: name a column whose values identify "
            'the rows with option key_column (for example {"key_column": "id"})'
        )


def chunk_sql(
    conn: sqlite3.Connection,
    relation: Relation,
    columns: Sequence[str],
    target: str | None,
    key_column: str | None,
    rowid_range: tuple[int, int] | None = None,
) -> str:
    """The SELECT of streamed reading: the key first, then ``columns`` (target last when
    there is one), rows with a target, in rowid order for tables; ``rowid_range`` is
    [first, stop)."""
    selected = [*columns] if target is None else [*columns, target]
    key = "rowid" if key_column is None else quote_identifier(key_column)
    sql = f"SELECT {key}, {', '.join(quote_identifier(c) for c in selected)}"
    sql += _with_target(relation, target)
    rowid = has_rowid(conn, relation)
    if rowid_range is not None:
        if not rowid:
            raise SqmlError(
                f"{relation.kind} '{shorten(relation.name)}' has no rowid, so it cannot be "
                "read by rowid range (Dask partitions need a table)"
            )
        sql += f" AND rowid >= {int(rowid_range[0])} AND rowid < {int(rowid_range[1])}"
    if rowid:
        sql += " ORDER BY rowid"
    return sql


def read_chunks(
    conn: sqlite3.Connection,
    relation: Relation,
    columns: Sequence[str],
    target: str | None,
    key_column: str | None,
    chunk_rows: int,
    rowid_range: tuple[int, int] | None = None,
) -> Iterator[Chunk]:
    """The rows with a target, ``chunk_rows`` at a time (see the module's docstring)."""
    sql = chunk_sql(conn, relation, columns, target, key_column, rowid_range)
    width = len(columns) + (target is not None)
    try:
        reader = native.reader(conn, sql)
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    if reader is None:
        yield from _cursor_chunks(conn, relation, sql, chunk_rows)
        return
    try:
        yield from _native_chunks(reader, relation, width, chunk_rows, key_column is None)
    finally:
        reader.close()


def _native_chunks(
    reader: object, relation: Relation, width: int, chunk_rows: int, rowid_keys: bool
) -> Iterator[Chunk]:
    """Native fill: the block and (rowid) keys in C; a row holding TEXT (or a text key)
    and the rest of its chunk come as Python values."""
    try:
        while True:
            if rowid_keys:
                block = np.empty((chunk_rows, width), dtype=np.float64)
                keys = np.empty(chunk_rows, dtype=np.int64)
                filled, stopped = reader.fill(block, keys)  # type: ignore[attr-defined]
                if filled:
                    yield Chunk(keys[:filled].copy(), block[:filled].copy())
            else:  # key column: read as the block's first column, kept exact below 2^53
                block = np.empty((chunk_rows, width + 1), dtype=np.float64)
                filled, stopped = reader.fill(block)  # type: ignore[attr-defined]
                if filled:
                    keys_read = block[:filled, 0]
                    if np.isnan(keys_read).any():
                        raise SqmlError(
                            "a row key is NULL; a hashed split needs a key in every row"
                        )
                    if np.abs(keys_read).max() >= _EXACT_KEYS:
                        raise SqmlError(
                            "key column values beyond 2^53 cannot be streamed exactly; use a "
                            "key column of smaller integers or text"
                        )
                    yield Chunk(keys_read.copy(), block[:filled, 1:].copy())
            if stopped:
                rows = reader.rows(chunk_rows - filled)  # type: ignore[attr-defined]
                if rows:
                    yield _python_chunk(rows)
                continue
            if filled < chunk_rows:
                return
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def _python_chunk(rows: Sequence[Sequence[object]]) -> Chunk:
    keys = np.empty(len(rows), dtype=object)
    keys[:] = [row[0] for row in rows]
    return Chunk(keys, rows=[tuple(row[1:]) for row in rows])


def _cursor_chunks(
    conn: sqlite3.Connection, relation: Relation, sql: str, chunk_rows: int
) -> Iterator[Chunk]:
    """Without the native reader: the cursor's rows, chunk by chunk, as Python values."""
    try:
        cursor = conn.execute(sql)
        while True:
            rows = cursor.fetchmany(chunk_rows)
            if not rows:
                return
            yield _python_chunk(rows)
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
