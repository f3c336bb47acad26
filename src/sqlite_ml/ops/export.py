"""Domain: exporting a stored model (``sqml_export_model``), checked before it is handed out.

The model is an experiment's deployed model or a model id. Its pipeline becomes one ONNX
graph (``ml.onnx_export``), which ONNX Runtime then runs on rows of the model's run, and
compares with the model's own predictions: the same classes and cluster ids, and
probabilities and regression values within the float32 tolerance below. A graph that
disagrees is an error, never an export.

The rows checked are the run's test rows, recomputed from what the run recorded (dataset,
target, seed, test_size, split strategy or hashed split, order_by) when the dataset still
gives the rows the run trained on (the same SHA-256 of its encoded data as the run
recorded); otherwise a seeded sample of the dataset's current rows. Either way a few
copies of those rows with one column NULL, or one text column set to an unseen category,
are added, so every encoding's missing-value path is checked too. The model's metadata
(``sqlite_ml.check``) says which rows were used and the differences measured.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import jsontext
from .._version import __version__
from ..db import records as store
from ..db.readers import read_keys, read_rows
from ..db.relations import Relation, find_relation, require_column
from ..errors import SqmlError, choices, describe, shorten, unknown
from ..ml import onnx_export, persistence
from ..ml.features import NUMERIC, Feature, FeatureSchema
from ..ml.labels import TEXT_LABELS, encode_labels, numbers_or_error
from ..ml.probabilities import class_labels, gives_probabilities
from ..ml.splits import KEYED_SCHEMES, split_rows
from .deployment import model_id_of
from .experiments import require_active_model, unknown_experiment
from .prediction import schema_for
from .train_parts import digest_of

FORMATS = ("onnx",)
MAX_CHECK_ROWS = 1000
# Tolerances of the check (the graph computes trees, boosters and some models in float32):
# probabilities absolutely; regression values relative to the largest prediction checked
# (at least 1), so a value near zero from a large-valued model is judged on that scale.
PROBABILITY_TOLERANCE = 1e-5
REGRESSION_TOLERANCE = 1e-5
# A class the graph picks may differ from the model's only where the model itself has a
# tie: both classes' probabilities within this of its highest.
TIE_TOLERANCE = 1e-6


@dataclass
class CheckRows:
    rows: list[list[object]]  # SQL values of the model's feature columns, in schema order
    source: str  # which rows they are, for the metadata and the errors


def require_format(value: object) -> str:
    if not isinstance(value, str) or value.strip().lower() not in FORMATS:
        raise unknown("export format", value, FORMATS)
    return value.strip().lower()


def export_model(conn: sqlite3.Connection, experiment_or_model_id: object, format: object) -> bytes:
    """The ONNX bytes of the model, after the check."""
    require_format(format)
    record = _model_record(conn, experiment_or_model_id)
    model_id = record.model_id
    algorithm = str(record.run.get("algorithm") or "")
    how = onnx_export.require_covered(record.prediction_type, algorithm, model_id)
    onnx_export.require_libraries(how)
    pipeline, schema = _load(conn, record)
    exported = onnx_export.to_onnx(
        pipeline,
        schema,
        record.prediction_type,
        algorithm,
        model_id,
        {
            "sqlite_ml.version": __version__,
            "sqlite_ml.model_id": str(model_id),
            "sqlite_ml.experiment": record.experiment_name,
            "sqlite_ml.prediction_type": record.prediction_type,
            "sqlite_ml.algorithm": algorithm,
            "sqlite_ml.model_digest": record.digest or "",
        },
    )
    checked = check_rows(conn, record, schema)
    report = compare(exported, pipeline, schema, record, checked)
    properties = {p.key: p.value for p in exported.model.metadata_props}
    properties["sqlite_ml.check"] = json.dumps(report)
    from onnx import helper

    del exported.model.metadata_props[:]
    helper.set_model_props(exported.model, properties)
    return bytes(exported.model.SerializeToString())


def _model_record(conn: sqlite3.Connection, value: object) -> store.ModelRun:
    """An experiment name means its deployed model (a name is tried first, so an
    experiment called '42' is still found); an integer or text of digits, a model id."""
    if isinstance(value, str) and value:
        experiment = store.find_experiment(conn, value)
        if experiment is not None:
            return _by_id(conn, require_active_model(conn, experiment).model_id)
    model_id = model_id_of(value)
    if model_id is not None:
        return _by_id(conn, model_id)
    if isinstance(value, str) and value.strip():
        raise unknown_experiment(value, store.experiment_names(conn))
    raise SqmlError(
        "sqml_export_model takes an experiment name or a model id (an integer or text of "
        f"digits), got {describe(value)}"
    )


def _by_id(conn: sqlite3.Connection, model_id: int) -> store.ModelRun:
    record = store.model_run(conn, model_id)
    if record is None:
        ids = store.model_ids(conn)
        listed = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
        raise SqmlError(
            f"model {model_id} does not exist; model ids in this database: {listed or 'none yet'}"
        )
    if record.format != persistence.FORMAT:
        raise SqmlError(
            f"model {model_id} was stored by sqlite-ml 0.1.x as a pickle, which sqlite-ml "
            "never loads; retrain the experiment to export it"
        )
    return record


def _load(conn: sqlite3.Connection, record: store.ModelRun) -> tuple[Any, FeatureSchema]:
    pipeline = persistence.loads(
        store.model_blob(conn, record.model_id), record.model_id, record.digest
    )
    if not record.schema_json:
        raise SqmlError(
            f"model {record.model_id} has no feature schema (it was not made by this version "
            "of sqlite-ml); retrain the experiment"
        )
    return pipeline, schema_for(pipeline, record.schema_json, record.model_id)


# --- the rows checked --------------------------------------------------------------------


def check_rows(
    conn: sqlite3.Connection, record: store.ModelRun, schema: FeatureSchema
) -> CheckRows:
    """The run's test rows when the dataset is as the run trained on it, else a seeded
    sample of its current rows; plus copies with one column NULL or an unseen category."""
    run = record.run
    dataset = str(run.get("dataset") or "")
    where = f"cannot check the ONNX export of model {record.model_id} on its run's dataset"
    try:
        relation = find_relation(conn, dataset)
        columns = [require_column(relation, name, "feature") for name in schema.names]
    except SqmlError as error:
        raise SqmlError(
            f"{where} '{shorten(dataset)}': {error.message}. The export is compared with the "
            "model on rows of that dataset before it is returned: recreate it (a table or "
            f"view named '{shorten(dataset)}' with the columns {choices(schema.names)})"
        ) from None
    base = _test_rows(conn, record, schema, relation, columns)
    if base is None:
        base = _sample(conn, record, schema, relation, columns)
    if not base.rows:
        raise SqmlError(f"{where} '{shorten(dataset)}': it has no row the model can read")
    probes = _probe_rows(schema, base.rows)
    return CheckRows(
        base.rows + probes,
        f"{base.source}, and {len(probes)} copies of them with one column NULL or an "
        "unseen category",
    )


def _order_by(run: dict[str, object]) -> str | None:
    if run.get("split_strategy") != "last":
        return None
    try:
        options = jsontext.loads(str(run.get("options") or "{}"))
    except ValueError:
        return None
    order_by = options.get("order_by") if isinstance(options, dict) else None
    return order_by if isinstance(order_by, str) else None


def _test_rows(
    conn: sqlite3.Connection,
    record: store.ModelRun,
    schema: FeatureSchema,
    relation: Relation,
    columns: list[str],
) -> CheckRows | None:
    """The run's own test rows, or None when they cannot be told any more (the dataset's
    rows differ from those the run trained on, or the run recorded too little)."""
    run = record.run
    seed, digest, test_size = run.get("seed"), run.get("data_digest"), run.get("test_size")
    if not isinstance(seed, int) or not isinstance(digest, str) or not test_size:
        return None
    target_name = str(run.get("target") or "") or None
    order_by = _order_by(run)
    try:
        target = None if target_name is None else require_column(relation, target_name, "target")
        key_name = run.get("key_column")
        rows = read_rows(
            conn,
            relation,
            [*columns, *([target] if target else [])],
            target,
            order_by,
            key_column=key_name if isinstance(key_name, str) else None,
        )
        rows, labels = _labelled(record.prediction_type, rows, target is not None)
        unfitted = _unfitted(schema)
        matrix = unfitted.encode_columns(
            list(zip(*rows, strict=True)) or [()] * len(columns), len(rows)
        )
    except (SqmlError, ValueError, TypeError):
        return None
    if digest_of(matrix, labels) != digest:
        return None
    features = [list(row[: len(columns)]) for row in rows]
    if run.get("split_scheme") in KEYED_SCHEMES:
        key_column = run.get("key_column")
        try:
            keys = read_keys(
                conn,
                relation,
                key_column if isinstance(key_column, str) else None,
                target,
                order_by,
            )
        except SqmlError:
            return None
        if len(keys) != len(rows):
            return None
        strategy = str(run.get("split_strategy") or "shuffle")
        _, test = split_rows(strategy, float(test_size), labels, seed, keys)  # type: ignore[arg-type]
        how = (
            f"hashed split of row keys, seed {seed}"
            if run.get("split_scheme") != "last"
            else f"the last rows in key order, test_size {test_size}"
        )
    else:
        strategy = str(run.get("split_strategy") or "shuffle")
        _, test = split_rows(strategy, float(test_size), labels, seed)  # type: ignore[arg-type]
        how = f"split '{strategy}', test_size {test_size}, seed {seed}"
    chosen = _at_most(np.sort(test), seed)
    kept = "" if len(chosen) == len(test) else f"a seeded sample of {len(chosen)} of "
    return CheckRows(
        [features[i] for i in chosen],
        f"{kept}the {len(test)} test rows of run {run.get('id')} of '{relation.name}' "
        f"(recomputed: {how}; the dataset still holds the rows the run trained on)",
    )


def _labelled(
    prediction_type: str, rows: list[Any], has_target: bool
) -> tuple[list[Any], np.ndarray]:
    """Rows and labels as training read them (a regression target that reads as NaN
    leaves its row out)."""
    if not has_target:
        return rows, np.zeros(len(rows))
    values = [row[-1] for row in rows]
    if prediction_type == "classification":
        labels, _ = encode_labels(values)
        return [row[:-1] for row in rows], labels
    numbers = numbers_or_error("target", values)
    keep = ~np.isnan(numbers)
    return [row[:-1] for row, k in zip(rows, keep, strict=True) if k], numbers[keep]


def _unfitted(schema: FeatureSchema) -> FeatureSchema:
    """The schema as training encoded the data it digested: target encodings not fitted
    yet (a category's position)."""
    features = [
        Feature(f.name, f.kind, f.categories, [], f.outputs, f.required) for f in schema.features
    ]
    return FeatureSchema(features, schema.target, schema.label_kind)


def _at_most(positions: np.ndarray, seed: int) -> np.ndarray:
    if len(positions) <= MAX_CHECK_ROWS:
        return positions
    picked = np.random.default_rng(seed).choice(len(positions), MAX_CHECK_ROWS, replace=False)
    return positions[np.sort(picked)]


def _sample(
    conn: sqlite3.Connection,
    record: store.ModelRun,
    schema: FeatureSchema,
    relation: Relation,
    columns: list[str],
) -> CheckRows:
    """A seeded sample of the dataset's current rows that the model can read."""
    seed = record.run.get("seed")
    seed = seed if isinstance(seed, int) else 0
    rows = [list(row) for row in read_rows(conn, relation, columns, None)]
    order = np.random.default_rng(seed).permutation(len(rows))
    picked: list[list[object]] = []
    for position in order:
        try:
            schema.encode_record(rows[position])
        except SqmlError:
            continue  # a row the model refuses (a NULL where impute is 'error', a BLOB...)
        picked.append(rows[position])
        if len(picked) == MAX_CHECK_ROWS:
            break
    return CheckRows(
        picked,
        f"a seeded sample (seed {seed}) of {len(picked)} of the {len(rows)} current rows of "
        f"'{relation.name}', which no longer holds exactly the rows run {record.run.get('id')} "
        "trained on, so its test rows cannot be recomputed",
    )


def _probe_rows(schema: FeatureSchema, rows: list[list[object]]) -> list[list[object]]:
    """Copies of the first rows with one column NULL (unless the model refuses NULL
    there), and with one text column set to a category training never saw."""
    probes: list[list[object]] = []
    for position, feature in enumerate(schema.features):
        base = rows[position % len(rows)]
        if not feature.required:
            probes.append([None if i == position else v for i, v in enumerate(base)])
        if feature.kind != NUMERIC:
            unseen = _unseen(feature)
            probes.append([unseen if i == position else v for i, v in enumerate(base)])
    return probes


def _unseen(feature: Feature) -> str:
    text = "unseen category"
    while text in feature.categories:
        text += "!"
    return text


# --- the comparison ----------------------------------------------------------------------


def compare(
    exported: onnx_export.Exported,
    pipeline: Any,
    schema: FeatureSchema,
    record: store.ModelRun,
    checked: CheckRows,
) -> dict[str, Any]:
    """Run the graph on the rows and compare with the model's own predictions; an error
    naming the first disagreement when they differ beyond the tolerance."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        exported.model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, onnx_export.input_feed(exported.inputs, checked.rows))
    got = dict(zip([o.name for o in session.get_outputs()], outputs, strict=True))
    matrix = schema.encode_records(checked.rows)
    report: dict[str, Any] = {"rows": len(checked.rows), "source": checked.source}
    model_p = None
    if onnx_export.PROBABILITIES in got and gives_probabilities(pipeline):
        model_p = np.asarray(pipeline.predict_proba(matrix), dtype=np.float64)
        problem = _compare_probabilities(got[onnx_export.PROBABILITIES], model_p, report)
    else:
        problem = None
    expected = pipeline.predict(matrix)
    if record.prediction_type == "regression":
        problem = problem or _compare_values(got[onnx_export.PREDICTION], expected, report)
    else:
        labels = got[onnx_export.PREDICTION]
        classes = class_labels(pipeline) if model_p is not None else []
        problem = problem or _compare_labels(
            _labels(labels, schema, record.prediction_type),
            _labels(expected, schema, record.prediction_type),
            model_p,
            _labels(classes, schema, record.prediction_type),
            report,
        )
    if problem is not None:
        raise SqmlError(
            f"the ONNX graph of model {record.model_id} does not reproduce the model: {problem} "
            f"on {checked.source}; it was not exported (a converter's limit: please report it)"
        )
    return report


def _compare_probabilities(got: Any, model_p: np.ndarray, report: dict[str, Any]) -> str | None:
    difference = _max_difference(np.asarray(got, dtype=np.float64), model_p)
    report["max_probability_difference"] = difference
    report["probability_tolerance"] = PROBABILITY_TOLERANCE
    if not difference <= PROBABILITY_TOLERANCE:
        return f"probabilities differ by up to {difference:.3g}"
    return None


def _compare_values(got: Any, expected: Any, report: dict[str, Any]) -> str | None:
    onnx_values = np.asarray(got, dtype=np.float64)
    model_values = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.nanmax(np.abs(model_values), initial=0.0)))
    tolerance = REGRESSION_TOLERANCE * scale
    difference = _max_difference(onnx_values, model_values)
    report["max_prediction_difference"] = difference
    report["prediction_tolerance"] = tolerance
    if not difference <= tolerance:
        off = np.flatnonzero(~(np.abs(onnx_values - model_values) <= tolerance))
        i = int(off[0]) if len(off) else 0
        return (
            f"{len(off)} values differ by more than {tolerance:.3g} (first: the model "
            f"predicts {model_values[i]!r}, the graph {onnx_values[i]!r})"
        )
    return None


def _compare_labels(
    onnx_labels: list[Any],
    model_labels: list[Any],
    model_p: np.ndarray | None,
    classes: list[Any],
    report: dict[str, Any],
) -> str | None:
    """Classes and cluster ids must be the same, except on a tie: a row where the model's
    own probabilities of both classes are within ``TIE_TOLERANCE`` of its highest (float32
    sums cannot break such a tie the way the model's double sums happen to)."""
    differing = [
        i for i, (a, b) in enumerate(zip(onnx_labels, model_labels, strict=True)) if a != b
    ]
    position = {label: j for j, label in enumerate(classes)}
    ties: set[int] = set()
    for i in differing if model_p is not None else []:
        assert model_p is not None
        a, b = position.get(model_labels[i]), position.get(onnx_labels[i])
        row = model_p[i]
        if a is not None and b is not None and min(row[a], row[b]) >= row.max() - TIE_TOLERANCE:
            ties.add(i)
    wrong = [i for i in differing if i not in ties]
    report["differing_predictions"] = len(wrong)
    report["tied_predictions"] = len(ties)
    if wrong:
        i = wrong[0]
        return (
            f"{len(wrong)} predictions differ (first: the model predicts "
            f"{model_labels[i]!r}, the graph {onnx_labels[i]!r})"
        )
    return None


def _labels(values: Any, schema: FeatureSchema, kind: str) -> list[Any]:
    if kind == "clustering":
        return [int(v) for v in np.asarray(values).ravel()]
    if schema.label_kind == TEXT_LABELS:
        return [str(v) for v in np.asarray(values, dtype=object).ravel()]
    return [float(v) for v in np.asarray(values).ravel()]


def _max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest absolute difference; infinite when shapes or NaN positions differ."""
    if a.shape != b.shape:
        a = a.reshape(b.shape) if a.size == b.size else a
        if a.shape != b.shape:
            return math.inf
    both_nan = np.isnan(a) & np.isnan(b)
    if (np.isnan(a) != np.isnan(b)).any():
        return math.inf
    if not a.size:
        return 0.0
    return float(np.max(np.where(both_nan, 0.0, np.abs(a - b))))
