"""What a face prints: rows as an aligned text table (or JSON, or CSV), and the message of
a failed SQL statement."""

from __future__ import annotations

import base64
import csv
import json
import sqlite3
from collections.abc import Sequence
from typing import Any, TextIO

import sqlite_ml


def _cell(value: object, digits: int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value) if digits is None else f"{value:.{digits}f}"
    if isinstance(value, bytes):
        return f"<BLOB {len(value)} bytes>"
    if value == "":
        return "''"
    return str(value)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], digits: int | None = 4
) -> str:
    """Rows as an aligned plain-text table: numbers right-aligned, everything else left.

    Floats get ``digits`` decimals, or their shortest exact form when ``digits`` is None."""
    cells = [[_cell(value, digits) for value in row] for row in rows]
    numeric = [
        all(
            isinstance(row[i], (int, float)) and not isinstance(row[i], bool)
            for row in rows
            if row[i] is not None
        )
        and any(row[i] is not None for row in rows)
        for i in range(len(headers))
    ]
    widths = [
        max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)
    ]

    def line(values: Sequence[str], align_numbers: bool = True) -> str:
        parts = [
            value.rjust(width) if numeric[i] and align_numbers else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return ("  " + "  ".join(parts)).rstrip()

    out = [line(headers, align_numbers=False), line(["-" * width for width in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def sql_error_text(conn: sqlite3.Connection, error: sqlite3.Error) -> str:
    """The message a failed sqml call gave (kept aside in 'stdlib' binding mode)."""
    if sqlite_ml.binding_mode(conn) == "stdlib":
        return sqlite_ml.last_error(conn) or str(error)
    return str(error)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": True, "encoded": base64.b64encode(value).decode("ascii")}
    return value


def write_rows(
    out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[Any]], output: str
) -> None:
    if output == "json":
        records = [
            {header: _json_value(value) for header, value in zip(headers, row, strict=True)}
            for row in rows
        ]
        out.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    elif output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        for row in rows:
            writer.writerow(
                base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for v in row
            )
    else:
        out.write(format_table(list(headers), rows, digits=None) + "\n")
