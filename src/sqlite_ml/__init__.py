"""sqlite-ml: machine learning inside SQLite, from plain SQL functions.

>>> import sqlite3, sqlite_ml
>>> conn = sqlite3.connect("data.db")
>>> sqlite_ml.register(conn)
>>> conn.execute("SELECT sqml_load_dataset('iris')").fetchone()
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ._version import __version__
from .binding import WeakRegistry
from .errors import SqmlError

if TYPE_CHECKING:
    from .functions import Session

__all__ = ["SqmlError", "__version__", "binding_mode", "last_error", "register"]

# Sessions by connection address. Each session is owned by its connection (through a
# function the connection keeps), so an entry dies with its connection and a new
# connection at a reused address never sees a closed one's session.
_sessions: WeakRegistry[Session] = WeakRegistry()


def register(conn: sqlite3.Connection) -> None:
    """Create or migrate the sqml schema in ``conn`` and register every ``sqml_*`` function.

    Idempotent. The connection's own settings (row_factory, isolation level, text
    factory) are left as they were.
    """
    from . import binding, store
    from .data import plain_rows
    from .functions import new_session

    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"register() needs a sqlite3.Connection, got {type(conn).__name__}")
    with plain_rows(conn):
        store.ensure_schema(conn)
        binder = binding.binder_for(conn)
        session = new_session(conn)
        binder.attach(conn, session)
    session.mode = binder.mode
    _sessions.put(id(conn), session)


def binding_mode(conn: sqlite3.Connection) -> str | None:
    """'native' (C extension), 'capi' (ctypes; both give our own SQL error messages) or
    'stdlib' (generic ones), once registered."""
    session = _sessions.get(id(conn))
    return session.mode if session is not None else None


def last_error(conn: sqlite3.Connection) -> str | None:
    """The full message of the last sqml function that failed on ``conn`` (any mode)."""
    session = _sessions.get(id(conn))
    return session.last_error if session is not None else None
