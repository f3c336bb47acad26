"""Property-based fuzz of every SQL function's arguments: whatever values (and however
many) a query passes, the answer is a value or a clear SQL error of our own, never a
leaked Python exception ("unexpected OverflowError: ...") and never a crash."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlite_ml
from sqlite_ml.sql.registry import FUNCTIONS, SqlFunction

from .helpers import IRIS_FEATURES, expected_mode

pytestmark = pytest.mark.skipif(
    expected_mode() == "stdlib", reason="the stdlib binding hides every error's text"
)

# Examples per function: bounded so that the whole fuzz stays a few seconds (training,
# the slow one, gets fewer).
EXAMPLES = 60
TRAIN_EXAMPLES = 25
LEAKED = re.compile(r"unexpected [A-Za-z]+(Error|Exception|Interrupt)\b|: unexpected \w+:")

NAMES = [
    "iris",
    "missing",
    "dataset_iris",
    "classification",
    "regression",
    "clustering",
    "logistic_regression",
    "decision_tree",
    "knn",
    "target",
    "best",
    "most_recent",
    "rollback",
    "iris_rows",
    "shuffle",
    "stratified",
    "last",
    "",
    " ",
    "\x00",
    *IRIS_FEATURES,
]

JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.sampled_from([1e19, -1e19, 2**63 - 1, -(2**63), 0, 1, 2, -1, 0.5, 1e308]),
    st.text(max_size=40),
    st.sampled_from(NAMES),
    st.binary(max_size=24),
    JSON.map(json.dumps),
    st.sampled_from(
        [
            "[" * 100_000 + "]" * 100_000,
            '{"a":' * 50_000 + "1" + "}" * 50_000,
            json.dumps({"hyperparams": {"max_depth": 1e19}}),
            json.dumps({"random_state": 1e19}),
            json.dumps({"features": ["sepal length (cm)"], "search": "grid"}),
            json.dumps([5.1, 3.5, 1.4, 0.2]),
            json.dumps([[5.1, 3.5, 1.4, 0.2], [1e308, -1e308, 0, 0]]),
            json.dumps(dict(zip(IRIS_FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))),
        ]
    ),
)


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_load_dataset('iris')")
    conn.execute("CREATE TABLE iris_rows AS SELECT * FROM dataset_iris WHERE rowid % 5 = 0")
    conn.execute(
        "SELECT sqml_train('iris', 'classification', 'logistic_regression', 'iris_rows', 'target')"
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture()
def fresh_db(fuzz_db: Path, tmp_path: Path) -> Path:
    """A copy of the trained database for one test: the fuzz calls writers too
    (sqml_delete_experiment('iris') among them), which must not change what the next
    test starts from."""
    copy = tmp_path / "fuzz.db"
    shutil.copyfile(fuzz_db, copy)
    return copy


SCALARS = [f for f in FUNCTIONS if isinstance(f, SqlFunction)]


def call(conn: sqlite3.Connection, name: str, args: list[object]) -> None:
    placeholders = ", ".join("?" for _ in args)
    try:
        conn.execute(f"SELECT {name}({placeholders})", args).fetchall()  # noqa: S608
    except sqlite3.OperationalError as error:
        message = str(error)
        assert not LEAKED.search(message), f"{name}{tuple(args)!r:.200}: {message}"
        assert message != "user-defined function raised exception", (name, args)
    finally:
        if conn.in_transaction:
            conn.rollback()


@pytest.mark.parametrize("function", SCALARS, ids=[f.name for f in SCALARS])
def test_any_arguments_give_a_value_or_a_clear_error(fresh_db, function):
    conn = sqlite3.connect(fresh_db, timeout=5)
    sqlite_ml.register(conn)
    most = len(function.arguments) + (6 if function.variadic else 2)
    examples = TRAIN_EXAMPLES if function.name == "sqml_train" else EXAMPLES

    # The first argument is most often the experiment that exists, to reach past the lookup.
    first = st.just("iris") | VALUES
    arguments = st.lists(VALUES, min_size=0, max_size=most - 1)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.one_of(st.just([]), st.tuples(first, arguments).map(lambda t: [t[0], *t[1]])))
    def fuzz(args: list[object]) -> None:
        call(conn, function.name, args)

    try:
        fuzz()
    finally:
        conn.close()


TABLES = [f for f in FUNCTIONS if not isinstance(f, SqlFunction)]


@pytest.mark.skipif(expected_mode() != "native", reason="table functions need the native binding")
@pytest.mark.parametrize("function", TABLES, ids=[f.name for f in TABLES])
def test_the_table_functions_too(fresh_db, function):
    conn = sqlite3.connect(fresh_db, timeout=5)
    sqlite_ml.register(conn)
    count = len(function.arguments)
    placeholders = ", ".join("?" for _ in range(count))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True)
    @given(st.tuples(*([st.just("iris") | VALUES] + [VALUES] * (count - 1))))
    def fuzz(args: tuple[object, ...]) -> None:
        try:
            conn.execute(f"SELECT * FROM {function.name}({placeholders})", args).fetchall()  # noqa: S608
        except sqlite3.OperationalError as error:
            assert not LEAKED.search(str(error)), str(error)

    try:
        fuzz()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql, args, expected",
    [
        ("SELECT sqml_deploy(?, ?)", ("iris", 1e19), "model"),
        ("SELECT sqml_deploy(?, ?)", ("iris", 2**63 - 1), "model"),
        ("SELECT sqml_predict(?, ?)", ("iris", "[" * 100_000 + "]" * 100_000), "deep"),
        (
            "SELECT sqml_train('x', 'classification', 'knn', 'iris_rows', 'target', 0.25,"
            " 'shuffle', ?)",
            ("[" * 100_000 + "]" * 100_000,),
            "options",
        ),
    ],
)
def test_the_probe_findings_are_clear_errors(fresh_db, sql, args, expected):
    conn = sqlite3.connect(fresh_db)
    sqlite_ml.register(conn)
    with pytest.raises(sqlite3.OperationalError, match=expected) as error:
        conn.execute(sql, args).fetchall()
    assert not LEAKED.search(str(error.value))
    conn.close()
