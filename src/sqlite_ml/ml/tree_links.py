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
    n = len(left)
    if len(right) != n or n == 0:
        return "has child arrays of different or zero length"
    inner = np.flatnonzero(left != -1)
    for child, side in ((left, "left"), (right, "right")):
        chosen = child[inner]
        if not ((chosen > inner) & (chosen < n)).all():
            return f"has a {side} child out of range or not after its parent"
    if (right[left == -1] != -1).any():
        return "has a leaf with a right child"
    referrers = np.bincount(np.concatenate([left[inner], right[inner]]), minlength=n)
    expected = np.ones(n, dtype=np.int64)
    expected[0] = 0
    if unused is not None:
        if (unused & (left != -1)).any():
            return "has an unused node with children"
        expected[unused] = 0
    if not (referrers == expected).all():
        return "has a node that is not the child of exactly one node"
    return None
