# ruff: noqa: S608 - a benchmark building its own fixed queries
"""Time per row of ``sqml_explain`` for each explainable family (not a test).

    .venv/bin/python benchmarks/explain.py            # 20,000 rows x 20 features, 100 trees
    .venv/bin/python benchmarks/explain.py --quick    # 1,000 rows, 10 trees: seconds

Trains one model per algorithm on a synthetic classification table (and a regression
one), deploys it, explains one row once (which builds the model's explainer and is
reported apart), then times ``sqml_explain`` on ``--calls`` rows, one call each, through
SQL. Prints a Markdown table: ms per row, and the first call's ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import sqlite_ml  # noqa: E402

FEATURES = [f"x{i}" for i in range(20)]
# (task, algorithm, whether it takes n_estimators: 100 trees, or 10 in --quick)
ALGORITHMS = [
    ("classification", "logistic_regression", {}),
    ("regression", "ridge", {}),
    ("classification", "decision_tree", {}),
    ("classification", "random_forest", {"n_estimators": True}),
    ("regression", "random_forest", {"n_estimators": True}),
    ("classification", "extra_trees", {"n_estimators": True}),
    ("classification", "gradient_boosting", {"n_estimators": True}),
    ("classification", "xgboost", {"n_estimators": True}),
    ("classification", "lightgbm", {"n_estimators": True}),
]


def make_table(conn: sqlite3.Connection, rows: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, len(FEATURES)))
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - x[:, 3] + rng.normal(scale=0.5, size=rows)
    columns = ", ".join(f"{name} REAL" for name in FEATURES)
    conn.execute(f"CREATE TABLE data ({columns}, label INTEGER, amount REAL)")
    marks = ", ".join("?" for _ in range(len(FEATURES) + 2))
    conn.executemany(
        f"INSERT INTO data VALUES ({marks})",
        [(*row, int(s > 0), float(s)) for row, s in zip(x.tolist(), score, strict=True)],
    )
    conn.commit()


def measure(
    conn: sqlite3.Connection, kind: str, algorithm: str, params: dict, calls: int
) -> tuple[float, float]:
    experiment = f"{kind} {algorithm}"
    target = "label" if kind == "classification" else "amount"
    options = json.dumps({"hyperparams": params, "features": FEATURES})
    conn.execute(
        "SELECT sqml_train(?, ?, ?, 'data', ?, 0.25, 'shuffle', ?)",
        (experiment, kind, algorithm, target, options),
    ).fetchone()
    rows = conn.execute(
        f"SELECT json_array({', '.join(FEATURES)}) FROM data LIMIT ?", (calls + 1,)
    ).fetchall()
    started = time.perf_counter()
    conn.execute("SELECT sqml_explain(?, ?)", (experiment, rows[0][0])).fetchone()
    first = time.perf_counter() - started
    started = time.perf_counter()
    for (features,) in rows[1:]:
        conn.execute("SELECT sqml_explain(?, ?)", (experiment, features)).fetchone()
    per_row = (time.perf_counter() - started) / calls
    return first, per_row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 rows, 10 trees, 10 calls")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (1_000 if args.quick else 20_000)
    calls = args.calls or (10 if args.quick else 200)
    trees = 10 if args.quick else 100
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(os.path.join(folder, "explain.db"))
        sqlite_ml.register(conn)
        make_table(conn, rows)
        print(f"sqml_explain, {rows} rows x {len(FEATURES)} features, {calls} calls each\n")
        print("| algorithm | task | ms per row | first call ms |")
        print("|---|---|---:|---:|")
        for kind, algorithm, params in ALGORITHMS:
            params = {"n_estimators": trees} if params else {}
            first, per_row = measure(conn, kind, algorithm, params, calls)
            label = algorithm + (f" ({params['n_estimators']} trees)" if params else "")
            print(f"| {label} | {kind} | {per_row * 1000:.2f} | {first * 1000:.1f} |")
        conn.close()


if __name__ == "__main__":
    main()
