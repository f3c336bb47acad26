"""Columns a run leaves out of its features on its own, each with the sentence that the
run records in ``sqml_runs.warnings``.

- a column holding a single value (or only NULL) on the rows with a target: it cannot
  tell rows apart;
- a column that identifies rows: a distinct TEXT value on every row that is neither a
  number nor a date (names, codes, e-mail addresses), or a distinct whole number on every
  row in a column named like an id (``id``, ``customer_id``, ``PassengerId``); such a
  column one-hot encoded or read as a number describes nothing a new row shares (a
  column of dates but for a few values is said so). Tables shorter than
  ``MIN_ROWS_FOR_IDENTIFIER`` are not judged.

Declared keys (an ``INTEGER PRIMARY KEY``, a UNIQUE column) are found in the table's
schema before anything is read (``db/relations.key_columns``). A column the run names in
its ``features`` or ``preprocess`` options is always kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..errors import shorten
from . import dates
from .values import as_number, category_of

MIN_ROWS_FOR_IDENTIFIER = 20
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID)$")  # PassengerId, userID; not "paid"
_KEEP_IT = "; name it in option features to use it"


def looks_like_id_name(name: str) -> bool:
    """``id``, ``customer_id``, ``PassengerId``: a name that says it identifies rows."""
    folded = name.lower()
    return folded == "id" or folded.endswith("_id") or bool(_CAMEL_ID.search(name))


def declared_key(name: str, how: str) -> str:
    return f"column '{name}' left out: it is {how}, which identifies rows{_KEEP_IT}"


def _constant(name: str, value: object) -> str:
    if value is None:
        return f"column '{name}' left out: it is NULL on every row with a target{_KEEP_IT}"
    return (
        f"column '{name}' left out: it holds the single value {shorten(repr(value), 40)} on "
        f"every row with a target{_KEEP_IT}"
    )


def _identifier(name: str, what: str) -> str:
    return f"column '{name}' left out: {what} on every row, like an identifier{_KEEP_IT}"


def left_out_by_values(name: str, values: Sequence[object]) -> str | None:
    """Why the column should stay out of the features, judging by its training values;
    None when it is a feature. A column of BLOBs is a column of vectors (a distinct
    vector on every row is what such a column holds), judged by ``features``."""
    if any(isinstance(value, (bytes, bytearray, memoryview)) for value in values):
        return None
    present = [value for value in values if value is not None and value != ""]
    distinct = {category_of(value) for value in present}
    if len(distinct) <= 1:
        return _constant(name, present[0] if present else None)
    if len(values) < MIN_ROWS_FOR_IDENTIFIER or len(present) < len(values):
        return None
    if len(distinct) != len(values):
        return None
    numbers = [_number(value) for value in present]
    if all(number is None for number in numbers):
        if dates.parts_for(present) is not None:  # a date on every row is a feature
            return None
        stranger = dates.mostly_dates(present)
        if stranger is not None:
            return (
                f"column '{name}' left out: a distinct value on every row, dates but for "
                f"{shorten(repr(stranger), 40)}; fix or filter out that value to use it as dates"
            )
        return _identifier(name, "a distinct text value")
    if looks_like_id_name(name) and all(n is not None and n.is_integer() for n in numbers):
        return _identifier(name, "its name and a distinct whole number")
    return None


def _number(value: object) -> float | None:
    try:
        return as_number(value)
    except (ValueError, TypeError):
        return None


def left_out_in_matrix(names: Sequence[str], matrix: np.ndarray) -> dict[str, str]:
    """The same judgement for columns read as numbers (NULL as NaN): constant columns,
    and id-named columns of distinct whole numbers."""
    reasons: dict[str, str] = {}
    if not len(matrix):
        return reasons
    present = ~np.isnan(matrix)
    filled = np.where(present, matrix, np.inf)
    low = filled.min(axis=0)
    high = np.where(present, matrix, -np.inf).max(axis=0)
    for position, name in enumerate(names):
        if not present[:, position].any():
            reasons[name] = _constant(name, None)
        elif low[position] == high[position]:
            reasons[name] = _constant(name, _plain(float(low[position])))
        elif (
            looks_like_id_name(name)
            and len(matrix) >= MIN_ROWS_FOR_IDENTIFIER
            and present[:, position].all()
        ):
            column = matrix[:, position]
            if np.all(column == np.round(column)) and len(np.unique(column)) == len(column):
                reasons[name] = _identifier(name, "its name and a distinct whole number")
    return reasons


def _plain(number: float) -> float | int:
    return int(number) if number.is_integer() else number
