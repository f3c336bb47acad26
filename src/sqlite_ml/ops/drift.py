"""Domain: the training rows' per-feature summaries stored with each model
(``sqml_models.training_summary``), and ``sqml_drift``, which compares a dataset's rows
with those of the deployed model (``ml/drift.py`` has the statistics and thresholds)."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import jsontext
from ..db import records as store
from ..db.readers import read_rows
from ..db.relations import find_relation, require_column
from ..errors import SqmlError, choices, shorten
from ..ml import drift
from ..ml.features import NUMERIC, FeatureSchema
from ..ml.values import as_number, category_of
from .experiments import require_active_model, require_experiment


def feature_summaries(
    schema: FeatureSchema,
    matrix: np.ndarray,
    columns: Sequence[Sequence[object]] | None,
    train_rows: np.ndarray,
) -> dict[str, Any]:
    """Each feature's summary of the training rows: numeric features from the encoded
    matrix (their own values, NaN where missing), the others from their raw values."""
    features: dict[str, Any] = {}
    offset = 0
    for position, feature in enumerate(schema.features):
        if feature.kind == NUMERIC:
            features[feature.name] = drift.summarize_numeric(matrix[train_rows, offset])
        elif columns is not None:
            raw = columns[position]
            features[feature.name] = drift.summarize_categories(
                [category_of(raw[i]) for i in train_rows.tolist()]
            )
        offset += feature.width()
    return features


def training_summary(
    features: dict[str, Any], rows: int, model_input_mean: np.ndarray | None
) -> str:
    """The JSON stored in ``sqml_models.training_summary``."""
    summary: dict[str, Any] = {"version": drift.SUMMARY_VERSION, "rows": rows, "features": features}
    if model_input_mean is not None:
        summary["model_input_mean"] = [float(v) for v in model_input_mean]
    return json.dumps(summary, allow_nan=False)


def stored_summary(conn: sqlite3.Connection, model_id: int) -> dict[str, Any] | None:
    """A model's training summary, None when it has none (trained before version 3)."""
    text = store.training_summary(conn, model_id)
    if text is None:
        return None
    try:
        value = jsontext.loads(text)
    except ValueError:
        raise SqmlError(f"the training summary of model {model_id} is damaged") from None
    if not isinstance(value, dict) or not isinstance(value.get("features"), dict):
        raise SqmlError(f"the training summary of model {model_id} is damaged")
    return value


def drift_report(
    conn: sqlite3.Connection, experiment_name: object, dataset: object
) -> dict[str, Any]:
    """``{feature: {psi, test, statistic, p_value, drift, ...}}`` of ``dataset``'s rows
    against the training rows of the experiment's deployed model."""
    experiment = require_experiment(conn, experiment_name)
    active = require_active_model(conn, experiment)
    summary = stored_summary(conn, active.model_id)
    if summary is None:
        raise SqmlError(
            f"the deployed model {active.model_id} of experiment '{shorten(experiment.name)}' "
            "has no summary of its training rows (it was trained by an earlier version of "
            "sqlite-ml); retrain the experiment to compare data with it"
        )
    relation = find_relation(conn, dataset)
    features: dict[str, dict[str, Any]] = summary["features"]
    missing = [name for name in features if not _has(relation, name)]
    if missing:
        raise SqmlError(
            f"dataset '{shorten(relation.name)}' lacks the model's feature column(s) "
            f"{choices(missing)}; it has {choices(relation.columns)}"
        )
    columns = [require_column(relation, name, "feature") for name in features]
    rows = read_rows(conn, relation, columns, None)
    if not rows:
        raise SqmlError(f"dataset '{shorten(relation.name)}' has no rows to compare")
    report: dict[str, Any] = {}
    for position, (name, trained) in enumerate(features.items()):
        values = [row[position] for row in rows]
        if trained.get("kind") == "numeric":
            report[name] = drift.compare_numeric(trained, _numbers(values))
        else:
            report[name] = drift.compare_categories(trained, [category_of(v) for v in values])
    return {name: _json_safe(value) for name, value in report.items()}


def _has(relation: Any, name: str) -> bool:
    try:
        require_column(relation, name, "feature")
    except SqmlError:
        return False
    return True


def _numbers(values: Sequence[object]) -> np.ndarray:
    """Numbers as training read them; a value that is not one (text, BLOB) counts as
    missing here (sqml_predict would refuse that row)."""
    out = np.empty(len(values))
    for i, value in enumerate(values):
        try:
            number = as_number(value)
        except (ValueError, TypeError):
            number = None
        out[i] = math.nan if number is None or not math.isfinite(number) else number
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
