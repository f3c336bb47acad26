"""Preprocessing statistics from chunks of rows, for streamed training (no SQL here).

What the in-memory pipeline learns in ``fit`` (the imputer's fill values, the scaler's
centre and divisor) is computed here from chunks, exactly rather than by sketch:

* means, variances, minimums and maximums in one pass (Chan's parallel merge of each
  chunk's moments), and for the imputed column (the scaler sees imputed values) from the
  present values' moments plus the missing count;
* medians and quartiles (``median`` impute, ``robust`` scale) by exact selection: each
  further pass narrows a histogram around the wanted rank until few enough values are
  left to sort, with numpy's own interpolation rule on the result;
* the most frequent value (``most_frequent`` impute) from exact counts, refused with a
  clear error past ``MAX_DISTINCT`` distinct values, where exact counts cost too much memory.

The results equal the in-memory ones up to floating-point rounding (sums taken in
another order), which ``tests/test_streaming.py`` checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import SqmlError
from ..preprocessing import ColumnImputer, ColumnScaler

MAX_DISTINCT = 1_000_000  # most_frequent: exact counts of at most this many values per column
_BINS = 4096
_COLLECT = 200_000  # values few enough to sort in memory, per wanted rank


class Moments:
    """Count, mean, sum of squared deviations, minimum and maximum of each column's
    present (non-NaN) values, plus its missing count; merged chunk by chunk."""

    def __init__(self, width: int):
        self.count = np.zeros(width, dtype=np.int64)
        self.missing = np.zeros(width, dtype=np.int64)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.minimum = np.full(width, np.inf)
        self.maximum = np.full(width, -np.inf)

    def update(self, block: np.ndarray) -> None:
        if not len(block):
            return
        present = ~np.isnan(block)
        count = present.sum(axis=0)
        self.missing += len(block) - count
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(block, axis=0) / np.maximum(count, 1), 0.0)
            deviations = np.where(present, block - mean, 0.0)
        m2 = np.einsum("ij,ij->j", deviations, deviations)
        self._merge(count, mean, m2)
        with np.errstate(invalid="ignore"):
            self.minimum = np.fmin(self.minimum, np.nanmin(block, axis=0, initial=np.inf))
            self.maximum = np.fmax(self.maximum, np.nanmax(block, axis=0, initial=-np.inf))

    def _merge(self, count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
        total = self.count + count
        safe = np.maximum(total, 1)
        delta = mean - self.mean
        self.mean = self.mean + delta * count / safe
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / safe
        self.count = total

    def merge(self, other: Moments) -> None:
        self.missing += other.missing
        self._merge(other.count, other.mean, other.m2)
        self.minimum = np.fmin(self.minimum, other.minimum)
        self.maximum = np.fmax(self.maximum, other.maximum)

    def present_mean(self) -> np.ndarray:
        """The mean of present values; NaN for a column without any."""
        return np.where(self.count > 0, self.mean, np.nan)

    def imputed(self, fill: np.ndarray) -> Moments:
        """The moments of the columns once their missing values are ``fill``."""
        out = Moments(len(fill))
        out.count, out.mean, out.m2 = self.count.copy(), self.mean.copy(), self.m2.copy()
        out._merge(self.missing.copy(), fill.astype(np.float64), np.zeros(len(fill)))
        has_missing = self.missing > 0
        out.minimum = np.where(has_missing, np.fmin(self.minimum, fill), self.minimum)
        out.maximum = np.where(has_missing, np.fmax(self.maximum, fill), self.maximum)
        return out

    def variance(self) -> np.ndarray:
        return np.where(self.count > 0, self.m2 / np.maximum(self.count, 1), 0.0)


ColumnPass = Callable[[], Iterator[np.ndarray]]  # a fresh pass over the (encoded) train rows


def order_statistics(
    columns_pass: ColumnPass,
    wanted: dict[int, list[int]],
    moments: Moments,
    fill: np.ndarray | None = None,
) -> dict[tuple[int, int], float]:
    """The k-th smallest value (0-based) of column c, for each ``(c, k)`` in ``wanted``
    ({column: [k, ...]}), counting a column's missing values as copies of ``fill`` when
    given and leaving them out otherwise. Exact: each pass of ``columns_pass`` narrows a
    window [low, high] of values around each rank to one histogram bin (bins hold
    contiguous values), until the window is one value or few enough to sort."""
    windows: dict[tuple[int, int], tuple[float, float]] = {}
    for column, ranks in wanted.items():
        low, high = float(moments.minimum[column]), float(moments.maximum[column])
        if fill is not None and moments.missing[column]:
            low, high = min(low, float(fill[column])), max(high, float(fill[column]))
        for k in ranks:
            windows[(column, k)] = (low, high)
    found: dict[tuple[int, int], float] = {}
    while True:
        for key, (low, high) in windows.items():
            if key not in found and (low == high or not math.isfinite(low)):
                found[key] = low if math.isfinite(low) else math.nan
        active = {key: w for key, w in windows.items() if key not in found}
        if not active:
            return found
        windows.update(_narrow(columns_pass, active, moments, fill, found))


def _narrow(
    columns_pass: ColumnPass,
    active: dict[tuple[int, int], tuple[float, float]],
    moments: Moments,
    fill: np.ndarray | None,
    found: dict[tuple[int, int], float],
) -> dict[tuple[int, int], tuple[float, float]]:
    """One pass over the rows for every unresolved rank (see ``order_statistics``)."""
    below = dict.fromkeys(active, 0)
    counts = {key: np.zeros(_BINS, dtype=np.int64) for key in active}
    lows = {key: np.full(_BINS, np.inf) for key in active}
    highs = {key: np.full(_BINS, -np.inf) for key in active}
    kept: dict[tuple[int, int], list[np.ndarray]] = {key: [] for key in active}
    for block in columns_pass():
        for key, (low, high) in active.items():
            values = block[:, key[0]]
            values = values[~np.isnan(values)]
            _count(values, low, high, key, below, counts, lows, highs, kept)
    narrowed: dict[tuple[int, int], tuple[float, float]] = {}
    for key, (low, high) in active.items():
        column, rank = key
        if fill is not None and moments.missing[column]:
            copies = np.full(int(moments.missing[column]), float(fill[column]))
            _count(copies, low, high, key, below, counts, lows, highs, kept, keep_all=True)
        inside = int(counts[key].sum())
        within = rank - below[key]
        if inside <= _COLLECT:
            values = np.sort(np.concatenate(kept[key])) if kept[key] else np.array([low])
            found[key] = float(values[min(max(within, 0), len(values) - 1)])
            continue
        cumulative = np.cumsum(counts[key])
        b = min(int(np.searchsorted(cumulative, within, side="right")), _BINS - 1)
        narrowed[key] = (float(lows[key][b]), float(highs[key][b]))
    return narrowed


def _count(
    values: np.ndarray,
    low: float,
    high: float,
    key: tuple[int, int],
    below: dict[tuple[int, int], int],
    counts: dict[tuple[int, int], np.ndarray],
    lows: dict[tuple[int, int], np.ndarray],
    highs: dict[tuple[int, int], np.ndarray],
    kept: dict[tuple[int, int], list[np.ndarray]],
    keep_all: bool = False,
) -> None:
    below[key] += int(np.count_nonzero(values < low))
    values = values[(values >= low) & (values <= high)]
    if not len(values):
        return
    if high > low:
        position = np.floor((values - low) / (high - low) * _BINS).astype(np.int64)
        np.clip(position, 0, _BINS - 1, out=position)
    else:
        position = np.zeros(len(values), dtype=np.int64)
    counts[key] += np.bincount(position, minlength=_BINS)
    np.minimum.at(lows[key], position, values)
    np.maximum.at(highs[key], position, values)
    if keep_all or int(counts[key].sum()) <= _COLLECT:
        kept[key].append(values)


def percentiles(
    columns_pass: ColumnPass,
    wanted: dict[int, list[float]],
    moments: Moments,
    fill: np.ndarray | None = None,
) -> dict[tuple[int, float], float]:
    """numpy's ``percentile`` (linear interpolation) of whole columns, exactly: the two
    order statistics around each percentile, then numpy's own interpolation rule."""
    totals = moments.count + (moments.missing if fill is not None else 0)
    ranks: dict[int, list[int]] = {}
    plan: dict[tuple[int, float], tuple[int, int, float]] = {}
    for column, qs in wanted.items():
        n = int(totals[column])
        for q in qs:
            if n == 0:
                continue
            virtual = (q / 100) * (n - 1)
            previous = int(math.floor(virtual))
            following = min(previous + 1, n - 1)
            plan[(column, q)] = (previous, following, virtual - previous)
            ranks.setdefault(column, []).extend([previous, following])
    values = order_statistics(
        columns_pass, {c: sorted(set(r)) for c, r in ranks.items()}, moments, fill
    )
    out: dict[tuple[int, float], float] = {}
    for (column, q), (previous, following, gamma) in plan.items():
        a, b = values[(column, previous)], values[(column, following)]
        out[(column, q)] = float(_lerp(np.float64(a), np.float64(b), np.float64(gamma)))
    return out


def _lerp(a: np.float64, b: np.float64, t: np.float64) -> np.float64:
    """numpy's interpolation between neighbours, as ``np.percentile`` computes it."""
    difference = b - a
    result = a + difference * t
    if t >= 0.5:
        result = b - difference * (1 - t)
    return np.float64(result)


def median_ranks(n: int) -> list[int]:
    """The order statistics whose mean is the median of n values."""
    return [(n - 1) // 2, n // 2]


class ValueCounts:
    """Exact counts of each column's distinct present values, merged chunk by chunk."""

    def __init__(self, columns: Iterable[int]):
        self.values = {c: np.empty(0) for c in columns}
        self.counts = {c: np.empty(0, dtype=np.int64) for c in self.values}

    def update(self, block: np.ndarray, names: dict[int, str]) -> None:
        for column in self.values:
            present = block[:, column]
            present = present[~np.isnan(present)]
            values, counts = np.unique(present, return_counts=True)
            merged = np.concatenate([self.values[column], values])
            unique, inverse = np.unique(merged, return_inverse=True)
            total = np.bincount(
                inverse,
                weights=np.concatenate([self.counts[column], counts]),
                minlength=len(unique),
            )
            if len(unique) > MAX_DISTINCT:
                raise SqmlError(
                    f"column '{names[column]}' has more than {MAX_DISTINCT:,} distinct values, "
                    "so impute 'most_frequent' cannot be computed exactly while streaming; "
                    "choose impute 'median' or 'mean' for it"
                )
            self.values[column], self.counts[column] = unique, total.astype(np.int64)

    def most_frequent(self, column: int) -> float:
        if not len(self.values[column]):
            return 0.0
        # argmax takes the first of equal counts: the smallest value, as SimpleImputer.
        return float(self.values[column][int(np.argmax(self.counts[column]))])


def fitted_standard_steps(moments: Moments, width: int) -> tuple[SimpleImputer, StandardScaler]:
    """The default steps (mean imputation, standard scaling) as ``fit`` would leave them
    on the train rows whose moments these are."""
    imputer = SimpleImputer(strategy="mean", keep_empty_features=True)
    imputer.fit(moments.present_mean().reshape(1, width))  # one row: its values are the means
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    imputed = moments.imputed(fill)
    scaler = StandardScaler()
    scaler.fit(np.zeros((2, width)))  # shapes and attributes; the statistics follow
    variance = imputed.variance()
    scaler.mean_ = imputed.mean.copy()
    scaler.var_ = variance
    scaler.n_samples_seen_ = int(imputed.count.max()) if width else 0
    scaler.scale_ = _scale(variance, imputed.mean, scaler.n_samples_seen_)
    return imputer, scaler


def _scale(variance: np.ndarray, mean: np.ndarray, samples: int) -> np.ndarray:
    """StandardScaler's divisor: the standard deviation, 1 for a constant column."""
    try:  # scikit-learn's own rule for "constant", so both paths agree on edge cases
        from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature

        constant = _is_constant_feature(variance, mean, samples)
        return np.asarray(
            _handle_zeros_in_scale(np.sqrt(variance), copy=True, constant_mask=constant)
        )
    except ImportError:  # pragma: no cover - a future scikit-learn without them
        scale = np.sqrt(variance)
        return np.where(scale < 10 * np.finfo(np.float64).eps, 1.0, scale)


def fitted_column_steps(
    imputes: tuple[str, ...],
    scales: tuple[str, ...],
    moments: Moments,
    columns_pass: ColumnPass,
    names: dict[int, str],
) -> tuple[ColumnImputer, ColumnScaler]:
    """Per-column steps (``preprocess`` option) as ``fit`` would leave them: fill values,
    then the scaling of the imputed columns; extra exact passes for medians, quartiles
    and most frequent values."""
    width = len(imputes)
    fill = np.zeros(width)
    present_mean = moments.present_mean()
    medians = [c for c, s in enumerate(imputes) if s == "median" and moments.count[c]]
    frequent = [c for c, s in enumerate(imputes) if s == "most_frequent" and moments.count[c]]
    for c, strategy in enumerate(imputes):
        if strategy == "mean" and moments.count[c]:
            fill[c] = present_mean[c]
    if medians:  # np.median: the mean of the middle two of the present values
        ranks = {c: median_ranks(int(moments.count[c])) for c in medians}
        found = order_statistics(columns_pass, ranks, moments)
        for c in medians:
            low, high = (found[(c, k)] for k in ranks[c])
            fill[c] = float(np.mean([low, high]))
    if frequent:
        counter = ValueCounts(frequent)
        for block in columns_pass():
            counter.update(block, names)
        for c in frequent:
            fill[c] = counter.most_frequent(c)
    imputer = ColumnImputer(imputes)
    imputer.statistics_ = fill
    imputer.n_features_in_ = width
    imputed = moments.imputed(fill)
    robust = [c for c, s in enumerate(scales) if s == "robust"]
    quartiles = (
        percentiles(columns_pass, {c: [25.0, 50.0, 75.0] for c in robust}, moments, fill)
        if robust
        else {}
    )
    centres, divisors = np.zeros(width), np.ones(width)
    for c, strategy in enumerate(scales):
        centres[c], divisors[c] = _centre_and_divisor(strategy, c, imputed, quartiles)
    scaler = ColumnScaler(scales)
    scaler.mean_, scaler.scale_, scaler.n_features_in_ = centres, divisors, width
    return imputer, scaler


def _centre_and_divisor(
    strategy: str, c: int, imputed: Moments, quartiles: dict[tuple[int, float], float]
) -> tuple[float, float]:
    """``preprocessing._centre_and_divisor`` from streamed statistics of the imputed column."""
    if strategy == "none" or imputed.count[c] == 0:
        return 0.0, 1.0
    if strategy == "standard":
        centre, divisor = float(imputed.mean[c]), math.sqrt(float(imputed.variance()[c]))
    elif strategy == "min_max":
        centre = float(imputed.minimum[c])
        divisor = float(imputed.maximum[c]) - centre
    elif strategy == "max_abs":
        centre = 0.0
        divisor = max(abs(float(imputed.minimum[c])), abs(float(imputed.maximum[c])))
    else:
        median = quartiles[(c, 50.0)]
        centre, divisor = median, quartiles[(c, 75.0)] - quartiles[(c, 25.0)]
    return centre, divisor if divisor != 0 and math.isfinite(divisor) else 1.0


def fitted_preprocessing(pipeline: Pipeline, fitted: tuple[Any, Any]) -> None:
    """Put fitted impute and scale steps into ``pipeline`` (whose model is fitted apart)."""
    imputer, scaler = fitted
    pipeline.steps[0] = ("impute", imputer)
    pipeline.steps[1] = ("scale", scaler)
