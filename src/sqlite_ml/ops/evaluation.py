"""Domain: class probabilities of one row, and metrics of a deployed model on any table.

Both work on the model that ``sqml_predict`` uses (the experiment's deployed model, from
the loaded-model cache) and encode features with its stored feature schema, exactly as
predictions do. Neither writes anything.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import is_classifier, is_regressor

from ..db import records as store
from ..db.readers import count_rows, count_rows_with_target, read_rows
from ..db.relations import Relation, find_relation, require_column
from ..errors import SqmlError, choices, describe, shorten
from ..ml import metrics
from ..ml.catalogue import ALGORITHMS
from ..ml.curves import ClassCurve, curves
from ..ml.features import NUMERIC, FeatureSchema
from ..ml.labels import NUMERIC_LABELS, TEXT_LABELS, label_key
from ..ml.probabilities import (
    RowProbabilities,
    class_labels,
    compile_row_probabilities,
    gives_probabilities,
    gives_probabilities_by_default,
)
from ..ml.values import as_number, category_of
from .prediction import LoadedModel
from .reading import encode, read_numeric

PREDICTION_TYPES = ("classification", "regression")


class _CompiledProbabilities:
    """A loaded model's probability function and its JSON keys, made on first use and
    dropped with the model (keyed weakly by the fitted pipeline object)."""

    def __init__(self) -> None:
        self._by_estimator: weakref.WeakKeyDictionary[Any, tuple[RowProbabilities, list[str]]]
        self._by_estimator = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, model: LoadedModel, experiment_name: str) -> tuple[RowProbabilities, list[str]]:
        found = self._by_estimator.get(model.estimator)  # a read needs no lock
        if found is not None:
            return found
        if not gives_probabilities(model.estimator):
            raise SqmlError(_no_probabilities(model, experiment_name))
        compiled = compile_row_probabilities(model.estimator)
        keys = [
            json.dumps(label_key(label, model.schema.label_kind)) + ": "
            for label in class_labels(model.estimator)
        ]
        with self._lock:
            self._by_estimator[model.estimator] = (compiled, keys)
        return compiled, keys


_COMPILED = _CompiledProbabilities()


def probabilities_json(model: LoadedModel, experiment_name: str, features: Any) -> str:
    """``{label: probability}`` for one feature record, in the model's class order."""
    compiled, keys = _COMPILED.get(model, experiment_name)
    values = compiled(model.schema.encode_record(features))
    if len(values) != len(keys) or not all(map(math.isfinite, values)):
        raise SqmlError(
            f"the probabilities for these features are not numbers ({shorten(repr(values))}); "
            "a feature value is probably too large for the model"
        )
    return (
        "{" + ", ".join([key + repr(value) for key, value in zip(keys, values, strict=True)]) + "}"
    )


def _no_probabilities(model: LoadedModel, experiment_name: str) -> str:
    estimator = model.estimator
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    algorithm = _algorithm_name(final)
    what = f"experiment '{shorten(experiment_name)}' (model {model.model_id}, {algorithm})"
    if is_regressor(estimator):
        return (
            f"{what} is a regression model: it predicts numbers, not class probabilities; "
            "use sqml_predict for its predictions"
        )
    with_probabilities = [
        name
        for name, cls in ALGORITHMS["classification"].items()
        if gives_probabilities_by_default(cls)
    ]
    hint = (
        f"; retrain the experiment with an algorithm that gives them: {choices(with_probabilities)}"
        if is_classifier(estimator)
        else ""
    )
    if type(final).__name__ == "SVC":
        hint += " (svc gives them only when trained with probability=True)"
    return f"{what} does not give class probabilities{hint}"


def _algorithm_name(final_estimator: Any) -> str:
    for algorithms in ALGORITHMS.values():
        for name, cls in algorithms.items():
            if type(final_estimator) is cls:
                return f"algorithm '{name}'"
    return type(final_estimator).__name__


@dataclass(frozen=True)
class Labelled:
    """The rows of a dataset that have a target, encoded for a model."""

    prediction_type: str
    relation: Relation
    target: str
    matrix: np.ndarray
    y_true: np.ndarray
    total_rows: int  # with a target or not
    where: str  # how an error names what was evaluated


def read_labelled(
    conn: sqlite3.Connection,
    model: LoadedModel,
    experiment_name: str,
    dataset: object,
    target: object = None,
    what: str = "sqml_evaluate",
) -> Labelled:
    """The encoded features and true values of the rows of ``dataset`` with a target."""
    experiment = store.find_experiment(conn, experiment_name)
    if experiment is None:  # the caller found its model a moment ago: only a race gets here
        raise SqmlError(f"unknown experiment {describe(experiment_name)}")
    kind = experiment.prediction_type
    if kind not in PREDICTION_TYPES:
        raise SqmlError(
            f"{what} supports {choices(PREDICTION_TYPES)} experiments; "
            f"'{shorten(experiment_name)}' is a '{kind}' experiment"
        )
    relation = find_relation(conn, dataset)
    target_column = _target_column(relation, model.schema, target)
    columns = _feature_columns(relation, model.schema, target_column)
    where = f"cannot evaluate experiment '{shorten(experiment_name)}' on '{shorten(relation.name)}'"
    with _reading(relation):
        total = count_rows(conn, relation)
        try:
            matrix, y_true = _read(conn, relation, model.schema, columns, target_column, kind)
        except SqmlError as error:
            raise SqmlError(f"{where}: {error.message}") from None
    if not len(y_true):
        raise SqmlError(
            f"{where}: it has no rows with a target in '{shorten(target_column)}' "
            f"({total} row(s), none with a usable target value)"
        )
    return Labelled(kind, relation, target_column, matrix, y_true, total, where)


def evaluate(
    conn: sqlite3.Connection,
    model: LoadedModel,
    experiment_name: str,
    dataset: object,
    target: object = None,
) -> dict[str, Any]:
    """The recorded metrics of ``model`` on the rows of ``dataset`` that have a target."""
    labelled = read_labelled(conn, model, experiment_name, dataset, target)
    kind, y_true = labelled.prediction_type, labelled.y_true
    y_pred = _predict(model, labelled.matrix, kind, labelled.where)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined precision of classes never predicted...
        if kind == "classification":
            probabilities = _probability_metrics(model, labelled)
            # Metrics of label codes equal those of the labels, and scikit-learn sorts codes
            # far faster than text.
            labels, true_codes, predicted_codes = _label_codes(y_true, y_pred)
            y_true, y_pred = true_codes, predicted_codes
        values = metrics.compute(kind, y_true, y_pred)
        if kind == "classification":
            values.update(probabilities)
    result: dict[str, Any] = {
        "experiment_name": experiment_name,
        "model_id": model.model_id,
        "prediction_type": kind,
        "dataset": labelled.relation.name,
        "target": labelled.target,
        "rows": len(y_true),
        "skipped_rows": labelled.total_rows - len(y_true),
    }
    result.update({name: v if math.isfinite(v) else None for name, v in values.items()})
    if kind == "classification":
        result["confusion_matrix"] = confusion(labels, y_true, y_pred)
    return result


def _probability_metrics(model: LoadedModel, labelled: Labelled) -> dict[str, float]:
    if not gives_probabilities(model.estimator):
        return {}
    table = model.estimator.predict_proba(labelled.matrix)
    return metrics.probability_metrics(labelled.y_true, table, class_labels(model.estimator))


def roc_curves(
    conn: sqlite3.Connection,
    model: LoadedModel,
    experiment_name: str,
    dataset: object,
    target: object = None,
) -> list[ClassCurve]:
    """ROC and precision-recall curves of the deployed classifier on ``dataset``."""
    labelled = read_labelled(conn, model, experiment_name, dataset, target, "sqml_roc_curve")
    if labelled.prediction_type != "classification":
        raise SqmlError(
            f"sqml_roc_curve needs a classification experiment; '{shorten(experiment_name)}' "
            f"is a '{labelled.prediction_type}' experiment"
        )
    if not gives_probabilities(model.estimator):
        raise SqmlError(_no_probabilities(model, experiment_name))
    table = np.asarray(model.estimator.predict_proba(labelled.matrix), dtype=np.float64)
    if not np.isfinite(table).all():
        raise SqmlError(f"{labelled.where}: the model gives probabilities that are not numbers")
    found = curves(labelled.y_true, table, class_labels(model.estimator))
    if not found:
        raise SqmlError(
            f"{labelled.where}: every row with a target has the same class, so no curve "
            "can be drawn (a curve needs positive and negative rows)"
        )
    return found


_being_read = threading.local()


@contextmanager
def _reading(relation: Relation) -> Iterator[None]:
    """Refuse a dataset that calls sqml_evaluate on itself (a view can) at once, rather
    than recursing until Python's stack runs out."""
    active: set[str] = _being_read.__dict__.setdefault("relations", set())
    if relation.quoted in active:
        raise SqmlError(
            f"sqml_evaluate was called on '{shorten(relation.name)}' while reading it (the "
            "dataset calls sqml_evaluate on itself); evaluate on a table or a view that does not"
        )
    active.add(relation.quoted)
    try:
        yield
    finally:
        active.discard(relation.quoted)


def _target_column(relation: Relation, schema: FeatureSchema, target: object) -> str:
    if target is not None:
        return require_column(relation, target, "target")
    if not schema.target:
        raise SqmlError(
            "the deployed model does not record its training target; "
            "name the target column as the third argument"
        )
    try:
        return require_column(relation, schema.target, "target")
    except SqmlError:
        raise SqmlError(
            f"dataset '{shorten(relation.name)}' has no column '{shorten(schema.target)}' "
            "(the experiment's training target); name its target column as the third "
            f"argument; available columns: {choices(relation.columns)}"
        ) from None


def _feature_columns(relation: Relation, schema: FeatureSchema, target: str) -> list[str]:
    """The dataset's spelling of each of the model's feature columns."""
    found, missing = [], []
    for name in schema.names:
        try:
            found.append(require_column(relation, name, "feature"))
        except SqmlError:
            missing.append(name)
    if missing:
        raise SqmlError(
            f"dataset '{shorten(relation.name)}' lacks the model's feature column(s) "
            f"{choices(missing)}; the model expects {choices(schema.names)}"
        )
    if target in found:
        raise SqmlError(
            f"target column '{shorten(target)}' is one of the model's features; "
            "name the column that holds the true values"
        )
    return found


def _read(
    conn: sqlite3.Connection,
    relation: Relation,
    schema: FeatureSchema,
    columns: list[str],
    target: str,
    kind: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(encoded features, true values) of the rows with a usable target, in table order."""
    numeric_labels = kind == "regression" or schema.label_kind == NUMERIC_LABELS
    if numeric_labels and all(feature.kind == NUMERIC for feature in schema.features):
        count = count_rows_with_target(conn, relation, target)
        read = read_numeric(conn, relation, columns, target, count)
        if read is not None:
            return read
    rows = read_rows(conn, relation, [*columns, target], target)
    for position, column in enumerate(columns):
        if any(isinstance(row[position], (bytes, bytearray, memoryview)) for row in rows):
            raise SqmlError(f"feature column '{shorten(column)}' holds BLOB values")
    labels = _true_values([row[-1] for row in rows], target, numeric_labels)
    if numeric_labels:
        keep = ~np.isnan(labels)  # '' or 'NaN' text: missing, as in training
        rows = [row for row, kept in zip(rows, keep, strict=True) if kept]
        labels = labels[keep]
    return encode(schema, [row[:-1] for row in rows], lambda index: ""), labels


def _true_values(values: Sequence[object], column: str, numeric: bool) -> np.ndarray:
    """The target as the model's kind of label (the rules of training's label encoding)."""
    for value in values:
        if isinstance(value, (bytes, bytearray, memoryview)):
            raise SqmlError(f"target column '{shorten(column)}' holds BLOB values")
    if not numeric:
        return np.array([category_of(value) for value in values], dtype=object)
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        try:
            number = as_number(value)
        except (ValueError, TypeError, OverflowError):
            number = math.inf
        if number is not None and not math.isfinite(number):
            raise SqmlError(
                f"target column '{shorten(column)}' holds {describe(value)}, but the model "
                "predicts numbers; name a target column of numbers"
            )
        out[i] = math.nan if number is None else number
    return out


def _predict(model: LoadedModel, matrix: np.ndarray, kind: str, where: str) -> np.ndarray:
    predictions = model.predict(matrix)
    if model.schema.label_kind == TEXT_LABELS:
        return np.array(predictions, dtype=object)
    values = np.asarray(predictions, dtype=np.float64)
    if kind == "regression" and not np.isfinite(values).all():
        raise SqmlError(
            f"{where}: the model predicts a value that is not a finite number for some rows "
            "(a feature value is probably too large for it)"
        )
    return values


def _label_codes(
    y_true: np.ndarray, y_pred: np.ndarray
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """The sorted union of true and predicted labels, and both as indexes into it."""
    true_list, predicted_list = y_true.tolist(), y_pred.tolist()
    labels = sorted(set(true_list) | set(predicted_list))
    index = {label: code for code, label in enumerate(labels)}
    return (
        labels,
        np.array([index[label] for label in true_list], dtype=np.int64),
        np.array([index[label] for label in predicted_list], dtype=np.int64),
    )


def confusion(
    labels: list[Any], true_codes: np.ndarray, predicted_codes: np.ndarray
) -> dict[str, Any]:
    """Counts of (true, predicted) label pairs: rows are true labels, columns predicted."""
    k = len(labels)
    counts = np.bincount(true_codes * k + predicted_codes, minlength=k * k)
    return {"labels": labels, "matrix": counts.reshape(k, k).tolist()}
