"""How SQL functions are attached to a stdlib ``sqlite3.Connection``.

Python's ``sqlite3.Connection.create_function`` turns every exception into the fixed text
"user-defined function raised exception" (CPython issue 98893), so a user would never
see why a call failed. The ``capi`` binder registers our functions through SQLite's own
C API instead (``sqlite3_create_function_v2`` via ctypes), on the very ``sqlite3*``
handle the connection owns and with symbols resolved from the library that Python's
``_sqlite3`` module itself is linked to, so errors carry our message
(``sqlite3_result_error``). It is never a second SQLite copy in the process: the binder
checks that the library it found reports the same version as ``sqlite3.sqlite_version``
and that the handle it read is the connection's (same file, same change count).

Where that cannot be set up, the ``stdlib`` binder is used with a one-time warning; the
precise message of the last failure is kept for ``sqlite_ml.last_error(conn)``.
``SQLITE_ML_BINDING=stdlib`` forces it.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import warnings
import weakref
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from .errors import SqmlError

SqlCallable = Callable[..., Any]
T = TypeVar("T")

_SQLITE_UTF8 = 1
_SQLITE_DETERMINISTIC = 0x800
_SQLITE_DIRECTONLY = 0x80000
_SQLITE_TRANSIENT = ctypes.c_void_p(-1)
_INTEGER, _FLOAT, _TEXT, _BLOB, _NULL = 1, 2, 3, 4, 5

_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


def error_message(error: BaseException, function_name: str) -> str:
    """The text SQLite shows; NUL would end it early there, so it is spelled out."""
    if isinstance(error, SqmlError):
        text = error.message
    elif isinstance(error, sqlite3.Error):  # the database's own words: read-only, locked, ...
        text = f"{function_name}: {error}"
    else:
        text = f"{function_name}: unexpected {type(error).__name__}: {error}"
    return text.replace("\x00", "\\0")


class _CApi:
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
        self.create_function = bind(
            "sqlite3_create_function_v2", i, p, ctypes.c_char_p, i, i, p, _FUNC, p, p, p
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


class WeakRegistry(Generic[T]):
    """Objects by an integer key (a handle or an address), held weakly; an entry leaves
    when its object dies, unless a newer object took the key meanwhile."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[T]] = {}

    def put(self, key: int, value: T) -> None:
        refs = self._refs

        def forget(ref: weakref.ref[T]) -> None:
            if refs.get(key) is ref:
                del refs[key]

        refs[key] = weakref.ref(value, forget)

    def get(self, key: int) -> T | None:
        ref = self._refs.get(key)
        return ref() if ref is not None else None


class Registrable(Protocol):
    """What a binder attaches: SQL name -> Python callable, plus SQLite flags."""

    calls: dict[str, SqlCallable]
    flags: dict[str, tuple[bool, bool]]  # name -> (deterministic, direct_only)
    last_error: str | None  # the full message of the last failure, for every face to show


class CApiBinder:
    """One ctypes trampoline per SQL function name, shared by every connection.

    SQLite tells a trampoline which connection calls it (``sqlite3_context_db_handle``);
    the connection's session is found by that handle. The session is kept alive by the
    connection itself (as a stdlib function it owns, ``sqml_binding_mode``), so it goes
    away when the connection does; nothing here needs a destructor callback from SQLite,
    which could fire during interpreter shutdown.
    """

    mode = "capi"

    def __init__(self) -> None:
        self.api = _CApi()
        self._sessions: WeakRegistry[Registrable] = WeakRegistry()
        self._trampolines: dict[str, Any] = {}

    def check(self, conn: sqlite3.Connection) -> None:
        self.api.handle(conn)

    def attach(self, conn: sqlite3.Connection, session: Registrable) -> None:
        db = self.api.handle(conn)
        self._sessions.put(db, session)
        conn.create_function("sqml_binding_mode", 0, _owner(session, self.mode))
        for name in session.calls:
            deterministic, direct_only = session.flags.get(name, (False, False))
            flags = _SQLITE_UTF8
            if deterministic:
                flags |= _SQLITE_DETERMINISTIC
            if direct_only and sqlite3.sqlite_version_info >= (3, 30, 0):
                flags |= _SQLITE_DIRECTONLY
            rc = self.api.create_function(
                db, name.encode(), -1, flags, None, self._trampoline(name), None, None, None
            )
            if rc != 0:
                raise sqlite3.OperationalError(f"could not register {name} (SQLite error {rc})")

    def _trampoline(self, name: str) -> Any:
        if name in self._trampolines:
            return self._trampolines[name]
        api = self.api
        sessions = self._sessions
        read_value = self._reader()
        write_result = self._writer()
        context_db = api.context_db_handle

        def trampoline(context: int, argc: int, argv: int) -> None:
            session = None
            try:
                session = sessions.get(context_db(context))
                assert session is not None, "connection session is gone"
                values = (ctypes.c_void_p * argc).from_address(argv) if argc else ()
                result = session.calls[name](*[read_value(value or 0) for value in values])
                write_result(context, result)
            except MemoryError:
                api.result_error_nomem(context)
            except BaseException as error:  # noqa: BLE001 - nothing may unwind into SQLite
                text = error_message(error, name)
                if session is not None:
                    session.last_error = text
                message = text.encode("utf-8", "replace")
                api.result_error(context, message, len(message))

        # Kept for the life of the process: SQLite holds its address for every connection.
        callback = self._trampolines[name] = _FUNC(trampoline)
        return callback

    def _reader(self) -> Callable[[int], Any]:
        api = self.api

        def read_value(value: int) -> Any:
            kind = api.value_type(value)
            if kind == _TEXT:
                size = api.value_bytes(value)
                return ctypes.string_at(api.value_text(value), size).decode("utf-8", "replace")
            if kind == _INTEGER:
                return api.value_int64(value)
            if kind == _FLOAT:
                return api.value_double(value)
            if kind == _BLOB:
                size = api.value_bytes(value)
                return ctypes.string_at(api.value_blob(value), size) if size else b""
            return None

        return read_value

    def _writer(self) -> Callable[[int, Any], None]:
        api = self.api

        def write_result(context: int, result: Any) -> None:
            if result is None:
                api.result_null(context)
            elif isinstance(result, str):
                data = result.encode("utf-8")
                api.result_text(context, data, len(data), _SQLITE_TRANSIENT)
            elif isinstance(result, bool):
                api.result_int64(context, int(result))
            elif isinstance(result, int):
                api.result_int64(context, result)
            elif isinstance(result, float):
                api.result_double(context, result)
            elif isinstance(result, (bytes, bytearray, memoryview)):
                data = bytes(result)
                api.result_blob(context, data, len(data), _SQLITE_TRANSIENT)
            else:
                raise TypeError(f"cannot return a {type(result).__name__} to SQL")

        return write_result


class StdlibBinder:
    """``create_function``: works everywhere, but SQLite only sees a generic error text."""

    mode = "stdlib"

    def check(self, conn: sqlite3.Connection) -> None:
        pass

    def attach(self, conn: sqlite3.Connection, session: Registrable) -> None:
        conn.create_function("sqml_binding_mode", 0, _owner(session, self.mode))
        for name, function in session.calls.items():
            deterministic, _direct_only = session.flags.get(name, (False, False))

            def wrapper(*args: Any, name: str = name, function: SqlCallable = function) -> Any:
                try:
                    return function(*args)
                except Exception as error:
                    session.last_error = error_message(error, name)
                    raise

            conn.create_function(name, -1, wrapper, deterministic=deterministic)


class _owner:  # noqa: N801 - used like a function
    """``sqml_binding_mode()``: tells the mode; owned by the connection, it also keeps the
    connection's session alive exactly as long as the connection."""

    def __init__(self, session: Registrable, mode: str):
        self.session = session
        self.mode = mode

    def __call__(self) -> str:
        return self.mode


_binder: CApiBinder | StdlibBinder | None = None
_stdlib_binder = StdlibBinder()


def binder_for(conn: sqlite3.Connection) -> CApiBinder | StdlibBinder:
    """The C-API binder when it works for this connection, else the stdlib one."""
    global _binder
    if os.environ.get("SQLITE_ML_BINDING", "").lower() == "stdlib":
        return _stdlib_binder
    if _binder is None:
        try:
            _binder = CApiBinder()
        except (OSError, AttributeError, ImportError) as error:
            warnings.warn(
                f"sqlite-ml: SQLite's C API is not reachable ({error}); SQL errors from sqml "
                "functions will read 'user-defined function raised exception' "
                "(sqlite_ml.last_error(conn) gives the real message)",
                RuntimeWarning,
                stacklevel=3,
            )
            _binder = _stdlib_binder
    if isinstance(_binder, CApiBinder):
        try:
            _binder.check(conn)
        except (OSError, TypeError, StopIteration) as error:
            warnings.warn(
                f"sqlite-ml: cannot use SQLite's C API on this connection ({error}); "
                "falling back to Python's create_function",
                RuntimeWarning,
                stacklevel=3,
            )
            return _stdlib_binder
    return _binder


_SQLITE_FCNTL_DATA_VERSION = 35
_SQLITE_TXN_WRITE = 2
_probe_api: list[_CApi | None] = []


def change_probe(conn: sqlite3.Connection) -> Callable[[], int | None] | None:
    """A reading of ``conn`` that changes whenever its main database may have changed
    (``SQLITE_FCNTL_DATA_VERSION``: commits by any connection, and this one's own), read
    in two C calls instead of a ``PRAGMA data_version`` query. It answers None where it
    cannot vouch: outside a transaction (the pager has not looked at the file yet) and
    while an explicit transaction writes (a rollback moves no counter). None when the C
    API is not reachable."""
    if not _probe_api:
        try:
            _probe_api.append(_CApi())
        except (OSError, AttributeError, ImportError):
            _probe_api.append(None)
    api = _probe_api[0]
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
