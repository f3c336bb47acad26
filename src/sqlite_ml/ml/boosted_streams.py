"""XGBoost and LightGBM trained on a stream of chunks (no SQL here).

* XGBoost: a ``DataIter`` gathers the chunks into pages of about ``XGBOOST_PAGE_BYTES``
  and hands them to ``ExtMemQuantileDMatrix`` (external memory): each page is quantised
  (one byte per cell with the default 256 bins) and written to a cache file in a private
  temporary directory, which training reads back a page at a time; the directory goes
  when training ends, failed or not. Only XGBoost's per-row state (labels, gradients,
  predictions, row partitions) stays in memory, never the matrix.
* LightGBM: a ``Sequence`` hands them to ``Dataset``, which samples rows for its bin
  boundaries and then pushes the rows batch by batch into its binned store.

Both give a Booster; the stored model stays the scikit-learn estimator of the catalogue,
so prediction is unchanged: the estimator is first fitted on a few primer rows (one per
class), which sets every attribute its library's ``fit`` sets (classes, label encoder,
objective), and then takes the streamed Booster in place of the primer's.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import xgboost

from ..errors import SqmlError

Batches = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # a fresh pass: (x, y)

# The float32 bytes of one page handed to XGBoost's external memory (one cache page).
# Pages are a trade-off, measured with XGBoost 3.2 on 20 float columns: quantising a page
# holds some 3.5 times its bytes (its sketch copies every value), while training keeps
# about 0.7 MB per page (its row partition blocks) and walks every page at every tree
# level, so small pages are slow: 2M rows in 65,536-row pages took 1.5 times as long as
# in 262,144-row pages, 6M rows 5 times. 32 MiB pages (419,430 rows of 20 columns) cost
# about 110 MiB while a page is quantised, and some 30 MiB of page state at 15M train
# rows, where XGBoost's per-row state (about 40 bytes a row) is some 570 MiB.
XGBOOST_PAGE_BYTES = 32 << 20
CACHE_DIRECTORY_PREFIX = "sqml-xgboost-"


def page_rows(width: int) -> int:
    """Rows per XGBoost page for ``width`` encoded columns."""
    return max(1, XGBOOST_PAGE_BYTES // (4 * max(1, width)))


class PageIterator(xgboost.DataIter):
    """XGBoost's data iterator over our chunks, gathered into float32 pages of
    ``rows_per_page`` rows (reset starts a new pass). XGBoost quantises float32 values
    whatever it is given, so the conversion changes no split."""

    def __init__(self, batches: Batches, width: int, rows_per_page: int, cache_prefix: str):
        # release_data: XGBoost drops each page once it is quantised.
        super().__init__(cache_prefix=cache_prefix, release_data=True)
        self._batches = batches
        self._width = width
        self._rows_per_page = rows_per_page
        self._current: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
        self._left: tuple[np.ndarray, np.ndarray] | None = None  # a chunk's rows not yet paged
        self.pages = 0  # pages of the last complete pass

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._current is None:
            self._current = self._batches()
            self.pages = 0
        matrix = np.empty((self._rows_per_page, self._width), dtype=np.float32)
        labels = np.empty(self._rows_per_page, dtype=np.float32)
        filled = 0
        while filled < self._rows_per_page:
            if self._left is None:
                chunk = next(self._current, None)
                if chunk is None:
                    break
                self._left = chunk
            x, y = self._left
            take = min(len(x), self._rows_per_page - filled)
            matrix[filled : filled + take] = x[:take]
            labels[filled : filled + take] = y[:take]
            filled += take
            self._left = (x[take:], y[take:]) if take < len(x) else None
        if filled == 0:
            return False
        self.pages += 1
        input_data(data=matrix[:filled], label=labels[:filled])
        return True

    def reset(self) -> None:
        self._current = None
        self._left = None


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


@dataclass
class ExternalMemoryFacts:
    """What a streamed XGBoost fit recorded about its external memory."""

    pages: int
    rows_per_page: int
    cache_bytes: int  # the cache files' size on disk, once written

    def details(self) -> dict[str, Any]:
        return {
            "xgboost_matrix": "external_memory",
            "xgboost_pages": self.pages,
            "xgboost_page_rows": self.rows_per_page,
            "xgboost_cache_bytes": self.cache_bytes,
        }


def cache_directory(parent: str | None) -> tempfile.TemporaryDirectory[str]:
    """A private directory for XGBoost's cache under ``parent`` (None: the temporary
    directory of ``tempfile``, which honours TMPDIR); removed by its ``cleanup``."""
    where = parent if parent is not None else tempfile.gettempdir()
    try:
        return tempfile.TemporaryDirectory(prefix=CACHE_DIRECTORY_PREFIX, dir=parent)
    except OSError as error:
        raise SqmlError(
            f"cannot create XGBoost's external-memory cache in '{where}': "
            f"{error.strerror or error}; name a writable directory with option cache_dir"
        ) from None


def fit_xgboost(
    estimator: Any,
    batches: Batches,
    width: int,
    classes: np.ndarray | None,
    train_rows: int,
    cache_dir: str | None = None,
) -> ExternalMemoryFacts:
    """Train ``estimator`` (XGBoost, scikit-learn interface) on ``batches`` of
    ``train_rows`` rows in all, through XGBoost's external memory cached under
    ``cache_dir``; labels are class positions in ``classes`` for classification, as
    XGBoost wants them."""
    params = xgboost_params(estimator, classes)
    rows_per_page = page_rows(width)
    folder = cache_directory(cache_dir)
    try:
        iterator = PageIterator(batches, width, rows_per_page, os.path.join(folder.name, "xgb"))
        # On CPU, XGBoost maps (mmap) each cache page while it reads it and unmaps it
        # after, so mapped file pages add only the few pages in flight to the RSS
        # (measured at 20M rows x 20: file pages in RSS at most 109 MiB, of which some
        # 100 MiB are the libraries' code); the DataIter's on_host and
        # min_cache_page_bytes concern GPU training only, so they are left alone.
        matrix = xgboost.ExtMemQuantileDMatrix(
            iterator,
            missing=estimator.missing,
            max_bin=estimator.max_bin,
            nthread=estimator.n_jobs,
        )
        try:
            if matrix.num_row() != train_rows:
                raise SqmlError(
                    f"XGBoost's external-memory matrix holds {matrix.num_row()} rows where "
                    f"{train_rows} train rows were read; nothing was trained"
                )
            facts = ExternalMemoryFacts(iterator.pages, rows_per_page, _size(folder.name))
            booster = xgboost.train(params, matrix, estimator.get_num_boosting_rounds())
        except BaseException as error:
            # The frames of a failed training hold the matrix: let go of their locals so
            # that it is freed below (the traceback keeps its lines).
            traceback.clear_frames(error.__traceback__)
            raise
        finally:
            # Freed before its folder goes: XGBoost deletes its cache files itself when the
            # matrix is freed, and warns when they have gone already.
            del matrix
    finally:
        folder.cleanup()
    adopt_xgboost(estimator, booster, width, classes)
    return facts


def _size(folder: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())


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
