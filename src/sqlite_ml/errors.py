"""The one exception type every layer raises for a user-facing problem.

Its message is what the SQL caller sees: it names the bad value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable


class SqmlError(Exception):
    """A misuse or failure that the user can act on; ``str(error)`` is the full message."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


def choices(values: Iterable[str]) -> str:
    """Format allowed values the same way in every message: 'a', 'b', 'c'."""
    return ", ".join(f"'{value}'" for value in values)


def shorten(value: object, limit: int = 80) -> str:
    """A bad value quoted for a message, cut so a huge argument cannot flood it."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: object, limit: int = 80) -> str:
    """A SQL argument as a message shows it: 'text' quoted, NULL, numbers, BLOB sizes."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + shorten(value, limit) + "'"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"a BLOB of {len(bytes(value))} bytes"
    return shorten(repr(value), limit)
