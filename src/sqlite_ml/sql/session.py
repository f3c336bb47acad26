"""What one connection's SQL functions share: the connection (by address), the models its
experiments have deployed, the last error, and the functions themselves as bound to it."""

from __future__ import annotations

import ctypes
import sqlite3
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import SqmlError

if TYPE_CHECKING:
    from ..ops.prediction import DeployedModels
    from ..ops.pretrained import PretrainedModels

# A table-valued function whose rows Python gives, as the native layer registers it:
# (CREATE TABLE declaration, columns, arguments, required arguments, rows(*arguments)).
RowsTable = tuple[str, int, int, int, Callable[..., Any]]


class Session:
    """A connection's state for its SQL functions. It refers to the connection by address
    only: SQLite calls our functions only while the connection is open, and holding it
    strongly from callbacks SQLite keeps would stop it from ever being freed.

    ``deployed`` (the model cache's view for this connection) is made on first use, so
    that registering functions imports no machine-learning library."""

    deployed: DeployedModels
    pretrained: PretrainedModels  # the embedding models its queries use, made on first use

    def __init__(self, conn: sqlite3.Connection | Any):
        self._conn_address = id(conn)
        self.calls: dict[str, Callable[..., Any]] = {}
        self.flags: dict[str, tuple[bool, bool]] = {}
        # Table-valued functions whose rows Python gives (csrc/rows.c asks for them
        # through the native bridge): name -> what registry.RowsFunction.spec makes.
        self.row_tables: dict[str, RowsTable] = {}
        self.last_error: str | None = None
        self.mode = ""

    @property
    def conn(self) -> sqlite3.Connection:
        return ctypes.cast(self._conn_address, ctypes.py_object).value

    def native_bridge(self, handle: int, keep: Any = None) -> Any:
        """What the native scoring functions on ``handle`` call for what they hand over
        (``keep``: an object the bridge keeps alive with the connection)."""
        from .bridge import NativeBridge

        return NativeBridge(self, handle, keep)

    def __getattr__(self, name: str) -> Any:
        # Only reached while the attribute is missing: after the first call, ``deployed``
        # is a plain attribute (prediction reads it on every row).
        if name == "pretrained":
            from ..ops.pretrained import PretrainedModels

            self.pretrained = PretrainedModels()
            return self.pretrained
        if name != "deployed":
            raise AttributeError(name)
        from ..ops.prediction import DeployedModels
        from ..sqlite.probe import change_probe

        deployed = DeployedModels(change_probe(self.conn))
        self.deployed = deployed
        return deployed


# Runs a function that writes somewhere that can write: (name, SQL arguments) -> result.
WriteElsewhere = Callable[[str, tuple[Any, ...]], Any]


def write_elsewhere(session: Session, writer: WriteElsewhere) -> None:
    """For a connection that cannot write (a host's read-only connection): every function
    that writes calls ``writer(name, arguments)`` instead, which runs it on a connection
    that can (and decides who may)."""
    for name, (_deterministic, direct_only) in session.flags.items():
        if direct_only:  # the functions that write are the direct-only ones

            def routed(*args: Any, name: str = name) -> Any:
                return writer(name, args)

            session.calls[name] = routed


def create_schema_on_first_write(session: Session) -> None:
    """For hosts that register without writing (Datasette, sqlite-utils, a read-only
    sqlite3 shell): the functions that write create or migrate the schema when they first
    run, and the others say plainly that the database has no sqlite-ml tables yet."""
    from ..db.schema import ensure_schema

    session_ref = weakref.ref(session)  # the session holds these calls: no cycle

    def schema_first(call: Callable[..., Any]) -> Callable[..., Any]:
        def writer(*args: Any) -> Any:
            owner = session_ref()
            assert owner is not None  # the connection that calls us keeps it alive
            ensure_schema(owner.conn)
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
