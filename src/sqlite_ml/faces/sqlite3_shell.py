"""The entry of programs that are not Python, the sqlite3 shell first: after ``.load``
of ``sqml.so`` (or ``_native``), the native functions answer on their own, and the first
one that needs Python starts an interpreter and calls :func:`bridge` with the host's
``sqlite3*`` handle (see ``csrc/bridge.c``)."""

from __future__ import annotations

from typing import Any

from ..sql.attach import host_bridge


def bridge(handle: int) -> Any:
    """The Python side of the host's database: its schema created or migrated (unless it
    is read-only) and every function's Python implementation, for the native layer."""
    return host_bridge(handle)
