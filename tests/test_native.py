"""The native extension: the binding modes, lifetime, threads, the second-library guard."""

from __future__ import annotations

import ctypes
import gc
import sqlite3
import threading
import weakref

import pytest

import sqlite_ml
from sqlite_ml.sqlite import binders as binding

from .helpers import SETOSA, VIRGINICA, Db, expected_mode

native_only = pytest.mark.skipif(
    expected_mode() != "native", reason="this run does not use the native binding"
)


@pytest.fixture
def trained(iris: Db) -> Db:
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    return iris


@pytest.mark.parametrize("mode", ["native", "capi", "ctypes"])
def test_each_precise_mode_gives_our_messages(monkeypatch, connect, mode):
    if mode == "native" and expected_mode() != "native":
        pytest.skip("the native extension is not built")
    monkeypatch.setenv("SQLITE_ML_BINDING", mode)
    conn = connect()
    assert sqlite_ml.binding_mode(conn) == {"ctypes": "capi"}.get(mode, mode)
    assert conn.execute("SELECT sqml_binding_mode()").fetchone()[0] == binding_mode_of(conn)
    with pytest.raises(sqlite3.OperationalError) as error:
        conn.execute("SELECT sqml_train('only one')").fetchone()
    assert str(error.value) == (
        "sqml_train takes 5 to 8 arguments, got 1; usage: sqml_train(experiment_name, "
        "prediction_type, algorithm, dataset, target [, test_size [, split_strategy "
        "[, options]]])"
    )
    assert sqlite_ml.last_error(conn) == str(error.value)


def binding_mode_of(conn: sqlite3.Connection) -> str | None:
    return sqlite_ml.binding_mode(conn)


def test_an_unknown_forced_mode_is_an_error(monkeypatch, connect):
    monkeypatch.setenv("SQLITE_ML_BINDING", "turbo")
    with pytest.raises(sqlite_ml.SqmlError, match="'turbo' is not a binding mode; use one of"):
        connect()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "NULL"),
        (7, "7"),
        (-(2**63), str(-(2**63))),
        (2.5, "2.5"),
        (b"\x00\x01", "a BLOB of 2 bytes"),
    ],
)
def test_sql_values_reach_python_as_their_type(db, value, shown):
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value("SELECT sqml_predict(?, '[1]')", (value,))
    assert str(error.value) == f"experiment name must be non-empty text, got {shown}"


@native_only
def test_errors_with_nul_and_unicode_reach_the_user(db):
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value("SELECT sqml_predict(?, '[1]')", ("nö\x00pe",))
    assert str(error.value).startswith("unknown experiment 'nö\\0pe'")


@native_only
def test_python_objects_are_released_when_the_connection_closes(connect):
    conn = connect()
    session = sqlite_ml._sessions.get(id(conn))
    assert session is not None
    ref = weakref.ref(session)
    call_ref = weakref.ref(session.calls["sqml_predict"])
    del session
    conn.close()
    gc.collect()
    assert ref() is None
    assert call_ref() is None


@native_only
def test_interpreter_exit_with_open_connections(python, tmp_path):
    code = """
import sqlite3, sys, sqlite_ml
path = sys.argv[1]
keep = []
for i in range(3):
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    keep.append(conn)
keep[0].execute("SELECT sqml_load_dataset('iris')")
keep[0].execute("SELECT sqml_train('e', 'classification', 'dummy', 'dataset_iris', 'target')")
keep[1].execute("SELECT * FROM sqml_predict_table('e', 'dataset_iris')").fetchmany(5)
cursor = keep[2].execute("SELECT * FROM sqml_predict_table('e', 'dataset_iris')")
cursor.fetchone()
closed = sqlite3.connect(path)
sqlite_ml.register(closed)
closed.close()
print(sqlite_ml.binding_mode(keep[0]))
"""
    result = python(code, str(tmp_path / "exit.db"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "native"


def test_two_threads_predict_on_two_connections(trained, connect):
    db_path = trained.path
    errors: list[BaseException] = []
    results: dict[int, list[float]] = {}

    def work(index: int) -> None:
        try:
            conn = connect(db_path, check_same_thread=False)
            features = f"[{', '.join(map(str, SETOSA if index == 0 else VIRGINICA))}]"
            results[index] = [
                conn.execute("SELECT sqml_predict('e', ?)", (features,)).fetchone()[0]
                for _ in range(200)
            ]
            with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'x'"):
                conn.execute("SELECT sqml_predict('x', ?)", (features,)).fetchone()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(results[0]) == {0.0}
    assert set(results[1]) == {2.0}


def test_a_second_connection_sees_a_deployment(iris, connect):
    other = connect()
    with pytest.raises(sqlite3.OperationalError, match="^unknown experiment 'e'"):
        other.execute("SELECT sqml_predict('e', ?)", (str(SETOSA),)).fetchone()
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    assert other.execute("SELECT sqml_predict('e', ?)", (str(SETOSA),)).fetchone()[0] == 0.0


@native_only
def test_the_extension_refuses_a_second_sqlite_library():
    """The entry point SQLite calls is handed an API table whose sqlite3_libversion is not
    the bound library's, as a second SQLite copy in the process would hand it."""
    from sqlite_ml import _native

    layout = _native.api_layout()
    fake_api = (ctypes.c_char * layout["size"])()
    version = ctypes.CFUNCTYPE(ctypes.c_char_p)(lambda: b"9.99.0-other-copy")
    ctypes.c_void_p.from_buffer(fake_api, layout["libversion"]).value = ctypes.cast(
        version, ctypes.c_void_p
    ).value
    library = ctypes.CDLL(_native.__file__)
    entry = library.sqlite3_sqmlbind_init
    entry.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
    before = _native.libversion_address()
    error = ctypes.c_char_p()
    assert entry(None, ctypes.byref(error), ctypes.addressof(fake_api)) == 1  # SQLITE_ERROR
    assert _native.libversion_address() == before  # still bound to the connection's library
    assert _native.libversion() == sqlite3.sqlite_version


@native_only
def test_register_refuses_a_connection_of_another_library(monkeypatch, connect, recwarn):
    """A connection whose library is not the one the extension is bound to: forced native
    mode is an error, the default falls back to the ctypes binder with a warning."""
    connect()  # the native binder is set up
    native = binding._binders["native"]
    assert isinstance(native, binding.NativeBinder)
    monkeypatch.setattr(native.api, "libversion_address", 1)
    monkeypatch.setattr(binding, "_warned", set())
    monkeypatch.setenv("SQLITE_ML_BINDING", "native")
    with pytest.raises(sqlite_ml.SqmlError, match="refusing to mix two SQLite copies"):
        connect()
    monkeypatch.delenv("SQLITE_ML_BINDING")
    with pytest.warns(RuntimeWarning, match="native binding cannot be used on this connection"):
        conn = connect()
    assert sqlite_ml.binding_mode(conn) == "capi"


def test_stdlib_mode_has_no_predict_table(monkeypatch, connect):
    monkeypatch.setenv("SQLITE_ML_BINDING", "stdlib")
    conn = connect()
    with pytest.raises(sqlite3.OperationalError, match="no such table: sqml_predict_table"):
        conn.execute("SELECT * FROM sqml_predict_table('e', 't')").fetchall()


@native_only
def test_extension_loading_setting_is_put_back(python):
    """The connection that loads the extension (the first of a process) gets its
    extension-loading setting back, and SQL's load_extension() stays off."""
    code = """
import ctypes, sqlite3, sqlite_ml
from sqlite_ml import _native
from sqlite_ml.sqlite.capi import CApi
api = CApi()
conn = sqlite3.connect(":memory:")
def setting():
    value = ctypes.c_int(-1)
    api.db_config(api.handle(conn), 1005, -1, ctypes.byref(value))
    return value.value
api.db_config(api.handle(conn), 1005, 0, None)  # off, as a careful application sets it
before = setting()
assert not _native.api_ready()
sqlite_ml.register(conn)
assert _native.api_ready() and sqlite_ml.binding_mode(conn) == "native"
try:
    conn.execute("SELECT load_extension('/nonexistent')")
except sqlite3.OperationalError as error:
    print(before, setting(), error)
"""
    result = python(code)
    assert result.returncode == 0, result.stderr
    before, after, message = result.stdout.split(" ", 2)
    assert before == after == "0"
    assert message.strip() == "not authorized"


def test_without_the_extension_register_warns_once_and_uses_ctypes(python, tmp_path):
    code = """
import sqlite3, sys, warnings
sys.modules["sqlite_ml._native"] = None  # as if the extension had not been built
import sqlite_ml
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    conns = [sqlite3.connect(sys.argv[1]) for _ in range(3)]
    for conn in conns:
        sqlite_ml.register(conn)
print(len(caught), sqlite_ml.binding_mode(conns[2]))
print(caught[0].message)
try:
    conns[0].execute("SELECT sqml_predict('nope', '[1]')")
except sqlite3.OperationalError as error:
    print(error)
"""
    result = python(code, str(tmp_path / "fallback.db"))
    assert result.returncode == 0, result.stderr
    count_and_mode, warning, error = result.stdout.strip().splitlines()
    assert count_and_mode == "1 capi"
    assert warning.startswith("sqlite-ml: the native binding cannot be set up")
    assert "using the ctypes binder instead" in warning
    assert error.startswith("unknown experiment 'nope'")


@native_only
def test_a_host_whose_sqlite_is_not_pythons_is_refused(python):
    """The entry point a host program calls (`.load`), in a process where Python's sqlite3
    module uses another SQLite library than the one loading the extension. Simulated: the
    API table handed over reports another sqlite3_libversion than the library _sqlite3 is
    linked to (its mprintf is the real one, for the error message)."""
    code = """
import ctypes, _sqlite3
from sqlite_ml import _native
assert not _native.api_ready()
layout = _native.api_layout()
table = (ctypes.c_char * layout["size"])()
version = ctypes.CFUNCTYPE(ctypes.c_char_p)(lambda: b"9.99.0-other-copy")
real = ctypes.CDLL(_sqlite3.__file__)
for field, function in (("libversion", version), ("mprintf", real.sqlite3_mprintf)):
    address = ctypes.cast(function, ctypes.c_void_p).value
    ctypes.c_void_p.from_buffer(table, layout[field]).value = address
entry = ctypes.CDLL(_native.__file__).sqlite3_extension_init
entry.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
error = ctypes.c_char_p()
print(entry(None, ctypes.byref(error), ctypes.addressof(table)))
print(error.value.decode())
"""
    result = python(code)
    assert result.returncode == 0, result.stderr
    rc, message = result.stdout.strip().split("\n", 1)
    assert rc == "1"  # SQLITE_ERROR
    assert message.startswith(
        "sqlite-ml: refusing to bind: Python's sqlite3 module uses another SQLite library ("
    )
    assert "than this program (version 9.99.0-other-copy)" in message
