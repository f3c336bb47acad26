# ruff: noqa: S608 - shell scripts and queries this test builds itself
"""sqml.so in programs that are not Python, with no usable Python at all.

The extension is loaded into the sqlite3 shell (and into a C program linked to the
system's SQLite) where the recorded Python cannot start, and where libpython cannot even
be found: every natively served model predicts in every form; training and models only
Python serves fail with one clear message; Python is started only when a function needs
it (its library is not even mapped before).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

import sqlite_ml
from sqlite_ml.sql.registry import registered_names
from sqlite_ml.sqlite import native

from .helpers import native_built, run_python, run_sqlite3_shell

SHELL = shutil.which("sqlite3")
pytestmark = [
    pytest.mark.skipif(SHELL is None, reason="the sqlite3 shell is not installed"),
    pytest.mark.skipif(not native_built(), reason="the native extension is not built"),
]

IRIS = '"sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"'
# (experiment, prediction type, algorithm, hyperparameters)
MODELS = [
    ("lr", "classification", "logistic_regression", {}),
    ("rf", "classification", "random_forest", {"n_estimators": 10}),
    ("hgb", "classification", "hist_gradient_boosting", {"max_iter": 10}),
    ("xgb", "classification", "xgboost", {"n_estimators": 10}),
    ("lgbm", "classification", "lightgbm", {"n_estimators": 10}),
    ("km", "clustering", "kmeans", {"n_clusters": 3, "n_init": 2}),  # on iris_features
    ("svc", "classification", "svc", {}),  # served by Python
]
NATIVE = [name for name, *_ in MODELS if name != "svc"]
QUERIES = {
    "object": "SELECT printf('%.17g', sqml_predict('{e}', json_object('sepal length (cm)',"
    " \"sepal length (cm)\", 'sepal width (cm)', \"sepal width (cm)\", 'petal length (cm)',"
    ' "petal length (cm)", \'petal width (cm)\', "petal width (cm)"))) FROM dataset_iris',
    "array": f"SELECT printf('%.17g', sqml_predict('{{e}}', json_array({IRIS}))) FROM dataset_iris",
    "positional": f"SELECT printf('%.17g', sqml_predict('{{e}}', {IRIS})) FROM dataset_iris",
    "batch": f"SELECT sqml_predict_batch('{{e}}', json_group_array(json_array({IRIS})))"
    " FROM dataset_iris",
    "table": "SELECT printf('%.17g', p.prediction) || ' ' || coalesce(p.probabilities, '')"
    " FROM dataset_iris AS t JOIN sqml_predict_table('{e}', 'dataset_iris') AS p"
    " ON p.row_id = t.rowid ORDER BY t.rowid",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A database with natively served models and one Python serves, made by Python."""
    path = tmp_path_factory.mktemp("host") / "trained.db"
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_load_dataset('iris')")
    conn.execute(f"CREATE VIEW iris_features AS SELECT {IRIS} FROM dataset_iris")  # noqa: S608
    for name, kind, algorithm, hyperparams in MODELS:
        options = json.dumps({"hyperparams": hyperparams})
        target, table = (
            (None, "iris_features") if kind == "clustering" else ("target", "dataset_iris")
        )
        conn.execute(
            "SELECT sqml_train(?, ?, ?, ?, ?, 0.25, 'shuffle', ?)",
            (name, kind, algorithm, table, target, options),
        ).fetchone()
    conn.commit()
    conn.close()
    return path


ANSWERS = """
import json, sqlite3, sys
import sqlite_ml
conn = sqlite3.connect(sys.argv[1])
sqlite_ml.register(conn)
queries = json.loads(sys.argv[2])
answers = {form: [str(row[0]) for row in conn.execute(sql)] for form, sql in queries.items()}
print(json.dumps(answers))
"""


def answers(path: Path, experiment: str) -> dict[str, list[str]]:
    """What a Python process answers for each query (in the native binding, whichever this
    test run forces: sqml_predict_table exists only there)."""
    queries = {form: sql.format(e=experiment) for form, sql in QUERIES.items()}
    result = run_python(ANSWERS, str(path), json.dumps(queries))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_shell(
    path: Path, script: str, extension: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    assert SHELL is not None
    return run_sqlite3_shell(
        SHELL, path, script, "-list", extension=extension or native.extension_path(), **env
    )


def no_python(tmp_path: Path) -> dict[str, str]:
    """An environment where the recorded Python cannot start."""
    return {
        "SQLITE_ML_PYTHON": str(tmp_path / "no-such-python"),
        "PYTHONHOME": str(tmp_path / "nowhere"),
    }


def without_libpython(tmp_path: Path) -> str:
    """sqml.so beside a copy of _native whose libpython dependency names a library that
    exists nowhere: loading the Python side fails as on a machine without that Python."""
    folder = tmp_path / "lib"
    folder.mkdir()
    shutil.copy(native.extension_path(), folder)
    module = Path(native.python_module_path())
    data = module.read_bytes()
    needed = b"libpython3."
    at = data.find(needed)
    assert at > 0, "the Python module does not name libpython"
    end = data.index(b"\0", at)
    name = data[at:end]
    missing = name[:-3] + b"9.9" if name[-3:-1] != b"9." else name[:-3] + b"8.8"
    (folder / module.name).write_bytes(data.replace(name + b"\0", missing + b"\0"))
    return str(folder / Path(native.extension_path()).name)


def test_sqml_so_links_no_python() -> None:
    result = subprocess.run(
        ["ldd", native.extension_path()], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "python" not in result.stdout.lower()


def test_every_native_model_predicts_where_python_cannot_start(trained, tmp_path) -> None:
    for experiment in NATIVE:
        expected = answers(trained, experiment)
        script = "\n".join(f"{sql.format(e=experiment)};" for sql in QUERIES.values())
        result = run_shell(trained, script, **no_python(tmp_path))
        assert result.returncode == 0, (experiment, result.stderr)
        assert result.stderr == ""
        assert result.stdout.splitlines() == [
            line for form in QUERIES for line in expected[form]
        ], experiment


@pytest.mark.parametrize("where", ["python cannot start", "no libpython", "no python side"])
def test_what_needs_python_says_so_once_and_clearly(trained, tmp_path, where) -> None:
    env = no_python(tmp_path) if where == "python cannot start" else {}
    extension = None
    if where == "no libpython":
        extension = without_libpython(tmp_path)
    elif where == "no python side":
        (tmp_path / "alone").mkdir()
        extension = shutil.copy(native.extension_path(), tmp_path / "alone")
    copy = tmp_path / "copy.db"
    shutil.copy(trained, copy)
    result = run_shell(
        copy,
        "SELECT sqml_predict('rf', '[5.1, 3.5, 1.4, 0.2]');\n"
        "SELECT sqml_train('e', 'classification', 'ridge', 'dataset_iris', 'target');\n"
        "SELECT sqml_predict('svc', '[5.1, 3.5, 1.4, 0.2]');\n"
        "SELECT sqml_predict_proba('lr', '[5.1, 3.5, 1.4, 0.2]') IS NOT NULL;\n"
        "SELECT sqml_version();\n",
        extension,
        **env,
    )
    errors = result.stderr.splitlines()
    assert result.stdout.split() == ["0.0", "1", sqlite_ml.__version__]
    assert len(errors) == 2, result.stderr
    reason = {
        "python cannot start": "sqlite-ml cannot start Python: the python executable ",
        "no libpython": "sqlite-ml's Python side could not be loaded (libpython3.",
        "no python side": "sqlite-ml's Python side could not be loaded (",
    }[where]
    assert (
        "sqml_train needs sqlite-ml's Python side, which is not available here: " + reason
        in (errors[0])
    )
    assert (
        "experiment 'svc' (model 7) is served by sqlite-ml's Python side (SVC is not in the "
        "native format), which is not available here: " + reason
    ) in errors[1]


def test_another_experiments_model_is_refused_without_python(trained, tmp_path) -> None:
    """A deployment edited (triggers dropped) to point at another experiment's model is
    refused by the C lookup too, with the Python side's words, where Python cannot start."""
    copy = tmp_path / "copy.db"
    shutil.copy(trained, copy)
    conn = sqlite3.connect(copy)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute(
        "UPDATE sqml_deployments SET model_id = (SELECT max(model_id) FROM sqml_deployments)"
        " WHERE experiment_id = (SELECT id FROM sqml_experiments WHERE name = 'rf')"
    )
    conn.commit()
    conn.close()
    result = run_shell(
        copy, "SELECT sqml_predict('rf', '[5.1, 3.5, 1.4, 0.2]');\n", **no_python(tmp_path)
    )
    assert "experiment 'rf''s active deployment 2 points at model 7, which belongs to " in (
        result.stderr
    )
    assert result.stdout == ""


def test_python_starts_only_when_a_function_needs_it(trained, tmp_path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(trained, copy)
    mapped = ".system grep -c libpython /proc/$PPID/maps || true\n"
    result = run_shell(
        copy,
        mapped
        + "SELECT sqml_predict('rf', '[5.1, 3.5, 1.4, 0.2]');\n"
        + "SELECT count(*) FROM sqml_predict_table('lgbm', 'dataset_iris');\n"
        + mapped
        + "SELECT sqml_predict('svc', '[5.1, 3.5, 1.4, 0.2]');\n"
        + mapped,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:3] == ["0", "0.0", "150"]
    assert lines[3] == "0"  # natively served: no Python in the process
    assert lines[4] == "0.0"  # the SVC, by Python
    assert int(lines[5]) > 0


def test_the_host_registers_every_function(trained, tmp_path) -> None:
    result = run_shell(
        trained,
        "SELECT name FROM pragma_function_list WHERE name LIKE 'sqml%' UNION"
        " SELECT name FROM pragma_module_list WHERE name LIKE 'sqml%' ORDER BY 1;\n",
        **no_python(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == sorted(registered_names())


def test_the_host_s_functions_have_the_registry_s_flags(trained, tmp_path) -> None:
    """csrc/scoring.c lists each function's flags in C: a writer there must be
    direct-only (never from a view or trigger) as the registry says, and only the
    registry's deterministic functions deterministic."""
    from sqlite_ml.sql.registry import FUNCTIONS, SqlFunction

    deterministic, direct_only = 0x800, 0x80000  # SQLITE_DETERMINISTIC, SQLITE_DIRECTONLY
    result = run_shell(
        trained,
        "SELECT DISTINCT name, flags FROM pragma_function_list WHERE name LIKE 'sqml%';\n",
        **no_python(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    flags = {}
    for line in result.stdout.split():
        name, value = line.split("|")
        flags[name] = flags.get(name, 0) | int(value)
    for function in FUNCTIONS:
        if isinstance(function, SqlFunction):
            got = flags[function.name]
            assert bool(got & direct_only) == function.direct_only, function.name
            assert bool(got & deterministic) == function.deterministic, function.name


def test_the_c_list_of_python_computed_tables_is_the_registry_s() -> None:
    """csrc/rows.c registers sqml_test_rows and the other RowsFunctions from C (a host has
    them before Python starts): its list must say what the registry says."""
    from sqlite_ml import _native
    from sqlite_ml.sql.registry import FUNCTIONS, RowsFunction

    expected = [
        (
            f.name,
            f.declaration(),
            len(f.columns),
            len(f.arguments),
            len(f.arguments) - f.optional,
            f.missing_arguments,
        )
        for f in FUNCTIONS
        if isinstance(f, RowsFunction)
    ]
    assert sorted(_native.rows_functions()) == sorted(expected)


def test_python_computed_tables_in_the_host(trained, tmp_path) -> None:
    """sqml_test_rows in the shell: Python starts for it and answers what a Python process
    does; where Python cannot start, one clear error."""
    query = "SELECT row_id FROM sqml_test_rows(2) ORDER BY row_id"
    expected = run_python(ANSWERS, str(trained), json.dumps({"rows": query}))
    assert expected.returncode == 0, expected.stderr
    rows = json.loads(expected.stdout)["rows"]
    assert 0 < len(rows) < 150
    result = run_shell(trained, f"{query};\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == rows
    result = run_shell(trained, f"{query};\nSELECT 1;\n", **no_python(tmp_path))
    assert result.stdout.split() == ["1"]
    assert (
        "sqml_test_rows needs sqlite-ml's Python side, which is not available here: "
        "sqlite-ml cannot start Python" in result.stderr
    )
    result = run_shell(trained, "SELECT * FROM sqml_test_rows();\n")
    assert "sqml_test_rows needs its first 1 argument(s)" in result.stderr


def test_embed_table_in_the_host(tmp_path) -> None:
    """sqml_embed_table, one of the tables Python computes, in the shell: the vectors
    sqml_embed gives in a Python process, its own missing-argument words."""
    path = tmp_path / "docs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)")
    texts = ["the team won", None, "rain tomorrow"]
    conn.executemany("INSERT INTO docs(body) VALUES (?)", [(text,) for text in texts])
    conn.commit()
    conn.close()
    expected = run_python(
        ANSWERS,
        str(path),
        json.dumps(
            {
                "rows": "SELECT id || ' ' || coalesce(hex(sqml_embed('default', body)), 'NULL')"
                " FROM docs ORDER BY id"
            }
        ),
    )
    assert expected.returncode == 0, expected.stderr
    result = run_shell(
        path,
        "SELECT row_id || ' ' || coalesce(hex(embedding), 'NULL') FROM "
        "sqml_embed_table('default', 'SELECT id, body FROM docs') ORDER BY row_id;\n"
        "SELECT * FROM sqml_embed_table('default');\n",
    )
    assert result.stdout.splitlines() == json.loads(expected.stdout)["rows"]
    assert len(result.stdout.splitlines()) == 3
    assert "sqml_embed_table needs a model and a source" in result.stderr


HOST_PROGRAM = r"""
#include <sqlite3.h>
#include <stdio.h>
int main(int argc, char **argv) {
    sqlite3 *db;
    char *error = NULL;
    sqlite3_stmt *stmt;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK) return 2;
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, argv[2], NULL, &error) != SQLITE_OK) {
        fprintf(stderr, "load: %s\n", error);
        return 3;
    }
    for (int i = 3; i < argc; i++) {
        if (sqlite3_prepare_v2(db, argv[i], -1, &stmt, NULL) != SQLITE_OK) return 4;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
            printf("%s\n", sqlite3_column_text(stmt, 0));
        printf("%s\n", rc == SQLITE_DONE ? "done" : sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_a_c_program_scores_with_the_so_alone(trained, tmp_path) -> None:
    """Any program linked to SQLite: here a C one, with Python unusable."""
    source = tmp_path / "host.c"
    source.write_text(HOST_PROGRAM, encoding="utf-8")
    program = tmp_path / "host"
    built = subprocess.run(
        ["gcc", str(source), "-o", str(program), "-lsqlite3"],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build against the system's SQLite: {built.stderr[:200]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLITE_ML_")}
    env.update(no_python(tmp_path))
    result = subprocess.run(
        [
            str(program),
            str(trained),
            native.extension_path(),
            "SELECT count(*) FROM dataset_iris AS t JOIN sqml_predict_table('xgb',"
            " 'dataset_iris') AS p ON p.row_id = t.rowid WHERE p.prediction = t.target",
            "SELECT sqml_predict('km', 5.1, 3.5, 1.4, 0.2)",
            "SELECT sqml_deploy('lr', 'best')",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert int(lines[0]) > 140 and lines[1] == "done"
    assert lines[2] in {"0", "1", "2"} and lines[3] == "done"
    assert lines[4].startswith("sqml_deploy needs sqlite-ml's Python side")
