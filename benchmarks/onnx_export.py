"""ONNX export per covered algorithm (not a test): the time sqml_export_model takes
(conversion, the ONNX Runtime check, serialization: one call per model, after a
first export in the process has imported the converters),
the size of the bytes and the differences its check measured.

    .venv/bin/python benchmarks/onnx_export.py            # 5,000 rows, 100 trees
    .venv/bin/python benchmarks/onnx_export.py --quick    # 300 rows, 10 trees, seconds

Prints a Markdown table. Data: a synthetic table of 20 numeric columns (two with NULLs)
and a TEXT column of 5 categories (with NULLs); classification of a text label with 3
classes, regression of a number, clustering without a target.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
from typing import Any

import numpy as np
import onnx

import sqlite_ml
from sqlite_ml.ml.onnx_export import COVERED

TREES = ("random_forest", "extra_trees", "gradient_boosting", "ada_boost", "bagging")


def make_table(conn: sqlite3.Connection, rows: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 20))
    colours = np.array(["red", "green", "blue", "grey", "black"], dtype=object)[
        rng.integers(0, 5, rows)
    ]
    score = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] + (colours == "red") + 0.3 * rng.normal(size=rows)
    label = np.where(score < -0.5, "low", np.where(score < 0.8, "mid", "high"))
    columns = ", ".join(f"f{i} REAL" for i in range(20))
    conn.execute(f"CREATE TABLE data ({columns}, colour TEXT, label TEXT, value REAL)")
    records = []
    for i in range(rows):
        values: list[Any] = [float(v) for v in x[i]]
        if i % 11 == 0:
            values[3] = None
        if i % 13 == 0:
            values[7] = None
        colour = None if i % 17 == 0 else str(colours[i])
        records.append((*values, colour, str(label[i]), float(score[i] * 10 + 100)))
    conn.executemany(f"INSERT INTO data VALUES ({', '.join('?' * 23)})", records)
    conn.execute("CREATE VIEW features AS SELECT * FROM data")


def hyperparams(algorithm: str, trees: int) -> dict[str, Any]:
    if algorithm in (*TREES, "xgboost", "lightgbm"):
        return {"n_estimators": trees}
    if algorithm == "mlp":
        return {"max_iter": 100}
    return {}


def measure(
    conn: sqlite3.Connection, kind: str, algorithm: str, trees: int, repeat: int, name: str = ""
) -> dict:
    experiment = name or f"{kind} {algorithm}"
    features = [f"f{i}" for i in range(20)] + ["colour"]
    target = {"classification": "label", "regression": "value", "clustering": None}[kind]
    options = {"features": features, "hyperparams": hyperparams(algorithm, trees)}
    conn.execute(
        "SELECT sqml_train(?, ?, ?, 'data', ?, 0.25, 'shuffle', ?)",
        (experiment, kind, algorithm, target, json.dumps(options)),
    )
    sql = "SELECT sqml_export_model(?, 'onnx')"
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        (data,) = conn.execute(sql, (experiment,)).fetchone()
        times.append(time.perf_counter() - started)
    properties = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    check = json.loads(properties["sqlite_ml.check"])
    return {
        "kind": kind,
        "algorithm": algorithm,
        "seconds": statistics.median(times),
        "bytes": len(data),
        "rows": check["rows"],
        "probability": check.get("max_probability_difference"),
        "prediction": check.get("max_prediction_difference"),
        "tied": check.get("tied_predictions", ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 rows, 10 trees")
    arguments = parser.parse_args()
    rows, trees, repeat = (300, 10, 1) if arguments.quick else (5000, 100, 1)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    sqlite_ml.register(conn)
    make_table(conn, rows)
    measure(conn, "regression", "ridge", trees, 1, "warm-up")  # imports the converters
    print(f"ONNX export, {rows} rows x 21 feature columns, {trees} trees per ensemble\n")
    print(
        "| type | algorithm | export (s) | bytes | rows checked | max prob. diff | max value diff |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind, algorithms in COVERED.items():
        for algorithm in algorithms:
            m = measure(conn, kind, algorithm, trees, repeat)
            prob = "" if m["probability"] is None else f"{m['probability']:.2g}"
            pred = "" if m["prediction"] is None else f"{m['prediction']:.2g}"
            print(
                f"| {kind} | {algorithm} | {m['seconds']:.3f} | {m['bytes']} | {m['rows']} "
                f"| {prob} | {pred} | {m['tied']} |"
            )


if __name__ == "__main__":
    main()
