"""sqlite-ml: machine learning inside SQLite, from plain SQL functions.

>>> import sqlite3, sqlite_ml
>>> conn = sqlite3.connect("data.db")
>>> sqlite_ml.register(conn)
>>> conn.execute("SELECT sqml_load_dataset('iris')").fetchone()

Importing the package, and registering its functions, loads no machine-learning library:
scikit-learn, XGBoost and LightGBM are imported by the first function that needs them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import SqmlError
from .sqlite.weak_registry import WeakRegistry

if TYPE_CHECKING:
    from .sql.session import Session

__all__ = [
    "SqmlError",
    "__version__",
    "binding_mode",
    "import_csv",
    "last_error",
    "register",
    "vectors_requested",
]

# Sessions by connection address. Each session is owned by its connection (through a
# function the connection keeps), so an entry dies with its connection and a new
# connection at a reused address never sees a closed one's session.
_sessions: WeakRegistry[Session] = WeakRegistry()


def register(
    conn: sqlite3.Connection,
    *,
    create_schema: bool = True,
    vectors: bool | None = None,
    write_elsewhere: Callable[[str, tuple[Any, ...]], Any] | None = None,
) -> None:
    """Create or migrate the sqml schema in ``conn`` and register every ``sqml_*`` function.

    With ``vectors=True`` it also loads sqlite-vec (``pip install 'sqlite-ml[vectors]'``)
    into the connection: ``vec0`` tables, ``vec_distance_cosine`` and KNN queries over the
    vectors ``sqml_embed`` makes. ``vectors=None`` (the default) loads it when the
    environment variable ``SQLITE_ML_VECTORS`` is ``1``.

    Idempotent. The connection's own settings (row_factory, isolation level, text
    factory) are left as they were. With ``create_schema=False`` (for hosts that open
    databases read-only or for unrelated work: Datasette, sqlite-utils) nothing is written
    now: the first call of a function that writes (``sqml_train``, ``sqml_load_dataset``)
    creates or migrates the schema.

    ``write_elsewhere`` is for hosts whose connection cannot write (Datasette's read
    connections): there, each function that writes calls ``write_elsewhere(name,
    arguments)`` instead and returns its result; the host runs the function on a
    connection that can write, after checking who asks. On a connection that can write,
    it is not used.
    """
    from .sql.attach import attach

    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"register() needs a sqlite3.Connection, got {type(conn).__name__}")
    session = attach(conn, create_schema=create_schema, writer=write_elsewhere)
    _sessions.put(id(conn), session)
    if vectors is None:
        vectors = vectors_requested()
    if vectors:
        from .sqlite.vectors import load_sqlite_vec

        load_sqlite_vec(conn)


def vectors_requested() -> bool:
    """Whether ``SQLITE_ML_VECTORS`` asks every registration to load sqlite-vec."""
    return os.environ.get("SQLITE_ML_VECTORS", "").strip().lower() in ("1", "true", "yes", "on")


def binding_mode(conn: sqlite3.Connection) -> str | None:
    """'native' (C extension), 'capi' (ctypes; both give our own SQL error messages) or
    'stdlib' (generic ones), once registered."""
    session = _sessions.get(id(conn))
    return session.mode if session is not None else None


def import_csv(
    conn: sqlite3.Connection, path: str | Path, table: str | None = None
) -> dict[str, Any]:
    """Import a CSV file into a table of ``conn``'s main database (default: the file's
    name), each column typed by its values (INTEGER, REAL, else TEXT; empty is NULL).

    Returns ``{"table", "rows", "columns": {name: type}, "created"}``. An existing table
    is never replaced: one that already holds exactly the file's rows is used as it is
    (``created`` False); any other is an error. Not a SQL function: reading files is for
    the program that opened the database, not for a query."""
    from .ops.csv_import import import_csv as import_file
    from .sqlite.rows import plain_rows

    with plain_rows(conn):
        return import_file(conn, path, table)


def last_error(conn: sqlite3.Connection) -> str | None:
    """The full message of the last sqml function that failed on ``conn`` (any mode)."""
    session = _sessions.get(id(conn))
    return session.last_error if session is not None else None
