"""Which rows train a model and which test it."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from ..errors import SqmlError

SPLIT_STRATEGIES = ("shuffle", "stratified", "last")

# The split schemes a run records (sqml_runs.split_scheme); NULL: a run made before they
# were recorded, whose test rows cannot be named.
HASH = "hash"  # shuffle: a row is a test row when the seeded hash of its key < test_size
STRATIFIED_HASH = "stratified_hash"  # stratified: per class, the lowest hashes are tested
LAST = "last"  # the last rows in key order (by order_by first when given)
POSITION = "position"  # no row key (a view without key_column): by position in the read
SPLIT_SCHEMES = (HASH, STRATIFIED_HASH, LAST, POSITION)
# Schemes whose test rows can be named again from the keys alone.
KEYED_SCHEMES = (HASH, STRATIFIED_HASH, LAST)


def split_scheme(strategy: str, keyed: bool) -> str:
    """The scheme a run with ``strategy`` records: keyed rows get a hashed split (or the
    last rows in key order), rows without keys a split by position."""
    if not keyed:
        return POSITION
    return {"shuffle": HASH, "stratified": STRATIFIED_HASH, "last": LAST}[strategy]


def split_rows(
    strategy: str,
    test_size: float,
    labels: np.ndarray,
    seed: int,
    keys: np.ndarray | Sequence[object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and test splits.

    With ``keys`` (one per row, in the order the rows were read): ``shuffle`` tests the
    rows whose seeded key hash is below ``test_size`` (``hashed_split``), ``stratified``
    the lowest hashes of each class in proportion (``stratified_hashed_split``), ``last``
    the last rows. Without keys (a view without key_column) ``shuffle`` and ``stratified``
    draw positions with ``seed``, as sqlite-ml did before hashed splits."""
    positions = np.arange(len(labels))
    if strategy == "last":
        test_rows = math.ceil(test_size * len(labels))
        if not 1 <= test_rows < len(labels):
            raise SqmlError(
                f"test_size {test_size} of {len(labels)} rows leaves no training or "
                "test rows for split strategy 'last'"
            )
        return positions[:-test_rows], positions[-test_rows:]
    if keys is not None:
        if strategy == "stratified":
            return stratified_hashed_split(keys, labels, seed, test_size)
        return _both_sides(keys, seed, test_size)
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


def _both_sides(
    keys: np.ndarray | Sequence[object], seed: int, test_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """``hashed_split``, except that neither side is left empty when there are two rows or
    more: then the row with the lowest hash is tested, or the one with the highest trains."""
    train, test = hashed_split(keys, seed, test_size)
    if len(train) + len(test) < 2 or (len(train) and len(test)):
        return train, test
    units = hash_unit(keys, seed)
    moved = int(np.argmin(units)) if not len(test) else int(np.argmax(units))
    tested = np.zeros(len(units), dtype=bool)
    tested[test] = True
    tested[moved] = not tested[moved]
    positions = np.arange(len(units))
    return positions[~tested], positions[tested]


def stratified_hashed_split(
    keys: np.ndarray | Sequence[object], labels: np.ndarray, seed: int, test_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact class proportions, decided by key hashes: ``ceil(test_size * rows)`` test rows
    shared among the classes in proportion to their size (largest remainders first), each
    class testing its rows of lowest hash; a class keeps at least one training row.
    Reproducible from the keys, labels and seed (no row list is stored); a row added to a
    class can move that class's row at the cut-off between the splits."""
    units = hash_unit(keys, seed)
    total = len(units)
    if total < 2:
        return np.arange(total), np.arange(0)
    _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    wanted = min(max(math.ceil(test_size * total), 1), total - 1)
    shares = wanted * counts / total
    quotas = np.floor(shares).astype(np.int64)
    for index in np.argsort(-(shares - quotas), kind="stable")[: wanted - int(quotas.sum())]:
        quotas[index] += 1
    quotas = np.minimum(quotas, np.maximum(counts - 1, 0))
    test = np.zeros(total, dtype=bool)
    order = np.lexsort((units, codes))  # by class, then by hash within the class
    start = 0
    for code, count in enumerate(counts):
        test[order[start : start + quotas[code]]] = True
        start += count
    positions = np.arange(total)
    return positions[~test], positions[test]


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
