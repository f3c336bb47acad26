"""A cheap reading of a connection that changes whenever its database may have changed:
what the model cache asks before it trusts what it found before."""

from __future__ import annotations

import ctypes
import functools
import sqlite3
from collections.abc import Callable

from .binders import native_binder
from .capi import shared_api

_SQLITE_FCNTL_DATA_VERSION = 35
_SQLITE_TXN_WRITE = 2


def change_probe(conn: sqlite3.Connection) -> Callable[[], int | None] | None:
    """A reading of ``conn`` that changes whenever its main database may have changed
    (``SQLITE_FCNTL_DATA_VERSION``: commits by any connection, and this one's own), read
    in two C calls instead of a ``PRAGMA data_version`` query. It answers None where it
    cannot vouch: outside a transaction (the pager has not looked at the file yet) and
    while an explicit transaction writes (a rollback moves no counter). None when the C
    API is not reachable. With the native binding the reading is one C call
    (``_native.change_reading``)."""
    binder = native_binder()
    if binder is not None:
        try:
            handle = binder.check(conn)
        except (OSError, TypeError, StopIteration):
            pass
        else:
            return functools.partial(binder.native.change_reading, handle)
    api = shared_api()
    if api is None or api.txn_state is None:
        return None
    try:
        db = api.handle(conn)
    except (OSError, TypeError, StopIteration):
        return None
    version = ctypes.c_uint()
    version_pointer = ctypes.byref(version)
    file_control, txn_state, autocommit = api.file_control, api.txn_state, api.get_autocommit
    total_changes = api.total_changes

    def probe() -> int | None:
        state = txn_state(db, b"main")
        if not state or file_control(db, b"main", _SQLITE_FCNTL_DATA_VERSION, version_pointer):
            return None
        if state == _SQLITE_TXN_WRITE:
            # Writing: this connection's own changes count too, and inside BEGIN ... a
            # ROLLBACK TO can undo a write without moving any counter.
            if not autocommit(db):
                return None
            return -(version.value << 32) - total_changes(db) - 1
        return version.value  # reading: the snapshot cannot change before it ends

    return probe
