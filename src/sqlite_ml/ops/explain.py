"""Domain: explanations of the deployed model's predictions (``sqml_explain`` for one
row, ``sqml_explain_table`` for a table, a view or a SELECT): each feature's contribution
to the raw output, and the baseline they add to (``ml/explain.py`` computes them)."""

from __future__ import annotations

import math
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..db.readers import prediction_source
from ..errors import SqmlError, choices, describe, shorten
from ..ml.catalogue import ALGORITHMS
from ..ml.explain import Explain, Explanations, explainable, explainer
from ..ml.features import FeatureSchema
from ..ml.labels import TEXT_LABELS
from ..names import ascii_lower
from ..sqlite.rows import plain_rows
from .drift import stored_summary
from .prediction import LoadedModel, parse_features
from .reading import encode

CHUNK_ROWS = 4096


class _Explainers:
    """A loaded model's explanation function, made on first use and dropped with it."""

    def __init__(self) -> None:
        self._by_estimator: weakref.WeakKeyDictionary[Any, Explain] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, conn: sqlite3.Connection, model: LoadedModel, experiment: str) -> Explain:
        found = self._by_estimator.get(model.estimator)
        if found is not None:
            return found
        summary = stored_summary(conn, model.model_id)
        mean = summary.get("model_input_mean") if summary else None
        try:
            made = explainer(model.estimator, None if mean is None else np.asarray(mean))
        except TypeError:
            raise SqmlError(_not_explainable(model, experiment)) from None
        with self._lock:
            self._by_estimator[model.estimator] = made
        return made


_EXPLAINERS = _Explainers()


def explainable_algorithms() -> list[str]:
    names: list[str] = []
    for kind in ("classification", "regression"):
        names += [n for n, cls in ALGORITHMS[kind].items() if explainable(cls) and n not in names]
    return names


def _not_explainable(model: LoadedModel, experiment: str) -> str:
    final = model.estimator[-1] if hasattr(model.estimator, "steps") else model.estimator
    return (
        f"the deployed model of experiment '{shorten(experiment)}' ({type(final).__name__}) "
        f"cannot be explained exactly; explainable algorithms: {choices(explainable_algorithms())}"
    )


def _top_k(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SqmlError(f"top_k must be a positive integer, got {describe(value)}")
    return value


def _raw_values(schema: FeatureSchema, record: Any) -> list[Any]:
    """Each feature's value as the caller gave it (None where not given)."""
    if isinstance(record, list):
        return list(record) + [None] * (len(schema.names) - len(record))
    if not isinstance(record, dict):
        return [None] * len(schema.names)
    folded = {ascii_lower(str(key)): value for key, value in record.items()}
    return [record.get(name, folded.get(ascii_lower(name))) for name in schema.names]


def _by_feature(schema: FeatureSchema, contributions: np.ndarray) -> np.ndarray:
    """Contributions of model inputs summed per feature (a one-hot feature's columns
    move together): (rows, inputs) -> (rows, features)."""
    widths = [feature.width() for feature in schema.features]
    if all(width == 1 for width in widths):
        return contributions
    starts = np.cumsum([0, *widths[:-1]])
    return np.add.reduceat(contributions, starts, axis=1)


def _sql_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def explain_one(
    conn: sqlite3.Connection,
    model: LoadedModel,
    experiment: str,
    text: Any,
    top_k: object = None,
) -> dict[str, Any]:
    """``sqml_explain``: the explanation of one row (``text``, as ``sqml_predict`` takes
    it) as a JSON-ready object; its prediction is the one ``sqml_predict`` gives (a
    linear regression's within 1e-9 relative where the native scorer serves it)."""
    limit = _top_k(top_k)
    features = parse_features(text)
    explain = _EXPLAINERS.get(conn, model, experiment)
    matrix = np.asarray([model.schema.encode_record(features)], dtype=np.float64)
    explained = explain(matrix)
    per_feature = _by_feature(model.schema, explained.contributions)[0]
    values = _raw_values(model.schema, features)
    order = sorted(range(len(per_feature)), key=lambda i: (-abs(per_feature[i]), i))
    shown = order if limit is None else order[:limit]
    result: dict[str, Any] = {
        "prediction": _sql_value(model.predict_text(text)),
        "raw_output": float(explained.raw_output[0]),
        "output": explained.output,
        "baseline": float(explained.baseline[0]),
        "contributions": [
            {
                "feature": model.schema.names[i],
                "value": values[i],
                "contribution": float(per_feature[i]),
            }
            for i in shown
        ],
    }
    if explained.classes is not None:
        result["class"] = _label(explained.classes[0], model)
    if len(shown) < len(order):
        result["other_contributions"] = float(sum(per_feature[i] for i in order[len(shown) :]))
    return result


def _label(label: Any, model: LoadedModel) -> Any:
    value = _sql_value(label)
    return str(value) if model.schema.label_kind == TEXT_LABELS else value


def explanation_rows(
    conn: sqlite3.Connection,
    model: LoadedModel,
    experiment: str,
    source: Any,
    top_k: object = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """``sqml_explain_table``: a row per (source row, feature) with the row's key
    (rowid, else its number), the prediction, raw output, baseline, the feature, its
    value, its contribution and its rank by size (1 = largest). The source is checked at
    once; its rows are read and explained a chunk at a time."""
    limit = _top_k(top_k)
    explain = _EXPLAINERS.get(conn, model, experiment)
    query = prediction_source(conn, source, model.schema.names)
    cursor = conn.execute(query.sql)
    return _explained_chunks(conn, model, explain, cursor, query.with_rowid, limit)


def _explained_chunks(
    conn: sqlite3.Connection,
    model: LoadedModel,
    explain: Explain,
    cursor: Any,
    with_rowid: bool,
    limit: int | None,
) -> Iterator[list[tuple[Any, ...]]]:
    number = 0
    try:
        while True:
            with plain_rows(conn):
                rows = cursor.fetchmany(CHUNK_ROWS)
            if not rows:
                return
            if with_rowid:
                ids, values = [row[0] for row in rows], [tuple(row[1:]) for row in rows]
            else:
                ids, values = list(range(number + 1, number + 1 + len(rows))), rows
            number += len(rows)
            matrix = encode(model.schema, values, _row_name(ids))
            yield _long_rows(model, explain(matrix), matrix, ids, values, limit)
    finally:
        cursor.close()


def _row_name(ids: list[Any]) -> Any:
    def where(index: int) -> str:
        return f"sqml_explain_table: source row {ids[index]}: "

    return where


def _long_rows(
    model: LoadedModel,
    explained: Explanations,
    matrix: np.ndarray,
    ids: list[Any],
    values: Sequence[Sequence[Any]],
    limit: int | None,
) -> list[tuple[Any, ...]]:
    names = model.schema.names
    predictions = model.predict(matrix)
    per_feature = _by_feature(model.schema, explained.contributions)
    out: list[tuple[Any, ...]] = []
    for row in range(len(ids)):
        contributions = per_feature[row]
        order = np.argsort(-np.abs(contributions), kind="stable")
        shown = order if limit is None else order[:limit]
        head = (
            ids[row],
            _sql_value(predictions[row]),
            float(explained.raw_output[row]),
            float(explained.baseline[row]),
        )
        for rank, column in enumerate(shown.tolist(), start=1):
            value = values[row][column]
            if isinstance(value, (bytes, bytearray, memoryview)):
                value = None
            out.append((*head, names[column], value, float(contributions[column]), rank))
    return out
