"""Per-feature summaries of training rows, and how far new rows have drifted from them:
numpy and scipy only, no SQL.

A numeric feature keeps its count, missing count, mean, standard deviation, range, its
deciles (the bins of the population stability index, plus a bin for missing values) with
the training count in each, and its percentiles with the exact training CDF at each. A
categorical feature keeps the count of each of its most frequent categories, of the
others, and of missing values.

Against new rows: the population stability index over those bins, and a two-sample
statistic: Kolmogorov-Smirnov for numbers (the largest CDF gap, measured at the stored
percentiles, so within about 0.01 of the exact statistic; asymptotic p-value), and
chi-square of homogeneity for categories (with Cramér's V as its size). A feature is
flagged when its PSI reaches ``PSI_THRESHOLD``, or when the test's p-value is below
``P_VALUE_THRESHOLD`` and its size reaches ``EFFECT_THRESHOLD`` (with many rows, a
p-value alone flags differences too small to matter).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

PSI_THRESHOLD = 0.2  # 0.1 to 0.2 is usually read as a moderate shift, above 0.2 as large
P_VALUE_THRESHOLD = 0.01
EFFECT_THRESHOLD = 0.1  # KS statistic, or Cramér's V
MAX_CATEGORIES = 100
PSI_FLOOR = 1e-4  # an empty bin counts as this share, so the index stays finite
SUMMARY_VERSION = 1


def summarize_numeric(values: np.ndarray) -> dict[str, Any]:
    """The summary of a numeric feature's training values (NaN: missing)."""
    values = np.asarray(values, dtype=np.float64)
    present = np.sort(values[~np.isnan(values)])
    summary: dict[str, Any] = {
        "kind": "numeric",
        "rows": len(values),
        "missing": int(len(values) - len(present)),
    }
    if not len(present):
        return summary | {"edges": [], "counts": [0], "points": [], "cdf": []}
    edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9)))
    points = np.unique(np.quantile(present, np.linspace(0, 1, 101)))
    cdf = np.searchsorted(present, points, side="right") / len(present)
    return summary | {
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present[0]),
        "max": float(present[-1]),
        "edges": edges.tolist(),
        "counts": _bin_counts(present, edges).tolist(),
        "points": points.tolist(),
        "cdf": cdf.tolist(),
    }


def _bin_counts(present: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e1], (e1, e2], ..., (ek, inf)."""
    return np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)


def summarize_categories(values: Sequence[str | None]) -> dict[str, Any]:
    """The summary of a categorical feature's training values (None: missing)."""
    counts = Counter(value for value in values if value is not None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_CATEGORIES]
    kept = dict(ranked)
    missing = sum(1 for value in values if value is None)
    return {
        "kind": "categorical",
        "rows": len(values),
        "missing": missing,
        "categories": kept,
        "other": len(values) - missing - sum(kept.values()),
    }


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    if expected.sum() == 0 or actual.sum() == 0:
        return math.nan
    e = np.maximum(expected / expected.sum(), PSI_FLOOR)
    a = np.maximum(actual / actual.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def compare_numeric(summary: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    present = np.sort(values[~missing])
    edges = np.asarray(summary["edges"], dtype=np.float64)
    expected = np.r_[np.asarray(summary["counts"], dtype=np.float64), summary["missing"]]
    actual = np.r_[_bin_counts(present, edges), missing.sum()].astype(np.float64)
    result = _common(summary, len(values), int(missing.sum()), psi(expected, actual))
    points = np.asarray(summary["points"], dtype=np.float64)
    trained = summary["rows"] - summary["missing"]
    if len(present) and len(points) and trained:
        new_cdf = np.searchsorted(present, points, side="right") / len(present)
        statistic = float(np.max(np.abs(new_cdf - np.asarray(summary["cdf"]))))
        effective = max(1, round(trained * len(present) / (trained + len(present))))
        p_value = float(stats.kstwo.sf(statistic, effective))
        result |= {"test": "ks", "statistic": statistic, "p_value": p_value}
        result["mean"], result["training_mean"] = float(present.mean()), summary.get("mean")
    return _flagged(result)


def compare_categories(summary: dict[str, Any], values: Sequence[str | None]) -> dict[str, Any]:
    kept: dict[str, int] = summary["categories"]
    counts = Counter(value for value in values if value is not None)
    missing = sum(1 for value in values if value is None)
    names = list(kept)
    expected = np.array([*kept.values(), summary["other"], summary["missing"]], dtype=float)
    new_other = sum(count for name, count in counts.items() if name not in kept)
    actual = np.array([*(counts.get(n, 0) for n in names), new_other, missing], dtype=float)
    result = _common(summary, len(values), missing, psi(expected, actual))
    used = (expected + actual) > 0
    if used.sum() >= 2 and expected.sum() and actual.sum():
        table = np.vstack([expected[used], actual[used]])
        chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
        cramers_v = math.sqrt(chi2 / table.sum()) if table.sum() else 0.0
        result |= {
            "test": "chi_square",
            "statistic": float(chi2),
            "p_value": float(p_value),
            "cramers_v": cramers_v,
        }
        unseen = sorted(name for name in counts if name not in kept)
        if unseen:
            result["new_categories"] = unseen[:10]
    return _flagged(result)


def _common(summary: dict[str, Any], rows: int, missing: int, index: float) -> dict[str, Any]:
    return {
        "kind": summary["kind"],
        "rows": rows,
        "training_rows": summary["rows"],
        "missing_share": missing / rows if rows else None,
        "training_missing_share": summary["missing"] / summary["rows"] if summary["rows"] else None,
        "psi": index if math.isfinite(index) else None,
    }


def _flagged(result: dict[str, Any]) -> dict[str, Any]:
    index = result.get("psi")
    size = result.get("cramers_v", result.get("statistic")) if result.get("test") else None
    p_value = result.get("p_value")
    result["drift"] = bool(
        (index is not None and index >= PSI_THRESHOLD)
        or (
            p_value is not None
            and size is not None
            and p_value < P_VALUE_THRESHOLD
            and size >= EFFECT_THRESHOLD
        )
    )
    return result
