"""Big tables: peak memory of streamed training, read throughput, accuracy against
in-memory training on a sample, and a grid search on a 2-worker Dask cluster.

    .venv/bin/python benchmarks/big_data.py            # 20M x 20 (and 2M), about 3.3 GB
    .venv/bin/python benchmarks/big_data.py --quick    # 200k x 20 (and 20k), seconds
    .venv/bin/python benchmarks/big_data.py --only xgboost  # the streamed XGBoost rows only

The table is built with SQL into benchmarks/.data/ (git-ignored; --dir to move it).
Every training runs in a child process of its own, whose peak RSS (getrusage ru_maxrss)
is the number reported. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FEATURES = 20
ALGORITHMS = ("xgboost", "sgd")
_CHILD = r"""
import json, os, resource, sqlite3, sys, threading, time
os.environ.setdefault("OMP_NUM_THREADS", "2")
file_peak = [0.0]  # the largest RssFile seen: mapped file pages (XGBoost's cache) in RSS
def watch_file_pages():
    while True:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssFile:"):
                    file_peak[0] = max(file_peak[0], int(line.split()[1]) / 1024)
        time.sleep(0.2)
if os.path.exists("/proc/self/status"):
    threading.Thread(target=watch_file_pages, daemon=True).start()
import sqlite_ml
task = json.loads(sys.argv[1])
conn = sqlite3.connect(task["db"]); sqlite_ml.register(conn)
out = {}
started = time.perf_counter()
if task["kind"] == "train":
    text = conn.execute("SELECT sqml_train(?, ?, ?, ?, 'y', 0.25, 'shuffle', ?)",
        (task["name"], "classification", task["algorithm"], task["table"],
         json.dumps(task["options"]))).fetchone()[0]
    conn.commit()
    result = json.loads(text)
    out = {"accuracy": result["metrics"]["accuracy"], "train_rows": result["train_rows"]}
    details = conn.execute("SELECT engine_details FROM sqml_runs WHERE id = ?",
                           (result["run_id"],)).fetchone()[0]
    out["details"] = json.loads(details) if details else {}
elif task["kind"] == "read_memory":
    from sqlite_ml.db.relations import find_relation
    from sqlite_ml.ops.reading import read_numeric
    relation = find_relation(conn, task["table"])
    columns = [c for c in relation.columns if c != "y"]
    count = conn.execute(f"SELECT count(*) FROM {task['table']}").fetchone()[0]
    matrix, labels = read_numeric(conn, relation, columns, "y", count)
    out = {"rows": len(labels)}
elif task["kind"] == "read_stream":
    from sqlite_ml.db import streams
    from sqlite_ml.db.relations import find_relation
    relation = find_relation(conn, task["table"])
    columns = [c for c in relation.columns if c != "y"]
    rows = 0
    for chunk in streams.read_chunks(conn, relation, columns, "y", None, 65536):
        rows += len(chunk)
    out = {"rows": rows}
elif task["kind"] == "search":
    text = conn.execute("SELECT sqml_train(?, 'classification', 'logistic_regression', ?, 'y',"
                        " 0.25, 'shuffle', ?)", (task["name"], task["table"],
                        json.dumps(task["options"]))).fetchone()[0]
    conn.commit()
    run = json.loads(text)["run_id"]
    out["task_seconds"] = conn.execute(
        "SELECT sum(fit_time) FROM sqml_search_trials WHERE run_id = ?", (run,)).fetchone()[0]
out["seconds"] = time.perf_counter() - started
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["peak_file_mb"] = file_peak[0]
print(json.dumps(out))
"""


def build(path: Path, rows: int) -> None:
    """rows x 20 REAL features in [-1, 1) and a label from a noisy linear rule, in SQL."""
    if path.exists():
        conn = sqlite3.connect(path)
        try:
            if conn.execute("SELECT count(*) FROM big").fetchone()[0] == rows:
                return
        except sqlite3.Error:
            pass
        conn.close()
        path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    columns = ", ".join(f"x{i} REAL" for i in range(FEATURES))
    conn.execute(f"CREATE TABLE big ({columns}, y INTEGER)")
    values = ", ".join("(random() % 1000000) / 1e6" for _ in range(FEATURES))
    weights = " + ".join(f"{(-1) ** i * (i % 5 + 1) / 5:.1f} * x{i}" for i in range(FEATURES))
    conn.execute(
        f"""INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
            WHERE i < {rows}) SELECT * , 0 FROM (SELECT {values} FROM n)"""
    )
    noise = "(random() % 1000000) / 1e6 * 0.3"
    conn.execute(f"UPDATE big SET y = ({weights} + {noise}) > 0")
    conn.commit()
    conn.close()


def child(task: dict[str, object]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(task)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def dask_search(db: Path, table: str, quick: bool) -> dict[str, float]:
    from distributed import LocalCluster

    grid = {"C": [0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000]}
    options = {
        "search": "grid",
        "search_params": grid,
        "search_args": {"cv": 3},
        "max_rows": 20_000 if quick else 200_000,
        "random_state": 1,
    }
    here = child(
        {"kind": "search", "db": str(db), "table": table, "name": "search here", "options": options}
    )
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = child(
            {
                "kind": "search",
                "db": str(db),
                "table": table,
                "name": "search dask",
                "options": {**options, "dask": cluster.scheduler_address},
            }
        )
    tasks = 8 * 3
    # Wall time the two workers spent beyond the fits themselves, per task.
    overhead = (remote["seconds"] * 2 - remote["task_seconds"] * 3) / tasks
    return {
        "in_process_s": here["seconds"],
        "dask_s": remote["seconds"],
        "speed_up": here["seconds"] / remote["seconds"],
        "overhead_per_task_s": overhead,
    }


def readers(db: Path, rows: int) -> list[str]:
    memory = child({"kind": "read_memory", "db": str(db), "table": "big"})
    stream = child({"kind": "read_stream", "db": str(db), "table": "big"})
    memory_rate, stream_rate = rows / memory["seconds"], rows / stream["seconds"]
    return [
        f"| in-memory reader | {memory_rate:,.0f} rows/s, "
        f"peak RSS {memory['peak_rss_mb']:,.0f} MiB |",
        f"| streamed reader (65,536-row chunks) | {stream_rate:,.0f} rows/s "
        f"({stream_rate / memory_rate:.2f}x the in-memory reader), "
        f"peak RSS {stream['peak_rss_mb']:,.0f} MiB |",
    ]


def search_lines(search: dict[str, float]) -> list[str]:
    return [
        f"| grid search 8 candidates x 3 folds, in process | {search['in_process_s']:.1f} s |",
        f"| the same on a 2-worker local Dask cluster | {search['dask_s']:.1f} s "
        f"(speed-up {search['speed_up']:.2f}x, scheduler overhead "
        f"{search['overhead_per_task_s'] * 1000:,.0f} ms per task) |",
    ]


def cache_note(result: dict[str, Any]) -> str:
    """Streamed XGBoost's external-memory cache, as its run recorded it."""
    details = result.get("details", {})
    if "xgboost_cache_bytes" not in details:
        return ""
    pages = details["xgboost_pages"]
    return (
        f"; cache on disk {details['xgboost_cache_bytes'] / 2**20:,.0f} MiB in "
        f"{pages} page{'' if pages == 1 else 's'} of {details['xgboost_page_rows']:,} rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows instead of 20M")
    parser.add_argument("--dir", default=str(HERE / ".data"), help="where the table goes")
    parser.add_argument(
        "--only",
        choices=ALGORITHMS,
        help="only this algorithm's rows (streamed at both sizes, in memory on the sample)",
    )
    args = parser.parse_args()
    big_rows = 200_000 if args.quick else 20_000_000
    small_rows = big_rows // 10
    sample = 20_000 if args.quick else 1_000_000
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {}
    for rows in (small_rows, big_rows):
        path = folder / f"big_{rows}.db"
        started = time.perf_counter()
        build(path, rows)
        tables[rows] = path
        print(f"<!-- table of {rows} rows: {time.perf_counter() - started:.1f} s -->", flush=True)
    matrix_mb = big_rows * FEATURES * 8 / 2**20
    lines = ["| measure | value |", "|---|---|"]
    lines.append(
        f"| rows x features (float64 matrix) | {big_rows:,} x {FEATURES} ({matrix_mb:,.0f} MiB) |"
    )
    if args.only is None:
        lines += readers(tables[big_rows], big_rows)
    for algorithm in (args.only,) if args.only else ALGORITHMS:
        peaks = {}
        for rows, path in tables.items():
            result = child(
                {
                    "kind": "train",
                    "db": str(path),
                    "table": "big",
                    "name": f"{algorithm} {rows}",
                    "algorithm": algorithm,
                    "options": {"stream": True, "random_state": 1},
                }
            )
            peaks[rows] = result
        sampled = child(
            {
                "kind": "train",
                "db": str(tables[big_rows]),
                "table": "big",
                "name": f"{algorithm} sample",
                "algorithm": algorithm,
                "options": {"max_rows": sample, "random_state": 1},
            }
        )
        big, small = peaks[big_rows], peaks[small_rows]
        lines.append(
            f"| streamed {algorithm}, {big_rows:,} rows | peak RSS {big['peak_rss_mb']:,.0f} MiB "
            f"({big['peak_rss_mb'] / matrix_mb:.2f}x the matrix), {big['seconds']:.1f} s, "
            f"accuracy {big['accuracy']:.4f}{cache_note(big)}; file pages in RSS "
            f"(libraries, cache) at most {big['peak_file_mb']:,.0f} MiB |"
        )
        lines.append(
            f"| streamed {algorithm}, {small_rows:,} rows | "
            f"peak RSS {small['peak_rss_mb']:,.0f} MiB, {small['seconds']:.1f} s "
            f"(the {big_rows:,}-row run: {big['peak_rss_mb'] / small['peak_rss_mb'] - 1:+.0%})"
            f"{cache_note(small)} |"
        )
        lines.append(
            f"| in-memory {algorithm} on a {sample:,}-row sample | "
            f"accuracy {sampled['accuracy']:.4f} "
            f"(streamed - sample: {100 * (big['accuracy'] - sampled['accuracy']):+.2f} points), "
            f"peak RSS {sampled['peak_rss_mb']:,.0f} MiB |"
        )
    if args.only is None:
        lines += search_lines(dask_search(tables[big_rows], "big", args.quick))
    load = os.getloadavg()
    lines.append(
        f"| machine | {os.cpu_count()} cores, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} |"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
