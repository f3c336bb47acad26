"""Shared fixtures: every test talks to sqlite-ml through SQL on a real database file."""

from __future__ import annotations

import os

# One OpenMP thread per process, set before scikit-learn, XGBoost or LightGBM load it: the
# suite's datasets are tiny, and on a busy machine (CI, parallel jobs) OpenMP's threads
# wait on each other for longer than the work takes (hist_gradient_boosting: 79 s instead
# of 3 s for one test here). Results do not depend on the thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

import sqlite_ml

from .helpers import Db, run_python

# The variable above reaches only the runtimes loaded after it; when numpy, SciPy or
# scikit-learn were imported first (measured here: scikit-learn's libgomp and both OpenBLAS
# copies ran 2 threads under pytest), they are limited here too. Without this one
# hist_gradient_boosting test took 450 s on a loaded 2-core machine.
_ONE_THREAD = threadpool_limits(limits=1)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sqml.db"


@pytest.fixture
def connect(db_path: Path) -> Iterator[Callable[..., sqlite3.Connection]]:
    """Open (and by default register) more connections; all are closed at the end."""
    opened: list[sqlite3.Connection] = []

    def _connect(
        path: Path | None = None, register: bool = True, **kwargs: Any
    ) -> sqlite3.Connection:
        conn = sqlite3.connect(path or db_path, **kwargs)
        opened.append(conn)
        if register:
            sqlite_ml.register(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


@pytest.fixture
def db(connect: Callable[..., sqlite3.Connection], db_path: Path) -> Db:
    return Db(connect(), db_path)


@pytest.fixture
def iris(db: Db) -> Db:
    db.load("iris")
    return db


@pytest.fixture
def small(db: Db) -> Db:
    """Small tables for slow algorithms: 30 iris rows (10 per class), 80 diabetes rows."""
    db.load("iris")
    db.load("diabetes")
    db.conn.execute("CREATE TABLE iris_small AS SELECT * FROM dataset_iris WHERE rowid % 5 = 0")
    db.conn.execute("CREATE TABLE diabetes_small AS SELECT * FROM dataset_diabetes LIMIT 80")
    db.conn.commit()
    return db


@pytest.fixture
def python() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_python
