"""Which engine trains a run: in memory (the default), streamed in chunks, or on a Dask
cluster; decided from the options and the table's size, and recorded on the run.

* ``stream``: ``options.stream`` true, or left out while the features would take more
  than ``stream_threshold_bytes()`` as a float64 matrix and the run can stream (an
  algorithm of ``catalogue.STREAMING``, no search, split strategy 'shuffle').
* ``dask``: a scheduler address (``options.dask`` or ``SQLITE_ML_DASK_SCHEDULER``) and
  either a search (its candidates' folds become Dask tasks, the data held in memory) or
  XGBoost/LightGBM without a search (trained by the workers over rowid partitions that
  each reads from the database file itself).
"""

from __future__ import annotations

import sqlite3

from ..db.readers import count_rows_with_target
from ..db.streams import require_key
from ..errors import SqmlError, choices
from ..ml.catalogue import STREAMING, streaming_method
from .big_data_options import stream_threshold_bytes
from .train_parts import Engine, Outcome, TrainRequest

BOOSTED = ("xgboost", "lightgbm")


def _why_not_streamed(request: TrainRequest) -> str | None:
    """What in the request needs the whole matrix in memory (None: it can stream)."""
    if streaming_method(request.prediction_type, request.algorithm) is None:
        names = choices(list(STREAMING[request.prediction_type]))
        return (
            f"algorithm '{request.algorithm}' cannot learn from chunks; the "
            f"{request.prediction_type} algorithms that can are {names} (or train "
            'in memory on a sample with option max_rows, e.g. {"max_rows": 1000000})'
        )
    if request.options.search is not None:
        return "a hyperparameter search cross-validates in memory (search a sample with max_rows)"
    if request.split_strategy != "shuffle":
        return (
            f"split strategy '{request.split_strategy}' needs every row's label or order at "
            "once; streamed training splits by a seeded hash of each row's key ('shuffle')"
        )
    if any(spec.encode == "target" for spec in request.options.preprocess.values()):
        return "preprocess encode 'target' is fitted in memory (use 'one_hot' or 'ordinal')"
    if request.embeddings:
        return (
            "preprocess embed embeds text in memory (train in memory, or on a sample with max_rows)"
        )
    return None


def check(conn: sqlite3.Connection, request: TrainRequest) -> None:
    """Refuse, before anything is written, what the options ask for and cannot be done."""
    big = request.options.big_data
    boosted = request.algorithm in BOOSTED
    if big.dask_explicit and big.max_rows is None:
        if request.options.search is None and not boosted:
            raise SqmlError(
                "option dask sends a hyperparameter search, or XGBoost and LightGBM training, "
                f"to the cluster; algorithm '{request.algorithm}' without a search has nothing "
                "to send (leave dask out, or add a search)"
            )
    if big.stream:
        reason = _why_not_streamed(request)
        if reason is not None:
            raise SqmlError(f"option stream: {reason}")
    dask_trains = big.dask is not None and big.max_rows is None and request.options.search is None
    if dask_trains and boosted and big.stream is not False and request.embeddings:
        raise SqmlError(
            "Dask trains XGBoost and LightGBM from the table's rows on its workers, which do "
            "not embed text (preprocess embed): leave dask out, or train on a sample with "
            "max_rows"
        )
    if big.cache_dir is not None:
        _check_cache_dir(request)
    if big.stream or big.max_rows is not None:
        require_key(conn, request.dataset, big.key_column)


def _check_cache_dir(request: TrainRequest) -> None:
    """Option cache_dir serves streamed XGBoost only: refuse it where it would go unused."""
    big = request.options.big_data
    purpose = "option cache_dir is where streamed XGBoost training keeps its cache"
    if request.algorithm != "xgboost":
        raise SqmlError(f"{purpose}; algorithm '{request.algorithm}' keeps none (leave it out)")
    if big.stream is False or big.max_rows is not None or request.options.search is not None:
        raise SqmlError(
            f"{purpose}; this run trains in memory (option stream false, max_rows or a "
            "search), so leave cache_dir out"
        )
    if big.dask is not None:
        raise SqmlError(
            f"{purpose}; this run trains on the Dask cluster at {big.dask}, so leave "
            'cache_dir out (or dask, with "dask": false)'
        )


def choose(conn: sqlite3.Connection, request: TrainRequest) -> Engine:
    big = request.options.big_data
    boosted = request.algorithm in BOOSTED
    if big.dask is not None and big.max_rows is None:
        if request.options.search is not None:
            from . import dask_engine

            return dask_engine.search_engine(big.dask, big.dask_timeout)
        if boosted and big.stream is not False:
            return Engine("dask", scheduler=big.dask)
    if big.max_rows is not None:
        return Engine("memory", {"max_rows": big.max_rows, "sample": big.sample})
    reason = _why_not_streamed(request)
    if big.stream:
        return Engine("stream", {"automatic": False})
    if big.stream is None and reason is None:
        threshold = stream_threshold_bytes()
        rows = count_rows_with_target(conn, request.dataset, request.target)
        size = rows * len(request.feature_columns) * 8
        if size > threshold:
            return Engine("stream", {"automatic": True, "threshold_bytes": threshold})
    return Engine("memory")


def train_outside_memory(
    conn: sqlite3.Connection, request: TrainRequest, seed: int, engine: Engine
) -> Outcome:
    if engine.name == "stream":
        from ..ml import threads
        from .streaming import train_streamed

        count = threads.for_big_fit(request.options.threads)
        with threads.fitting(count):
            outcome = train_streamed(conn, request, seed, engine)
        outcome.threads = count
        return outcome
    from .dask_engine import train_on_cluster

    return train_on_cluster(conn, request, seed, engine)
