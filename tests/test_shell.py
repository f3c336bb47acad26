"""The sqlite3 shell: `.load` the extension, then train, predict and read the table-valued
function in a program that is not Python."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sqlite_ml import native

from .helpers import native_built, run_sqlite3_shell

SHELL = shutil.which("sqlite3")
pytestmark = [
    pytest.mark.skipif(SHELL is None, reason="the sqlite3 shell is not installed"),
    pytest.mark.skipif(not native_built(), reason="the native extension is not built"),
]


def shell(path: Path, script: str, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert SHELL is not None
    return run_sqlite3_shell(
        SHELL, path, script, *options, extension=native.extension_path(), **env
    )


def test_train_predict_and_the_table_function_in_the_shell(tmp_path):
    """In the Python environment recorded when the extension was built (this one)."""
    path = tmp_path / "shell.db"
    result = shell(
        path,
        """
.mode list
SELECT sqml_binding_mode();
SELECT json_extract(sqml_load_dataset('iris'), '$.size');
SELECT json_extract(sqml_train('e', 'classification', 'logistic_regression',
                               'dataset_iris', 'target'), '$.deployed');
SELECT sqml_predict('e', '[5.1, 3.5, 1.4, 0.2]');
SELECT count(*), sum(p.prediction = t.target) > 130 FROM dataset_iris AS t
  JOIN sqml_predict_table('e', 'dataset_iris') AS p ON p.row_id = t.rowid;
SELECT row_id FROM sqml_predict_table('e', 'SELECT rowid AS id, * FROM dataset_iris LIMIT 2',
                                      'id');
""",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.split() == ["native-host", "150", "1", "0.0", "150|1", "1", "2"]
    # The shell's writes are in the file, for Python's own connections too.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM sqml_models").fetchone() == (1,)
    finally:
        conn.close()


def test_errors_in_the_shell_carry_our_messages_and_write_nothing(tmp_path):
    path = tmp_path / "errors.db"
    result = shell(
        path,
        """
SELECT sqml_load_dataset('iris');
SELECT sqml_train('e', 'classification', 'deep_magic', 'dataset_iris', 'target');
SELECT * FROM sqml_predict_table('nope', 'dataset_iris');
SELECT count(*) FROM sqml_runs;
""",
        SQLITE_ML_PYTHON=sys.executable,  # the override names this environment too
    )
    assert "unknown algorithm 'deep_magic' for prediction type 'classification'" in result.stderr
    assert "unknown experiment 'nope'; experiments in this database: none yet" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0"


def test_a_second_database_in_the_same_shell(tmp_path):
    """A second `.load` finds the interpreter running and binds the new connection."""
    first, second = tmp_path / "one.db", tmp_path / "two.db"
    script = f"""
SELECT json_extract(sqml_load_dataset('iris'), '$.size');
.open {second}
.load {native.extension_path()}
SELECT json_extract(sqml_load_dataset('wine'), '$.size');
SELECT count(*) FROM sqlite_master WHERE name LIKE 'dataset_%';
"""  # noqa: S608 - a shell script, not a query
    result = shell(first, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["150", "178", "1"]


def test_a_python_that_cannot_start_is_a_clear_error(tmp_path):
    """`.load` needs no Python; the first function that does says why it cannot start."""
    result = shell(
        tmp_path / "x.db",
        "SELECT 1;\nSELECT sqml_load_dataset('iris');\n",
        SQLITE_ML_PYTHON=str(tmp_path / "no-such-python"),
        PYTHONHOME=str(tmp_path / "nowhere"),
    )
    assert result.stdout.split() == ["1"]
    assert (
        "sqml_load_dataset needs sqlite-ml's Python side, which is not available here: "
        "sqlite-ml cannot start Python"
    ) in result.stderr
    assert json.dumps(str(tmp_path / "no-such-python"))[1:-1] in result.stderr


def test_a_read_only_database_loads_and_predicts_without_writing(tmp_path):
    """`sqlite3 -readonly`: `.load` must not fail on creating the sqml tables."""
    import sqlite_ml

    plain, trained = tmp_path / "plain.db", tmp_path / "trained.db"
    for path in (plain, trained):
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x REAL, y REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, 3.0 * i) for i in range(30)])
        conn.commit()
        conn.close()
    conn = sqlite3.connect(trained)
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_train('e', 'regression', 'linear_regression', 't', 'y')")
    conn.commit()
    conn.close()
    before = plain.read_bytes()

    result = shell(
        plain,
        "SELECT count(*) FROM t;\nSELECT sqml_predict('e', '{\"x\": 1}');\n"
        "SELECT sqml_train('e', 'regression', 'ridge', 't', 'y');\n",
        "-readonly",
    )
    assert "error during initialization" not in result.stderr
    assert result.stdout.split() == ["30"]
    assert "this database has no sqlite-ml tables yet" in result.stderr
    assert "readonly database" in result.stderr  # the training, refused
    assert plain.read_bytes() == before

    result = shell(
        trained,
        "SELECT round(sqml_predict('e', '{\"x\": 2}'), 6);\n"
        "SELECT count(*) FROM sqml_predict_table('e', 't');\n",
        "-readonly",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6.0", "30"]


def test_embeddings_and_sqlite_vec_in_the_shell(tmp_path):
    """sqml_embed in the shell, with sqlite-vec loaded by the shell's own `.load`."""
    import sqlite_vec

    path = tmp_path / "vectors.db"
    result = shell(
        path,
        ".load "
        + sqlite_vec.loadable_path()
        + """
CREATE VIRTUAL TABLE v USING vec0(embedding float[256] distance_metric=cosine);
INSERT INTO v(rowid, embedding) VALUES (1, sqml_embed('default', 'the team won the match')),
                                       (2, sqml_embed('default', 'stocks fell sharply'));
SELECT rowid FROM v WHERE embedding MATCH sqml_embed('default', 'a football game') AND k = 1;
SELECT name || ' ' || uses FROM sqml_pretrained;
""",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "wordllama-l2-supercat", "1"]
