"""JSON text read with bounds: the one parser for JSON a database or a caller hands us.

A stored feature schema, feature importance, run options or skops schema is untrusted
data: 100,000 nested brackets make Python's parser raise RecursionError, and a long one
holds memory. ``loads`` refuses text longer than a limit or nested deeper than
``MAX_DEPTH`` with a ``ValueError`` saying which limit, so each caller words one clear
error. (Python's parser raises RecursionError, which it turns into that ValueError, long
before a deep text can exhaust the C stack; below that, the nesting is measured on the
parsed value, without recursion.)
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # our own JSON nests at most 25 deep (a skops schema of a pipeline)
MAX_TEXT = 1 << 30  # characters


def nesting(value: Any) -> int:
    """How deeply a parsed JSON value's arrays and objects nest (a scalar: 0)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            items: Any = node.values()
        elif isinstance(node, list):
            items = node
        else:
            continue
        if depth > deepest:
            deepest = depth
        pending.extend((item, depth + 1) for item in items if isinstance(item, (dict, list)))
    return deepest


def loads(text: str | bytes, max_depth: int | None = MAX_DEPTH, max_length: int = MAX_TEXT) -> Any:
    """``json.loads`` within bounds; ValueError (JSONDecodeError is one) otherwise.
    ``max_depth`` None: the caller measures the nesting on its own walk of the value."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_length:
            raise ValueError(f"it is {len(text)} bytes long, more than {max_length}")
        text = bytes(text).decode("utf-8")
    if len(text) > max_length:
        raise ValueError(f"it is {len(text)} characters long, more than {max_length}")
    try:
        value = json.loads(text)
    except RecursionError:  # Python's parser guards its own stack: far too deep
        raise ValueError(f"it nests more than {max_depth or MAX_DEPTH} levels deep") from None
    if max_depth is None:
        return value
    depth = nesting(value)
    if depth > max_depth:
        raise ValueError(f"it nests {depth} levels deep, more than {max_depth}")
    return value
