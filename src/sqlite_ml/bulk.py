"""Bulk predictions for ``sqml_predict_table``: the source read in chunks by the native
reader, encoded with the model's feature schema and predicted a chunk at a time."""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import PredictionSource, plain_rows, prediction_source
from .errors import SqmlError
from .features import NUMERIC, TEXT_LABELS
from .prediction import LoadedModel

if TYPE_CHECKING:
    from .functions import Session

# Rows per chunk: large chunks amortize a model's per-call cost (tree ensembles pay much
# per predict call), bounded so that one chunk's features take at most CHUNK_BYTES.
CHUNK_ROWS = 65536
CHUNK_BYTES = 8 << 20

Chunk = tuple[np.ndarray, Any, list[str] | None]  # row ids, predictions, probabilities


def predict_table_function(
    session: Any, handle: int
) -> Callable[[Any, Any, bool], Iterator[Chunk]]:
    """What the virtual table calls for ``sqml_predict_table(experiment, source)``. The
    model and the source are checked at once (errors are real SQL errors); the rows are
    read and predicted lazily, chunk by chunk."""
    session_ref: weakref.ref[Session] = weakref.ref(session)

    def chunks(experiment: Any, source: Any, with_probabilities: bool) -> Iterator[Chunk]:
        from . import _native

        owner = session_ref()
        assert owner is not None  # the connection that calls us keeps it alive
        conn = owner.conn
        with plain_rows(conn):
            model = owner.deployed.model_for(conn, experiment)
            query = prediction_source(conn, source, model.schema.names)
        reader = _native.Reader(handle, query.sql)
        return _predictions(model, reader, query, with_probabilities)

    return chunks


def _predictions(
    model: LoadedModel, reader: Any, query: PredictionSource, with_probabilities: bool
) -> Iterator[Chunk]:
    schema = model.schema
    all_numeric = all(feature.kind == NUMERIC for feature in schema.features)
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
            if stopped_at_text:
                rows = reader.rows(chunk_rows - filled)
                if query.with_rowid:
                    ids[filled : filled + len(rows)] = [row[0] for row in rows]
                    rows = [row[1:] for row in rows]
                start = next_row_number + filled
                encoded = _encode(model, rows, ids[filled:], query, start)
                matrix = np.concatenate([matrix, encoded]) if filled else encoded
            total = len(matrix)
            if total == 0:
                continue
            ids = ids[:total]
            if not query.with_rowid:
                ids[:] = np.arange(next_row_number, next_row_number + total)
            next_row_number += total
            yield ids, _predict(model, matrix), probabilities(matrix) if probabilities else None
    finally:
        reader.close()


def _predict(model: LoadedModel, matrix: np.ndarray) -> Any:
    predictions = model.predictor(matrix)
    if model.schema.label_kind == TEXT_LABELS:
        return [str(value) for value in predictions]
    return np.ascontiguousarray(predictions, dtype=np.float64)


def _where(ids: np.ndarray, query: PredictionSource, index: int, row_number: int) -> str:
    if query.with_rowid:
        return f"source row with rowid {int(ids[index])}"
    return f"source row {row_number + index}"


def _encode(
    model: LoadedModel, rows: list[list[Any]], ids: np.ndarray, query: PredictionSource, start: int
) -> np.ndarray:
    try:
        return model.schema.encode_records(rows)
    except SqmlError:
        for index, row in enumerate(rows):  # find the row to name
            try:
                model.schema.encode_record(row)
            except SqmlError as error:
                where = _where(ids, query, index, start)
                raise SqmlError(f"sqml_predict_table: {where}: {error.message}") from None
        raise


def _check_finite(
    model: LoadedModel, matrix: np.ndarray, ids: np.ndarray, query: PredictionSource, start: int
) -> None:
    """Infinity is not a measurement: the row is encoded the slow way for its error."""
    bad = np.flatnonzero(np.isinf(matrix).any(axis=1))
    if len(bad):
        index = int(bad[0])
        _encode(model, [matrix[index].tolist()], ids[index:], query, start + index)


def _label_key(label: Any) -> str:
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    return str(label.item() if isinstance(label, np.generic) else label)


def _probability_formatter(model: LoadedModel) -> Callable[[np.ndarray], list[str]] | None:
    """JSON objects {label: probability} per row, for classifiers."""
    estimator = model.estimator
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        return None
    labels = [_label_key(label) for label in estimator.classes_]
    template = "{" + ", ".join(f"{json.dumps(label)}: %r" for label in labels) + "}"

    def format_rows(matrix: np.ndarray) -> list[str]:
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
