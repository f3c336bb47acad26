"""The one exception type every layer raises for a user-facing problem, and the wording of
the failures that recur across functions.

Its message is what the SQL caller sees: it names the bad value and what is allowed. A
failure that several functions share (an unknown experiment, dataset, column, algorithm,
...) is worded once, by :func:`unknown`, so it reads the same wherever it happens, and
suggests the closest valid name when there is one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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


def closest(value: object, candidates: Iterable[str]) -> str | None:
    """The candidate a mistyped ``value`` most likely meant (case aside), or None."""
    if not isinstance(value, str) or not value:
        return None
    import difflib  # only when a name is wrong

    names = list(candidates)
    folded = {name.casefold(): name for name in names}
    if value.casefold() in folded and folded[value.casefold()] != value:
        return folded[value.casefold()]
    found = difflib.get_close_matches(value.casefold(), list(folded), n=1, cutoff=0.75)
    return folded[found[0]] if found else None


# How many valid names a message lists before it stops (a database may hold hundreds).
_LISTED = 20


def unknown(
    what: str,
    value: object,
    available: Sequence[str],
    *,
    listing: str = "available",
    empty: str = "none",
    context: str = "",
    hint: str = "",
) -> SqmlError:
    """The error for a name that names nothing: ``unknown <what> 'x'<context>; did you
    mean 'y'? <listing>: 'a', 'b'<hint>``. ``empty`` replaces the list when there is none."""
    suggestion = closest(value, available)
    text = f"unknown {what} {describe(value)}{context}"
    if suggestion is not None:
        text += f"; did you mean '{suggestion}'?"
    listed = choices(available[:_LISTED]) + (", ..." if len(available) > _LISTED else "")
    text += f"; {listing}: {listed or empty}{hint}"
    return SqmlError(text)


def refuse_unknown(
    what: str,
    given: Iterable[str],
    valid: Sequence[str],
    *,
    listing: str = "valid",
    context: str = "",
) -> None:
    """Raise for the names of ``given`` that ``valid`` lacks (keys of a JSON object):
    one is worded by :func:`unknown` (with its suggestion), several are listed together."""
    names = sorted(set(given) - set(valid))
    if len(names) == 1:
        raise unknown(what, names[0], valid, listing=listing, context=context)
    if names:
        raise SqmlError(f"unknown {what} {choices(names)}{context}; {listing}: {choices(valid)}")
