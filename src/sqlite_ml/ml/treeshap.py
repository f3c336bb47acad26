"""Exact TreeSHAP (path-dependent, as Lundberg et al. 2018 and the ``shap`` package's
``TreeExplainer``) for scikit-learn's decision trees, numpy only.

A tree's prediction is a sum over its leaves of ``value x [the row reaches the leaf]``.
With the features of a coalition S known and the others unknown, the expected prediction
follows the row at splits on known features and the training cover ratios at the others,
so a leaf L contributes ``v_L x prod_{f in S} a_f x prod_{f not in S} r_f`` over the
distinct features f on its path, where ``a_f`` is whether the row satisfies every split
of the path on f (an interval of f) and ``r_f`` the product of the cover ratios of those
splits. That is a product game, whose Shapley values have a closed form: for feature i of
the path (d features),

    phi_i = v_L (a_i - r_i) sum_k w(d, k) c_k,   w(d, k) = k! (d - k - 1)! / d!,

where ``c_k`` is the coefficient of z^k in ``prod_{j != i} (r_j + a_j z)``. The values of
a tree are the sums over its leaves; those of an ensemble the (weighted) sums over its
trees. The baseline is ``sum_L v_L prod_f r_f``, the tree's cover-weighted mean value, so
contributions plus baseline equal the prediction exactly.

Leaves are evaluated all at once per row block (arrays of leaves x path features), so one
row costs a few dozen numpy operations on arrays the size of the model's leaf count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_CELLS_PER_BLOCK = 2_000_000  # rows x leaves x path features evaluated at once


@dataclass(frozen=True)
class LeafTable:
    """The leaves of one or more trees: per leaf, its distinct path features (padded to
    the longest path with inactive slots) and each one's interval and cover ratio."""

    features: np.ndarray  # (leaves, slots) int
    lower: np.ndarray  # (leaves, slots): the row satisfies lower < x <= upper
    upper: np.ndarray
    ratio: np.ndarray  # (leaves, slots): cover ratio; 1 for inactive slots
    active: np.ndarray  # (leaves, slots) bool
    depth: np.ndarray  # (leaves,) distinct features on the path
    values: np.ndarray  # (leaves, outputs), already weighted by the tree's weight

    @property
    def baseline(self) -> np.ndarray:
        """The expected output: sum over leaves of value x product of cover ratios."""
        return np.prod(self.ratio, axis=1) @ self.values


def leaf_table(trees: Sequence[object], weights: Sequence[float], outputs: int) -> LeafTable:
    """The leaves of scikit-learn ``Tree`` objects (``estimator.tree_``), each tree's leaf
    values multiplied by its weight (a forest's 1/n, a boosting's learning rate);
    classification trees give class fractions, regression trees their value."""
    parts = [
        _tree_leaves(tree, weight, outputs) for tree, weight in zip(trees, weights, strict=True)
    ]
    slots = max([1, *(part.features.shape[1] for part in parts)])

    def padded(name: str, fill: object, dtype: Any) -> np.ndarray:
        blocks = []
        for part in parts:
            block = getattr(part, name)
            wide = np.full((len(block), slots), fill, dtype=dtype)
            wide[:, : block.shape[1]] = block
            blocks.append(wide)
        return np.concatenate(blocks) if blocks else np.full((0, slots), fill, dtype=dtype)

    return LeafTable(
        padded("features", 0, np.int64),
        padded("lower", -np.inf, np.float64),
        padded("upper", np.inf, np.float64),
        padded("ratio", 1.0, np.float64),
        padded("active", False, bool),
        np.concatenate([part.depth for part in parts]) if parts else np.zeros(0, np.int64),
        np.concatenate([part.values for part in parts]) if parts else np.zeros((0, outputs)),
    )


def _tree_leaves(tree: object, weight: float, outputs: int) -> LeafTable:
    """One tree's leaves, its nodes taken a level at a time: each child copies its
    parent's path (per feature the tree uses: interval, cover ratio, on the path or not)
    and narrows the split feature's. The structure comes from a database, so it is
    checked first: children in range and after their parent, each node reached once."""
    left = np.asarray(tree.children_left, dtype=np.int64)  # type: ignore[attr-defined]
    right = np.asarray(tree.children_right, dtype=np.int64)  # type: ignore[attr-defined]
    feature = np.asarray(tree.feature, dtype=np.int64)  # type: ignore[attr-defined]
    threshold = np.asarray(tree.threshold, dtype=np.float64)  # type: ignore[attr-defined]
    cover = np.asarray(tree.weighted_n_node_samples, dtype=np.float64)  # type: ignore[attr-defined]
    value = np.asarray(tree.value, dtype=np.float64)[:, 0, :]  # type: ignore[attr-defined]
    if value.shape[1] > 1:  # class weights or fractions: fractions
        value = value / np.maximum(value.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    nodes = len(left)
    internal = np.flatnonzero(left != -1)
    children = np.concatenate([left[internal], right[internal]])
    owners = np.concatenate([internal, internal])
    if (
        np.any(children <= owners)
        or np.any(children >= nodes)
        or len(np.unique(children)) != len(children)
        or np.any(feature[internal] < 0)
    ):
        raise ValueError("a tree's nodes do not form a tree")
    used, compact = np.unique(feature[internal], return_inverse=True)
    width = max(1, len(used))
    lower = np.full((nodes, width), -np.inf)
    upper = np.full((nodes, width), np.inf)
    ratio = np.ones((nodes, width))
    on_path = np.zeros((nodes, width), dtype=bool)
    split_of = np.zeros(nodes, dtype=np.int64)
    split_of[internal] = compact
    level = np.array([0])
    while len(level):
        parents = level[left[level] != -1]
        if not len(parents):
            break
        f, t = split_of[parents], threshold[parents]
        share = np.where(cover[parents] > 0, cover[parents], 1.0)
        for kids, narrow_upper in ((left[parents], True), (right[parents], False)):
            lower[kids], upper[kids] = lower[parents], upper[parents]
            ratio[kids], on_path[kids] = ratio[parents], on_path[parents]
            if narrow_upper:
                upper[kids, f] = np.minimum(upper[parents, f], t)
            else:
                lower[kids, f] = np.maximum(lower[parents, f], t)
            ratio[kids, f] = ratio[parents, f] * cover[kids] / share
            on_path[kids, f] = True
        level = np.concatenate([left[parents], right[parents]])
    leaves = np.flatnonzero(left == -1)
    depth = on_path[leaves].sum(axis=1)
    slots = int(depth.max(initial=0))
    order = np.argsort(~on_path[leaves], axis=1, kind="stable")[:, :slots]
    rows = leaves[:, None]
    active = np.take_along_axis(on_path[leaves], order, axis=1)
    values = np.zeros((len(leaves), outputs))
    values[:, : value.shape[1]] = value[leaves] * weight
    return LeafTable(
        np.where(active, used[order] if len(used) else 0, 0),
        np.where(active, lower[rows, order], -np.inf),
        np.where(active, upper[rows, order], np.inf),
        np.where(active, ratio[rows, order], 1.0),
        active,
        depth,
        values,
    )


def _shapley_weights(depth: int) -> np.ndarray:
    """w(d, k) = k! (d - k - 1)! / d! for 0 <= k < d."""
    return np.array(
        [
            math.factorial(k) * math.factorial(depth - k - 1) / math.factorial(depth)
            for k in range(depth)
        ]
    )


def shap_values(table: LeafTable, x: np.ndarray, width: int) -> np.ndarray:
    """Contributions (rows, width, outputs) of each input column for every row of ``x``
    (already as the trees compare it: float32 values as float64). Leaves are taken in
    groups of equal path length, so a group's polynomials have just that degree."""
    rows = len(x)
    outputs = table.values.shape[1]
    out = np.zeros((rows, width, outputs))
    order = np.argsort(table.depth, kind="stable")
    depths = table.depth[order]
    bounds = np.flatnonzero(np.diff(depths)) + 1
    for group in np.split(order, bounds):
        depth = int(table.depth[group[0]])
        if depth == 0:  # a tree that is one leaf: nothing to attribute
            continue
        features = table.features[group, :depth]
        lower, upper = table.lower[group, :depth], table.upper[group, :depth]
        ratio, values = table.ratio[group, :depth], table.values[group]
        weights = _shapley_weights(depth)
        block = max(1, _CELLS_PER_BLOCK // max(1, len(group) * depth))
        for first in range(0, rows, block):
            part = x[first : first + block]
            seen = part[:, features]  # (rows, leaves, depth)
            a = ((seen > lower) & (seen <= upper)).astype(np.float64)
            gains = _slot_gains(a, ratio, weights)
            flat = (features[None, :, :] + width * np.arange(len(part))[:, None, None]).ravel()
            for output in range(outputs):
                weighted = (gains * values[None, :, output, None]).ravel()
                summed = np.bincount(flat, weights=weighted, minlength=len(part) * width)
                out[first : first + len(part), :, output] += summed.reshape(len(part), width)
    return out


def _slot_gains(a: np.ndarray, ratio: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(a_i - r_i) sum_k w(d, k) c_k for every row, leaf and path feature i, where c is
    prod_{j != i} (r_j + a_j z). With P = prod_j (r_j + a_j z): an unsatisfied feature
    (a_i = 0) divides P by r_i, so its gain is -sum_k w_k p_k whatever r_i; a satisfied
    one divides P by (z + r_i) (synthetic division, from the top coefficient down)."""
    rows, leaves, depth = a.shape
    poly = np.zeros((rows, leaves, depth + 1))
    poly[..., 0] = 1.0
    for j in range(depth):
        poly[..., 1 : j + 2] = poly[..., 1 : j + 2] * ratio[None, :, j, None] + (
            poly[..., : j + 1] * a[..., j, None]
        )
        poly[..., 0] *= ratio[None, :, j]
    unsatisfied = -np.einsum("rlk,k->rl", poly[..., :depth], weights)
    gains = np.empty((rows, leaves, depth))
    for i in range(depth):
        r = ratio[None, :, i]
        carry = poly[..., depth]
        total = weights[depth - 1] * carry
        for k in range(depth - 1, 0, -1):
            carry = poly[..., k] - r * carry
            total = total + weights[k - 1] * carry
        gains[..., i] = np.where(a[..., i] > 0, (1 - r) * total, unsatisfied)
    return gains
