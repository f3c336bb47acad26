"""The one check that node arrays form a tree, shared by every tree family we load.

A tree stored as ``left``/``right`` child arrays (-1 at a leaf) is walked by compiled code
that trusts it: a child out of range reads outside the arrays, a child pointing back loops
forever. :func:`problem` accepts only a tree in which every child comes after its parent
and every node but the root is the child of exactly one node; then following parents
from any node strictly decreases its index and ends at the root, so every node is reached
from the root and a walk from the root ends at a leaf within ``len(left)`` steps.
"""

from __future__ import annotations

import numpy as np


def problem(left: np.ndarray, right: np.ndarray, unused: np.ndarray | None = None) -> str | None:
    """What makes the arrays not such a tree (None when they are one). ``unused`` marks
    leaves that no node may point at (XGBoost's pruned nodes)."""
    found = forest_problem(left, right, np.array([len(left)]), unused)
    return None if found is None else found[1]


def forest_problem(
    left: np.ndarray, right: np.ndarray, sizes: np.ndarray, unused: np.ndarray | None = None
) -> tuple[int, str] | None:
    """The same check for many trees at once: their arrays concatenated (child indices
    local to each tree), ``sizes`` their node counts. Returns (the first bad tree, what is
    wrong), or None."""
    n = len(left)
    if len(right) != n or n == 0 or (sizes <= 0).any() or int(sizes.sum()) != n:
        return 0, "has child arrays of different or zero length"
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    start_of = np.repeat(starts, sizes)
    local = np.arange(n) - start_of
    size_of = np.repeat(sizes, sizes)
    inner = np.flatnonzero(left != -1)

    def tree_of(node: int) -> int:
        return int(np.searchsorted(starts, node, side="right")) - 1

    for child, side in ((left, "left"), (right, "right")):
        chosen = child[inner]
        bad = ~((chosen > local[inner]) & (chosen < size_of[inner]))
        if bad.any():
            return tree_of(int(inner[np.argmax(bad)])), (
                f"has a {side} child out of range or not after its parent"
            )
    leaves = np.flatnonzero(left == -1)
    bad = right[leaves] != -1
    if bad.any():
        return tree_of(int(leaves[np.argmax(bad)])), "has a leaf with a right child"
    children = np.concatenate([left[inner], right[inner]]) + np.concatenate(
        [start_of[inner], start_of[inner]]
    )
    referrers = np.bincount(children, minlength=n)
    expected = np.ones(n, dtype=np.int64)
    expected[starts] = 0
    if unused is not None:
        bad = unused & (left != -1)
        if bad.any():
            return tree_of(int(np.argmax(bad))), "has an unused node with children"
        expected[unused] = 0
    bad = referrers != expected
    if bad.any():
        return tree_of(int(np.argmax(bad))), "has a node that is not the child of exactly one node"
    return None
