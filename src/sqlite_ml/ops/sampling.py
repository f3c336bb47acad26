"""Domain: option ``max_rows``, in-memory training on a seeded sample of a big table.

The sample is the ``max_rows`` rows whose keys (rowid, or the ``key_column`` option) have
the smallest seeded hash: uniform without replacement, reproducible from the seed, chosen
in two streamed passes (the keys' hashes first, then the chosen rows) in memory bounded by
the sample. ``sample: "stratified"`` takes each class's share of ``max_rows`` the same way
(largest remainders round the shares). The run then trains in memory on those rows as on
any table; its ``engine_details`` record the sample.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

import numpy as np

from ..db import streams
from ..ml.splits import hash_unit
from ..ml.values import category_of
from .train_parts import PreparedData, TrainRequest, prepare_rows

_SAMPLE_SEED = 0x53414D50  # the sample's hash differs from the split's


def _strata(labels: np.ndarray | None, stratified: bool, size: int) -> np.ndarray:
    if not stratified or labels is None:
        return np.zeros(size, dtype=object)
    return np.array([category_of(v) for v in labels.tolist()], dtype=object)


def _quotas(counts: dict[Any, int], max_rows: int) -> dict[Any, int]:
    total = sum(counts.values())
    shares = {k: max_rows * n / total for k, n in counts.items()}
    quotas = {k: math.floor(s) for k, s in shares.items()}
    left = max_rows - sum(quotas.values())
    for k in sorted(shares, key=lambda k: (quotas[k] - shares[k], str(k)))[:left]:
        quotas[k] += 1
    return quotas


def prepare_sample(
    conn: sqlite3.Connection, request: TrainRequest, seed: int, details: dict[str, Any]
) -> PreparedData:

    big = request.options.big_data
    assert big.max_rows is not None
    relation, target = request.dataset, request.target
    streams.require_key(conn, relation, big.key_column)
    stratified = big.sample == "stratified"
    salt = seed ^ _SAMPLE_SEED
    # Pass 1: the keys' hashes (and classes), keeping the smallest per stratum.
    key_columns = [] if target is not None else request.feature_columns[:1]
    kept: dict[Any, np.ndarray] = {}
    counts: dict[Any, int] = {}
    for chunk in streams.read_chunks(
        conn, relation, key_columns, target, big.key_column, big.chunk_rows
    ):
        labels = _labels(chunk, target)
        strata = _strata(labels, stratified, len(chunk))
        priority = hash_unit(chunk.keys, salt)
        for stratum in dict.fromkeys(strata.tolist()):
            mine = priority[strata == stratum]
            counts[stratum] = counts.get(stratum, 0) + len(mine)
            joined = np.concatenate([kept.get(stratum, np.empty(0)), mine])
            if len(joined) > big.max_rows:
                joined = np.partition(joined, big.max_rows - 1)[: big.max_rows]
            kept[stratum] = joined
    available = sum(counts.values())
    quotas = _quotas(counts, min(big.max_rows, available))
    thresholds = {
        s: (np.partition(kept[s], q - 1)[q - 1] if q else -1.0) for s, q in quotas.items()
    }
    # Pass 2: the chosen rows, in read order, as Python values.
    rows: list[tuple[object, ...]] = []
    for chunk in streams.read_chunks(
        conn, relation, request.feature_columns, target, big.key_column, big.chunk_rows
    ):
        labels = _labels(chunk, target, len(request.feature_columns))
        strata = _strata(labels, stratified, len(chunk))
        priority = hash_unit(chunk.keys, salt)
        limit = np.array([thresholds.get(s, -1.0) for s in strata.tolist()], dtype=np.float64)
        chosen = np.flatnonzero(priority <= limit)
        if not len(chosen):
            continue
        if chunk.rows is not None:
            rows.extend(chunk.rows[i] for i in chosen)
        else:
            assert chunk.block is not None
            block = chunk.block[chosen]
            rows.extend(tuple(None if math.isnan(v) else v for v in row) for row in block.tolist())
    details.update({"rows_available": available, "rows_sampled": len(rows)})
    return prepare_rows(request, rows)


def _labels(chunk: streams.Chunk, target: str | None, at: int = 0) -> np.ndarray | None:
    if target is None:
        return None
    if chunk.rows is not None:
        values = np.empty(len(chunk.rows), dtype=object)
        values[:] = [row[at] for row in chunk.rows]
        return values
    assert chunk.block is not None
    return chunk.block[:, at]
