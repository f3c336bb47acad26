"""What a cell holds, the way every encoder reads it: a number (with text that parses as
one, as CSV imports leave it), or a category (3 and 3.0 being one SQLite value)."""

from __future__ import annotations

import math


def as_number(value: object) -> float | None:
    """The number a cell holds, None for missing; raises ValueError for non-numeric text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        number = float(stripped)
        if math.isnan(number):  # 'NaN', as some tools write a missing number
            return None
        if math.isinf(number):  # 'inf' is a word here, not a measurement
            raise ValueError(value)
        return number
    raise ValueError(value)


def number_or_nan(value: object) -> float:
    number = as_number(value)
    return math.nan if number is None else number


def category_of(value: object) -> str | None:
    """A cell as a category: its text (whole-number floats as integers), None for NULL."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        # 3 and 3.0 are one SQLite value; make them one category too.
        return str(int(value))
    return str(value)
