"""Registering the sqml functions on connections that a host program (Datasette,
sqlite-utils) opened, for the plugins."""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable
from typing import Any

import sqlite_ml


def register_on_host(
    conn: Any,
    host: str,
    vectors: bool = False,
    write_elsewhere: Callable[[str, tuple[Any, ...]], Any] | None = None,
) -> bool:
    """Register every function without writing anything; False (with a warning) when the
    host opened the database with another SQLite binding than Python's ``sqlite3``. On a
    connection that cannot write, the functions that write go to ``write_elsewhere``
    (see ``sqlite_ml.register``).

    Hosts prefer ``pysqlite3`` or ``sqlean`` when installed; our functions bind to the
    stdlib module's connections only, and a plugin must not break the host's other work,
    so the functions are then simply missing ("no such function: sqml_...").

    ``vectors`` (or ``SQLITE_ML_VECTORS=1``) also loads sqlite-vec into the connection."""
    if not isinstance(conn, sqlite3.Connection):
        warnings.warn(
            f"sqlite-ml: {host} opened the database with {type(conn).__module__}, not "
            "Python's sqlite3 module; the sqml_* functions are not available there "
            "(uninstall pysqlite3/sqlean, or use the sqml command)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    sqlite_ml.register(
        conn, create_schema=False, vectors=vectors or None, write_elsewhere=write_elsewhere
    )
    return True
