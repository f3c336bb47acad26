"""The one read-and-encode path: a user's rows into the matrix a model sees, shared by
training, evaluation and table prediction.

All-numeric data (the common case, and the big one) is read straight into float64 (NULL
as NaN) without a Python object per value; anything else (categories, text labels,
numbers stored as text, infinities) goes through Python values and the feature schema's
rules, which also word every error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import numpy as np

from ..db.readers import read_numeric_matrix
from ..db.relations import Relation
from ..errors import SqmlError
from ..ml.features import FeatureSchema


def read_numeric(
    conn: sqlite3.Connection,
    relation: Relation,
    features: Sequence[str],
    target: str | None,
    count: int,
    order_by: str | None = None,
    key_column: str | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(features, target values) of the ``count`` rows with a target, as float64, when
    every cell is a number or NULL and none is infinite; None otherwise (the caller then
    reads Python values). A target that reads as NaN (text '' or 'NaN') is missing: its
    row is left out. Without a target (clustering) the target values are zeros."""
    columns = list(features) if target is None else [*features, target]
    block = read_numeric_matrix(conn, relation, columns, target, count, order_by, key_column)
    if block is None or np.isinf(block).any():
        return None
    if target is None:
        return block, np.zeros(len(block))
    # A view of the block: the split copies the rows it picks anyway.
    matrix, labels = block[:, :-1], block[:, -1].copy()
    keep = ~np.isnan(labels)
    if not keep.all():
        matrix, labels = matrix[keep], labels[keep]
    return matrix, labels


def encode(
    schema: FeatureSchema, rows: Sequence[Sequence[object]], where: Callable[[int], str]
) -> np.ndarray:
    """Rows of Python values (the schema's columns, in its order) as the model's matrix.
    A value the schema refuses is an error that names its row: ``where(index)`` says
    which one (an empty string where a row has no name worth showing)."""
    try:
        return schema.encode_records([list(row) for row in rows])
    except SqmlError:
        for index, row in enumerate(rows):  # find the row to name
            try:
                schema.encode_record(list(row))
            except SqmlError as error:
                raise SqmlError(f"{where(index)}{error.message}") from None
        raise
