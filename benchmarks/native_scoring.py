# ruff: noqa: S608 - a benchmark building its own fixed queries
"""Benchmark of native scoring (issue 11's Speed section), with its floors measured in the
same run. Prints a Markdown table (and writes it with --out).

    .venv/bin/python benchmarks/native_scoring.py --quick     # seconds: small sizes
    .venv/bin/python benchmarks/native_scoring.py --out benchmarks/NATIVE_SCORING.md

Rows (medians of the rounds; per-row times are the whole query divided by its rows; each
measurement and its floor, in rows 1 to 4, run interleaved, round by round, and their
ratio is the median of the rounds' ratios):

1. ``sqml_predict(exp, json_object(20 cols))`` per row for a random forest (100 trees),
   XGBoost, LightGBM and hist gradient boosting, against the no-op JSON UDF floor
   (``noop(json_object(...))``, a Python function); goal <= 2x.
2. ``sqml_predict(exp, f0, ..., f19)`` for the same models against the no-op 20-argument
   UDF floor; goal <= 3x.
3. ``sqml_predict_table`` over 1,000,000 rows: logistic regression against a bare scan of
   the same columns (goal <= 1.3x); the random forest against scikit-learn's own batch
   predict of the same rows plus the scan that reads them (goal <= 0.5x).
4. A join of ``sqml_predict_table`` back to a 100,000-row view by its key against the
   unjoined function (goal <= 1.5x).
5. The sqlite3 shell with Python unusable: ``.load sqml.so`` and the first prediction,
   beyond the shell alone (goal < 50 ms).
6. Memory: the 100-tree forest's native form against its skops blob (goal <= 1x).

The forest ("rf") is trained as in 0.3.0's benchmark, whose 328 us per row is the issue's
baseline: 100 trees on 5,000 rows. The deep forest ("rf_deep", the other models' 20,000
rows: trees about 22 levels deep, 1,600 leaves each, 4x the nodes) is reported beside it
in rows 1, 2, 5 and 6.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import sqlite_ml
from sqlite_ml.sqlite import native

FEATURES = [f"f{i}" for i in range(20)]
COLUMNS = ", ".join(FEATURES)
AS_OBJECT = "json_object(" + ", ".join(f"'{name}', {name}" for name in FEATURES) + ")"
MODELS = {
    "rf": ("random_forest", {"n_estimators": 100}),
    "rf_deep": ("random_forest", {"n_estimators": 100}),
    "xgb": ("xgboost", {"n_estimators": 100}),
    "lgbm": ("lightgbm", {"n_estimators": 100}),
    "hgb": ("hist_gradient_boosting", {"max_iter": 100}),
    "lr": ("logistic_regression", {}),
}
NAMES = {
    "rf": "random forest (100 trees)",
    "rf_deep": "random forest (100 trees, deep: 20,000 training rows)",
    "xgb": "XGBoost (100 trees)",
    "lgbm": "LightGBM (100 trees)",
    "hgb": "hist gradient boosting (100 iterations)",
    "lr": "logistic regression",
}


def make_database(path: str, rows: int, train_rows: int) -> None:
    conn = sqlite3.connect(path)
    rng = np.random.default_rng(0)
    weights = rng.normal(size=20)
    conn.execute(
        f"CREATE TABLE t (id INTEGER PRIMARY KEY, {', '.join(f'{c} REAL' for c in FEATURES)}, y)"
    )
    for start in range(0, rows, 100_000):
        block = rng.normal(size=(min(100_000, rows - start), 20))
        labels = (block @ weights + rng.normal(size=len(block)) > 0).astype(int)
        conn.executemany(
            f"INSERT INTO t VALUES (?, {', '.join('?' * 21)})",
            (
                (start + i + 1, *row, int(label))
                for i, (row, label) in enumerate(zip(block.tolist(), labels.tolist(), strict=True))
            ),
        )
    conn.execute(f"CREATE VIEW train_rows AS SELECT {COLUMNS}, y FROM t WHERE id <= {train_rows}")
    # The forest of 0.3.0's benchmark, which gave the issue its baseline (328 us per row):
    # 100 trees on 5,000 rows. rf_deep is trained on train_rows (deeper trees, 4x the nodes).
    forest_rows = min(train_rows, 5_000)
    conn.execute(f"CREATE VIEW forest_rows AS SELECT {COLUMNS}, y FROM t WHERE id <= {forest_rows}")
    conn.commit()
    conn.close()


def median_time(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_times(
    run: Callable[[], object], floor: Callable[[], object], rounds: int
) -> tuple[float, float, float]:
    """Medians of run and of its floor, and the median of their ratios, the two run in
    turn (in alternating order) so that the machine's drift within a run, up to a third
    here, falls on both alike."""
    times: dict[str, list[float]] = {"run": [], "floor": []}
    for i in range(rounds):
        for name, call in (("run", run), ("floor", floor))[:: 1 if i % 2 == 0 else -1]:
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    ratio = statistics.median(t / f for t, f in zip(times["run"], times["floor"], strict=True))
    return statistics.median(times["run"]), statistics.median(times["floor"]), ratio


def query(conn: sqlite3.Connection, sql: str) -> Callable[[], object]:
    return lambda: conn.execute(sql).fetchall()


def shell_first_prediction(path: str, rounds: int, experiment: str) -> tuple[float, float]:
    """Seconds for the sqlite3 shell to .load sqml.so and answer one prediction with
    Python unusable, and for the shell alone."""
    shell = shutil.which("sqlite3")
    if shell is None:
        return float("nan"), float("nan")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLITE_ML_")}
    env["SQLITE_ML_PYTHON"] = "/nonexistent/python"
    row = ", ".join("0.5" for _ in FEATURES)
    loaded = f".load {native.extension_path()}\nSELECT sqml_predict('{experiment}', {row});\n"

    def run(script: str) -> Callable[[], object]:
        def go() -> object:
            result = subprocess.run(
                [shell, "-batch", path], input=script, capture_output=True, text=True, env=env
            )
            assert result.returncode == 0 and not result.stderr, result.stderr
            return result

        return go

    return median_time(run(loaded), rounds), median_time(run("SELECT 1;\n"), rounds)


def measure(args: argparse.Namespace) -> list[tuple[str, str, str, str, str]]:
    quick = args.quick
    rows = 20_000 if quick else 1_000_000
    per_row = 2_000 if quick else 20_000
    join_rows = 10_000 if quick else 100_000
    rounds = 3 if quick else 5
    per_row_rounds = 3 if quick else 9
    folder = tempfile.mkdtemp(prefix="sqml-native-bench-")
    path = os.path.join(folder, "bench.db")
    make_database(path, rows, 2_000 if quick else 20_000)
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    conn.create_function("noop", 1, lambda value: None)
    conn.create_function("noop20", 20, lambda *values: None)
    for name, (algorithm, hyperparams) in MODELS.items():
        options = json.dumps({"hyperparams": hyperparams})
        conn.execute(
            "SELECT sqml_train(?, 'classification', ?, ?, 'y', 0.25, 'shuffle', ?)",
            (name, algorithm, "forest_rows" if name == "rf" else "train_rows", options),
        ).fetchone()
        serving = conn.execute(
            "SELECT serving FROM sqml_models ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
        assert serving == "native", (name, serving)
    conn.commit()
    results: list[tuple[str, str, str, str, str]] = []
    source = f"(SELECT * FROM t WHERE id <= {per_row})"
    us = 1e6 / per_row
    # (what, the arguments after the experiment, the floor's query, the floor, the goal)
    forms = [
        ("json_object(20 cols)", AS_OBJECT, f"noop({AS_OBJECT})", "no-op JSON UDF", "≤ 2"),
        ("f0, ..., f19", COLUMNS, f"noop20({COLUMNS})", "no-op 20-argument UDF", "≤ 3"),
    ]
    for form, arguments, floor_call, floor_name, goal in forms:
        # Floor and models interleaved round by round, so that a machine whose speed drifts
        # during the run moves both sides of each ratio alike.
        names = ("rf", "xgb", "lgbm", "hgb", "rf_deep")
        queries = {"floor": f"SELECT count({floor_call}) FROM {source}"}
        for name in names:
            queries[name] = f"SELECT count(sqml_predict('{name}', {arguments})) FROM {source}"
        times: dict[str, list[float]] = {key: [] for key in queries}
        for _ in range(per_row_rounds):
            for key, sql in queries.items():
                times[key].append(median_time(query(conn, sql), 1))
        floor = statistics.median(times["floor"])
        for name in names:
            seconds = statistics.median(times[name])
            ratio = statistics.median(
                t / f for t, f in zip(times[name], times["floor"], strict=True)
            )
            results.append(
                (
                    f"`sqml_predict(exp, {form})`, {NAMES[name]}",
                    f"{seconds * us:.2f} µs/row",
                    f"{floor * us:.2f} µs/row ({floor_name})",
                    f"{ratio:.2f}",
                    goal,
                )
            )
    table_lr, scan, ratio = paired_times(
        query(conn, "SELECT count(*), sum(prediction) FROM sqml_predict_table('lr', 't')"),
        query(conn, f"SELECT sum({' + '.join(FEATURES)}) FROM t"),
        rounds,
    )
    results.append(
        (
            f"`sqml_predict_table` over {rows:,} rows, logistic regression",
            f"{table_lr:.3f} s",
            f"{scan:.3f} s (bare scan of the 20 columns)",
            f"{ratio:.2f}",
            "≤ 1.3",
        )
    )
    forest_rows = rows if not quick else rows
    forest_sql = "SELECT count(*), sum(prediction) FROM sqml_predict_table('rf', 't')"
    pipeline, schema = _stored_model(conn, "rf")

    def sklearn_scan_and_predict() -> object:
        matrix = np.fromiter(
            (v for row in conn.execute(f"SELECT {COLUMNS} FROM t") for v in row),
            dtype=np.float64,
            count=forest_rows * 20,
        ).reshape(forest_rows, 20)
        return pipeline.predict(matrix)

    table_rf, floor_rf, ratio = paired_times(
        query(conn, forest_sql), sklearn_scan_and_predict, max(1, rounds - 2)
    )
    results.append(
        (
            f"`sqml_predict_table` over {rows:,} rows, random forest (100 trees)",
            f"{table_rf:.3f} s",
            f"{floor_rf:.3f} s (scikit-learn's batch predict + the scan)",
            f"{ratio:.2f}",
            "≤ 0.5",
        )
    )
    conn.execute(f"CREATE VIEW IF NOT EXISTS joined AS SELECT * FROM t WHERE id <= {join_rows}")
    joined, unjoined, ratio = paired_times(
        query(
            conn,
            "SELECT count(*), sum(p.prediction) FROM joined AS v"
            " JOIN sqml_predict_table('lr', 'joined', 'id') AS p ON p.row_id = v.id",
        ),
        query(
            conn, "SELECT count(*), sum(prediction) FROM sqml_predict_table('lr', 'joined', 'id')"
        ),
        rounds,
    )
    results.append(
        (
            f"join of `sqml_predict_table` back to a {join_rows:,}-row view by its key",
            f"{joined:.3f} s",
            f"{unjoined:.3f} s (the function alone)",
            f"{ratio:.2f}",
            "≤ 1.5",
        )
    )
    conn.close()
    for name in ("rf", "rf_deep"):
        with_load, alone = shell_first_prediction(path, rounds, name)
        results.append(
            (
                "sqlite3 shell, Python unusable: `.load sqml.so` + first prediction, "
                + NAMES[name],
                f"{(with_load - alone) * 1000:.1f} ms",
                f"{alone * 1000:.1f} ms (the shell alone, subtracted)",
                "–",
                "< 50 ms",
            )
        )
    conn = sqlite3.connect(path)
    for name in ("rf", "rf_deep"):
        native_size, skops_size = conn.execute(
            "SELECT length(m.native_model), length(m.data) FROM sqml_models AS m"
            " JOIN sqml_runs AS r ON r.id = m.run_id"
            " JOIN sqml_experiments AS e ON e.id = r.experiment_id WHERE e.name = ?",
            (name,),
        ).fetchone()
        results.append(
            (
                f"memory: {NAMES[name]}, native form vs skops blob",
                f"{native_size:,} bytes",
                f"{skops_size:,} bytes (skops)",
                f"{native_size / skops_size:.2f}",
                "≤ 1",
            )
        )
    conn.close()
    shutil.rmtree(folder, ignore_errors=True)
    return results


def _stored_model(conn: sqlite3.Connection, experiment: str) -> tuple[object, object]:
    from sqlite_ml.ml import persistence
    from sqlite_ml.ml.features import FeatureSchema

    blob, schema_json, model_id = conn.execute(
        "SELECT m.data, m.feature_schema, m.id FROM sqml_models AS m"
        " JOIN sqml_deployments AS d ON d.model_id = m.id AND d.active"
        " JOIN sqml_experiments AS e ON e.id = d.experiment_id WHERE e.name = ?",
        (experiment,),
    ).fetchone()
    return persistence.loads(bytes(blob), model_id), FeatureSchema.from_json(schema_json)


def table(results: list[tuple[str, str, str, str, str]], args: argparse.Namespace) -> str:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        f"Native scoring benchmark ({'quick' if args.quick else 'full'}), Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
        f"load average {load} at the end.",
        "",
        "| measurement | native | floor | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in results]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, runs in seconds")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    text = table(measure(args), args)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
