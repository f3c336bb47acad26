"""The options of ``sqml_train`` for big tables: streaming, sampling and Dask.

Parsed and checked with the other options before anything is written. ``stream`` left
out means automatic: a run streams when its data would take more than the threshold as a
float64 matrix and nothing it asks for needs the whole matrix (see ``docs/big-tables.md``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ..db.relations import Relation, require_column
from ..errors import SqmlError, describe, unknown

BIG_DATA_KEYS = (
    "stream",
    "epochs",
    "chunk_rows",
    "max_rows",
    "sample",
    "key_column",
    "dask",
    "dask_timeout",
    "cache_dir",
)
SAMPLES = ("uniform", "stratified")
DEFAULT_CHUNK_ROWS = 65_536
MIN_CHUNK_ROWS = 64
# Automatic streaming: above this many bytes of float64 features (1 GiB), a run whose
# algorithm can stream does. SQLITE_ML_STREAM_THRESHOLD (bytes) changes it.
STREAM_THRESHOLD_BYTES = 1 << 30
STREAM_THRESHOLD_VARIABLE = "SQLITE_ML_STREAM_THRESHOLD"
# The scheduler a run uses when its options do not name one (and do not say "dask": false).
DASK_VARIABLE = "SQLITE_ML_DASK_SCHEDULER"
DEFAULT_DASK_TIMEOUT = 120.0


@dataclass(frozen=True)
class BigDataOptions:
    stream: bool | None = None  # None: automatic
    epochs: int | None = None  # None: 1 (only partial_fit algorithms take it)
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    max_rows: int | None = None
    sample: str = "uniform"
    key_column: str | None = None
    dask: str | None = None  # a scheduler address
    dask_explicit: bool = False  # named by the options (not the environment variable)
    dask_timeout: float = DEFAULT_DASK_TIMEOUT
    cache_dir: str | None = None  # streamed XGBoost's cache (None: tempfile's directory)


def _positive_integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SqmlError(f"option {name} must be an integer >= {minimum}, got {describe(value)}")
    return value


def stream_threshold_bytes() -> int:
    text = os.environ.get(STREAM_THRESHOLD_VARIABLE, "").strip()
    if not text:
        return STREAM_THRESHOLD_BYTES
    try:
        return max(0, int(text))
    except ValueError:
        raise SqmlError(
            f"environment variable {STREAM_THRESHOLD_VARIABLE} must be a number of bytes, "
            f"got {describe(text)}"
        ) from None


def _scheduler(raw: dict[str, Any]) -> tuple[str | None, bool]:
    if "dask" in raw:
        value = raw["dask"]
        if value is False or value is None:
            return None, False
        if not isinstance(value, str) or not value.strip():
            raise SqmlError(
                'option dask must be a scheduler address such as "tcp://127.0.0.1:8786" '
                f"(or false), got {describe(value)}"
            )
        return value.strip(), True
    from_environment = os.environ.get(DASK_VARIABLE, "").strip()
    return (from_environment or None), False


def validate_big_data_options(
    raw: dict[str, Any], *, prediction_type: str, relation: Relation
) -> BigDataOptions:
    stream = raw.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise SqmlError(f"option stream must be true or false, got {describe(stream)}")
    epochs = raw.get("epochs")
    if epochs is not None:
        epochs = _positive_integer("epochs", epochs, 1)
    chunk_rows = _positive_integer(
        "chunk_rows", raw.get("chunk_rows", DEFAULT_CHUNK_ROWS), MIN_CHUNK_ROWS
    )
    max_rows = raw.get("max_rows")
    if max_rows is not None:
        max_rows = _positive_integer("max_rows", max_rows, 2)
        if stream:
            raise SqmlError(
                "options stream and max_rows exclude each other: stream trains on every row, "
                "max_rows on a sample held in memory"
            )
    sample = raw.get("sample", "uniform")
    if sample not in SAMPLES:
        raise unknown("sample", sample, SAMPLES)
    if "sample" in raw and max_rows is None:
        raise SqmlError("option sample needs option max_rows (the sample's size)")
    if sample == "stratified" and prediction_type != "classification":
        raise SqmlError(
            f"sample 'stratified' keeps class proportions, so it needs prediction type "
            f"'classification', not '{prediction_type}'; use sample 'uniform'"
        )
    key_column = raw.get("key_column")
    if key_column is not None:
        key_column = require_column(relation, key_column, "key_column")
    dask, explicit = _scheduler(raw)
    timeout = raw.get("dask_timeout", DEFAULT_DASK_TIMEOUT)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise SqmlError(f"option dask_timeout must be a number of seconds > 0, got {timeout!r}")
    if "dask_timeout" in raw and dask is None:
        raise SqmlError("option dask_timeout needs option dask (a scheduler address)")
    cache_dir = _cache_dir(raw.get("cache_dir"))
    return BigDataOptions(
        stream=stream,
        epochs=epochs,
        chunk_rows=chunk_rows,
        max_rows=max_rows,
        sample=str(sample),
        key_column=key_column,
        dask=dask,
        dask_explicit=explicit,
        dask_timeout=float(timeout),
        cache_dir=cache_dir,
    )


def _cache_dir(value: object) -> str | None:
    """An existing directory this process may write in, or None (left out)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SqmlError(f"option cache_dir must be the path of a directory, got {describe(value)}")
    if not os.path.exists(value):
        raise SqmlError(f"option cache_dir: directory '{value}' does not exist")
    if not os.path.isdir(value):
        raise SqmlError(f"option cache_dir: '{value}' is not a directory")
    if not os.access(value, os.W_OK | os.X_OK):
        raise SqmlError(f"option cache_dir: directory '{value}' is not writable by this process")
    return value
