"""Helpers for the tests of the faces: a database with trained experiments, the installed
console scripts, and a real Datasette server on a loopback port."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import sqlite_ml

BIN = Path(sys.executable).parent
# An experiment name that would run script if a page forgot to escape it.
HOSTILE = 'iris "<script>window.sqmlPwned = 1</script>" & co'


def script(name: str) -> str:
    """The path of a console script installed next to this Python (sqml, sqlite-utils)."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed in {BIN}: pip install -e '.[test]'"
    return str(path)


def make_trained_db(path: Path, classification: str = "iris") -> Path:
    """Two experiments: ``classification`` (iris: 3 models and a 4th run that failed) and
    ``diabetes`` (regression, 2 runs on 120 rows)."""
    conn = sqlite3.connect(path)
    try:
        sqlite_ml.register(conn)
        conn.execute("SELECT sqml_load_dataset('iris')").fetchone()
        conn.execute("SELECT sqml_load_dataset('diabetes')").fetchone()
        conn.execute("CREATE TABLE diabetes_small AS SELECT * FROM dataset_diabetes LIMIT 120")
        for algorithm in ("dummy", "logistic_regression", "knn"):
            conn.execute(
                "SELECT sqml_train(?, 'classification', ?, 'dataset_iris', 'target')",
                (classification, algorithm),
            ).fetchone()
        # A run that fails after it is recorded (one class only): no model, no score.
        conn.execute("CREATE TABLE iris_one_class AS SELECT * FROM dataset_iris WHERE target = 0")
        try:
            conn.execute(
                "SELECT sqml_train(?, 'classification', 'logistic_regression', 'iris_one_class',"
                " 'target')",
                (classification,),
            ).fetchone()
        except sqlite3.Error:
            pass
        else:
            raise AssertionError("training on one class should fail")
        for algorithm in ("dummy", "ridge"):
            conn.execute(
                "SELECT sqml_train('diabetes', 'regression', ?, 'diabetes_small', 'target')",
                (algorithm,),
            ).fetchone()
        conn.commit()
    finally:
        conn.close()
    return path


def deployed_test_rows(path: Path, experiment: str) -> int:
    """How many test rows the deployed run of ``experiment`` has (what the pages draw)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT r.test_rows FROM sqml_runs_overview AS o JOIN sqml_runs AS r"
            " ON r.id = o.run_id WHERE o.experiment = ? AND o.deployed",
            (experiment,),
        ).fetchone()[0]
    finally:
        conn.close()


def sqml_tables(path: Path) -> list[str]:
    """The names of the sqml tables and views in the database file at ``path``."""
    conn = sqlite3.connect(path)
    try:
        return [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name GLOB 'sqml*'")
        ]
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def datasette(*arguments: str, log: Path) -> Iterator[str]:
    """Run the real ``datasette`` program; yields its base URL once it answers."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [script("datasette"), *arguments, "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "default"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise AssertionError(f"datasette exited: {log.read_text()}")
            try:
                httpx.get(url + "/-/versions.json", timeout=10)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"datasette did not answer: {log.read_text()}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real Datasette server on a database with trained experiments (shared by the
    plugin's HTTP tests and the browser test: starting Datasette costs seconds)."""
    folder = tmp_path_factory.mktemp("datasette")
    db = make_trained_db(folder / "ml.db", classification=HOSTILE)
    with datasette(str(db), log=folder / "datasette.log") as url:
        yield url, db
