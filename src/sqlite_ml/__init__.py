"""sqlite-ml: machine learning inside SQLite, from plain SQL functions.

>>> import sqlite3, sqlite_ml
>>> conn = sqlite3.connect("data.db")
>>> sqlite_ml.register(conn)
>>> conn.execute("SELECT sqml_load_dataset('iris')").fetchone()
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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


def register(conn: sqlite3.Connection, *, create_schema: bool = True) -> None:
    """Create or migrate the sqml schema in ``conn`` and register every ``sqml_*`` function.

    Idempotent. The connection's own settings (row_factory, isolation level, text
    factory) are left as they were. With ``create_schema=False`` (for hosts that open
    databases read-only or for unrelated work: Datasette, sqlite-utils) nothing is written
    now: the first call of a function that writes (``sqml_train``, ``sqml_load_dataset``)
    creates or migrates the schema.
    """
    from . import binding, store
    from .data import plain_rows
    from .functions import new_session

    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"register() needs a sqlite3.Connection, got {type(conn).__name__}")
    with plain_rows(conn):
        if create_schema:
            store.ensure_schema(conn)
        binder = binding.binder_for(conn)
        session = new_session(conn)
        if not create_schema:
            _create_schema_on_first_write(session)
        binder.attach(conn, session)
    session.mode = binder.mode
    _sessions.put(id(conn), session)


def _create_schema_on_first_write(session: Session) -> None:
    from . import store

    session_ref = weakref.ref(session)  # the session holds these calls: no cycle

    def schema_first(call: Callable[..., Any]) -> Callable[..., Any]:
        def writer(*args: Any) -> Any:
            owner = session_ref()
            assert owner is not None  # the connection that calls us keeps it alive
            store.ensure_schema(owner.conn)
            return call(*args)

        return writer

    def schema_named(call: Callable[..., Any]) -> Callable[..., Any]:
        def reader(*args: Any) -> Any:
            try:
                return call(*args)
            except sqlite3.OperationalError as error:
                if "no such table: sqml_" not in str(error):
                    raise
                raise SqmlError(
                    f"this database has no sqlite-ml tables yet ({error}); "
                    "train a model first with sqml_train"
                ) from error

        return reader

    for name, (_deterministic, direct_only) in session.flags.items():
        if direct_only:  # the functions that write are the direct-only ones
            session.calls[name] = schema_first(session.calls[name])
        else:
            session.calls[name] = schema_named(session.calls[name])


def binding_mode(conn: sqlite3.Connection) -> str | None:
    """'native' (C extension), 'capi' (ctypes; both give our own SQL error messages) or
    'stdlib' (generic ones), once registered."""
    session = _sessions.get(id(conn))
    return session.mode if session is not None else None


def last_error(conn: sqlite3.Connection) -> str | None:
    """The full message of the last sqml function that failed on ``conn`` (any mode)."""
    session = _sessions.get(id(conn))
    return session.last_error if session is not None else None
