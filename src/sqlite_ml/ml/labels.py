"""Class labels and predictions: what kind of target a model learned (numbers, text,
cluster ids), how a target column is read for it, and how a label is written as a JSON
object key.

The one label-to-key rule (``label_key``) is used by every function that returns
``{label: probability}``: a text label is its own key; a numeric label is written the way
a whole-number REAL prints, ``"0.0"``, ``"1.0"``, ``"-2.0"`` (the text SQLite gives
``CAST(sqml_predict(...) AS TEXT)`` for such a label), and a cluster id (an INTEGER) as
``"0"``, so a prediction can be looked up in the probabilities of the same row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SqmlError, describe
from .values import as_number, category_of

NUMERIC_LABELS = "numeric"
TEXT_LABELS = "text"
CLUSTER_LABELS = "cluster"
LABEL_KINDS = (NUMERIC_LABELS, TEXT_LABELS, CLUSTER_LABELS)


def label_key(label: Any, label_kind: str) -> str:
    """A class label as a JSON object key (see the module's docstring)."""
    if label_kind == TEXT_LABELS:
        return str(label)
    if label_kind == CLUSTER_LABELS:  # cluster ids are INTEGER in SQL
        return str(int(label))
    return repr(float(label) + 0.0)  # + 0.0 turns -0.0 into 0.0


def label_text(label: Any) -> str:
    """A class label as a message quotes it: text in quotes, a whole number without '.0'."""
    if isinstance(label, str):
        return f"'{label}'"
    number = float(label)
    return str(int(number)) if number.is_integer() else repr(number)


def numbers_or_error(column: str, values: Sequence[object]) -> np.ndarray:
    """A regression target as floats; non-numeric text is an error naming the value."""
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        try:
            number = as_number(value)
        except (ValueError, TypeError):
            raise SqmlError(
                f"target column '{column}' holds {describe(value)}, but regression needs "
                "numbers; use prediction type 'classification' for labels"
            ) from None
        out[i] = math.nan if number is None else number
    return out


def encode_labels(values: Sequence[object]) -> tuple[np.ndarray, str]:
    """Class labels as stored: numbers stay numbers, any text makes them all text."""
    if any(isinstance(value, (bytes, bytearray, memoryview)) for value in values):
        raise SqmlError("the target column holds BLOB values; class labels must be numbers or text")
    if any(isinstance(value, str) for value in values):
        return np.array([category_of(value) for value in values], dtype=object), TEXT_LABELS
    labels = np.array([float(value) for value in values], dtype=np.float64)  # type: ignore[arg-type]
    check_numeric_labels(labels)
    return labels, NUMERIC_LABELS


def check_numeric_labels(labels: np.ndarray) -> None:
    """Numeric class labels must be whole numbers that a float holds exactly."""
    fractional = labels[labels != np.round(labels)]
    if len(fractional):
        raise SqmlError(
            f"class labels must be whole numbers or text, but the target holds "
            f"{float(fractional[0])!r}; use prediction type 'regression', or store the labels "
            "as TEXT"
        )
    if len(labels) and float(np.abs(labels).max()) >= 2**53:
        raise SqmlError(
            "class labels beyond 2^53 cannot be kept exactly as numbers; store them as TEXT"
        )
