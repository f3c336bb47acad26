"""Which rows train a model and which test it."""

from __future__ import annotations

import math

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
