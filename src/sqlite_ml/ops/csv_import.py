"""Domain: a CSV file as a table, where many users' data starts (``sqml train -d
data.csv``, ``sqlite_ml.import_csv``).

The first row names the columns; the delimiter (comma, semicolon, tab or bar) is sniffed
from the start of the file. Each column gets the type all its values fit: INTEGER
(``-12``), REAL (``3.5``, ``1e-3``), else TEXT; an empty field is NULL. Numbers written
with leading zeros (``007``, postcodes) stay TEXT, so nothing is lost; dates stay TEXT
(training reads them as dates).

An existing table is never replaced: when the table already holds exactly the file's
rows (the same file imported before), it is used as it is; otherwise the import stops
and says so.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from pathlib import Path
from typing import Any

from ..db.readers import create_table, same_rows
from ..db.relations import main_relation, table_name_to_create, temporary_relation_kind
from ..db.transactions import savepoint
from ..errors import SqmlError, describe

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_REAL = re.compile(r"-?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_SAMPLE = 64 * 1024
MAX_INTEGER = 2**63 - 1


def default_table(path: Path) -> str:
    """The table a file goes into by default: its name without the extension."""
    return path.stem or "csv"


def _type_of(values: list[str]) -> str:
    present = [value for value in values if value != ""]
    if present and all(_INTEGER.fullmatch(v) and abs(int(v)) <= MAX_INTEGER for v in present):
        return "INTEGER"
    if present and all(_REAL.fullmatch(v) and any(c.isdigit() for c in v) for v in present):
        return "REAL"
    return "TEXT"


def _convert(value: str, kind: str) -> Any:
    if value == "":
        return None
    if kind == "INTEGER":
        return int(value)
    if kind == "REAL":
        return float(value)
    return value


def _names(header: list[str]) -> list[str]:
    """Column names from the header: blanks become column_N, repeats get _2, _3..."""
    names: list[str] = []
    for position, raw in enumerate(header, start=1):
        base = raw.strip() or f"column_{position}"
        name, copy = base, 2
        while name.lower() in (n.lower() for n in names):
            name, copy = f"{base}_{copy}", copy + 1
        names.append(name)
    return names


def read_csv(path: Path) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """(column names and types, rows of converted values) of a CSV file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SqmlError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); save it as "
            "UTF-8 first"
        ) from None
    except OSError as error:
        raise SqmlError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        dialect: Any = csv.Sniffer().sniff(text[:_SAMPLE], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    records = list(csv.reader(io.StringIO(text, newline=""), dialect))
    records = [record for record in records if record]  # blank lines
    if not records:
        raise SqmlError(f"{path} is empty: a CSV dataset needs a header row and data rows")
    names = _names(records[0])
    width = len(names)
    body = records[1:]
    for line, record in enumerate(body, start=2):
        if len(record) > width:
            raise SqmlError(
                f"{path}: row {line} has {len(record)} fields but the header names {width}"
            )
        record.extend([""] * (width - len(record)))
    if not body:
        raise SqmlError(f"{path} has a header but no data rows")
    kinds = [_type_of([record[i] for record in body]) for i in range(width)]
    rows = [
        [_convert(value, kind) for value, kind in zip(record, kinds, strict=True)]
        for record in body
    ]
    return list(zip(names, kinds, strict=True)), rows


def import_csv(conn: sqlite3.Connection, path: object, table: object = None) -> dict[str, Any]:
    """Import the CSV file at ``path`` into ``table`` (default: the file's name) of the
    main database: ``{"table", "rows", "columns": {name: type}, "created"}``; ``created``
    is False when the table already held exactly these rows."""
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        raise SqmlError(f"no CSV file at {describe(str(path))}")
    file = Path(path)
    name = table_name_to_create(default_table(file) if table is None else table)
    columns, rows = read_csv(file)
    answer = {"table": name, "rows": len(rows), "columns": dict(columns)}
    if temporary_relation_kind(conn, name) is not None:
        raise SqmlError(f"a temporary table or view named {describe(name)} would shadow it")
    existing = main_relation(conn, name)
    if existing is None:
        with savepoint(conn):
            create_table(conn, name, columns, rows)
        return {**answer, "created": True}
    if existing == "table" and same_rows(conn, name, columns, rows):
        return {**answer, "created": False}
    raise SqmlError(
        f"{describe(name)} already exists ({existing}) and does not hold the rows of {file}; "
        "import it under another table name, or drop the old one first"
    )
