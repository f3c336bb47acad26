"""Attaching the registry's functions to a connection: a Python ``sqlite3`` connection
(``sqlite_ml.register``) or a host program's database handle (the sqlite3 shell)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..db.schema import ensure_schema
from ..errors import SqmlError
from ..sqlite import binders
from ..sqlite.capi import read_only
from ..sqlite.rows import plain_rows
from .registry import new_session
from .session import Session, WriteElsewhere, create_schema_on_first_write, write_elsewhere


def attach(
    conn: sqlite3.Connection,
    *,
    create_schema: bool = True,
    writer: WriteElsewhere | None = None,
) -> Session:
    """Create or migrate the schema (unless ``create_schema`` is False: then the first
    function that writes does it) and attach every function with the best binder. With
    ``writer``, on a connection that cannot write (or cannot be told to), the functions
    that write go through ``writer`` instead."""
    with plain_rows(conn):
        binder = binders.binder_for(conn)  # first: a connection it refuses gets no write
        if create_schema:
            ensure_schema(conn)
        session = new_session(conn)
        if not create_schema:
            create_schema_on_first_write(session)
        if writer is not None and read_only(conn) is not False:
            write_elsewhere(session, writer)
        binder.attach(conn, session)
    session.mode = binder.mode
    return session


def _ensure_schema_unless_read_only(conn: Any) -> bool:
    """Create or migrate the schema; False (nothing written) when the database cannot be
    written (``sqlite3 -readonly``, ``?mode=ro``, ``PRAGMA query_only``), so that a
    read-only database can still be read and predicted from."""
    try:
        ensure_schema(conn)
    except SqmlError as error:
        if "readonly database" not in str(error.__cause__ or ""):
            raise
        return False
    return True


def host_bridge(handle: int) -> Any:
    """The Python side of a host program's database (``sqlite3_shell.bridge``), made when
    a native function first needs it: the schema created or migrated (unless the database
    is read-only: then by the first function that writes), a session of every function."""
    from ..sqlite.host import HostConnection  # needs the native extension

    conn: Any = HostConnection(handle)
    with plain_rows(conn):
        writable = _ensure_schema_unless_read_only(conn)
    session = new_session(conn)
    if not writable:  # as the plugins do: the schema on the first write
        create_schema_on_first_write(session)
    session.mode = "native-host"
    return session.native_bridge(handle, keep=conn)
