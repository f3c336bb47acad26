"""Domain: what a training run is, from validated arguments to a stored, maybe deployed model."""

from __future__ import annotations

import contextlib
import dataclasses
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

import lightgbm
import numpy as np
import sklearn
import xgboost
from sklearn.pipeline import Pipeline

from .._version import __version__
from ..db import records as store
from ..db.readers import count_labels, count_rows_with_target, read_rows
from ..db.relations import Relation, find_relation, has_rowid, require_column
from ..db.transactions import now, savepoint
from ..errors import SqmlError, choices, describe, unknown
from ..ml import metrics, persistence
from ..ml.catalogue import estimator_class, make_estimator, require_prediction_type
from ..ml.features import NUMERIC, Feature, FeatureSchema
from ..ml.labels import (
    CLUSTER_LABELS,
    NUMERIC_LABELS,
    check_numeric_labels,
    encode_labels,
    numbers_or_error,
)
from ..ml.pipelines import build_pipeline, transform_in_place
from ..ml.splits import SPLIT_STRATEGIES, split_rows
from ..scoring import better
from . import importance, native_forms, progress, search
from .experiments import new_experiment_name
from .options import TrainOptions, validate_options
from .reading import read_numeric


@dataclass(frozen=True)
class TrainRequest:
    experiment_name: str
    prediction_type: str
    algorithm: str
    dataset: Relation
    target: str | None  # None: clustering without a target
    test_size: float
    split_strategy: str
    estimator_cls: type[Any]
    options: TrainOptions = TrainOptions()

    @property
    def feature_columns(self) -> list[str]:
        if self.options.features is not None:
            return list(self.options.features)
        return [column for column in self.dataset.columns if column != self.target]

    @property
    def encodings(self) -> dict[str, str | None]:
        return {name: spec.encode for name, spec in self.options.preprocess.items()}

    @property
    def order_by(self) -> str | None:
        return self.options.order_by if self.split_strategy == "last" else None


def validate(
    conn: sqlite3.Connection,
    experiment_name: object,
    prediction_type: object,
    algorithm: object,
    dataset: object,
    target: object,
    test_size: object,
    split_strategy: object,
    options: object = None,
) -> TrainRequest:
    """Check every argument before anything is written."""
    name = new_experiment_name(experiment_name)
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
        raise unknown("split strategy", split_strategy, SPLIT_STRATEGIES)
    if split_strategy == "stratified" and kind != "classification":
        raise SqmlError(
            f"split strategy 'stratified' keeps class proportions, so it needs prediction "
            f"type 'classification', not '{kind}'; use 'shuffle' or 'last'"
        )
    relation = find_relation(conn, dataset)
    if kind == "clustering" and target is None:
        target_column = None
    else:
        target_column = require_column(relation, target, "target")
    experiment = store.find_experiment(conn, name)
    if experiment is not None and experiment.prediction_type != kind:
        raise SqmlError(
            f"experiment '{name}' has prediction type '{experiment.prediction_type}', "
            f"not '{kind}'; an experiment keeps its prediction type (use another name)"
        )
    choices_made = validate_options(
        options,
        prediction_type=kind,
        algorithm=str(algorithm),
        estimator_cls=estimator_cls,
        relation=relation,
        target=target_column,
        default_features=[c for c in relation.columns if c != target_column],
    )
    if choices_made.order_by is not None and split_strategy != "last":
        raise SqmlError(
            f"option order_by applies to split strategy 'last' only, not '{split_strategy}'"
        )
    if split_strategy == "last" and choices_made.order_by is None:
        if not has_rowid(conn, relation):
            raise SqmlError(
                f"split strategy 'last' needs option order_by for '{relation.name}': it is a "
                f"{relation.kind} without a rowid, so its rows have no order of their own"
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
        choices_made,
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
    labels: np.ndarray  # clustering: zeros, one per row
    schema: FeatureSchema
    digest: str
    # The raw feature values, kept only when a target encoding is fitted after the split.
    columns: list[Sequence[object]] | None = None


def prepare(conn: sqlite3.Connection, request: TrainRequest) -> PreparedData:
    """Read the rows that have a target and encode their features and labels.

    All-numeric data (the common case, and the big one) is read by numpy straight from
    the cursor into one float64 array; data with TEXT (categories, text labels, numbers
    stored as text) or infinities goes through Python values and the feature schema's rules.
    """
    prepared = _prepare(conn, request)
    progress.report("load", len(prepared.labels), len(prepared.labels))
    required = [n for n, spec in request.options.preprocess.items() if spec.impute == "error"]
    if required:
        prepared.schema = prepared.schema.require(required)
        _refuse_missing(prepared, required)
    return prepared


def _prepare(conn: sqlite3.Connection, request: TrainRequest) -> PreparedData:
    features, target = request.feature_columns, request.target
    if request.prediction_type == "classification" and target is not None:
        count, text_labels = count_labels(conn, request.dataset, target)  # one scan for both
    else:
        count, text_labels = count_rows_with_target(conn, request.dataset, target), False
    _require_two_rows(request, count)
    categorical = any(e not in (None, "none") for e in request.encodings.values())
    label_kind = CLUSTER_LABELS if target is None else NUMERIC_LABELS
    if not text_labels and not categorical:
        read = read_numeric(conn, request.dataset, features, target, count, request.order_by)
        if read is not None:
            matrix, labels = read
            if request.prediction_type == "classification":
                check_numeric_labels(labels)
            if len(labels) >= 2:
                features_schema = [Feature(name, NUMERIC) for name in features]
                schema = FeatureSchema(features_schema, target or "", label_kind)
                return PreparedData(matrix, labels, schema, _digest(matrix, labels))
    return _prepare_from_rows(conn, request)


def _refuse_missing(prepared: PreparedData, required: list[str]) -> None:
    """Preprocess impute 'error': a NULL in such a column stops the run, naming it."""
    start = 0
    for position, feature in enumerate(prepared.schema.features):
        block = prepared.matrix[:, start : start + feature.width()]
        start += feature.width()
        if feature.name not in required:
            continue
        if feature.kind == NUMERIC:
            missing = bool(np.isnan(block).any())
        else:  # encoded categories: read through Python values, which are kept
            assert prepared.columns is not None
            missing = any(value is None for value in prepared.columns[position])
        if missing:
            raise SqmlError(
                f"column '{feature.name}' has missing values (NULL) and its preprocess impute "
                "is 'error'; fill them, filter the rows out in a view, or choose another impute"
            )


def _require_two_rows(request: TrainRequest, rows: int) -> None:
    if rows < 2:
        raise SqmlError(
            f"dataset '{request.dataset.name}' has {rows} row(s) with a usable target "
            f"'{request.target}'; at least 2 are needed to train and test"
        )


def _prepare_from_rows(conn: sqlite3.Connection, request: TrainRequest) -> PreparedData:
    features, target = request.feature_columns, request.target
    selected = features if target is None else [*features, target]
    rows = read_rows(conn, request.dataset, selected, target, request.order_by)
    columns: list[Sequence[object]] = list(zip(*rows, strict=True))
    if not columns:
        columns = [() for _ in selected]
    del rows
    outputs = 1
    if target is None:
        labels, label_kind = np.zeros(len(columns[0])), CLUSTER_LABELS
        columns.append(())  # stands for the target below
    elif request.prediction_type == "classification":
        labels, label_kind = encode_labels(columns[-1])
        outputs = len(np.unique(labels))
    else:
        target_values = columns[-1]
        labels, label_kind = numbers_or_error(target, target_values), NUMERIC_LABELS
        keep = ~np.isnan(labels)
        if not keep.all():  # empty strings in a numeric target count as missing
            columns = [[v for v, k in zip(column, keep, strict=True) if k] for column in columns]
            labels = labels[keep]
    _require_two_rows(request, len(labels))
    schema = FeatureSchema.infer(
        features, columns[:-1], target or "", label_kind, request.encodings, outputs
    )
    matrix = schema.encode_columns(columns[:-1], len(labels))
    infinite = np.isinf(matrix).any(axis=0)
    if infinite.any():
        column = schema.feature_at(int(np.argmax(infinite))).name
        raise SqmlError(
            f"column '{column}' holds an infinite value; replace it (or filter it out in a "
            "view) before training"
        )
    raw = columns[:-1] if schema.target_encoded or request.options.preprocess else None
    return PreparedData(matrix, labels, schema, _digest(matrix, labels), raw)


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


def _pipeline(request: TrainRequest, seed: int, schema: FeatureSchema) -> Pipeline:
    model = make_estimator(request.estimator_cls, seed, request.options.hyperparams)
    steps = {name: (spec.impute, spec.scale) for name, spec in request.options.preprocess.items()}
    return build_pipeline(model, schema, steps)


def library_versions() -> dict[str, str]:
    import skops

    return {
        "sqlite_ml": __version__,
        "python": sys.version.split()[0],
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "skops": skops.__version__,
        "xgboost": xgboost.__version__,
        "lightgbm": lightgbm.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


def _start_run(
    conn: sqlite3.Connection, request: TrainRequest
) -> tuple[store.Experiment, int, bool]:
    """Create the experiment (if new) and a pending run; also tells whether the run row
    will survive a failure (it cannot inside a statement that writes)."""
    with savepoint(conn) as isolated:
        experiment = store.find_experiment(conn, request.experiment_name)
        if experiment is None:
            experiment = store.create_experiment(
                conn, request.experiment_name, request.prediction_type, secrets.randbelow(2**31)
            )
        elif experiment.random_state is None:  # made by sqlite-ml 0.1.x
            seed = secrets.randbelow(2**31)
            store.set_experiment_random_state(conn, experiment.id, seed)
            experiment = dataclasses.replace(experiment, random_state=seed)
        metric = request.options.metric
        if metric is not None and metric != experiment.deciding_metric:
            store.set_experiment_metric(conn, experiment.id, metric)
            experiment = dataclasses.replace(experiment, metric=metric)
        run_id = store.create_run(
            conn,
            experiment.id,
            {
                "algorithm": request.algorithm,
                "dataset": request.dataset.name,
                "target": request.target or "",  # clustering without a target
                "test_size": request.test_size,
                "split_strategy": request.split_strategy,
                "seed": _seed(request, experiment),
                "library_versions": json.dumps(library_versions()),
                "options": request.options.text,
            },
        )
    return experiment, run_id, isolated


def _seed(request: TrainRequest, experiment: store.Experiment) -> int:
    """The run's seed: the random_state option, else the experiment's own."""
    if request.options.random_state is not None:
        return request.options.random_state
    assert experiment.random_state is not None
    return experiment.random_state


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
    seed = _seed(request, experiment)
    try:
        return _fit_and_record(conn, request, experiment, run_id, seed)
    except KeyboardInterrupt:
        # Ctrl-C in a shell or notebook: the run must not stay 'pending' forever.
        with contextlib.suppress(sqlite3.Error):
            with savepoint(conn):
                store.update_run(
                    conn,
                    run_id,
                    {"status": "failed", "error": "interrupted", "finished_at": now()},
                )
        raise
    except Exception as error:
        message = _why(error)
        try:
            with savepoint(conn):
                store.update_run(
                    conn, run_id, {"status": "failed", "error": message, "finished_at": now()}
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
    train_rows, test_rows = split_rows(request.split_strategy, request.test_size, data.labels, seed)
    if data.schema.target_encoded:
        _fit_target_encoding(request, data, train_rows)
    clustering = request.prediction_type == "clustering"
    x_train, x_test = data.matrix[train_rows], data.matrix[test_rows]
    y_train, y_test = data.labels[train_rows], data.labels[test_rows]
    data.matrix = np.empty((0, data.matrix.shape[1]))  # the split holds its own copies now
    data.columns = None
    pipeline = _pipeline(request, seed, data.schema)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        searched = _search(request, pipeline, x_train, None if clustering else y_train, seed)
        if searched is not None:
            pipeline.set_params(**{f"model__{k}": v for k, v in searched.best_params.items()})
        # A sample of the raw test rows for permutation importance, before the in-place
        # preprocessing below changes them.
        sample = np.random.default_rng(seed).permutation(len(x_test))[: importance.MAX_ROWS]
        x_sample, y_sample = x_test[sample], None if clustering else y_test[sample]
        transform_in_place(pipeline, True)
        progress.report("fit", 0, 1)
        started = time.perf_counter()
        pipeline.fit(x_train, None if clustering else y_train)
        fit_time = time.perf_counter() - started
        progress.report("fit", 1, 1)
        del x_train
        started = time.perf_counter()
        values = _test_metrics(request.prediction_type, pipeline, x_test, y_test)
        score_time = time.perf_counter() - started
        transform_in_place(pipeline, False)
        started = time.perf_counter()
        importances = importance.permutation_importance(
            request.prediction_type, pipeline, data.schema, x_sample, y_sample, seed
        )
        importance_time = time.perf_counter() - started
    score = values["score"]
    if not math.isfinite(score):
        raise SqmlError(
            f"the score on the test split is not a number ({len(y_test)} test row(s)"
            + (", fewer than 2 clusters among them" if clustering else "")
            + "); use a larger dataset or test_size"
        )
    values = {name: value for name, value in values.items() if math.isfinite(value)}
    blob = persistence.dumps(pipeline)
    digest = persistence.digest(blob)
    native = native_forms.decide_at_training(pipeline, data.schema, digest, x_sample)
    warning_text = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    metric = experiment.deciding_metric
    hyperparams = _plain(pipeline.named_steps["model"].get_params())

    with savepoint(conn):
        model_id = store.insert_model(
            conn,
            run_id,
            blob,
            digest,
            data.schema.to_json(),
            library=_library(request.estimator_cls),
            feature_importance=json.dumps(importances),
            serving=native,
        )
        store.insert_metrics(conn, model_id, values)
        if searched is not None:
            store.insert_search_trials(conn, run_id, searched.scoring, searched.trials)
        deployed = request.options.automatic_deploy and _beats_active(
            conn, experiment, metric, values.get(metric)
        )
        if deployed:
            store.deploy(conn, experiment.id, model_id, "automatic")
        store.update_run(
            conn,
            run_id,
            {
                "status": "success",
                "finished_at": now(),
                "fit_time": fit_time,
                "score_time": score_time,
                "importance_time": importance_time,
                "data_rows": len(data.labels),
                "train_rows": len(y_train),
                "test_rows": len(y_test),
                "data_digest": data.digest,
                "feature_names": json.dumps(data.schema.names),
                "feature_types": json.dumps(data.schema.types()),
                "hyperparams": json.dumps(hyperparams),
                "warnings": json.dumps(warning_text) if warning_text else None,
            },
        )
    result: dict[str, Any] = {
        "experiment_name": request.experiment_name,
        "prediction_type": request.prediction_type,
        "algorithm": request.algorithm,
        "deployed": deployed,
        "score": score,
        "metric": metric,
        "run_id": run_id,
        "model_id": model_id,
        "metrics": values,
        "seed": seed,
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "fit_time": fit_time,
    }
    if searched is not None:
        result["best_params"] = searched.best_params
        result["candidates"] = len(searched.trials)
    return result


def _fit_target_encoding(request: TrainRequest, data: PreparedData, train_rows: np.ndarray) -> None:
    """Target encodings learn from the training split only, then every row is encoded:
    the mean target for regression, each class's share for classification."""
    assert data.columns is not None
    labels = data.labels[train_rows]
    if request.prediction_type == "regression":
        targets = np.asarray(labels, dtype=np.float64).reshape(-1, 1)
    else:
        classes = np.unique(data.labels)
        targets = (labels[:, None] == classes[None, :]).astype(np.float64)
    training_values = [[column[i] for i in train_rows] for column in data.columns]
    data.schema = data.schema.fit_target_encoding(training_values, targets)
    data.matrix = data.schema.encode_columns(data.columns, len(data.labels))


def _search(
    request: TrainRequest,
    pipeline: Pipeline,
    x_train: np.ndarray,
    y_train: np.ndarray | None,
    seed: int,
) -> search.SearchResult | None:
    chosen = request.options
    if chosen.search is None:
        return None
    tried = search.candidates(chosen.search, chosen.search_params, chosen.n_iter, seed)
    return search.run_search(pipeline, request.prediction_type, tried, chosen.cv, x_train, y_train)


def _test_metrics(
    prediction_type: str, pipeline: Pipeline, x_test: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    if prediction_type == "clustering":
        transformed = pipeline[:-1].transform(x_test)
        return metrics.clustering_metrics(transformed, pipeline[-1].predict(transformed))
    return metrics.compute(prediction_type, y_test, pipeline.predict(x_test))


def _beats_active(
    conn: sqlite3.Connection, experiment: store.Experiment, metric: str, value: float | None
) -> bool:
    """Whether a new model with ``value`` of the experiment's metric replaces the active one."""
    active = store.active_model(conn, experiment.id, metric)
    if active is None or active.format != persistence.FORMAT:  # a 0.1.x pickle is never served
        return True
    if active.score is None:
        return True
    return value is not None and better(metric, value, active.score)


def _library(estimator_cls: type[Any]) -> str:
    """The library whose model it is (our adapters name the class they adapt)."""
    for cls in estimator_cls.__mro__:
        package = cls.__module__.split(".")[0]
        if package != "sqlite_ml":
            return "scikit-learn" if package == "sklearn" else package
    return "scikit-learn"


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as JSON values (estimator objects and the like become their repr)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = repr(value)  # JSON has no NaN: 'nan', as XGBoost's missing=NaN
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(
            isinstance(v, (bool, int, float, str)) for v in value
        ):
            out[key] = list(value)
        else:
            out[key] = repr(value)
    return out
