"""Domain: what a training run is, from validated arguments to a stored, maybe deployed model."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import secrets
import sqlite3
import sys
import time
import warnings
from typing import Any

import lightgbm
import numpy as np
import sklearn
import xgboost
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from .._version import __version__
from ..db import records as store
from ..db.readers import count_labels, count_rows_with_target, read_rows
from ..db.relations import find_relation, has_rowid, key_columns, require_column
from ..db.transactions import now, savepoint
from ..errors import SqmlError, choices, describe, unknown
from ..ml import metrics, persistence, threads
from ..ml.catalogue import estimator_class, make_estimator, require_prediction_type
from ..ml.column_choice import declared_key, left_out_in_matrix
from ..ml.features import NUMERIC, Feature, FeatureSchema
from ..ml.labels import (
    CLUSTER_LABELS,
    NUMERIC_LABELS,
    check_numeric_labels,
    label_text,
)
from ..ml.pipelines import transform_in_place
from ..ml.probabilities import gives_probabilities
from ..ml.splits import SPLIT_STRATEGIES, split_rows, split_scheme
from ..scoring import PROBABILITY_METRICS
from . import deploy_decision, drift, importance, native_forms, pretrained, progress, runs, search
from .experiments import new_experiment_name
from .held_out import fingerprint, keyed_rows
from .options import TrainOptions, validate_options
from .reading import read_numeric
from .run_progress import RunProgress
from .train_parts import (
    Outcome,
    PreparedData,
    TrainRequest,
    digest_of,
    pipeline_for,
    prepare_rows,
    remaining_features,
    require_two_rows,
    unchosen,
)


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
    # Sampled runs (max_rows) train on rows chosen by key hash but keep no keys: their
    # rows are split by position.
    keyed = choices_made.big_data.max_rows is None and (
        choices_made.key_column is not None or has_rowid(conn, relation)
    )
    deciding = choices_made.metric or (experiment.deciding_metric if experiment else "score")
    _require_probabilities_for(deciding, str(algorithm), estimator_cls, choices_made)
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
        keyed,
        _declared_keys(conn, relation, target_column, choices_made),
    )
    if not request.feature_columns:
        keys_text = (
            f" and its key column(s) {choices(request.left_out)}" if request.left_out else ""
        )
        raise SqmlError(
            f"dataset '{relation.name}' has no column besides the target '{target_column}'"
            f"{keys_text}; name the columns to use with option features"
        )
    duplicates = sorted(
        {c for c in request.feature_columns if request.feature_columns.count(c) > 1}
    )
    if duplicates:
        raise SqmlError(
            f"dataset '{relation.name}' has several columns named {choices(duplicates)}; "
            "give them distinct names in a view"
        )
    from . import engines

    engines.check(conn, request)
    return request


def _declared_keys(
    conn: sqlite3.Connection, relation: Any, target: str | None, options: Any
) -> dict[str, str]:
    """The columns that identify rows by declaration (the table's keys), left out of the
    features unless the options name them. (Option key_column's column is never one.)"""
    if options.features is not None:
        return {}
    return {
        column: declared_key(column, how)
        for column, how in key_columns(conn, relation).items()
        if column != target and column not in options.preprocess
    }


def _require_probabilities_for(
    metric: str, algorithm: str, estimator_cls: type[Any], options: TrainOptions
) -> None:
    """A metric of probabilities decides only between models that give them."""
    if metric not in PROBABILITY_METRICS:
        return
    if gives_probabilities(make_estimator(estimator_cls, 0, options.hyperparams)):
        return
    raise SqmlError(
        f"metric '{metric}' is computed from class probabilities, and algorithm "
        f"'{algorithm}' gives none with these hyperparameters"
        + (" (svc gives them with probability=true)" if algorithm == "svc" else "")
        + "; choose another metric or algorithm"
    )


def prepare(
    conn: sqlite3.Connection,
    request: TrainRequest,
    seed: int = 0,
    sample_details: dict[str, Any] | None = None,
) -> PreparedData:
    """Read the rows that have a target (a seeded sample of them with option max_rows,
    whose details go into ``sample_details``) and encode their features and labels.

    All-numeric data (the common case, and the big one) is read by numpy straight from
    the cursor into one float64 array; data with TEXT (categories, text labels, numbers
    stored as text) or infinities goes through Python values and the feature schema's rules.
    """
    if request.options.big_data.max_rows is not None:
        from .sampling import prepare_sample

        prepared = prepare_sample(
            conn, request, seed, {} if sample_details is None else sample_details
        )
    else:
        prepared = _prepare(conn, request)
    prepared.notes = [*request.left_out.values(), *prepared.notes, *prepared.schema.notes]
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
    require_two_rows(request, count)
    categorical = any(e not in (None, "none") for e in request.encodings.values())
    categorical = categorical or bool(request.embeddings)
    label_kind = CLUSTER_LABELS if target is None else NUMERIC_LABELS
    if not text_labels and not categorical:
        read = read_numeric(
            conn, request.dataset, features, target, count, request.order_by, request.key_column
        )
        if read is not None:
            matrix, labels = read
            if request.prediction_type == "classification":
                check_numeric_labels(labels)
            if len(labels) >= 2:
                reasons = unchosen(request, left_out_in_matrix(features, matrix))
                if reasons:
                    kept = [i for i, name in enumerate(features) if name not in reasons]
                    features = remaining_features(request, [features[i] for i in kept], reasons)
                    matrix = matrix[:, kept]
                features_schema = [Feature(name, NUMERIC) for name in features]
                schema = FeatureSchema(features_schema, target or "", label_kind)
                digest = digest_of(matrix, labels)
                return PreparedData(matrix, labels, schema, digest, notes=[*reasons.values()])
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


def _require_two_classes(request: TrainRequest, labels: np.ndarray, where: str) -> None:
    """Classification learns to tell classes apart: one class alone is refused in our
    words (each library has its own, e.g. a solver's "needs samples of at least 2
    classes")."""
    classes = np.unique(labels)
    if len(classes) < 2:
        only = f" ({label_text(classes[0])})" if len(classes) else ""
        raise SqmlError(
            f"target '{request.target}' of dataset '{request.dataset.name}' has a single "
            f"class{only} in {where}; classification needs at least two classes"
        )


def _prepare_from_rows(conn: sqlite3.Connection, request: TrainRequest) -> PreparedData:
    features, target = request.feature_columns, request.target
    selected = features if target is None else [*features, target]
    rows = read_rows(
        conn, request.dataset, selected, target, request.order_by, key_column=request.key_column
    )
    return prepare_rows(request, rows)


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
    conn: sqlite3.Connection, request: TrainRequest, beating: bool
) -> tuple[store.Experiment, int, bool]:
    """Create the experiment (if new) and a pending run, recording the process that trains
    it (and first, as every writer does, the runs whose process is gone); also tells
    whether the run row will survive a failure (it cannot inside a statement that writes)."""
    with savepoint(conn) as isolated:
        runs.sweep_interrupted(conn)
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
                "split_scheme": split_scheme(request.split_strategy, request.keyed),
                "key_column": request.key_column,
                "seed": _seed(request, experiment),
                "library_versions": json.dumps(library_versions()),
                "options": request.options.text,
                **runs.process_fields(beating),
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
    # A heartbeat only for a run row committed at once: one inside the caller's own
    # transaction is invisible to other connections until that transaction ends.
    heartbeat = None if conn.in_transaction else runs.heartbeat_path(conn)
    try:
        experiment, run_id, isolated = _start_run(conn, request, heartbeat is not None)
    except sqlite3.Error as error:
        raise SqmlError(f"training did not start: {_why(error)}") from error
    seed = _seed(request, experiment)
    try:
        with (
            runs.Heartbeat(heartbeat if isolated else None, run_id),
            progress.listening(RunProgress(conn, run_id)),
        ):
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
    from . import engines

    engine = engines.choose(conn, request)
    if engine.name != "memory" and engine.search is None:
        outcome = engines.train_outside_memory(conn, request, seed, engine)
        outcome.warnings = [*request.left_out.values(), *outcome.warnings]
        return record(conn, request, experiment, run_id, seed, outcome)
    data = prepare(conn, request, seed, engine.details)
    if request.prediction_type == "classification":
        _require_two_classes(request, data.labels, f"its {len(data.labels)} row(s) with a target")
    return _fit_in_memory(conn, request, experiment, run_id, seed, data, engine)


def _fit_in_memory(
    conn: sqlite3.Connection,
    request: TrainRequest,
    experiment: store.Experiment,
    run_id: int,
    seed: int,
    data: PreparedData,
    engine: Any,
) -> dict[str, Any]:
    keys = _row_keys(conn, request, data)
    train_rows, test_rows = split_rows(
        request.split_strategy, request.test_size, data.labels, seed, keys
    )
    test_keys = None if keys is None else keys[test_rows]
    feature_summaries = drift.feature_summaries(data.schema, data.matrix, data.columns, train_rows)
    if data.schema.target_encoded:
        _fit_target_encoding(request, data, train_rows)
    clustering = request.prediction_type == "clustering"
    x_train, x_test = data.matrix[train_rows], data.matrix[test_rows]
    y_train, y_test = data.labels[train_rows], data.labels[test_rows]
    data.matrix = np.empty((0, data.matrix.shape[1]))  # the split holds its own copies now
    data.columns = None
    pipeline = pipeline_for(request, seed, data.schema)
    thread_count = threads.for_fit(len(x_train), x_train.shape[1], request.options.threads)
    with warnings.catch_warnings(record=True) as caught, threads.fitting(thread_count):
        warnings.simplefilter("always")
        searched = _search(
            request, pipeline, x_train, None if clustering else y_train, seed, engine.search
        )
        if searched is not None:
            pipeline.set_params(**{f"model__{k}": v for k, v in searched.best_params.items()})
        # A sample of the raw test rows for permutation importance, before the in-place
        # preprocessing below changes them.
        rows = importance.rows_for(x_test.shape[1])
        sample = np.random.default_rng(seed).permutation(len(x_test))[:rows]
        x_sample, y_sample = x_test[sample], None if clustering else y_test[sample]
        transform_in_place(pipeline, True)
        progress.report("fit", 0, 1)
        started = time.perf_counter()
        try:
            pipeline.fit(x_train, None if clustering else y_train)
        except Exception:
            # Some algorithms learn from one class (dummy, trees), others stop with their
            # own words: say it in ours when the split left a single class to learn from.
            if request.prediction_type == "classification":
                _require_two_classes(
                    request,
                    y_train,
                    f"the {len(y_train)} row(s) of its training split (the other classes all "
                    "fell in the test split; use more rows, a smaller test_size or split "
                    "'stratified')",
                )
            raise
        fit_time = time.perf_counter() - started
        progress.report("fit", 1, 1)
        summary = drift.training_summary(
            feature_summaries, len(train_rows), _model_input_mean(pipeline, x_train)
        )
        del x_train
        # Copies from here on: the raw test rows are scored again (probabilities, the
        # deployment's comparison) and must stay as read.
        transform_in_place(pipeline, False)
        started = time.perf_counter()
        values = _test_metrics(request.prediction_type, pipeline, x_test, y_test)
        score_time = time.perf_counter() - started
        bounded = importance.bounded(
            request, pipeline, data.schema, x_sample, y_sample, seed, fit_time
        )
    outcome = Outcome(
        pipeline=pipeline,
        schema=data.schema,
        values=values,
        importances=bounded.values,
        timings={"fit_time": fit_time, "score_time": score_time, **bounded.timings},
        rows=(len(data.labels), len(y_train), len(y_test)),
        digest=data.digest,
        searched=searched,
        warnings=data.notes + sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        run_fields={
            **engine.run_fields(),
            "test_fingerprint": None if test_keys is None else fingerprint(test_keys),
        },
        threads=thread_count,
        x_test=x_test,
        y_test=y_test,
        test_keys=test_keys,
        training_summary=summary,
        check_rows=x_sample,
    )
    return record(conn, request, experiment, run_id, seed, outcome)


def record(
    conn: sqlite3.Connection,
    request: TrainRequest,
    experiment: store.Experiment,
    run_id: int,
    seed: int,
    outcome: Outcome,
) -> dict[str, Any]:
    """Store the model, its metrics and trials, maybe deploy it, and close the run."""
    clustering = request.prediction_type == "clustering"
    data_rows, train_rows, test_rows = outcome.rows
    values = outcome.values
    score = values["score"]
    if not math.isfinite(score):
        raise SqmlError(
            f"the score on the test split is not a number ({test_rows} test row(s)"
            + (", fewer than 2 clusters among them" if clustering else "")
            + "); use a larger dataset or test_size"
        )
    values = {name: value for name, value in values.items() if math.isfinite(value)}
    pipeline, searched = outcome.pipeline, outcome.searched
    blob = persistence.dumps(pipeline)
    digest = persistence.digest(blob)
    native = native_forms.decide_at_training(
        pipeline, outcome.schema, blob, digest, outcome.check_rows
    )
    warning_text = outcome.warnings
    metric = experiment.deciding_metric
    hyperparams = _plain(pipeline.named_steps["model"].get_params())
    schema = outcome.schema
    decision = _decide(conn, request, experiment, run_id, seed, outcome)
    deployed = decision.deployed

    with savepoint(conn):
        # The run row first: when its experiment was deleted while it trained, nothing
        # is written (no model, metric or deployment of a run that no longer exists).
        recorded = store.update_run(
            conn,
            run_id,
            {
                "status": "success",
                "finished_at": now(),
                **outcome.timings,
                "data_rows": data_rows,
                "train_rows": train_rows,
                "test_rows": test_rows,
                "data_digest": outcome.digest,
                "feature_names": json.dumps(schema.names),
                "feature_types": json.dumps(schema.types()),
                "hyperparams": json.dumps(hyperparams),
                "warnings": json.dumps(warning_text) if warning_text else None,
                **outcome.run_fields,
                "deploy_decision": decision.to_json(),
            },
        )
        if not recorded:
            raise SqmlError(
                f"experiment '{request.experiment_name}' was deleted while run {run_id} "
                "trained; its model was not kept"
            )
        model_id = store.insert_model(
            conn,
            run_id,
            blob,
            digest,
            schema.to_json(),
            library=_library(request.estimator_cls),
            feature_importance=(
                None if outcome.importances is None else json.dumps(outcome.importances)
            ),
            training_summary=outcome.training_summary,
            serving=native,
        )
        store.insert_metrics(conn, model_id, values)
        for embedder in schema.embedders.values():
            pretrained.record_use(conn, embedder, required=True)
        if searched is not None:
            store.insert_search_trials(conn, run_id, searched.scoring, searched.trials)
        # After the run is a success: a deployment names a model of a run that succeeded.
        if deployed:
            store.deploy(conn, experiment.id, model_id, "automatic")
    result: dict[str, Any] = {
        "experiment_name": request.experiment_name,
        "prediction_type": request.prediction_type,
        "algorithm": request.algorithm,
        "deployed": deployed,
        "deploy_decision": json.loads(decision.to_json()),
        "score": score,
        "metric": metric,
        "run_id": run_id,
        "model_id": model_id,
        "metrics": values,
        "seed": seed,
        "train_rows": train_rows,
        "test_rows": test_rows,
        "fit_time": outcome.timings["fit_time"],
    }
    if outcome.threads is not None:
        result["threads"] = outcome.threads
    engine = outcome.run_fields.get("engine")
    if engine not in (None, "memory"):
        result["engine"] = engine
    if searched is not None:
        result["best_params"] = searched.best_params
        result["candidates"] = len(searched.trials)
    if warning_text:
        result["warnings"] = warning_text
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
    runner: search.FoldRunner | None = None,
) -> search.SearchResult | None:
    """The hyperparameter search; ``runner`` runs the folds elsewhere (a Dask cluster)."""
    chosen = request.options
    if chosen.search is None:
        return None
    tried = search.candidates(chosen.search, chosen.search_params, chosen.n_iter, seed)
    return search.run_search(
        pipeline, request.prediction_type, tried, chosen.cv, x_train, y_train, runner
    )


def _test_metrics(
    prediction_type: str, pipeline: Pipeline, x_test: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    if prediction_type == "clustering":
        transformed = pipeline[:-1].transform(x_test)
        return metrics.clustering_metrics(transformed, pipeline[-1].predict(transformed))
    values = metrics.compute(prediction_type, y_test, pipeline.predict(x_test))
    if prediction_type == "classification" and gives_probabilities(pipeline):
        probabilities = pipeline.predict_proba(x_test)
        values.update(metrics.probability_metrics(y_test, probabilities, pipeline.classes_))
    return values


def _decide(
    conn: sqlite3.Connection,
    request: TrainRequest,
    experiment: store.Experiment,
    run_id: int,
    seed: int,
    outcome: Outcome,
) -> deploy_decision.Decision:
    """Whether the new model replaces the active one (``ops/deploy_decision.py``)."""
    metric = experiment.deciding_metric
    outputs = None
    if outcome.x_test is not None and outcome.y_test is not None:
        outputs = deploy_decision.candidate_outputs(
            request.prediction_type, outcome.pipeline, outcome.x_test, metric
        )
    candidate = deploy_decision.Candidate(
        run_id=run_id,
        prediction_type=request.prediction_type,
        dataset=request.dataset,
        target=request.target,
        key_column=request.key_column,
        fingerprint=outcome.run_fields.get("test_fingerprint"),
        data_digest=outcome.digest,
        schema=outcome.schema,
        x_test=outcome.x_test,
        y_test=outcome.y_test,
        test_keys=outcome.test_keys,
        outputs=outputs,
        value=outcome.values.get(metric),
        seed=seed,
    )
    return deploy_decision.decide(
        conn, experiment, candidate, request.options.automatic_deploy, request.options.deploy_if
    )


def _model_input_mean(pipeline: Pipeline, x_train: np.ndarray) -> np.ndarray | None:
    """The mean of what a linear model saw in training (its inputs after imputation and
    scaling): the point its explanations are centred on (sqml_explain)."""
    if not hasattr(pipeline[-1], "coef_"):
        return None
    if isinstance(pipeline.named_steps["impute"], SimpleImputer):
        # Standard scaling of the imputed rows: their mean is the scaler's centre, zero.
        return np.zeros(x_train.shape[1])
    return np.asarray(pipeline[:-1].transform(x_train).mean(axis=0), dtype=np.float64)


def _row_keys(
    conn: sqlite3.Connection, request: TrainRequest, data: PreparedData
) -> np.ndarray | None:
    """Each training row's key (rowid or key_column), in the order the rows were read;
    None for rows without keys (they are then split by position)."""
    if not request.keyed:
        return None
    rows = keyed_rows(
        conn,
        request.dataset,
        request.key_column,
        request.target,
        request.order_by,
        request.prediction_type,
    )
    if len(rows.keys) != len(data.labels):  # the two reads saw different rows
        raise SqmlError(
            f"dataset '{request.dataset.name}' changed while it was read "
            f"({len(data.labels)} then {len(rows.keys)} rows); train again"
        )
    return rows.keys


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
