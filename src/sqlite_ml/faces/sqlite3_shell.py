"""The entry of programs that are not Python, the sqlite3 shell first: after ``.load``,
the native extension starts an interpreter and calls :func:`bind` with the host's
``sqlite3*`` handle (see ``csrc``'s host entry)."""

from __future__ import annotations

from ..sql.attach import attach_to_host


def bind(handle: int) -> None:
    """Create or migrate the sqml schema in the host's database (unless it is read-only)
    and attach every function, the table-valued ones included."""
    attach_to_host(handle)
