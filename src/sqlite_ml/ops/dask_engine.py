"""Domain: a run's heavy work on a Dask cluster (option ``dask`` or the environment
variable ``SQLITE_ML_DASK_SCHEDULER``; docs/big-tables.md).

* A search's candidates x folds become one Dask task each (``search.score_folds`` on one
  fold, scikit-learn's own fit-and-score); the training split is scattered to every
  worker once. Trials are stored as for any search, with the workers that ran them.
* XGBoost and LightGBM train through their Dask interfaces on partitions that each
  worker reads itself from the database file by rowid range (the file must be on a path
  every worker sees); the schema, classes and preprocessing statistics come from a
  streamed first pass here, and the test metrics from a streamed last pass.

No wait is unbounded: when no task finishes within ``dask_timeout`` seconds, or a task
fails on a worker, the run fails with an error that says so.
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np

from ..db import streams
from ..errors import SqmlError
from ..ml.boosted_streams import adopt_lightgbm, adopt_xgboost, prime, xgboost_params
from . import importance, progress
from .search import CandidateFolds, score_folds
from .streaming import (
    RowStream,
    _classes,
    _fit_preprocessing,
    _require_split,
    class_codes,
    first_pass,
    streamed_schema,
    test_pass,
)
from .train_parts import Engine, Outcome, TrainRequest, pipeline_for

EXTRA = "pip install 'sqlite-ml[dask]'"
_PARTITION_ROWS = 1_000_000  # rows per partition at most (fewer: at least 2 per worker)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SqmlError(
            f"option dask needs Dask's distributed scheduler, which is not installed: {EXTRA}"
        ) from None
    return distributed


def connect(address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address`` with at least one worker, within ``timeout``."""
    distributed = _distributed()
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise SqmlError(
            f"cannot reach the Dask scheduler at '{address}' within {timeout:g} s ({error})"
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as error:
        client.close()
        raise SqmlError(
            f"the Dask scheduler at '{address}' has no worker after {timeout:g} s ({error})"
        ) from None
    return client


def _worker_names(client: Any) -> dict[str, str]:
    """Each worker's address -> 'address (pid N)': where a task ran, for the record."""
    pids = client.run(os.getpid)
    return {address: f"{address} (pid {pid})" for address, pid in pids.items()}


def _gather(client: Any, futures: list[Any], timeout: float, on_done: Any = None) -> list[Any]:
    """Results of ``futures`` in order; an error when a task fails or none finishes within
    ``timeout`` seconds of the last one (a lost worker, a cluster without workers)."""
    distributed = _distributed()
    pending = set(futures)
    while pending:
        try:
            with client.as_current():  # wait() looks for the current client
                waited = distributed.wait(
                    list(pending), timeout=timeout, return_when="FIRST_COMPLETED"
                )
        except TimeoutError:
            workers = len(client.scheduler_info().get("workers", {}))
            raise SqmlError(
                f"no Dask task finished within {timeout:g} s ({len(pending)} still pending, "
                f"{workers} worker(s) connected); see the scheduler's dashboard or logs, or "
                "raise option dask_timeout"
            ) from None
        pending = set(waited.not_done)
        for future in waited.done:
            if future.status == "error":
                error = future.exception()
                raise SqmlError(f"a Dask task failed on a worker: {type(error).__name__}: {error}")
            if on_done is not None:
                on_done(future)
    return [future.result() for future in futures]


def _fold_task(
    pipeline: Any, params: dict[str, Any], x: np.ndarray, y: Any, fold: Any, scorer: Any
) -> tuple[float, float, str]:
    from distributed import get_worker

    scores, fit_times = score_folds(pipeline, params, x, y, [fold], scorer)
    return scores[0], fit_times[0], get_worker().address


class DaskFoldRunner:
    """``search.FoldRunner`` on a cluster: one task per (candidate, fold)."""

    def __init__(self, address: str, timeout: float, engine: Engine):
        self.address = address
        self.timeout = timeout
        self.engine = engine

    def __call__(
        self,
        pipeline: Any,
        candidates: list[dict[str, Any]],
        folds: list[tuple[np.ndarray, np.ndarray]],
        x: np.ndarray,
        y: np.ndarray | None,
        scorer: Any,
        done: Any,
    ) -> list[CandidateFolds]:
        client = connect(self.address, self.timeout)
        try:
            names = _worker_names(client)
            self.engine.workers = len(names)
            started = time.perf_counter()
            x_data = client.scatter(x, broadcast=True)
            y_data = client.scatter(y, broadcast=True) if y is not None else None
            futures, owner = [], {}
            for number, params in enumerate(candidates):
                for fold in folds:
                    future = client.submit(
                        _fold_task, pipeline, params, x_data, y_data, fold, scorer, pure=False
                    )
                    futures.append(future)
                    owner[future.key] = number
            left = Counter(owner.values())

            def finished(future: Any) -> None:
                number = owner[future.key]
                left[number] -= 1
                if left[number] == 0:
                    done(number)

            results = _gather(client, futures, self.timeout, finished)
            elapsed = time.perf_counter() - started
        finally:
            client.close()
        out = [CandidateFolds([], []) for _ in candidates]
        ran: Counter[str] = Counter()
        for future, (score, fit_time, address) in zip(futures, results, strict=True):
            folds_of = out[owner[future.key]]
            folds_of.scores.append(score)
            folds_of.fit_times.append(fit_time)
            folds_of.workers.append(names.get(address, address))
            ran[names.get(address, address)] += 1
        self.engine.details.update(
            {
                "tasks": len(futures),
                "tasks_by_worker": dict(sorted(ran.items())),
                "search_seconds": round(elapsed, 3),
            }
        )
        return out


def search_engine(address: str, timeout: float) -> Engine:
    engine = Engine("dask", scheduler=address)
    engine.search = DaskFoldRunner(address, timeout, engine)
    return engine


def _read_partition(
    path: str,
    request: TrainRequest,
    schema: Any,
    seed: int,
    rowid_range: tuple[int, int],
    prepare: Any,
    classes: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """On a worker: its partition's train rows, encoded and preprocessed."""
    conn = streams.open_read_only(path)
    try:
        stream = RowStream(conn, request, schema, seed, rowid_range)
        xs, ys = [], []
        for x, y in stream.train("partition"):
            xs.append(prepare.transform(x))
            ys.append(class_codes(classes, y) if classes is not None else np.asarray(y, float))
    finally:
        conn.close()
    width = schema.width
    x_all = np.concatenate(xs) if xs else np.empty((0, width))
    y_all = np.concatenate(ys) if ys else np.empty(0)
    return x_all, y_all


def _ranges(bounds: tuple[int, int], rows: int, workers: int) -> list[tuple[int, int]]:
    low, high = bounds
    parts = max(2 * workers, -(-rows // _PARTITION_ROWS))
    edges = np.linspace(low, high + 1, parts + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def train_on_cluster(
    conn: sqlite3.Connection, request: TrainRequest, seed: int, engine: Engine
) -> Outcome:
    """XGBoost or LightGBM trained by the workers over rowid partitions (see the module)."""
    distributed = _distributed()
    import dask.array as da
    from dask import delayed

    big = request.options.big_data
    if big.key_column is not None:
        raise SqmlError("Dask training partitions a table by rowid; leave option key_column out")
    path = streams.database_file(conn, request.dataset)
    profile = streams.profile(conn, request.dataset, request.feature_columns, request.target)
    if profile.rowid_bounds is None:
        raise SqmlError(
            f"Dask training reads partitions by rowid range, and {request.dataset.kind} "
            f"'{request.dataset.name}' has no rowid; train on a table"
        )
    schema = streamed_schema(conn, request, profile)
    classes = (
        _classes(conn, request, schema.label_kind)
        if request.target and request.prediction_type == "classification"
        else None
    )
    stream = RowStream(conn, request, schema, seed)
    stream.rows = profile.rows
    pipeline = pipeline_for(request, seed, schema)
    assert big.dask is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        first = first_pass(stream, keep_labels=False)
        _require_split(request, first)
        _fit_preprocessing(pipeline, stream, first)
        client = connect(big.dask, big.dask_timeout)
        try:
            names = _worker_names(client)
            engine.workers = len(names)
            ranges = _ranges(profile.rowid_bounds, profile.rows, len(names))
            progress.report("partitions", 0, len(ranges))
            prepare = pipeline[:-1]
            parts = [
                delayed(_read_partition, nout=2, pure=False)(
                    path, request, schema, seed, bounds, prepare, classes
                )
                for bounds in ranges
            ]
            x = da.concatenate(
                [
                    da.from_delayed(p[0], shape=(np.nan, schema.width), dtype=np.float64)
                    for p in parts
                ]
            )
            y = da.concatenate(
                [da.from_delayed(p[1], shape=(np.nan,), dtype=np.float64) for p in parts]
            )
            x, y = client.persist([x, y])
            _gather(
                client,
                list(distributed.futures_of(x)) + list(distributed.futures_of(y)),
                big.dask_timeout,
            )
            progress.report("partitions", len(ranges), len(ranges))
            held = Counter(
                names.get(address, address)
                for addresses in client.who_has(x).values()
                for address in addresses
            )
            with client.as_current():  # the persisted partitions live on this cluster
                x.compute_chunk_sizes()
                y.compute_chunk_sizes()
                model = pipeline.named_steps["model"]
                progress.report("fit", 0, 1)
                _fit_boosted_on_cluster(client, request, model, x, y, schema.width, classes)
        finally:
            client.close()
        fit_time = time.perf_counter() - started
        started = time.perf_counter()
        tested = test_pass(pipeline, stream, classes, seed)
        score_time = time.perf_counter() - started
        assert tested.sample.matrix is not None and tested.sample.labels is not None
        bounded = importance.bounded(
            request,
            pipeline,
            schema,
            tested.sample.matrix[: importance.MAX_ROWS],
            tested.sample.labels[: importance.MAX_ROWS],
            seed,
            fit_time,
        )
    engine.details.update(
        {
            "partitions": len(ranges),
            "partitions_by_worker": dict(sorted(held.items())),
            "rows_read_per_pass": first.rows,
        }
    )
    return Outcome(
        pipeline=pipeline,
        schema=schema,
        values=tested.values,
        importances=bounded.values,
        timings={"fit_time": fit_time, "score_time": score_time, **bounded.timings},
        rows=(first.rows, first.train_rows, first.test_rows),
        digest=first.digest,
        warnings=sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        run_fields={**engine.run_fields(), "split_scheme": "hash", "key_column": None},
    )


def _require_classes_on_every_worker(client: Any, y: Any, classes: int) -> None:
    """LightGBM's Dask training fits a classifier per worker on that worker's rows, which
    fails (a reset socket) when one of them lacks a class: say so before it starts."""
    from dask import delayed

    blocks = y.to_delayed().ravel().tolist()
    found = client.gather(client.compute([delayed(np.unique)(block) for block in blocks]))
    where = client.who_has(y)
    seen: dict[str, set[float]] = {}
    for block, values in zip(blocks, found, strict=True):
        for address in where.get(block.key, ()):
            seen.setdefault(address, set()).update(values.tolist())
    short = sorted(address for address, values in seen.items() if len(values) < classes)
    if short:
        raise SqmlError(
            f"LightGBM's Dask training needs rows of all {classes} classes on every worker, and "
            f"worker(s) {', '.join(short)} read partitions without some class (rows stored in "
            "class order?); train with algorithm 'xgboost', with option stream instead of "
            "dask, or on a table whose rows are not grouped by class"
        )


def _fit_boosted_on_cluster(
    client: Any,
    request: TrainRequest,
    model: Any,
    x: Any,
    y: Any,
    width: int,
    classes: np.ndarray | None,
) -> None:
    if request.algorithm == "xgboost":
        import xgboost.dask

        params = xgboost_params(model, classes)
        matrix = xgboost.dask.DaskQuantileDMatrix(
            client, x, y, missing=model.missing, max_bin=model.max_bin
        )
        trained = xgboost.dask.train(
            client, params, matrix, num_boost_round=model.get_num_boosting_rounds()
        )
        adopt_xgboost(model, trained["booster"], width, classes)
        return
    import lightgbm

    if classes is not None:
        _require_classes_on_every_worker(client, y, len(classes))
    prime(model, width, classes)
    params = {k: v for k, v in model.get_params().items() if k not in ("n_jobs",)}
    kind = lightgbm.DaskLGBMClassifier if classes is not None else lightgbm.DaskLGBMRegressor
    distributed_model = kind(client=client, **params)
    target = y.astype(np.int64) if classes is not None else y
    distributed_model.fit(x, target)
    adopt_lightgbm(model, distributed_model.booster_)
