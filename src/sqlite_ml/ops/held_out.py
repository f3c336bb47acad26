"""Domain: which rows a run was tested on (``sqml_test_rows``), named by their keys.

A run trained on keyed rows (a table's rowid, or the ``key_column`` option) records its
split scheme, its key column and a fingerprint of its test rows (their count and a digest
of their keys). The test rows are never stored: they are decided again from the keys, the
labels and the run's seed, exactly as training decided them, and checked against the
fingerprint, so a dataset that changed since (rows added, removed or re-keyed) is an error
rather than a wrong list of rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import jsontext
from ..db import records as store
from ..db.readers import count_rows_with_target, read_keyed_numbers, read_keyed_targets
from ..db.relations import Relation, find_relation
from ..errors import SqmlError, describe, shorten
from ..ml.labels import check_numeric_labels, encode_labels, numbers_or_error
from ..ml.splits import KEYED_SCHEMES, POSITION, hash_unit, split_rows


@dataclass(frozen=True)
class KeyedRows:
    """The rows with a usable target, in training's read order: keys and labels."""

    keys: np.ndarray  # int64 when every key is an integer, else objects
    labels: np.ndarray


def keyed_rows(
    conn: sqlite3.Connection,
    relation: Relation,
    key_column: str | None,
    target: str | None,
    order_by: str | None,
    prediction_type: str,
) -> KeyedRows:
    """Keys and labels of the rows training uses (the same rows, in the same order): for
    regression the rows whose target reads as a number, else every row with a target."""
    count = count_rows_with_target(conn, relation, target)
    numbers = read_keyed_numbers(conn, relation, key_column, target, order_by, count)
    if numbers is not None:  # integer keys (a rowid is one), numeric targets: no objects
        keys_read, labels_read = numbers
        if len(np.unique(keys_read)) != len(keys_read):
            raise _duplicate(keys_read.tolist(), _key_name(key_column), relation)
        if target is None:
            return KeyedRows(keys_read, np.zeros(len(keys_read)))
        keep = ~np.isnan(labels_read)
        if prediction_type == "classification":
            check_numeric_labels(labels_read)
        return KeyedRows(keys_read[keep], labels_read[keep])
    keys, values = read_keyed_targets(conn, relation, key_column, target, order_by)
    key_array = _key_array(keys, key_column, relation)
    if target is None:
        return KeyedRows(key_array, np.zeros(len(keys)))
    if prediction_type == "regression":
        labels = numbers_or_error(target, values)
        keep = ~np.isnan(labels)
        return KeyedRows(key_array[keep], labels[keep])
    labels, _ = encode_labels(values)
    return KeyedRows(key_array, labels)


def _key_name(key_column: str | None) -> str:
    return f"key column '{shorten(key_column)}'" if key_column is not None else "rowid"


def _key_array(keys: Sequence[object], key_column: str | None, relation: Relation) -> np.ndarray:
    what = _key_name(key_column)
    if all(type(key) is int for key in keys):
        array = np.array(keys, dtype=np.int64)
        if len(np.unique(array)) != len(array):
            raise _duplicate(array.tolist(), what, relation)
        return array
    for key in keys:
        if key is None:
            raise SqmlError(
                f"{what} of dataset '{shorten(relation.name)}' is NULL in a row; a key column "
                "needs a value in every row (it names the row in sqml_test_rows)"
            )
        if isinstance(key, (bytes, bytearray, memoryview)):
            raise SqmlError(
                f"{what} of dataset '{shorten(relation.name)}' holds a BLOB; a key must be an "
                "integer, a number or text"
            )
    if len(set(keys)) != len(keys):
        raise _duplicate(list(keys), what, relation)
    return np.array(keys, dtype=object)


def _duplicate(keys: list[Any], what: str, relation: Relation) -> SqmlError:
    seen: set[Any] = set()
    repeated = next(key for key in keys if key in seen or seen.add(key))  # type: ignore[func-returns-value]
    return SqmlError(
        f"{what} of dataset '{shorten(relation.name)}' holds {describe(repeated)} in more than "
        "one row; a key must name exactly one row"
    )


def fingerprint(test_keys: np.ndarray) -> str:
    """The count of the test rows and a digest of their keys, in read order."""
    digest = hashlib.sha256(hash_unit(test_keys, 0).tobytes()).hexdigest()
    return json.dumps({"rows": len(test_keys), "digest": digest})


def _run_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SqmlError(f"run_id must be the id of a run (an integer), got {describe(value)}")
    try:
        number = float(value)
    except ValueError:
        raise SqmlError(
            f"run_id must be the id of a run (an integer), got {describe(value)}"
        ) from None
    # Row ids are SQLite INTEGERs: a number beyond them (1e19) names no run.
    if not math.isfinite(number) or number != int(number) or not 0 < number < 2**63:
        raise SqmlError(f"run_id must be the id of a run (an integer), got {describe(value)}")
    return int(number)


def require_run(conn: sqlite3.Connection, run_id: object) -> store.RunRecord:
    number = _run_id(run_id)
    run = store.find_run(conn, number)
    if run is None:
        raise SqmlError(f"there is no run {number} in this database (sqml_runs lists the runs)")
    return run


def _order_by(run: store.RunRecord) -> str | None:
    if run.split_strategy != "last" or not run.options:
        return None
    try:
        options = jsontext.loads(run.options)
    except ValueError:
        return None
    order_by = options.get("order_by") if isinstance(options, dict) else None
    return order_by if isinstance(order_by, str) else None


def refuse_unnamed(run: store.RunRecord) -> None:
    """A clear error for a run whose test rows cannot be named."""
    if run.status != "success":
        raise SqmlError(f"run {run.id} did not finish training (status '{run.status}')")
    if run.split_scheme is None:
        raise SqmlError(
            f"run {run.id} was trained by an earlier sqlite-ml, which did not record how it "
            "split its rows; its test rows cannot be named: train again"
        )
    if run.split_scheme == POSITION:
        raise SqmlError(
            f"run {run.id} was trained on '{shorten(run.dataset)}' without a row key (a view "
            "or a table without rowid, and no key_column option), so its rows were split by "
            "their position in the read, which the next read need not repeat; its test rows "
            "cannot be named: train with the option key_column"
        )
    if run.split_scheme not in KEYED_SCHEMES:
        raise SqmlError(
            f"run {run.id} records an unknown split scheme {describe(run.split_scheme)}"
        )


@dataclass(frozen=True)
class HeldOutRows:
    """A run's test rows as they are now: keys and labels, in training's read order."""

    run: store.RunRecord
    relation: Relation
    keys: np.ndarray
    labels: np.ndarray


def held_out_rows(conn: sqlite3.Connection, run_id: object) -> HeldOutRows:
    """The run's test rows, decided again from the keys and checked against the run's
    fingerprint; a clear error when they cannot be named exactly."""
    run = require_run(conn, run_id)
    refuse_unnamed(run)
    if run.seed is None:
        raise SqmlError(f"run {run.id} has no recorded seed; its test rows cannot be named")
    try:
        relation = find_relation(conn, run.dataset)
    except SqmlError as error:
        raise SqmlError(f"run {run.id} was trained on a dataset that is gone: {error}") from None
    target = run.target or None
    rows = keyed_rows(conn, relation, run.key_column, target, _order_by(run), run.prediction_type)
    _, tested = split_rows(run.split_strategy, run.test_size, rows.labels, run.seed, rows.keys)
    keys = rows.keys[tested]
    # Runs without a fingerprint (streamed ones) are checked by their count of test rows.
    unchanged = (
        fingerprint(keys) == run.test_fingerprint
        if run.test_fingerprint is not None
        else run.test_rows is None or run.test_rows == len(keys)
    )
    if not unchanged:
        raise SqmlError(
            f"the test rows of run {run.id} cannot be named: dataset '{shorten(run.dataset)}' "
            f"changed since the run was trained ({_recorded_rows(run)} test rows then, "
            f"{len(keys)} by its split now); train again to test on the rows it has now"
        )
    return HeldOutRows(run, relation, keys, rows.labels[tested])


def _recorded_rows(run: store.RunRecord) -> str:
    if run.test_fingerprint is None:
        return str(run.test_rows)
    try:
        return str(jsontext.loads(run.test_fingerprint or "{}").get("rows", "?"))
    except (ValueError, AttributeError):
        return "?"


def key_values(keys: np.ndarray) -> list[Any]:
    """Keys as SQL values (Python ints, floats, text)."""
    return keys.tolist()
