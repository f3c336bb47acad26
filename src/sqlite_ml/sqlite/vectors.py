"""sqlite-vec (``vec0`` tables, ``vec_distance_cosine``, KNN queries) loaded into a
connection through the connection's own SQLite library, as the native binder loads our
extension: stdlib connections often lack ``enable_load_extension``, and loading through the
C API needs no such switch (the connection's setting is put back after)."""

from __future__ import annotations

import sqlite3

from ..errors import SqmlError
from .capi import CApi

_ENTRY_POINT = "sqlite3_vec_init"


def sqlite_vec_path() -> str:
    """The loadable library the ``sqlite-vec`` package ships."""
    try:
        import sqlite_vec
    except ImportError:
        raise SqmlError(
            "vector search needs the Python package 'sqlite-vec', which is not installed; "
            "install it with: pip install 'sqlite-ml[vectors]'"
        ) from None
    return str(sqlite_vec.loadable_path())


def has_sqlite_vec(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT vec_version()").fetchone()
    except sqlite3.OperationalError:
        return False
    return True


def load_sqlite_vec(conn: sqlite3.Connection) -> None:
    """Load sqlite-vec into ``conn`` (nothing to do when it is there already)."""
    if has_sqlite_vec(conn):
        return
    path = sqlite_vec_path()
    try:
        api = CApi()
        api.load_extension_into(api.handle(conn), path, _ENTRY_POINT)
    except (OSError, AttributeError, TypeError, StopIteration) as error:
        raise SqmlError(f"cannot load sqlite-vec into this connection: {error}") from None
