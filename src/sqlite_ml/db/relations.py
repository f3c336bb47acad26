"""A user's tables and views: finding one by the name the user gave, and its columns.

With ``readers.py`` this is the only code that turns user-supplied names into SQL; every
name goes through ``names.quote_identifier``, so a name holding quotes, brackets, spaces,
semicolons or unicode is a name and never SQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..errors import SqmlError, choices, describe, shorten, unknown
from ..names import ascii_lower, quote_identifier


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
            raise unknown(
                "dataset",
                name,
                user_relations(conn),
                context=" (no table or view has that name)",
                hint=" (or 'schema.name' for an attached database)",
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


def has_rowid(conn: sqlite3.Connection, relation: Relation) -> bool:
    """Whether the relation is a table with a rowid (views and WITHOUT ROWID tables lack one)."""
    if relation.kind != "table":
        return False
    try:
        conn.execute(f"SELECT rowid FROM {relation.quoted} LIMIT 0")  # noqa: S608
    except sqlite3.OperationalError:
        return False  # WITHOUT ROWID table
    return True


def rowid_expression(relation: Relation) -> str:
    """How SQL names the rowid of a table: ``rowid``, or one of its other names when the
    table has a column called ``rowid`` (which then hides the real one)."""
    taken = {ascii_lower(column) for column in relation.columns}
    for name in ("rowid", "_rowid_", "oid"):
        if name not in taken:
            return name
    raise SqmlError(
        f"table '{shorten(relation.name)}' has columns named rowid, _rowid_ and oid, which "
        "hide its rowid; name a key column (option key_column)"
    )


def require_column(relation: Relation, column: object, role: str) -> str:
    """The relation's own spelling of ``column`` (SQLite column names ignore ASCII case)."""
    if isinstance(column, str):
        if column in relation.columns:
            return column
        folded = [n for n in relation.columns if ascii_lower(n) == ascii_lower(column)]
        if len(folded) == 1:
            return folded[0]
    raise unknown(
        f"{role} column",
        column,
        relation.columns,
        listing="available columns",
        context=f" in dataset '{shorten(relation.name)}'",
    )


def temporary_relation_kind(conn: sqlite3.Connection, name: str) -> str | None:
    """'table', 'view', ... when the temp schema has an object of that name (any case)."""
    row = conn.execute(
        "SELECT type FROM sqlite_temp_master WHERE name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return None if row is None else str(row[0])


def main_relation(conn: sqlite3.Connection, name: str) -> str | None:
    """The kind of the ``main`` schema's object of that name (any case), if any."""
    row = conn.execute(
        "SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return None if row is None else str(row[0])


def main_table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The column names of ``main.table``, in order."""
    return [row[1] for row in conn.execute(f"PRAGMA main.table_info({quote_identifier(table)})")]
