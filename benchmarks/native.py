# ruff: noqa: S608 - a benchmark building its own fixed queries
"""Benchmarks for the native layer (not tests): per-call overhead of each binding mode,
sqml_predict_table and the native reader. Run: .venv/bin/python benchmarks/native.py [rows]

Prints one line per measurement; the numbers in the README/CHANGELOG came from here.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time

import numpy as np

import sqlite_ml
from sqlite_ml.db import readers as data
from sqlite_ml.ops.prediction import model_by_id
from sqlite_ml.sql.session import Session
from sqlite_ml.sqlite import binders as binding
from sqlite_ml.sqlite import native

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
COLUMNS = [f"c{i}" for i in range(20)]


def best(seconds: list[float]) -> float:
    return min(seconds)


def timed(conn: sqlite3.Connection, sql: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append(time.perf_counter() - start)
    return best(times)


def make_table(path: str) -> None:
    conn = sqlite3.connect(path)
    rng = np.random.default_rng(0)
    conn.execute(f"CREATE TABLE t ({', '.join(f'{c} REAL' for c in COLUMNS)}, y INTEGER)")
    weights = rng.normal(size=20)
    for start in range(0, ROWS, 100_000):
        block = rng.normal(size=(min(100_000, ROWS - start), 20))
        labels = (block @ weights > 0).astype(int)
        conn.executemany(
            f"INSERT INTO t VALUES ({', '.join('?' * 21)})",
            (tuple(row) + (int(label),) for row, label in zip(block.tolist(), labels, strict=True)),
        )
    conn.execute("CREATE VIEW train_rows AS SELECT * FROM t WHERE rowid <= 20000")
    conn.commit()
    conn.close()


def noop_session(conn: sqlite3.Connection) -> Session:
    """A session whose only function is noop (the native binder also attaches its scoring
    functions, which stay unused)."""
    session = Session(conn)
    session.calls = {"noop": lambda *args: None}
    session.flags = {"noop": (True, False)}
    return session


def call_overhead(path: str) -> None:
    """A no-op function in each mode, measured in turns (the best of 5 rounds), minus the
    same query without it."""
    rows = min(ROWS, 200_000)
    args20 = ", ".join(COLUMNS)
    where = f"FROM t WHERE rowid <= {rows}"
    queries = {
        "base1": f"SELECT count(c0) {where}",  # noqa: S608
        "one": f"SELECT count(noop(c0)) {where}",  # noqa: S608
        "base20": f"SELECT count(coalesce({args20})) {where}",  # noqa: S608
        "twenty": f"SELECT count(noop({args20})) {where}",  # noqa: S608
    }
    conns: dict[str, sqlite3.Connection] = {}
    sessions = []
    for mode in ("native", "capi", "stdlib"):
        conn = conns[mode] = sqlite3.connect(path)
        os.environ["SQLITE_ML_BINDING"] = mode
        if mode == "stdlib":
            conn.create_function("noop", -1, lambda *args: None, deterministic=True)
        else:
            session = noop_session(conn)
            sessions.append(session)
            binding.binder_for(conn).attach(conn, session)
    del os.environ["SQLITE_ML_BINDING"]
    times: dict[tuple[str, str], list[float]] = {}
    for round_number in range(5):
        for mode, conn in conns.items():
            if mode == "capi" and round_number > 0:
                continue  # about 20x slower; one round says enough
            for name, sql in queries.items():
                times.setdefault((mode, name), []).append(timed(conn, sql, repeat=1))
    for mode, conn in conns.items():
        cost = {name: best(times[(mode, name)]) for name in queries}
        print(
            f"per-call overhead, {mode:6}: 1 arg {(cost['one'] - cost['base1']) / rows * 1e6:.3f}"
            f" us, 20 args {(cost['twenty'] - cost['base20']) / rows * 1e6:.3f} us"
        )
        conn.close()


def predictions(path: str) -> None:
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    scan = timed(conn, f"SELECT sum({' + '.join(COLUMNS)}) FROM t")  # noqa: S608
    print(f"bare scan SELECT sum(c0 + ... + c19) over {ROWS} rows: {scan:.3f} s")
    for experiment, algorithm, rows in (
        ("lr", "logistic_regression", ROWS),
        ("rf", "random_forest", min(ROWS, 200_000)),
    ):
        conn.execute(
            f"SELECT sqml_train('{experiment}', 'classification', '{algorithm}', 'train_rows', 'y')"
        ).fetchone()
        source = "t" if rows == ROWS else f"SELECT * FROM t WHERE rowid <= {rows}"
        sql = f"SELECT count(*), sum(prediction) FROM sqml_predict_table('{experiment}', ?)"
        seconds = best([_run(conn, sql, source) for _ in range(2)])
        with_json = best(
            [
                _run(
                    conn,
                    "SELECT count(*), sum(length(probabilities))"
                    f" FROM sqml_predict_table('{experiment}', ?)",
                    source,
                )
            ]
        )
        # the deployed model as Python loads it (the table itself is scored natively)
        (model_id,) = conn.execute(
            "SELECT d.model_id FROM sqml_deployments AS d JOIN sqml_experiments AS e"
            " ON e.id = d.experiment_id WHERE e.name = ? AND d.active",
            (experiment,),
        ).fetchone()
        model = model_by_id(conn, model_id)
        matrix = np.asarray(
            conn.execute(f"SELECT {', '.join(COLUMNS)} FROM t LIMIT {rows}").fetchall()
        )  # noqa: S608
        start = time.perf_counter()
        model.predictor(matrix)
        own = time.perf_counter() - start
        part_scan = scan * rows / ROWS
        print(
            f"sqml_predict_table {algorithm} over {rows} rows: {seconds:.3f} s "
            f"= {seconds / rows * 1e6:.3f} us/row (model's own vectorized predict {own:.3f} s "
            f"+ scan {part_scan:.3f} s = {own + part_scan:.3f} s; ratio "
            f"{seconds / (own + part_scan):.2f}); with probabilities JSON {with_json:.3f} s"
        )
    conn.close()


def _run(conn: sqlite3.Connection, sql: str, source: str) -> float:
    start = time.perf_counter()
    conn.execute(sql, (source,)).fetchall()
    return time.perf_counter() - start


def reader(path: str) -> None:
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    sums = ", ".join(f"sum({c})" for c in COLUMNS)
    scan = timed(conn, f"SELECT {sums} FROM t")  # noqa: S608
    sql = f"SELECT {', '.join(COLUMNS)} FROM t"  # noqa: S608
    times = []
    for _ in range(3):
        start = time.perf_counter()
        block = np.empty((ROWS, 20))
        native_reader = native.reader(conn, sql)
        assert native_reader is not None
        native_reader.fill(block)
        native_reader.close()
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    np.fromiter(conn.execute(sql), dtype=np.dtype((np.float64, 20)), count=ROWS)
    fromiter = time.perf_counter() - start
    relation = data.find_relation(conn, "t")
    start = time.perf_counter()
    data.read_numeric_matrix(conn, relation, COLUMNS, "y", ROWS)
    training_read = time.perf_counter() - start
    print(
        f"reading {ROWS} x 20 REAL: native fill {best(times):.3f} s, bare scan "
        f"SELECT sum() x 20 {scan:.3f} s (ratio {best(times) / scan:.2f}); numpy.fromiter "
        f"{fromiter:.3f} s; data.read_numeric_matrix {training_read:.3f} s"
    )
    conn.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "bench.db")
        make_table(path)
        call_overhead(path)
        reader(path)
        predictions(path)
