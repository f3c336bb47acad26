"""Bulk predictions for ``sqml_predict_table`` when Python serves the model (the native
scorer reads and scores natively served ones itself, ``csrc/table.c``): the source read
in chunks by the native reader, encoded with the model's feature schema and predicted a
chunk at a time."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..db.readers import PredictionSource, prediction_source
from ..errors import shorten
from ..ml import threads
from ..ml.features import NUMERIC
from ..ml.labels import CLUSTER_LABELS, TEXT_LABELS, label_key
from ..sqlite.native import reader_on
from .prediction import LoadedModel
from .reading import encode

# Rows per chunk: large chunks amortize a model's per-call cost (tree ensembles pay much
# per predict call), bounded so that one chunk's features take at most CHUNK_BYTES.
CHUNK_ROWS = 65536
CHUNK_BYTES = 8 << 20

# (rows, keys: int64 rowids, a list of key values or None, predictions, probabilities)
Chunk = tuple[int, Any, Any, list[str] | None]


def predictions(
    conn: sqlite3.Connection,
    model: LoadedModel,
    source: Any,
    handle: int,
    with_probabilities: bool,
    key_column: Any = None,
    row_id_constrained: bool = False,
) -> Iterator[Chunk]:
    """The predictions of ``model`` for every row of ``source`` (a table, a view or a
    SELECT), read from the database ``handle`` (``conn``'s own) chunk by chunk, each row
    with its key (the rowid, or the ``key_column`` value). The source is checked at once
    (errors are real SQL errors); rows are read and predicted lazily."""
    query = prediction_source(conn, source, model.schema.names, key_column, row_id_constrained)
    return _predictions(model, reader_on(handle, query.sql), query, with_probabilities)


def _predictions(
    model: LoadedModel, reader: Any, query: PredictionSource, with_probabilities: bool
) -> Iterator[Chunk]:
    schema = model.schema
    # A key column may hold any value: such rows are read as Python values.
    all_numeric = query.key in (None, "rowid") and all(
        feature.kind == NUMERIC for feature in schema.features
    )
    probabilities = _probability_formatter(model) if with_probabilities else None
    next_row_number = 1
    chunk_rows = max(1, min(CHUNK_ROWS, CHUNK_BYTES // (8 * max(1, schema.width))))
    try:
        while not reader.done:
            ids = np.empty(chunk_rows, dtype=np.int64)
            matrix = np.empty((chunk_rows if all_numeric else 0, schema.width))
            filled, stopped_at_text = 0, not all_numeric
            if all_numeric:
                filled, stopped_at_text = reader.fill(matrix, ids if query.with_rowid else None)
                matrix = matrix[:filled]
                _check_finite(model, matrix, ids, query, next_row_number)
            keys: Any = ids
            if stopped_at_text:
                rows = reader.rows(chunk_rows - filled)
                if query.with_rowid:
                    ids[filled : filled + len(rows)] = [row[0] for row in rows]
                    rows = [row[1:] for row in rows]
                elif query.key is not None:  # a key column: its values as they are
                    keys = [row[0] for row in rows]
                    rows = [row[1:] for row in rows]
                where = _row_names(keys, query, next_row_number + filled)
                encoded = encode(model.schema, rows, where)
                matrix = np.concatenate([matrix, encoded]) if filled else encoded
            total = len(matrix)
            if total == 0:
                continue
            if query.with_rowid:
                keys = ids[:total]
            elif query.key is None:
                keys = None  # a view or SELECT without a key: row_id is NULL
            next_row_number += total
            chunk_probabilities = probabilities(matrix) if probabilities else None
            yield total, keys, _predict(model, matrix), chunk_probabilities
    finally:
        reader.close()


def _predict(model: LoadedModel, matrix: np.ndarray) -> Any:
    predictions = model.predictor(matrix)
    if model.schema.label_kind == TEXT_LABELS:
        return [str(value) for value in predictions]
    if model.schema.label_kind == CLUSTER_LABELS:  # cluster ids are INTEGER, as sqml_predict's
        return np.ascontiguousarray(predictions, dtype=np.int64)
    return np.ascontiguousarray(predictions, dtype=np.float64)


def _row_names(keys: Any, query: PredictionSource, first: int) -> Callable[[int], str]:
    """How an error names the row at an index of a chunk: by rowid, by key, else by
    number."""

    def where(index: int) -> str:
        if query.with_rowid:
            return f"sqml_predict_table: source row with rowid {int(keys[index])}: "
        if query.key is not None:
            return (
                f"sqml_predict_table: source row with {query.key} "
                f"{shorten(json.dumps(keys[index]))}: "
            )
        return f"sqml_predict_table: source row {first + index}: "

    return where


def _check_finite(
    model: LoadedModel, matrix: np.ndarray, ids: np.ndarray, query: PredictionSource, start: int
) -> None:
    """Infinity is not a measurement: the row is encoded the slow way for its error."""
    bad = np.flatnonzero(np.isinf(matrix).any(axis=1))
    if len(bad):
        index = int(bad[0])
        where = _row_names(ids[index:].tolist(), query, start + index)
        encode(model.schema, [matrix[index].tolist()], where)


def _probability_formatter(model: LoadedModel) -> Callable[[np.ndarray], list[str]] | None:
    """JSON objects {label: probability} per row, for classifiers."""
    estimator = model.estimator
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        return None
    labels = [label_key(label, model.schema.label_kind) for label in estimator.classes_]
    template = "{" + ", ".join(f"{json.dumps(label)}: %r" for label in labels) + "}"

    def format_rows(matrix: np.ndarray) -> list[str]:
        with threads.predicting(len(matrix)):
            table = np.asarray(estimator.predict_proba(matrix), dtype=np.float64)
        if np.isfinite(table).all():
            return [template % tuple(row) for row in table.tolist()]
        return [  # JSON has no NaN: null
            json.dumps(
                {k: p if math.isfinite(p) else None for k, p in zip(labels, row, strict=True)}
            )
            for row in table.tolist()
        ]

    return format_rows
