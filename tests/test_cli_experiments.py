"""Managing experiments from the ``sqml`` command: delete, rename, tag, note."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sqlite_ml.faces.cli import cli

from .faces import make_trained_db


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_trained_db(tmp_path_factory.mktemp("cli-experiments") / "trained.db")


@pytest.fixture
def trained(pristine: Path, tmp_path: Path) -> Path:
    """A copy per test: these commands write."""
    return Path(shutil.copyfile(pristine, tmp_path / "trained.db"))


def sqml(*args: Any, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def rows(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_delete_asks_then_deletes_everything(trained: Path) -> None:
    kept = sqml("delete", trained, "iris", input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    assert rows(trained, "SELECT count(*) FROM sqml_runs") == [(6,)]

    metrics = rows(
        trained,
        "SELECT count(*) FROM sqml_metrics WHERE model_id IN (SELECT m.id FROM sqml_models AS m"
        " JOIN sqml_runs AS r ON r.id = m.run_id JOIN sqml_experiments AS e"
        " ON e.id = r.experiment_id WHERE e.name = 'iris')",
    )[0][0]
    done = sqml("delete", trained, "iris", input="y\n")
    assert done.exit_code == 0, done.output
    assert f"deleted experiment iris (4 runs, 3 models, {metrics} metrics" in done.output
    assert rows(trained, "SELECT name FROM sqml_experiments") == [("diabetes",)]
    assert rows(trained, "SELECT count(*) FROM sqml_runs") == [(2,)]

    again = sqml("delete", trained, "iris", "--yes")
    assert again.exit_code == 1
    assert "unknown experiment 'iris'; experiments in this database: 'diabetes'" in again.output


def test_rename_then_predict_under_the_new_name(trained: Path) -> None:
    result = sqml("rename", trained, "iris", "flowers")
    assert result.exit_code == 0 and "renamed experiment iris to flowers" in result.output
    predicted = sqml(
        "query", trained, "SELECT sqml_predict('flowers', '[5.1, 3.5, 1.4, 0.2]') AS p"
    )
    assert predicted.exit_code == 0 and "0.0" in predicted.output
    taken = sqml("rename", trained, "flowers", "diabetes")
    assert taken.exit_code == 1 and "an experiment of that name exists" in taken.output


def test_tags_and_notes(trained: Path) -> None:
    assert sqml("tag", trained, "iris", "owner", "alice").output == (
        "experiment iris: owner=alice\n"
    )
    assert sqml("tag", trained, "iris", "reviewed", "yes", "--run", 2).output == (
        "run 2 of experiment iris: reviewed=yes\n"
    )
    assert sqml("tag", trained, "iris", "owner", "--remove").output == "experiment iris: no tags\n"
    assert sqml("note", trained, "iris", "baseline").output == "note of experiment iris: baseline\n"
    assert sqml("note", trained, "iris", "--clear").output == "note of experiment iris cleared\n"
    assert rows(trained, "SELECT run_id, key, value FROM sqml_tags") == [(2, "reviewed", "yes")]
    wrong = sqml("tag", trained, "iris", "k", "v", "--run", 6)
    assert wrong.exit_code == 1 and "run 6 is not a run of experiment 'iris'" in wrong.output
    usage = sqml("tag", trained, "iris", "owner")
    assert usage.exit_code == 2 and "give a VALUE, or --remove" in usage.output
