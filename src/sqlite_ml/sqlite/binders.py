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

The ``native`` binder (the default) does the same from C: the package's own extension
(``csrc/``, a SQLite loadable extension) is loaded into the connection through the
connection's own ``sqlite3_load_extension``, so it binds to that very library, and each
SQL function is a C callback that calls Python with the GIL held, except the prediction
functions, which the native scorer answers itself for models stored in the native format
(``csrc/core.h``). It also attaches the table-valued function (``sqml_predict_table``)
and provides the fast reader (``native.py``). A host program that is not Python loads
``sqml.so`` instead, which needs no Python until a function does (``sql/attach.py``'s
:func:`host_bridge`).

Where the native layer cannot be used (not built, no shared library to resolve), the
``capi`` binder (ctypes) is used, with a one-time warning. Where that fails too,
registering fails: the ``stdlib`` binder (``create_function``) cannot mark the functions
that write as direct-only, so a view or trigger could call them, and it hides every error
message; ``SQLITE_ML_BINDING=stdlib`` chooses it explicitly (the precise message of the
last failure is then kept for ``sqlite_ml.last_error(conn)``).
``SQLITE_ML_BINDING=native|capi|stdlib`` forces a mode (``ctypes`` is another name for
``capi``).
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import warnings
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import SqmlError
from .capi import FUNCTION_CALLBACK, CApi
from .weak_registry import WeakRegistry

SqlCallable = Callable[..., Any]

_SQLITE_UTF8 = 1
_SQLITE_DETERMINISTIC = 0x800
_SQLITE_DIRECTONLY = 0x80000
_SQLITE_TRANSIENT = ctypes.c_void_p(-1)
_INTEGER, _FLOAT, _TEXT, _BLOB, _NULL = 1, 2, 3, 4, 5


def error_message(error: BaseException, function_name: str) -> str:
    """The text SQLite shows; NUL would end it early there, so it is spelled out."""
    if isinstance(error, SqmlError):
        text = error.message
    elif isinstance(error, sqlite3.Error):  # the database's own words: read-only, locked, ...
        text = f"{function_name}: {error}"
    else:
        text = f"{function_name}: unexpected {type(error).__name__}: {error}"
    return text.replace("\x00", "\\0")


# The functions the native scorer answers itself (csrc/scoring.c, csrc/table.c), handing
# what it cannot answer to the session's Python callables through the bridge.
NATIVE_SCORING = ("sqml_predict", "sqml_predict_batch", "sqml_predict_proba")


class Registrable(Protocol):
    """What a binder attaches: SQL name -> Python callable, plus SQLite flags, and the
    bridge of the native scoring functions (which only the native layer provides)."""

    calls: dict[str, SqlCallable]
    flags: dict[str, tuple[bool, bool]]  # name -> (deterministic, direct_only)
    last_error: str | None  # the full message of the last failure, for every face to show

    def native_bridge(self, handle: int, keep: Any = None) -> Any: ...


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
        self.api = CApi()
        self._sessions: WeakRegistry[Registrable] = WeakRegistry()
        self._trampolines: dict[str, Any] = {}

    def check(self, conn: sqlite3.Connection) -> None:
        self.api.handle(conn)

    def attach(self, conn: sqlite3.Connection, session: Registrable) -> None:
        db = self.api.handle(conn)
        self._sessions.put(db, session)
        conn.create_function("sqml_binding_mode", 0, _owner(session, self.mode))
        for name in session.calls:
            flags = _function_flags(session.flags.get(name, (False, False)))
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
        callback = self._trampolines[name] = FUNCTION_CALLBACK(trampoline)
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


def _function_flags(flags: tuple[bool, bool]) -> int:
    deterministic, direct_only = flags
    value = _SQLITE_UTF8
    if deterministic:
        value |= _SQLITE_DETERMINISTIC
    if direct_only and sqlite3.sqlite_version_info >= (3, 30, 0):
        value |= _SQLITE_DIRECTONLY
    return value


def error_reporter(session: Registrable, name: str) -> Callable[[BaseException], str]:
    """What the native layer calls with an exception: our message, also kept as the
    session's last error. Weak, so that SQLite holding it keeps no session alive."""
    session_ref = weakref.ref(session)

    def report(error: BaseException) -> str:
        text = error_message(error, name)
        owner = session_ref()
        if owner is not None:
            owner.last_error = text
        return text

    return report


class NativeBinder:
    """The package's C extension, loaded into SQLite through the connection's own library.

    It is loaded once per process (``sqlite3_load_extension`` on the first connection
    hands it that library's API table); every connection after that is checked to use the
    same library (the address of ``sqlite3_libversion``), so the extension can never call a
    second SQLite copy. Each SQL function is a C callback owning its Python callable, which
    SQLite releases (with the GIL) when the connection closes.
    """

    mode = "native"

    def __init__(self) -> None:
        from .. import _native  # ImportError when the extension was not built

        self.native = _native
        self.api = CApi()

    def check(self, conn: sqlite3.Connection) -> int:
        db = self.api.handle(conn)
        native = self.native
        if not native.api_ready():
            self.api.load_extension_into(db, str(native.__file__), "sqlite3_sqmlbind_init")
        if native.libversion_address() != self.api.libversion_address:
            raise OSError(
                "the native extension is bound to another SQLite library than this "
                "connection's; refusing to mix two SQLite copies in one process"
            )
        return db

    def attach(self, conn: sqlite3.Connection, session: Registrable) -> None:
        db = self.check(conn)
        conn.create_function("sqml_binding_mode", 0, _owner(session, self.mode))
        attach_natively(self.native, db, session)


def attach_natively(native: Any, db: int, session: Registrable) -> None:
    """Every function of ``session`` on the handle ``db``, through the C extension: the
    native scorer's own (with the session's callables behind them), then the others."""
    for name, function in session.calls.items():
        if name in NATIVE_SCORING:
            continue
        flags = _function_flags(session.flags.get(name, (False, False)))
        native.create_function(db, name, -1, flags, function, error_reporter(session, name))
    native.attach_scoring(db, session.native_bridge(db))


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


Binder = NativeBinder | CApiBinder | StdlibBinder
MODES = ("native", "capi", "stdlib")
SAFE_MODES = ("native", "capi")  # the ones chosen without SQLITE_ML_BINDING
_ALIASES = {"ctypes": "capi"}
_binders: dict[str, Binder | None] = {}  # mode -> binder, None once it proved unusable
_stdlib_binder = StdlibBinder()


def requested_mode() -> str | None:
    """The mode SQLITE_ML_BINDING forces, if any (an unknown value is an error)."""
    value = os.environ.get("SQLITE_ML_BINDING", "").strip().lower()
    if not value:
        return None
    value = _ALIASES.get(value, value)
    if value not in MODES:
        raise SqmlError(
            f"SQLITE_ML_BINDING={os.environ['SQLITE_ML_BINDING']!r} is not a binding mode; "
            f"use one of {', '.join(MODES)} (or leave it unset)"
        )
    return value


_failures: dict[str, str] = {}


def _make(mode: str) -> Binder | None:
    if mode not in _binders:
        try:
            _binders[mode] = (
                NativeBinder()
                if mode == "native"
                else CApiBinder()
                if mode == "capi"
                else _stdlib_binder
            )
        except (OSError, AttributeError, ImportError) as error:
            _failures[mode] = f"cannot be set up ({error})"
            _binders[mode] = None
    return _binders[mode]


_warned: set[str] = set()


def _warn_once(mode: str, why: str) -> None:
    if mode in _warned:
        return
    _warned.add(mode)
    consequence = "using the ctypes binder instead (no sqml_predict_table, no fast reader)"
    warnings.warn(
        f"sqlite-ml: the {mode} binding {why}; {consequence}", RuntimeWarning, stacklevel=4
    )


def binder_for(conn: sqlite3.Connection) -> Binder:
    """The best binder that works for this connection: native, then capi (with a one-time
    warning for the step down). A mode SQLITE_ML_BINDING forces is used or refused with an
    error, never silently replaced.

    The stdlib binder is never reached by itself: Python's create_function cannot mark a
    function SQLITE_DIRECTONLY, so there a view or a trigger could call the functions that
    write (sqml_train, sqml_deploy, sqml_load_dataset), and every error reads "user-defined
    function raised exception". When neither other binder works, registering fails with an
    error that names SQLITE_ML_BINDING=stdlib, the explicit way to accept that."""
    forced = requested_mode()
    reasons: list[str] = []
    for mode in (forced,) if forced else SAFE_MODES:
        binder = _make(mode)
        why = _failures.get(mode, "")
        if binder is not None:
            try:
                binder.check(conn)
            except (OSError, TypeError, StopIteration) as error:
                why = f"cannot be used on this connection ({error})"
            else:
                if reasons:  # the native binding failed: say so once
                    _warn_once("native", reasons[0].removeprefix("the native binding "))
                return binder
        if forced:
            raise SqmlError(f"SQLITE_ML_BINDING={forced}: the {forced} binding {why}")
        reasons.append(f"the {mode} binding {why}")
    raise SqmlError(
        f"sqlite-ml cannot attach its functions safely to this connection: {'; '.join(reasons)}. "
        "The remaining stdlib binding cannot stop views and triggers from calling the "
        "functions that write, and hides every error message; set SQLITE_ML_BINDING=stdlib "
        "to use it anyway"
    )


def native_binder() -> NativeBinder | None:
    """The native binder when it is set up and not ruled out by SQLITE_ML_BINDING."""
    if requested_mode() not in (None, "native"):
        return None
    binder = _binders.get("native")
    return binder if isinstance(binder, NativeBinder) else None
