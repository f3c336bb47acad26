"""The sqlite-utils plugin, through the real ``sqlite-utils`` program."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import sqlite_utils
from click.testing import CliRunner

import sqlite_ml

from .faces import script
from .helpers import expected_mode


def sqlite_utils_program(*args: object) -> subprocess.CompletedProcess[str]:
    """The installed ``sqlite-utils`` program, in a new process."""
    return subprocess.run(
        [script("sqlite-utils"), *[str(arg) for arg in args]],
        capture_output=True,
        text=True,
        timeout=300,
    )


def sqlite_utils_cli(*args: object) -> Any:
    """sqlite-utils' own click command in this process (plugins loaded from their entry
    points as in the program; a new process per call would cost seconds each)."""
    from sqlite_utils.cli import cli

    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_query_trains_and_predicts_with_sqml_functions(tmp_path: Path) -> None:
    db = tmp_path / "su.db"
    sqlite3.connect(db).close()
    loaded = sqlite_utils_cli("query", db, "SELECT sqml_load_dataset('iris') AS info")
    assert loaded.exit_code == 0, loaded.stderr
    assert json.loads(json.loads(loaded.stdout)[0]["info"])["table"] == "dataset_iris"

    trained = sqlite_utils_program(
        "query",
        db,
        "SELECT sqml_train('iris', 'classification', 'logistic_regression', 'dataset_iris',"
        " 'target') AS result",
    )
    assert trained.returncode == 0, trained.stderr
    result = json.loads(json.loads(trained.stdout)[0]["result"])
    assert result["deployed"] and result["run_id"] == 1

    predicted = sqlite_utils_cli(
        "query",
        db,
        "SELECT sqml_predict('iris', json_object('sepal length (cm)', 5.1, 'sepal width (cm)',"
        " 3.5, 'petal length (cm)', 1.4, 'petal width (cm)', 0.2)) AS species",
    )
    assert predicted.exit_code == 0, predicted.stderr
    assert json.loads(predicted.stdout) == [{"species": 0.0}]

    # The run was committed by sqlite-utils: another program sees it.
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM sqml_runs").fetchall() == [("success",)]
    conn.close()


def test_query_shows_our_error_messages(tmp_path: Path) -> None:
    db = tmp_path / "su.db"
    sqlite3.connect(db).close()
    failed = sqlite_utils_cli("query", db, "SELECT sqml_predict('nope', '{}')")
    assert failed.exit_code != 0
    assert "this database has no sqlite-ml tables yet" in failed.stderr
    assert "train a model first with sqml_train" in failed.stderr


def test_opening_a_database_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    sqlite3.connect(db).execute("CREATE TABLE t(x)").connection.close()
    listed = sqlite_utils_cli("tables", db)
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"table": "t"}]
    # Python API too: the hook runs for sqlite_utils.Database and registers the functions.
    database = sqlite_utils.Database(db)
    assert database.execute("SELECT sqml_binding_mode()").fetchone()[0] == expected_mode()
    assert database.table_names() == ["t"]
    database.close()


def test_sqml_subcommands_under_sqlite_utils(tmp_path: Path) -> None:
    db = tmp_path / "su.db"
    conn = sqlite3.connect(db)
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_load_dataset('iris')")
    conn.close()
    trained = sqlite_utils_cli(
        "sqml", "train", db, "iris", "-t", "classification", "-a", "knn", "-d", "dataset_iris",
        "-y", "target",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    assert "accuracy" in trained.stdout
    board = sqlite_utils_cli("sqml", "experiments", db, "--json")
    assert board.exit_code == 0, board.stderr
    assert [(r["experiment"], r["algorithm"]) for r in json.loads(board.stdout)] == [
        ("iris", "knn")
    ]
    missing = sqlite_utils_cli("sqml", "runs", tmp_path / "typo.db", "iris")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


def test_sqml_group_has_every_subcommand() -> None:
    from click.testing import CliRunner
    from sqlite_utils.cli import cli

    helped = CliRunner().invoke(cli, ["sqml", "--help"])
    assert helped.exit_code == 0
    for command in ("query", "shell", "train", "experiments", "runs", "report", "compare", "demo"):
        assert command in helped.output
