"""Reading a user's rows: counts, numbers straight into float64, Python values, and the
SELECT that ``sqml_predict_table`` reads; and writing a table for ``sqml_load_dataset``.

With ``relations.py`` this is the only code that builds SQL from user-supplied names, all
of them quoted by ``names.quote_identifier``.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SqmlError, choices, describe, shorten
from ..names import quote_identifier
from ..sqlite import native
from .relations import Relation, find_relation, has_rowid, require_column, rowid_expression


def _rows_with_target(relation: Relation, target: str | None) -> str:
    """The rows with a target (every row when there is none: clustering)."""
    if target is None:
        return f" FROM {relation.quoted} WHERE 1"
    return f" FROM {relation.quoted} WHERE {quote_identifier(target)} IS NOT NULL"


def _row_filter(
    conn: sqlite3.Connection,
    relation: Relation,
    target: str | None,
    order_by: str | None = None,
    key_column: str | None = None,
) -> str:
    """The rows with a target, in rowid order for tables, else in ``key_column`` order
    when given (the same order on every read), by ``order_by`` first when given."""
    keys = [quote_identifier(order_by)] if order_by is not None else []
    if has_rowid(conn, relation):
        keys.append(rowid_expression(relation))
    elif key_column is not None:
        keys.append(quote_identifier(key_column))
    order = f" ORDER BY {', '.join(keys)}" if keys else ""
    return _rows_with_target(relation, target) + order


def _read_error(relation: Relation, error: Exception) -> SqmlError:
    return SqmlError(f"cannot read dataset '{shorten(relation.name)}': {error}")


def count_rows_with_target(conn: sqlite3.Connection, relation: Relation, target: str | None) -> int:
    try:
        row = conn.execute(f"SELECT count(*){_rows_with_target(relation, target)}").fetchone()  # noqa: S608
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    return int(row[0])


def count_rows(conn: sqlite3.Connection, relation: Relation) -> int:
    """Every row of the relation, with a target or not."""
    try:
        row = conn.execute(f"SELECT count(*) FROM {relation.quoted}").fetchone()  # noqa: S608
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    return int(row[0])


def count_labels(conn: sqlite3.Connection, relation: Relation, target: str) -> tuple[int, bool]:
    """The rows with a target, and whether any of those targets is TEXT or a BLOB, in one
    scan (for classification, where text labels are kept as text)."""
    column = quote_identifier(target)
    sql = (
        f"SELECT count(*), coalesce(max(typeof({column}) IN ('text', 'blob')), 0)"  # noqa: S608
        + _rows_with_target(relation, target)
    )
    try:
        count, text = conn.execute(sql).fetchone()
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    return int(count), bool(text)


def read_numeric_matrix(
    conn: sqlite3.Connection,
    relation: Relation,
    columns: Sequence[str],
    target: str | None,
    rows: int,
    order_by: str | None = None,
    key_column: str | None = None,
) -> np.ndarray | None:
    """The rows with a target straight into float64, NULL as NaN, with numpy filling the
    array from the cursor (no per-row Python lists). None when a value is not a number
    numpy reads as one (text such as 'abc' or ''): the caller then reads Python values."""
    selected = ", ".join(quote_identifier(column) for column in columns)
    sql = f"SELECT {selected}{_row_filter(conn, relation, target, order_by, key_column)}"  # noqa: S608
    block = _read_numeric_natively(conn, relation, sql, len(columns), rows)
    if block is not None:
        return block
    try:
        cursor = conn.execute(sql)
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    try:
        # Flattened: numpy converts plain floats a quarter faster than rows into sub-arrays.
        values = itertools.chain.from_iterable(cursor)
        flat = np.fromiter(values, dtype=np.float64, count=rows * len(columns))
        return flat.reshape(rows, len(columns))
    except (TypeError, ValueError, OverflowError):
        cursor.close()
        return None
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def _read_numeric_natively(
    conn: sqlite3.Connection, relation: Relation, sql: str, width: int, rows: int
) -> np.ndarray | None:
    """The native reader's fill: C steps the statement and writes the float64 cells (NULL
    as NaN) without a Python object per value. None when the native layer is not in use or
    a cell holds TEXT or a BLOB: the caller's numpy path then applies the text rules."""
    try:
        reader = native.reader(conn, sql)
        if reader is None:
            return None
        try:
            block = np.empty((rows, width), dtype=np.float64)
            filled, stopped_at_text = reader.fill(block)
            complete = not stopped_at_text and filled == rows and not reader.rows(1)
        finally:
            reader.close()
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    return block if complete else None


@dataclass(frozen=True)
class PredictionSource:
    """What ``sqml_predict_table`` reads: ``sql`` selects the row's key first (the rowid,
    or the key column the caller named) when it has one, then the model's columns in the
    model's order."""

    sql: str
    key: str | None  # 'rowid', the key column's name, or None (a view or SELECT without one)
    what: str = "the source"  # how messages name it: "table 't'", "view 'v'", "the SELECT"

    @property
    def with_rowid(self) -> bool:
        return self.key == "rowid"


_SELECT_STATEMENT = re.compile(r"\s*(select|with|values)\b", re.IGNORECASE)


def prediction_source(
    conn: sqlite3.Connection,
    source: object,
    columns: Sequence[str],
    key_column: object = None,
    row_id_constrained: bool = False,
) -> PredictionSource:
    """A table or view name, or a SELECT statement (run as a subquery, so it can only
    read), checked to have every column the model needs (and ``key_column``, when given).
    ``row_id_constrained``: the query joins or filters on row_id, which then must be a
    key (a rowid or the key column), never a row number."""
    if not isinstance(source, str) or not source.strip():
        raise SqmlError(
            f"sqml_predict_table source must be a table or view name or a SELECT statement, "
            f"got {describe(source)}"
        )
    if _SELECT_STATEMENT.match(source):
        # A newline, so that a trailing -- comment cannot swallow the closing parenthesis.
        inner = f"({source}\n)"
        try:
            cursor = conn.execute(f"SELECT * FROM {inner} LIMIT 0")  # noqa: S608
        except sqlite3.Error as error:
            raise SqmlError(
                f"sqml_predict_table source is not a single SELECT that runs ({error}): "
                f"{shorten(source)}"
            ) from None
        available = tuple(description[0] for description in cursor.description)
        with_rowid, what = False, "the SELECT"
    else:
        try:
            relation = find_relation(conn, source)
        except SqmlError as error:
            raise SqmlError(f"sqml_predict_table source: {error.message}") from None
        inner, available = relation.quoted, relation.columns
        with_rowid = has_rowid(conn, relation)
        what = f"{relation.kind} '{shorten(relation.name)}'"
    found = Relation(name=what, kind="source", columns=available)
    selected: list[str] = []
    missing: list[str] = []
    for column in columns:
        try:
            selected.append(quote_identifier(require_column(found, column, "feature")))
        except SqmlError:
            missing.append(column)
    if missing:
        raise SqmlError(
            f"sqml_predict_table source {what} lacks the model's column(s) "
            f"{choices(missing)}; it has {choices(available) or 'no columns'}"
        )
    key: str | None = "rowid" if with_rowid else None
    first = "rowid, " if with_rowid else ""
    if key_column is not None:
        try:
            key = require_column(found, key_column, "key")
        except SqmlError:
            raise SqmlError(
                f"sqml_predict_table key column {describe(key_column)} is not a column of "
                f"{what}; it has {choices(available) or 'no columns'}"
            ) from None
        first = f"{quote_identifier(key)}, "
    elif row_id_constrained and not with_rowid:
        raise SqmlError(
            f"sqml_predict_table: {what} has no rowid, so row_id cannot be joined or "
            "filtered on (a row number would pair predictions with the wrong rows); name a "
            "key column: sqml_predict_table(experiment, source, 'key column'), and join on it"
        )
    sql = f"SELECT {first}{', '.join(selected)} FROM {inner}"  # noqa: S608
    return PredictionSource(sql, key, what)


def embedding_source(conn: sqlite3.Connection, source: object) -> str:
    """``sqml_embed_table``'s source: a SELECT of two columns, a row's integer key and its
    text, run as a subquery (so it can only read)."""
    usage = "a SELECT of two columns, a key and a text, such as 'SELECT id, body FROM docs'"
    if not isinstance(source, str) or not _SELECT_STATEMENT.match(source):
        raise SqmlError(f"sqml_embed_table source must be {usage}, got {describe(source)}")
    inner = f"({source}\n)"  # a newline: a trailing -- comment cannot swallow the ')'
    try:
        cursor = conn.execute(f"SELECT * FROM {inner} LIMIT 0")  # noqa: S608
    except sqlite3.Error as error:
        raise SqmlError(
            f"sqml_embed_table source is not a single SELECT that runs ({error}): {shorten(source)}"
        ) from None
    if len(cursor.description) != 2:
        raise SqmlError(
            f"sqml_embed_table source must be {usage}; it has {len(cursor.description)} "
            f"column(s): {shorten(source)}"
        )
    return f"SELECT * FROM {inner}"  # noqa: S608


def read_rows(
    conn: sqlite3.Connection,
    relation: Relation,
    columns: Sequence[str],
    target: str | None,
    order_by: str | None = None,
    limit: int | None = None,
    key_column: str | None = None,
) -> list[tuple[object, ...]]:
    """The rows with a non-NULL target, as Python values, in a stable order (the first
    ``limit`` of them when given)."""
    selected = ", ".join(quote_identifier(column) for column in columns)
    sql = f"SELECT {selected}{_row_filter(conn, relation, target, order_by, key_column)}"  # noqa: S608
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def read_keys(
    conn: sqlite3.Connection,
    relation: Relation,
    key_column: str | None,
    target: str | None,
    order_by: str | None = None,
) -> list[object]:
    """Each row's key (``key_column``'s value, else the rowid of a table), for the rows and
    in the order ``read_rows`` gives them."""
    if key_column is None:
        if not has_rowid(conn, relation):
            raise SqmlError(
                f"'{shorten(relation.name)}' is a {relation.kind} without a rowid; its rows "
                "have keys only through a key column"
            )
        key = "rowid"
    else:
        key = quote_identifier(require_column(relation, key_column, "key"))
    sql = f"SELECT {key}{_row_filter(conn, relation, target, order_by, key_column)}"  # noqa: S608
    try:
        return [row[0] for row in conn.execute(sql)]
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def read_keyed_targets(
    conn: sqlite3.Connection,
    relation: Relation,
    key_column: str | None,
    target: str | None,
    order_by: str | None = None,
) -> tuple[list[object], list[object]]:
    """(row keys, target values) of the rows with a target, in the order training reads
    them: a key is the rowid, or the value of ``key_column`` when given. Without a target
    (clustering) the target values are all None."""
    key = quote_identifier(key_column) if key_column is not None else rowid_expression(relation)
    selected = key if target is None else f"{key}, {quote_identifier(target)}"
    sql = f"SELECT {selected}{_row_filter(conn, relation, target, order_by, key_column)}"  # noqa: S608
    try:
        rows = conn.execute(sql).fetchall()
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    keys = [row[0] for row in rows]
    return keys, [None] * len(rows) if target is None else [row[1] for row in rows]


def read_keyed_numbers(
    conn: sqlite3.Connection,
    relation: Relation,
    key_column: str | None,
    target: str | None,
    order_by: str | None,
    rows: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``read_keyed_targets`` without a Python object per row, when every key is an
    integer and every target a number (NULL as NaN): (int64 keys, float64 targets), the
    targets zeros without a target. None otherwise (the caller reads Python values)."""
    key = quote_identifier(key_column) if key_column is not None else rowid_expression(relation)
    filtered = _row_filter(conn, relation, target, order_by, key_column)
    try:
        if key_column is not None:
            other = conn.execute(
                f"SELECT 1{_rows_with_target(relation, target)}"  # noqa: S608
                f" AND typeof({key}) != 'integer' LIMIT 1"
            ).fetchone()
            if other is not None:
                return None
        value = "0" if target is None else quote_identifier(target)
        sql = f"SELECT {key}, {value}{filtered}"  # noqa: S608
        reader = native.reader(conn, sql)
        if reader is not None:
            try:
                keys, block = np.empty(rows, dtype=np.int64), np.empty((rows, 1))
                filled, stopped_at_text = reader.fill(block, keys)
                complete = not stopped_at_text and filled == rows and not reader.rows(1)
            finally:
                reader.close()
            return (keys, block[:, 0]) if complete else None
        pairs = np.fromiter(
            conn.execute(sql), dtype=[("key", np.int64), ("value", np.float64)], count=rows
        )
        return np.ascontiguousarray(pairs["key"]), np.ascontiguousarray(pairs["value"])
    except (TypeError, ValueError, OverflowError):
        return None
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def read_rows_by_key(
    conn: sqlite3.Connection,
    relation: Relation,
    key_column: str | None,
    columns: Sequence[str],
    keys: Sequence[object],
) -> dict[object, tuple[object, ...]]:
    """``columns`` of the rows whose key (rowid, or ``key_column``) is one of ``keys``,
    by key; read in slices of keys passed as one JSON parameter each."""
    key = quote_identifier(key_column) if key_column is not None else rowid_expression(relation)
    selected = ", ".join(quote_identifier(column) for column in columns)
    sql = (
        f"SELECT {key}, {selected} FROM {relation.quoted}"  # noqa: S608
        f" WHERE {key} IN (SELECT value FROM json_each(?))"
    )
    found: dict[object, tuple[object, ...]] = {}
    try:
        for start in range(0, len(keys), 10_000):
            chunk = json.dumps(list(keys[start : start + 10_000]))
            for row in conn.execute(sql, (chunk,)):
                found[row[0]] = tuple(row[1:])
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error
    return found


def replace_table(
    conn: sqlite3.Connection,
    table: str,
    column_types: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[object]],
) -> None:
    """Drop and recreate ``main.table`` with the given columns and rows.

    Every statement names the ``main`` schema: an unqualified DROP could otherwise reach a
    table of that name in an attached database. The caller holds a savepoint.
    """
    quoted = "main." + quote_identifier(table)  # a name SQLite cannot take fails here
    try:
        conn.execute(f"DROP TABLE IF EXISTS {quoted}")
        create_table(conn, table, column_types, rows)
    except (sqlite3.OperationalError, SqmlError) as error:
        cause = error if isinstance(error, sqlite3.Error) else error.__cause__
        if cause is None:
            raise
        raise SqmlError(
            f"cannot replace table {describe(table)}: {cause} (is the statement that calls "
            "sqml_load_dataset reading it?)"
        ) from error


def create_table(
    conn: sqlite3.Connection,
    table: str,
    column_types: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[object]],
) -> None:
    """Create ``main.table`` with the given columns and rows (the caller holds a
    savepoint; the table must not exist)."""
    quoted = "main." + quote_identifier(table)
    definition = ", ".join(f"{quote_identifier(name)} {kind}" for name, kind in column_types)
    placeholders = ", ".join("?" for _ in column_types)
    try:
        conn.execute(f"CREATE TABLE {quoted} ({definition})")
        conn.executemany(f"INSERT INTO {quoted} VALUES ({placeholders})", rows)  # noqa: S608
    except sqlite3.OperationalError as error:
        raise SqmlError(f"cannot create table {describe(table)}: {error}") from error


def same_rows(
    conn: sqlite3.Connection,
    table: str,
    column_types: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[object]],
) -> bool:
    """Whether ``main.table`` has exactly these columns and rows, in rowid order."""
    names = [name for name, _ in column_types]
    existing = [
        row[1] for row in conn.execute(f"PRAGMA main.table_info({quote_identifier(table)})")
    ]
    if existing != names:
        return False
    selected = ", ".join(quote_identifier(name) for name in names)
    stored = conn.execute(
        f"SELECT {selected} FROM main.{quote_identifier(table)} ORDER BY rowid"  # noqa: S608
    ).fetchall()
    return stored == [tuple(row) for row in rows]
