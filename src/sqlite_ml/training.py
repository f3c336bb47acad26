"""Domain: what a training run is, from validated arguments to a stored, maybe deployed model."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from . import metrics, persistence, store
from ._version import __version__
from .catalogue import estimator_class, make_estimator, require_prediction_type
from .data import (
    Relation,
    count_labels,
    count_rows_with_target,
    find_relation,
    read_numeric_matrix,
    read_rows,
    require_column,
)
from .errors import SqmlError, choices, describe
from .features import (
    NUMERIC,
    Feature,
    FeatureSchema,
    check_numeric_labels,
    encode_labels,
    numbers_or_error,
)

SPLIT_STRATEGIES = ("shuffle",)


@dataclass(frozen=True)
class TrainRequest:
    experiment_name: str
    prediction_type: str
    algorithm: str
    dataset: Relation
    target: str
    test_size: float
    split_strategy: str
    estimator_cls: type[Any]

    @property
    def feature_columns(self) -> list[str]:
        return [column for column in self.dataset.columns if column != self.target]


def require_experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise SqmlError(f"experiment name must be non-empty text, got {describe(name)}")
    if "\x00" in name:
        raise SqmlError(f"experiment name {describe(name)} contains a NUL character")
    return name


def validate(
    conn: sqlite3.Connection,
    experiment_name: object,
    prediction_type: object,
    algorithm: object,
    dataset: object,
    target: object,
    test_size: object,
    split_strategy: object,
) -> TrainRequest:
    """Check every argument before anything is written."""
    name = require_experiment_name(experiment_name)
    kind = require_prediction_type(prediction_type)
    estimator_cls = estimator_class(kind, algorithm)
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, (int, float))
        or not 0 < test_size < 1
    ):
        raise SqmlError(
            f"test_size must be a number strictly between 0 and 1, got {describe(test_size)}"
        )
    if split_strategy not in SPLIT_STRATEGIES:
        raise SqmlError(
            f"unknown split strategy {describe(split_strategy)}; "
            f"available: {choices(SPLIT_STRATEGIES)}"
        )
    relation = find_relation(conn, dataset)
    target_column = require_column(relation, target, "target")
    experiment = store.find_experiment(conn, name)
    if experiment is not None and experiment.prediction_type != kind:
        raise SqmlError(
            f"experiment '{name}' has prediction type '{experiment.prediction_type}', "
            f"not '{kind}'; an experiment keeps its prediction type (use another name)"
        )
    request = TrainRequest(
        name,
        kind,
        str(algorithm),
        relation,
        target_column,
        float(test_size),
        str(split_strategy),
        estimator_cls,
    )
    if not request.feature_columns:
        raise SqmlError(
            f"dataset '{relation.name}' has no column besides the target '{target_column}'"
        )
    duplicates = sorted(
        {c for c in request.feature_columns if request.feature_columns.count(c) > 1}
    )
    if duplicates:
        raise SqmlError(
            f"dataset '{relation.name}' has several columns named {choices(duplicates)}; "
            "give them distinct names in a view"
        )
    return request


@dataclass
class PreparedData:
    matrix: np.ndarray
    labels: np.ndarray
    schema: FeatureSchema
    digest: str


def prepare(conn: sqlite3.Connection, request: TrainRequest) -> PreparedData:
    """Read the rows that have a target and encode their features and labels.

    All-numeric data (the common case, and the big one) is read by numpy straight from
    the cursor into one float64 array; data with TEXT (categories, text labels, numbers
    stored as text) or infinities goes through Python values and the feature schema's rules.
    """
    features, target = request.feature_columns, request.target
    if request.prediction_type == "classification":
        count, text_labels = count_labels(conn, request.dataset, target)  # one scan for both
    else:
        count, text_labels = count_rows_with_target(conn, request.dataset, target), False
    _require_two_rows(request, count)
    if not text_labels:
        block = read_numeric_matrix(conn, request.dataset, [*features, target], target, count)
        if block is not None and not np.isinf(block).any():
            # A view of the block: the split copies the rows it picks anyway.
            matrix, labels = block[:, :-1], block[:, -1].copy()
            keep = ~np.isnan(labels)  # a target of '' or 'NaN' text is missing
            if not keep.all():
                matrix, labels = matrix[keep], labels[keep]
            if request.prediction_type == "classification":
                check_numeric_labels(labels)
            if len(labels) >= 2:
                features_schema = [Feature(name, NUMERIC) for name in features]
                schema = FeatureSchema(features_schema, target, NUMERIC)
                return PreparedData(matrix, labels, schema, _digest(matrix, labels))
    return _prepare_from_rows(conn, request)


def _require_two_rows(request: TrainRequest, rows: int) -> None:
    if rows < 2:
        raise SqmlError(
            f"dataset '{request.dataset.name}' has {rows} row(s) with a usable target "
            f"'{request.target}'; at least 2 are needed to train and test"
        )


def _prepare_from_rows(conn: sqlite3.Connection, request: TrainRequest) -> PreparedData:
    features = request.feature_columns
    rows = read_rows(conn, request.dataset, [*features, request.target], request.target)
    columns: list[Sequence[object]] = list(zip(*rows, strict=True))
    del rows
    target_values = columns[-1]
    if request.prediction_type == "classification":
        labels, label_kind = encode_labels(target_values)
    else:
        labels, label_kind = numbers_or_error(request.target, target_values), NUMERIC
        keep = ~np.isnan(labels)
        if not keep.all():  # empty strings in a numeric target count as missing
            columns = [[v for v, k in zip(column, keep, strict=True) if k] for column in columns]
            labels = labels[keep]
    _require_two_rows(request, len(labels))
    schema = FeatureSchema.infer(features, columns[:-1], request.target, label_kind)
    matrix = schema.encode_columns(columns[:-1], len(labels))
    infinite = np.isinf(matrix).any(axis=0)
    if infinite.any():
        column = schema.feature_at(int(np.argmax(infinite))).name
        raise SqmlError(
            f"column '{column}' holds an infinite value; replace it (or filter it out in a "
            "view) before training"
        )
    return PreparedData(matrix, labels, schema, _digest(matrix, labels))


def _digest(matrix: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the encoded training data, the same whichever way it was read."""
    hasher = hashlib.sha256()
    for start in range(0, len(matrix), 65536):  # in slices: no full copy of the matrix
        hasher.update(np.ascontiguousarray(matrix[start : start + 65536]).data)
    if labels.dtype == object:
        hasher.update(json.dumps(labels.tolist()).encode())
    else:
        hasher.update(np.ascontiguousarray(labels, dtype=np.float64).data)
    return hasher.hexdigest()


def build_pipeline(request: TrainRequest, seed: int) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", make_estimator(request.estimator_cls, seed)),
        ]
    )


def library_versions() -> dict[str, str]:
    import skops

    return {
        "sqlite_ml": __version__,
        "python": sys.version.split()[0],
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "skops": skops.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


def _start_run(
    conn: sqlite3.Connection, request: TrainRequest
) -> tuple[store.Experiment, int, bool]:
    """Create the experiment (if new) and a pending run; also tells whether the run row
    will survive a failure (it cannot inside a statement that writes)."""
    with store.savepoint(conn) as isolated:
        experiment = store.find_experiment(conn, request.experiment_name)
        if experiment is None:
            experiment = store.create_experiment(
                conn, request.experiment_name, request.prediction_type, secrets.randbelow(2**31)
            )
        elif experiment.random_state is None:  # made by sqlite-ml 0.1.x
            seed = secrets.randbelow(2**31)
            store.set_experiment_random_state(conn, experiment.id, seed)
            experiment = store.Experiment(
                experiment.id, experiment.name, experiment.prediction_type, seed
            )
        run_id = store.create_run(
            conn,
            experiment.id,
            {
                "algorithm": request.algorithm,
                "dataset": request.dataset.name,
                "target": request.target,
                "test_size": request.test_size,
                "split_strategy": request.split_strategy,
                "seed": experiment.random_state,
                "library_versions": json.dumps(library_versions()),
            },
        )
    return experiment, run_id, isolated


_LOCKED = (
    "the database is locked by another connection's write, and SQLite cannot wait for it "
    "from inside the statement that calls sqml_train (that statement already reads the "
    "database); train again when the other writer is done, or train from one connection "
    "at a time"
)


def _why(error: BaseException) -> str:
    if isinstance(error, SqmlError):
        return error.message
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    ):
        return _LOCKED
    if isinstance(error, sqlite3.Error):
        return str(error)
    return f"{type(error).__name__}: {error}"


def train(conn: sqlite3.Connection, request: TrainRequest) -> dict[str, Any]:
    """Run one training: a run row first, then a model, metrics and maybe a deployment.

    A failure after the run row exists leaves it 'failed' with the error text and writes
    no model, metric or deployment.
    """
    try:
        experiment, run_id, isolated = _start_run(conn, request)
    except sqlite3.Error as error:
        raise SqmlError(f"training did not start: {_why(error)}") from error
    seed = experiment.random_state
    assert seed is not None
    try:
        return _fit_and_record(conn, request, experiment, run_id, seed)
    except Exception as error:
        message = _why(error)
        try:
            with store.savepoint(conn):
                store.update_run(
                    conn, run_id, {"status": "failed", "error": message, "finished_at": store.now()}
                )
        except sqlite3.Error as recording:
            raise SqmlError(
                f"training run {run_id} failed: {message}; recording the failure failed too "
                f"({_why(recording)}), so the run is still marked 'pending'"
            ) from error
        if not isolated:
            raise SqmlError(
                f"training failed: {message} (called inside a statement that writes, so the "
                "run record is undone with that statement; run SELECT sqml_train(...) on its "
                "own to keep a record of failed runs)"
            ) from error
        raise SqmlError(f"training run {run_id} failed: {message}") from error


def _fit_and_record(
    conn: sqlite3.Connection,
    request: TrainRequest,
    experiment: store.Experiment,
    run_id: int,
    seed: int,
) -> dict[str, Any]:
    data = prepare(conn, request)
    x_train, x_test, y_train, y_test = train_test_split(
        data.matrix, data.labels, test_size=request.test_size, random_state=seed, shuffle=True
    )
    data.matrix = np.empty((0, data.matrix.shape[1]))  # the split holds its own copies now
    pipeline = build_pipeline(request, seed)
    # Impute and scale the split's copies in place while fitting and scoring (two fewer
    # copies of the data at the peak); the stored pipeline copies its input again.
    pipeline.set_params(impute__copy=False, scale__copy=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        pipeline.fit(x_train, y_train)
        fit_time = time.perf_counter() - started
        del x_train
        started = time.perf_counter()
        predicted = pipeline.predict(x_test)
        score_time = time.perf_counter() - started
        values = metrics.compute(request.prediction_type, y_test, predicted)
    pipeline.set_params(impute__copy=True, scale__copy=True)
    score = values["score"]
    if not math.isfinite(score):
        raise SqmlError(
            f"the score on the test split is not a number ({len(y_test)} test row(s)); "
            "use a larger dataset or test_size"
        )
    values = {name: value for name, value in values.items() if math.isfinite(value)}
    blob = persistence.dumps(pipeline)
    digest = persistence.digest(blob)
    warning_text = sorted({f"{w.category.__name__}: {w.message}" for w in caught})

    with store.savepoint(conn):
        model_id = store.insert_model(conn, run_id, blob, digest, data.schema.to_json())
        store.insert_metrics(conn, model_id, values)
        active = store.active_model(conn, experiment.id)
        deployed = (
            active is None
            or active.format != persistence.FORMAT  # a 0.1.x pickle can never be served
            or active.score is None
            or score > active.score
        )
        if deployed:
            store.deploy(conn, experiment.id, model_id, "automatic")
        store.update_run(
            conn,
            run_id,
            {
                "status": "success",
                "finished_at": store.now(),
                "fit_time": fit_time,
                "score_time": score_time,
                "data_rows": len(data.labels),
                "train_rows": len(y_train),
                "test_rows": len(y_test),
                "data_digest": data.digest,
                "feature_names": json.dumps(data.schema.names),
                "feature_types": json.dumps(data.schema.types()),
                "hyperparams": json.dumps(_plain(pipeline.named_steps["model"].get_params())),
                "warnings": json.dumps(warning_text) if warning_text else None,
            },
        )
    return {
        "experiment_name": request.experiment_name,
        "prediction_type": request.prediction_type,
        "algorithm": request.algorithm,
        "deployed": deployed,
        "score": score,
        "run_id": run_id,
        "model_id": model_id,
        "metrics": values,
        "seed": seed,
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "fit_time": fit_time,
    }


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as JSON values (estimator objects and the like become their repr)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(
            isinstance(v, (bool, int, float, str)) for v in value
        ):
            out[key] = list(value)
        else:
            out[key] = repr(value)
    return out
