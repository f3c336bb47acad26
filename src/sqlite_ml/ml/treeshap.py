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
    rows: list[tuple[list[int], list[float], list[float], list[float], np.ndarray]] = []
    for tree, weight in zip(trees, weights, strict=True):
        rows.extend(_leaves(tree, weight, outputs))
    slots = max(1, max((len(row[0]) for row in rows), default=1))
    count = len(rows)
    features = np.zeros((count, slots), dtype=np.int64)
    lower = np.full((count, slots), -np.inf)
    upper = np.full((count, slots), np.inf)
    ratio = np.ones((count, slots))
    active = np.zeros((count, slots), dtype=bool)
    depth = np.zeros(count, dtype=np.int64)
    values = np.zeros((count, outputs))
    for index, (path_features, lows, highs, ratios, value) in enumerate(rows):
        size = len(path_features)
        features[index, :size] = path_features
        lower[index, :size] = lows
        upper[index, :size] = highs
        ratio[index, :size] = ratios
        active[index, :size] = True
        depth[index] = size
        values[index] = value
    return LeafTable(features, lower, upper, ratio, active, depth, values)


def _leaves(
    tree: object, weight: float, outputs: int
) -> list[tuple[list[int], list[float], list[float], list[float], np.ndarray]]:
    left = np.asarray(tree.children_left)  # type: ignore[attr-defined]
    right = np.asarray(tree.children_right)  # type: ignore[attr-defined]
    feature = np.asarray(tree.feature)  # type: ignore[attr-defined]
    threshold = np.asarray(tree.threshold)  # type: ignore[attr-defined]
    cover = np.asarray(tree.weighted_n_node_samples, dtype=np.float64)  # type: ignore[attr-defined]
    value = np.asarray(tree.value, dtype=np.float64)[:, 0, :]  # type: ignore[attr-defined]
    if value.shape[1] > 1:  # class weights or fractions: fractions
        value = value / np.maximum(value.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    nodes = len(left)
    found = []
    # (node, {feature: [lower, upper, ratio]}) ; a path visits a node once, so no cycle
    stack: list[tuple[int, dict[int, list[float]]]] = [(0, {})]
    while stack:
        node, path = stack.pop()
        if not 0 <= node < nodes:
            raise ValueError(f"a tree refers to node {node} of {nodes}")
        if left[node] == -1:
            leaf_value = np.zeros(outputs)
            leaf_value[: value.shape[1]] = value[node] * weight
            items = sorted(path.items())
            found.append(
                (
                    [f for f, _ in items],
                    [bounds[0] for _, bounds in items],
                    [bounds[1] for _, bounds in items],
                    [bounds[2] for _, bounds in items],
                    leaf_value,
                )
            )
            continue
        if len(path) > nodes:
            raise ValueError("a tree's path is longer than its nodes: it is not a tree")
        f, t = int(feature[node]), float(threshold[node])
        for child, is_left in ((int(left[node]), True), (int(right[node]), False)):
            if child <= node:  # children come after their parent in scikit-learn's trees
                raise ValueError("a tree's child comes before its parent: it is not a tree")
            low, high, share = path.get(f, [-math.inf, math.inf, 1.0])
            share *= cover[child] / cover[node] if cover[node] > 0 else 0.0
            bounds = [low, min(high, t), share] if is_left else [max(low, t), high, share]
            stack.append((child, {**path, f: bounds}))
    return found


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
