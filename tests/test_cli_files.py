"""The ``sqml`` command where people expect it: ``query`` creates a missing database as
``sqlite3`` and ``sqlite-utils`` do, and ``train`` takes a CSV file as its dataset."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import sqlite_ml
from sqlite_ml.faces.cli import cli

from .faces import script


def sqml(*args: Any, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def write_csv(path: Path, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def passengers(count: int = 80) -> list[list[Any]]:
    """A titanic-like file: an id, a name, a class, a fare, a date, a 0/1 outcome."""
    rows = []
    for i in range(count):
        klass = 1 + i % 3
        survived = int(klass == 1 or (klass == 2 and i % 2 == 0))
        fare = "" if i % 17 == 0 else f"{100 / klass + i % 5:.2f}"
        rows.append(
            [i + 1, f"Passenger {i}, Mr.", klass, fare, f"1912-04-{1 + i % 10:02d}", survived]
        )
    return rows


HEADER = ["PassengerId", "Name", "Pclass", "Fare", "Boarded", "Survived"]


def test_query_creates_a_missing_database_like_sqlite3(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = sqml(
        "query", db, "CREATE TABLE t (x); INSERT INTO t VALUES (1); SELECT count(*) AS n FROM t"
    )
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["n", "-", "1"]
    assert sqlite3.connect(db).execute("SELECT x FROM t").fetchall() == [(1,)]
    loaded = sqml(
        "query", tmp_path / "other.db", "SELECT json_extract(sqml_load_dataset('iris'), '$.size')"
    )
    assert loaded.exit_code == 0 and "150" in loaded.output
    # the installed command, as a user runs it
    done = subprocess.run(
        [script("sqml"), "query", str(tmp_path / "third.db"), "SELECT 1 AS one"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "one" in done.stdout
    assert (tmp_path / "third.db").is_file()


def test_query_refuses_a_directory_a_missing_folder_and_a_non_database(tmp_path: Path) -> None:
    folder = sqml("query", tmp_path, "SELECT 1")
    assert (
        folder.exit_code == 1
        and f"{tmp_path} is a directory, not a SQLite database file" in folder.output
    )
    nowhere = tmp_path / "missing" / "x.db"
    result = sqml("query", nowhere, "SELECT 1")
    assert (
        result.exit_code == 1
        and "the folder" in result.output
        and "does not exist" in result.output
    )
    assert not nowhere.parent.exists()
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, this is text\n" * 50)
    result = sqml("query", junk, "SELECT 1")
    assert result.exit_code == 1 and "not a database" in result.output
    assert junk.read_text() == "hello, this is text\n" * 50


@pytest.mark.parametrize("command", [["experiments"], ["runs", "x"], ["report", "x"]])
def test_reading_commands_still_refuse_a_missing_database(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "typo.db"
    result = sqml(command[0], db, *command[1:])
    assert result.exit_code == 1 and f"{db} does not exist" in result.output
    assert not db.exists()


def test_train_on_a_csv_file(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "titanic.csv", HEADER, passengers())
    db = tmp_path / "new.db"
    args = ["train", db, "titanic", "-t", "classification", "-a", "decision_tree", "-d", data]
    result = sqml(*args, "-y", "Survived", "--no-progress")
    assert result.exit_code == 0, result.output
    assert (
        f"{data} imported into table 'titanic': 80 rows; PassengerId INTEGER, Name TEXT,"
        " Pclass INTEGER, Fare REAL, Boarded TEXT, Survived INTEGER"
    ) in result.output
    assert "experiment titanic: run 1, model 1" in result.output
    conn = sqlite3.connect(db)
    names, types = conn.execute("SELECT feature_names, feature_types FROM sqml_runs").fetchone()
    assert json.loads(names) == ["Pclass", "Fare", "Boarded"]  # no id, no name
    assert json.loads(types)["Boarded"] == "date"
    assert conn.execute("SELECT dataset FROM sqml_runs").fetchone() == ("titanic",)
    assert conn.execute("SELECT count(*), count(Fare) FROM titanic").fetchone() == (80, 75)
    conn.close()

    again = sqml(*args, "-y", "Survived", "-a", "logistic_regression", "--no-progress")
    assert again.exit_code == 0, again.output
    assert "already imported (table unchanged) into table 'titanic'" in again.output

    changed = write_csv(tmp_path / "titanic.csv", HEADER, passengers(81))
    refused = sqml(*args, "-y", "Survived", "--no-progress")
    assert refused.exit_code == 1
    assert (
        f"'titanic' already exists (table) and does not hold the rows of {changed}"
        in refused.output
    )
    named = sqml(*args, "-y", "Survived", "--csv-table", "titanic 81", "--no-progress")
    assert named.exit_code == 0 and "into table 'titanic 81': 81 rows" in named.output


def test_csv_types_delimiters_and_bad_files(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    semicolons = write_csv(
        tmp_path / "codes.csv",
        ["zip", "count", "ratio", "", "count"],
        [["007", "3", "1e-3", "a", "1"], ["010", "-4", ".5", "b", ""], ["123", "5", "2", "", "2"]],
        delimiter=";",
    )
    imported = sqlite_ml.import_csv(conn, semicolons)
    assert imported["columns"] == {
        "zip": "TEXT",
        "count": "INTEGER",
        "ratio": "REAL",
        "column_4": "TEXT",
        "count_2": "INTEGER",
    }
    assert conn.execute("SELECT * FROM codes").fetchall() == [
        ("007", 3, 0.001, "a", 1),
        ("010", -4, 0.5, "b", None),
        ("123", 5, 2.0, None, 2),
    ]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(sqlite_ml.SqmlError, match="is empty"):
        sqlite_ml.import_csv(conn, empty)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n1,2,3\n")
    with pytest.raises(sqlite_ml.SqmlError, match="row 3 has 3 fields but the header names 2"):
        sqlite_ml.import_csv(conn, ragged)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name\nJos\xe9\n".encode("latin-1"))
    with pytest.raises(sqlite_ml.SqmlError, match="is not UTF-8 text"):
        sqlite_ml.import_csv(conn, latin)
    with pytest.raises(sqlite_ml.SqmlError, match="collide"):
        sqlite_ml.import_csv(conn, semicolons, "sqml_runs")
    missing = sqml(
        "train",
        tmp_path / "x.db",
        "e",
        "-t",
        "regression",
        "-a",
        "ridge",
        "-d",
        tmp_path / "nope.csv",
        "-y",
        "y",
    )
    assert missing.exit_code == 1 and "nope.csv: no such CSV file" in missing.output
    conn.close()
