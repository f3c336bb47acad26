"""Which rows train a model and which test it."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from ..errors import SqmlError

SPLIT_STRATEGIES = ("shuffle", "stratified", "last")


def split_rows(
    strategy: str, test_size: float, labels: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and test splits. ``last`` tests on the last rows in
    the order they were read (by ``order_by``, else rowid); ``shuffle`` and
    ``stratified`` draw with ``seed``, the latter keeping class proportions."""
    positions = np.arange(len(labels))
    if strategy == "last":
        test_rows = math.ceil(test_size * len(labels))
        if not 1 <= test_rows < len(labels):
            raise SqmlError(
                f"test_size {test_size} of {len(labels)} rows leaves no training or "
                "test rows for split strategy 'last'"
            )
        return positions[:-test_rows], positions[-test_rows:]
    stratify = labels if strategy == "stratified" else None
    try:
        train_rows, test_rows_at = train_test_split(
            positions,
            test_size=test_size,
            random_state=seed,
            shuffle=True,
            stratify=stratify,
        )
    except ValueError as error:
        raise SqmlError(f"cannot split the rows ({strategy}): {error}") from None
    return train_rows, test_rows_at


# SplitMix64's constants (Steele, Lea and Flood): a bijective mixer of 64-bit integers
# whose output bits are indistinguishable from uniform for consecutive inputs.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # arithmetic modulo 2^64 is the point
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def hash_unit(keys: np.ndarray | Sequence[object], seed: int) -> np.ndarray:
    """A number in [0, 1) for each row key, uniform over keys and fixed by (key, seed):
    the same key gets the same number in every run with that seed, whatever other rows
    the table holds or in which order they are read.

    Integer keys (rowids, integer key columns) are mixed with SplitMix64, vectorized;
    any other key (text, a REAL, a BLOB) by a keyed BLAKE2b of its SQL type and value.
    """
    array = keys if isinstance(keys, np.ndarray) else np.asarray(keys, dtype=object)
    salt = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    if array.dtype.kind == "f" and len(array) and _whole(array):
        array = array.astype(np.int64)
    if array.dtype.kind in "iu":
        mixed = _splitmix64(array.astype(np.int64).view(np.uint64) ^ salt)
    else:
        key = int(salt).to_bytes(8, "little")
        mixed = np.fromiter(
            (_mix_one(value, salt, key) for value in array.tolist()),
            dtype=np.uint64,
            count=len(array),
        )
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _whole(array: np.ndarray) -> bool:
    finite = np.isfinite(array).all()
    return bool(finite and (array == np.round(array)).all() and np.abs(array).max() < 2.0**63)


def _mix_one(value: object, salt: np.uint64, key: bytes) -> int:
    """One key of a mixed column: integers (and whole REALs) exactly as the vectorized
    path mixes them, anything else by a keyed BLAKE2b of its SQL type and value."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2.0**63:
        value = int(value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        word = np.array([value], dtype=np.int64).view(np.uint64) ^ salt
        return int(_splitmix64(word)[0])
    if isinstance(value, float):
        data = b"r" + repr(value).encode()
    elif isinstance(value, str):
        data = b"t" + value.encode("utf-8", "surrogatepass")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = b"b" + bytes(value)
    elif value is None:
        raise SqmlError("a row key is NULL; a hashed split needs a key in every row")
    else:
        data = b"t" + str(value).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=key).digest(), "little")


def hashed_split(
    keys: np.ndarray | Sequence[object], seed: int, test_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and test splits decided by each row's key alone: a
    row is a test row when ``hash_unit(key, seed) < test_size``. Reproducible from the
    keys and the seed, so no row list need be stored, and a row appended later never
    moves another row between the splits. (A REAL key equal to an integer hashes as that
    integer, as SQLite compares them.)"""
    test = hash_unit(keys, seed) < test_size
    positions = np.arange(len(test))
    return positions[~test], positions[test]
