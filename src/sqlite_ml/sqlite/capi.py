"""SQLite's C API through ctypes, bound to the very library Python's ``_sqlite3`` module
is linked to (never a second SQLite copy in the process), and the ``sqlite3*`` handle of a
stdlib connection."""

from __future__ import annotations

import ctypes
import os
import sqlite3
from typing import Any

_SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION = 1005

# The C signature of a scalar function's callback: (context, argc, argv).
FUNCTION_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


class CApi:
    """The subset of SQLite's C API we call, bound to the library ``_sqlite3`` uses."""

    def __init__(self) -> None:
        import _sqlite3

        path = getattr(_sqlite3, "__file__", None)
        if not path:
            raise OSError("the _sqlite3 module is built into the interpreter")
        lib = ctypes.CDLL(path)
        p, i, d, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_int64

        def bind(name: str, restype: Any, *argtypes: Any) -> Any:
            function = getattr(lib, name)  # AttributeError when not exported
            function.restype = restype
            function.argtypes = list(argtypes)
            return function

        self.libversion = bind("sqlite3_libversion", ctypes.c_char_p)
        self.db_filename = bind("sqlite3_db_filename", ctypes.c_char_p, p, ctypes.c_char_p)
        self.total_changes = bind("sqlite3_total_changes", i, p)
        self.db_readonly = bind("sqlite3_db_readonly", i, p, ctypes.c_char_p)
        self.create_function = bind(
            "sqlite3_create_function_v2", i, p, ctypes.c_char_p, i, i, p, FUNCTION_CALLBACK, p, p, p
        )
        self.context_db_handle = bind("sqlite3_context_db_handle", p, p)
        self.value_type = bind("sqlite3_value_type", i, p)
        self.value_int64 = bind("sqlite3_value_int64", i64, p)
        self.value_double = bind("sqlite3_value_double", d, p)
        self.value_text = bind("sqlite3_value_text", p, p)
        self.value_blob = bind("sqlite3_value_blob", p, p)
        self.value_bytes = bind("sqlite3_value_bytes", i, p)
        self.result_null = bind("sqlite3_result_null", None, p)
        self.result_int64 = bind("sqlite3_result_int64", None, p, i64)
        self.result_double = bind("sqlite3_result_double", None, p, d)
        self.result_text = bind("sqlite3_result_text", None, p, ctypes.c_char_p, i, p)
        self.result_blob = bind("sqlite3_result_blob", None, p, ctypes.c_char_p, i, p)
        self.result_error = bind("sqlite3_result_error", None, p, ctypes.c_char_p, i)
        self.result_error_nomem = bind("sqlite3_result_error_nomem", None, p)
        self.free = bind("sqlite3_free", None, p)
        try:  # absent from a SQLite built without extension loading: only native needs it
            self.db_config = bind("sqlite3_db_config", i, p, i, i, ctypes.POINTER(i))
            self.load_extension = bind(
                "sqlite3_load_extension",
                i,
                p,
                ctypes.c_char_p,
                ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_char_p),
            )
        except AttributeError:
            self.db_config = self.load_extension = None
        self.libversion_address = ctypes.cast(self.libversion, ctypes.c_void_p).value
        try:  # for change_probe(); sqlite3_txn_state is new in SQLite 3.34
            self.file_control = bind("sqlite3_file_control", i, p, ctypes.c_char_p, i, p)
            self.txn_state: Any = bind("sqlite3_txn_state", i, p, ctypes.c_char_p)
            self.get_autocommit = bind("sqlite3_get_autocommit", i, p)
        except AttributeError:
            self.txn_state = None
        version = self.libversion().decode()
        if version != sqlite3.sqlite_version:
            raise OSError(
                f"found SQLite {version} but the sqlite3 module uses {sqlite3.sqlite_version}"
            )

    def handle(self, conn: sqlite3.Connection) -> int:
        """The connection's ``sqlite3*``: the first field after the object header."""
        if not isinstance(conn, sqlite3.Connection):
            raise TypeError("not a sqlite3.Connection")
        db = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
        if not db:
            raise OSError("the connection has no open database handle")
        main = next(row for row in conn.execute("PRAGMA database_list") if row[1] == "main")
        filename = (self.db_filename(db, b"main") or b"").decode("utf-8", "surrogateescape")
        if filename != (main[2] or "") or self.total_changes(db) != conn.total_changes:
            raise OSError("the handle found does not belong to this connection")
        return int(db)

    def read_only(self, conn: sqlite3.Connection) -> bool:
        """Whether the connection's main database cannot be written (``?mode=ro``,
        ``immutable=1``, a read-only file): ``sqlite3_db_readonly``."""
        return self.db_readonly(self.handle(conn), b"main") == 1

    def load_extension_into(self, db: int, path: str, entry: str) -> None:
        """``sqlite3_load_extension`` on the connection's handle, with loading enabled for
        the C API only and the connection's previous setting put back after."""
        if self.load_extension is None or self.db_config is None:
            raise OSError("this SQLite library was built without extension loading")
        before = ctypes.c_int(0)
        self.db_config(db, _SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1, ctypes.byref(before))
        self.db_config(db, _SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, None)
        error = ctypes.c_char_p()
        try:
            rc = self.load_extension(db, os.fsencode(path), entry.encode(), ctypes.byref(error))
        finally:
            self.db_config(db, _SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, before.value, None)
        if rc != 0:
            message = (error.value or b"").decode("utf-8", "replace")
            if error.value:
                self.free(ctypes.cast(error, ctypes.c_void_p))
            raise OSError(f"SQLite could not load {path}: {message or f'error {rc}'}")


_shared: list[CApi | None] = []


def shared_api() -> CApi | None:
    """One ``CApi`` for the process, made on first use; None when the C API is out of
    reach (the stdlib binding's case)."""
    if not _shared:
        try:
            _shared.append(CApi())
        except (OSError, AttributeError, ImportError):
            _shared.append(None)
    return _shared[0]


def read_only(conn: sqlite3.Connection) -> bool | None:
    """Whether ``conn`` cannot write its main database; None when the C API is out of
    reach."""
    api = shared_api()
    if api is None:
        return None
    try:
        return api.read_only(conn)
    except (OSError, TypeError, StopIteration):
        return None
