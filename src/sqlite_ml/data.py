"""Data access: the only place that turns user-supplied names into SQL.

Every table or column name is quoted as an identifier here, so a name holding quotes,
brackets, spaces, semicolons or unicode is a name and never SQL.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .errors import SqmlError, choices, describe, shorten


@contextmanager
def plain_rows(conn: sqlite3.Connection) -> Iterator[None]:
    """Our queries expect tuples and str: the caller's row and text factories are set
    aside while they run and put back after, whatever happens."""
    row_factory, text_factory = conn.row_factory, conn.text_factory
    if row_factory is None and text_factory is str:
        yield
        return
    conn.row_factory, conn.text_factory = None, str
    try:
        yield
    finally:
        conn.row_factory, conn.text_factory = row_factory, text_factory


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(name: str) -> str:
    """Fold case the way SQLite compares identifiers: ASCII letters only."""
    return name.translate(_ASCII_LOWER)


def quote_identifier(name: str) -> str:
    """Quote a name as an SQLite identifier ("" doubles any embedded quote)."""
    if not isinstance(name, str) or name == "":
        raise SqmlError(f"invalid identifier {describe(name)}: a non-empty text name is required")
    if "\x00" in name:
        raise SqmlError(f"invalid identifier {describe(name)}: names cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Relation:
    """A table or view that the user named, as found in the schema."""

    name: str  # as the user wrote it (for messages and the run record)
    kind: str  # 'table' or 'view'
    columns: tuple[str, ...]
    sql_name: str = ""  # quoted, schema-qualified when the user named an attached schema

    @property
    def quoted(self) -> str:
        return self.sql_name or quote_identifier(self.name)


def user_relations(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM (SELECT name, type FROM sqlite_temp_master"
        " UNION SELECT name, type FROM sqlite_master) WHERE type IN ('table', 'view')"
        " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'sqml\\_%' ESCAPE '\\'"
        " ORDER BY name"
    ).fetchall()
    return [row[0] for row in rows]


def find_relation(conn: sqlite3.Connection, name: object) -> Relation:
    """Look a table or view up by name; a clear error lists the ones that exist.

    SQLite matches names without regard to ASCII case; an exact match wins. Temporary
    tables and views shadow main ones, as in SQL. ``schema.name`` names a table or view of
    an attached database (or of ``main``/``temp``) when no table is literally called that.
    """
    if not isinstance(name, str) or not name:
        raise SqmlError(
            f"dataset must be the name of a table or view, got {describe(name)}; "
            f"available: {choices(user_relations(conn)) or 'none'}"
        )
    row = conn.execute(
        "SELECT name, type FROM ("
        " SELECT name, type, 0 AS place FROM sqlite_temp_master"
        " UNION ALL SELECT name, type, 1 AS place FROM sqlite_master"
        ") WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE"
        " ORDER BY name = ? DESC, place LIMIT 1",
        (name, name),
    ).fetchone()
    if row is not None:
        found, kind, sql_name = row[0], row[1], quote_identifier(row[0])
    else:
        qualified = _find_qualified(conn, name)
        if qualified is None:
            raise SqmlError(
                f"unknown dataset {describe(name)}: no table or view has that name; "
                f"available: {choices(user_relations(conn)) or 'none'} (or 'schema.name' for "
                "an attached database)"
            )
        found, kind, sql_name = qualified
    try:
        cursor = conn.execute(f"SELECT * FROM {sql_name} LIMIT 0")  # noqa: S608
    except sqlite3.Error as error:
        raise SqmlError(f"cannot read dataset {describe(name)}: {error}") from error
    columns = tuple(description[0] for description in cursor.description)
    return Relation(name=found, kind=kind, columns=columns, sql_name=sql_name)


def _find_qualified(conn: sqlite3.Connection, name: str) -> tuple[str, str, str] | None:
    """``schema.table`` in an attached database: (name as given, kind, qualified SQL).
    Either part may hold dots itself: every split is tried, the leftmost first."""
    if "." not in name:
        return None
    schemas = {ascii_lower(row[1]): row[1] for row in conn.execute("PRAGMA database_list")}
    for position in [i for i, character in enumerate(name) if character == "."]:
        real_schema = schemas.get(ascii_lower(name[:position]))
        table = name[position + 1 :]
        if real_schema is None or not table:
            continue
        master = "sqlite_temp_master" if real_schema == "temp" else "sqlite_master"
        row = conn.execute(
            f"SELECT name, type FROM {quote_identifier(real_schema)}.{master}"  # noqa: S608
            " WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE"
            " ORDER BY name = ? DESC LIMIT 1",
            (table, table),
        ).fetchone()
        if row is not None:
            return name, row[1], f"{quote_identifier(real_schema)}.{quote_identifier(row[0])}"
    return None


def _rows_with_target(relation: Relation, target: str | None) -> str:
    """The rows with a target (every row when there is none: clustering)."""
    if target is None:
        return f" FROM {relation.quoted} WHERE 1"
    return f" FROM {relation.quoted} WHERE {quote_identifier(target)} IS NOT NULL"


def _row_filter(
    conn: sqlite3.Connection, relation: Relation, target: str | None, order_by: str | None = None
) -> str:
    """The rows with a target, in rowid order for tables (the same order on every read),
    or by ``order_by`` first when given."""
    keys = [quote_identifier(order_by)] if order_by is not None else []
    if relation.kind == "table" and _has_rowid(conn, relation):
        keys.append("rowid")
    order = f" ORDER BY {', '.join(keys)}" if keys else ""
    return _rows_with_target(relation, target) + order


def has_rowid(conn: sqlite3.Connection, relation: Relation) -> bool:
    """Whether the relation is a table with a rowid (views and WITHOUT ROWID tables lack one)."""
    return relation.kind == "table" and _has_rowid(conn, relation)


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


def holds_text(
    conn: sqlite3.Connection, relation: Relation, column: str, target: str | None
) -> bool:
    """Whether any row with a target has TEXT or a BLOB in ``column``."""
    sql = (
        f"SELECT EXISTS (SELECT 1{_rows_with_target(relation, target)}"  # noqa: S608
        f" AND typeof({quote_identifier(column)}) IN ('text', 'blob'))"
    )
    try:
        return bool(conn.execute(sql).fetchone()[0])
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def read_numeric_matrix(
    conn: sqlite3.Connection,
    relation: Relation,
    columns: Sequence[str],
    target: str | None,
    rows: int,
    order_by: str | None = None,
) -> np.ndarray | None:
    """The rows with a target straight into float64, NULL as NaN, with numpy filling the
    array from the cursor (no per-row Python lists). None when a value is not a number
    numpy reads as one (text such as 'abc' or ''): the caller then reads Python values."""
    selected = ", ".join(quote_identifier(column) for column in columns)
    sql = f"SELECT {selected}{_row_filter(conn, relation, target, order_by)}"  # noqa: S608
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
    from . import native

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
    """What ``sqml_predict_table`` reads: ``sql`` selects the rowid first when
    ``with_rowid``, then the model's columns in the model's order."""

    sql: str
    with_rowid: bool


_SELECT_STATEMENT = re.compile(r"\s*(select|with|values)\b", re.IGNORECASE)


def prediction_source(
    conn: sqlite3.Connection, source: object, columns: Sequence[str]
) -> PredictionSource:
    """A table or view name, or a SELECT statement (run as a subquery, so it can only
    read), checked to have every column the model needs."""
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
        with_rowid = relation.kind == "table" and _has_rowid(conn, relation)
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
    first = "rowid, " if with_rowid else ""
    return PredictionSource(f"SELECT {first}{', '.join(selected)} FROM {inner}", with_rowid)  # noqa: S608


def read_rows(
    conn: sqlite3.Connection,
    relation: Relation,
    columns: Sequence[str],
    target: str | None,
    order_by: str | None = None,
) -> list[tuple[object, ...]]:
    """The rows with a non-NULL target, as Python values, in a stable order."""
    selected = ", ".join(quote_identifier(column) for column in columns)
    sql = f"SELECT {selected}{_row_filter(conn, relation, target, order_by)}"  # noqa: S608
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error as error:
        raise _read_error(relation, error) from error


def _has_rowid(conn: sqlite3.Connection, relation: Relation) -> bool:
    try:
        conn.execute(f"SELECT rowid FROM {relation.quoted} LIMIT 0")  # noqa: S608
    except sqlite3.OperationalError:
        return False  # WITHOUT ROWID table
    return True


def require_column(relation: Relation, column: object, role: str) -> str:
    """The relation's own spelling of ``column`` (SQLite column names ignore ASCII case)."""
    if isinstance(column, str):
        if column in relation.columns:
            return column
        folded = [n for n in relation.columns if ascii_lower(n) == ascii_lower(column)]
        if len(folded) == 1:
            return folded[0]
    raise SqmlError(
        f"unknown {role} column {describe(column)} in dataset '{shorten(relation.name)}'; "
        f"available columns: {choices(relation.columns)}"
    )


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
    quoted = "main." + quote_identifier(table)
    definition = ", ".join(f"{quote_identifier(name)} {kind}" for name, kind in column_types)
    placeholders = ", ".join("?" for _ in column_types)
    try:
        conn.execute(f"DROP TABLE IF EXISTS {quoted}")
        conn.execute(f"CREATE TABLE {quoted} ({definition})")
        conn.executemany(f"INSERT INTO {quoted} VALUES ({placeholders})", rows)  # noqa: S608
    except sqlite3.OperationalError as error:
        raise SqmlError(
            f"cannot replace table {describe(table)}: {error} (is the statement that calls "
            "sqml_load_dataset reading it?)"
        ) from error
