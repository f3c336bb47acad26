"""Identifiers: how a user-supplied table or column name becomes SQL text.

Every name a user gives is quoted here as an identifier, so a name holding quotes,
brackets, spaces, semicolons or unicode is a name and never SQL. Names compare the way
SQLite compares them: ASCII letters without regard to case.
"""

from __future__ import annotations

from .errors import SqmlError, describe

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
