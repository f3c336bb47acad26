"""JSON text read with bounds: the one parser for JSON a database or a caller hands us.

A stored feature schema, feature importance, run options or skops schema is untrusted
data: 100,000 nested brackets make Python's parser raise RecursionError, and a long one
holds memory. ``loads`` refuses text longer than a limit or nested deeper than
``MAX_DEPTH`` (counted on the brackets outside strings, before anything is parsed) with a
``ValueError`` saying which limit, so each caller words one clear error.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # our own JSON nests at most 25 deep (a skops schema of a pipeline)
MAX_TEXT = 1 << 30  # characters

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def nesting(text: str) -> int:
    """How deeply ``text``'s arrays and objects nest (brackets inside strings aside)."""
    deepest = depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub('""', text)):
        if bracket in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH, max_length: int = MAX_TEXT) -> Any:
    """``json.loads`` within bounds; ValueError (JSONDecodeError is one) otherwise."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_length:
            raise ValueError(f"it is {len(text)} bytes long, more than {max_length}")
        text = bytes(text).decode("utf-8")
    if len(text) > max_length:
        raise ValueError(f"it is {len(text)} characters long, more than {max_length}")
    if "[" in text or "{" in text:
        depth = nesting(text)
        if depth > max_depth:
            raise ValueError(f"it nests {depth} levels deep, more than {max_depth}")
    try:
        return json.loads(text)
    except RecursionError:  # not reached after the check above; kept as a last guard
        raise ValueError(f"it nests more than {max_depth} levels deep") from None
