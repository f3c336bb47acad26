"""The seeded hash of row keys that decides hashed splits (``ml/splits.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from sqlite_ml.errors import SqmlError
from sqlite_ml.ml.splits import hash_unit, hashed_split


def test_a_key_gets_the_same_number_whatever_else_is_read() -> None:
    keys = np.arange(1, 10_001)
    alone = hash_unit(keys[5000:5001], 42)
    assert hash_unit(keys, 42)[5000] == alone[0]
    assert hash_unit(keys[::-1], 42)[-5001] == alone[0]
    assert hash_unit(keys, 43)[5000] != alone[0]  # another seed, another split


def test_numbers_are_uniform_and_the_split_has_its_share() -> None:
    keys = np.arange(1, 200_001)
    units = hash_unit(keys, 7)
    assert 0 <= units.min() and units.max() < 1
    counts, _ = np.histogram(units, bins=10, range=(0, 1))
    assert counts.min() > 19_000 and counts.max() < 21_000
    train, test = hashed_split(keys, 7, 0.25)
    assert abs(len(test) / len(keys) - 0.25) < 0.005
    assert sorted([*train, *test]) == list(range(len(keys)))


def test_appended_rows_never_move_a_row_between_splits() -> None:
    before = set(hashed_split(np.arange(1, 1001), 3, 0.3)[1])
    after = set(hashed_split(np.arange(1, 1501), 3, 0.3)[1])
    assert {p for p in after if p < 1000} == before


def test_keys_of_every_sql_type() -> None:
    same = hash_unit(np.array([5, 6]), 1)
    assert (hash_unit([5.0, 6.0], 1) == same).all()  # 5.0 = 5 in SQL
    assert (hash_unit(np.array([5.0, 6.0]), 1) == same).all()
    mixed = hash_unit(["5", b"5", 5.5, 5], 1)
    assert len(set(mixed.tolist())) == 4 and mixed[3] == same[0]
    with pytest.raises(SqmlError, match="a row key is NULL"):
        hash_unit(["a", None], 1)
