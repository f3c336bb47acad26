"""The native layer as the rest of the package sees it: where the extension is, and the
fast reader on a connection the native binder serves."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import SqmlError
from . import binders


def extension_path() -> str:
    """The path of ``sqml.so``, the loadable extension for programs that are not Python
    (the sqlite3 shell's ``.load``, Go, Node, Rust): it links no Python, scores natively
    served models on its own and loads the Python side only when a function needs it."""
    from pathlib import Path

    try:
        from .. import _native
    except ImportError as error:
        raise SqmlError(
            f"sqlite-ml's native extension is not built in this installation ({error}); "
            "reinstall with a C compiler and Python headers available"
        ) from None
    path = Path(_native.__file__).with_name("sqml" + _shared_suffix())
    if not path.exists():
        raise SqmlError(
            f"sqlite-ml's loadable extension {path.name} is not built in this installation; "
            "reinstall with a C compiler available"
        )
    return str(path)


def python_module_path() -> str:
    """The path of ``_native``, the CPython module (also loadable by a program, which then
    starts Python when a function first needs it)."""
    from .. import _native

    return str(_native.__file__)


def _shared_suffix() -> str:
    import sysconfig

    return str(sysconfig.get_config_var("SHLIB_SUFFIX") or ".so")


def reader(conn: sqlite3.Connection, sql: str) -> Any | None:
    """A native ``Reader`` over ``sql`` on ``conn``'s own database handle, or None when
    the native binding is not in use (not built, or another mode forced)."""
    if not isinstance(conn, sqlite3.Connection):  # a host's connection object (host.py)
        handle = getattr(conn, "handle", None)
        if not isinstance(handle, int):
            return None
        from .. import _native

        return _native.Reader(handle, sql)
    binder = binders.native_binder()
    if binder is None:
        return None
    try:
        handle = binder.api.handle(conn)
    except (OSError, TypeError, StopIteration):
        return None
    return binder.native.Reader(handle, sql)


def reader_on(handle: int, sql: str) -> Any:
    """A native ``Reader`` over ``sql`` on a database handle the native layer serves (the
    table-valued function's own connection)."""
    from .. import _native

    return _native.Reader(handle, sql)
