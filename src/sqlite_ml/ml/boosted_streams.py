"""XGBoost and LightGBM trained on a stream of chunks (no SQL here).

* XGBoost: a ``DataIter`` hands the chunks to ``QuantileDMatrix``, which keeps only the
  quantised matrix (one byte per cell with the default 256 bins), never the float data.
* LightGBM: a ``Sequence`` hands them to ``Dataset``, which samples rows for its bin
  boundaries and then pushes the rows batch by batch into its binned store.

Both give a Booster; the stored model stays the scikit-learn estimator of the catalogue,
so prediction is unchanged: the estimator is first fitted on a few primer rows (one per
class), which sets every attribute its library's ``fit`` sets (classes, label encoder,
objective), and then takes the streamed Booster in place of the primer's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import lightgbm
import numpy as np
import xgboost

Batches = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # a fresh pass: (x, y)


class ChunkIterator(xgboost.DataIter):
    """XGBoost's data iterator over our chunks (reset starts a new pass)."""

    def __init__(self, batches: Batches):
        super().__init__(release_data=True)
        self._batches = batches
        self._current: Iterator[tuple[np.ndarray, np.ndarray]] | None = None

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._current is None:
            self._current = self._batches()
        for x, y in self._current:
            if len(x):
                input_data(data=x, label=y)
                return True
        return False

    def reset(self) -> None:
        self._current = None


class ChunkSequence(lightgbm.Sequence):
    """LightGBM's ``Sequence`` over our chunks: forward reading, restarted when asked for
    an earlier row (LightGBM samples in increasing order, then reads batches in order)."""

    def __init__(self, batches: Batches, rows: int, batch_size: int):
        self._batches = batches
        self._rows = rows
        self.batch_size = batch_size
        self._restart()

    def _restart(self) -> None:
        self._current = self._batches()
        self._start = 0  # position of the buffer's first row
        self._buffer = np.empty((0, 0))

    def __len__(self) -> int:
        return self._rows

    def _advance_to(self, position: int) -> None:
        if position < self._start:
            self._restart()
        while position >= self._start + len(self._buffer):
            self._start += len(self._buffer)
            try:
                self._buffer = next(self._current)[0]
            except StopIteration:
                raise IndexError(f"row {position} is past the stream's end") from None

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, _ = index.indices(self._rows)
            pieces = []
            position = start
            while position < stop:
                self._advance_to(position)
                offset = position - self._start
                piece = self._buffer[offset : offset + (stop - position)]
                pieces.append(piece)
                position += len(piece)
            return np.concatenate(pieces) if pieces else np.empty((0, self._buffer.shape[1]))
        if isinstance(index, list):
            return np.stack([self[int(i)] for i in index])
        position = int(index)
        self._advance_to(position)
        return self._buffer[position - self._start]


def prime(estimator: Any, width: int, classes: np.ndarray | None) -> None:
    """Fit ``estimator`` on a few rows so its library sets every fitted attribute."""
    labels = classes if classes is not None else np.array([0.0, 1.0])
    rows = np.zeros((max(len(labels), 2), width))
    if len(labels) < len(rows):
        labels = np.resize(labels, len(rows))
    rounds = "n_estimators"
    saved = estimator.get_params()[rounds]
    estimator.set_params(**{rounds: 1})
    try:
        estimator.fit(rows, labels)
    finally:
        estimator.set_params(**{rounds: saved})


def fit_xgboost(estimator: Any, batches: Batches, width: int, classes: np.ndarray | None) -> None:
    """Train ``estimator`` (XGBoost, scikit-learn interface) on ``batches``; labels are
    class positions in ``classes`` for classification, as XGBoost wants them."""
    params = xgboost_params(estimator, classes)
    iterator = ChunkIterator(batches)
    matrix = xgboost.QuantileDMatrix(
        iterator,
        missing=estimator.missing,
        max_bin=estimator.max_bin,
        nthread=estimator.n_jobs,
    )
    booster = xgboost.train(params, matrix, estimator.get_num_boosting_rounds())
    del matrix
    adopt_xgboost(estimator, booster, width, classes)


def xgboost_params(estimator: Any, classes: np.ndarray | None) -> dict[str, Any]:
    """The training parameters the estimator's own ``fit`` would use."""
    params = dict(estimator.get_xgb_params())
    if classes is not None and len(classes) > 2:
        if params.get("objective") != "multi:softmax":
            params["objective"] = "multi:softprob"
        params["num_class"] = len(classes)
    return params


def adopt_xgboost(
    estimator: Any, booster: xgboost.Booster, width: int, classes: np.ndarray | None
) -> None:
    """Make ``estimator`` the fitted scikit-learn face of ``booster``."""
    prime(estimator, width, classes)
    estimator._Booster = booster


def fit_lightgbm(
    estimator: Any,
    batches: Batches,
    width: int,
    rows: int,
    labels: np.ndarray,
    classes: np.ndarray | None,
    batch_size: int,
) -> None:
    """Train ``estimator`` (LightGBM, scikit-learn interface) on ``batches`` of ``rows``
    train rows whose ``labels`` (class positions for classification) are given whole."""
    prime(estimator, width, classes)
    params = estimator._process_params(stage="fit")  # what its own fit would pass
    params.pop("metric", None)
    dataset = lightgbm.Dataset(
        ChunkSequence(batches, rows, batch_size), label=labels, params=params, free_raw_data=True
    )
    booster = lightgbm.train(params, dataset, num_boost_round=estimator.n_estimators)
    adopt_lightgbm(estimator, booster)


def adopt_lightgbm(estimator: Any, booster: lightgbm.Booster) -> None:
    """Make ``estimator`` (already primed) the fitted scikit-learn face of ``booster``."""
    estimator._Booster = booster
    estimator._n_features = booster.num_feature()
    estimator._best_iteration = booster.best_iteration
    estimator._best_score = booster.best_score
    estimator._evals_result = {}
