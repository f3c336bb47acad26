"""Threads chosen by sqlite-ml against threads set by hand, on a machine under load.

    python benchmarks/threads.py            # full: 50,000 rows, 3 rounds (minutes)
    python benchmarks/threads.py --quick    # 2,000 rows, 20 boosting rounds, 2 rounds

Trains hist gradient boosting (``sqml_train``) and then times single-row predictions
(``sqml_predict`` with one JSON row, one call at a time) in a fresh process per setting:

- sqlite-ml's choice: no ``OMP_NUM_THREADS``, no ``SQLITE_ML_THREADS``;
- ``OMP_NUM_THREADS=1`` set by hand, the advice users needed before;
- every core: ``SQLITE_ML_THREADS`` set to the logical CPU count, which is what the
  libraries did on their own before sqlite-ml chose.

While each process measures, ``--load`` other processes (default: one per logical CPU)
keep every CPU busy, as on a shared machine. Settings are interleaved round after round;
the table shows medians (and min-max over the rounds) in Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = [f"f{i}" for i in range(20)]


def settings() -> dict[str, dict[str, str]]:
    every = str(os.cpu_count() or 1)
    return {
        "sqlite-ml's choice": {},
        "OMP_NUM_THREADS=1 by hand": {"OMP_NUM_THREADS": "1"},
        f"every core (SQLITE_ML_THREADS={every}, the libraries' own default)": {
            "SQLITE_ML_THREADS": every
        },
    }


def make_data(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = (x[:, :5].sum(axis=1) + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    conn = sqlite3.connect(path)
    columns = ", ".join(f"{name} REAL" for name in FEATURES)
    conn.execute(f"CREATE TABLE data ({columns}, label INTEGER)")
    marks = ", ".join("?" for _ in range(len(FEATURES) + 1))
    conn.executemany(
        f"INSERT INTO data VALUES ({marks})",  # our own column names
        [(*map(float, features), int(label)) for features, label in zip(x, y, strict=True)],
    )
    conn.commit()
    conn.close()


def worker(arguments: dict[str, Any]) -> None:
    """One setting's measurements, printed as JSON (runs in its own process)."""
    import sqlite_ml
    import sqlite_ml.ops.training  # noqa: F401 - the libraries load before the clock starts

    conn = sqlite3.connect(arguments["db"], isolation_level=None)
    sqlite_ml.register(conn)
    started = time.perf_counter()
    (text,) = conn.execute(
        "SELECT sqml_train(?, 'classification', 'hist_gradient_boosting', 'data', 'label',"
        " 0.25, 'shuffle', ?)",
        (arguments["experiment"], arguments["options"]),
    ).fetchone()
    fit = time.perf_counter() - started
    row = json.dumps(dict.fromkeys(FEATURES, 0.1))
    sql = "SELECT sqml_predict(?, ?)"
    conn.execute(sql, (arguments["experiment"], row)).fetchone()  # loads and caches the model
    times = []
    for _ in range(arguments["predictions"]):
        started = time.perf_counter()
        conn.execute(sql, (arguments["experiment"], row)).fetchone()
        times.append(time.perf_counter() - started)
    result = json.loads(text)
    print(
        json.dumps(
            {
                "fit_s": fit,
                "threads": result.get("threads"),
                "predict_ms": statistics.median(times) * 1000,
                "predict_p90_ms": sorted(times)[int(len(times) * 0.9)] * 1000,
            }
        )
    )


def burn() -> None:
    while True:
        pass


def measure(db: Path, name: str, env: dict[str, str], load: int, sizes: dict[str, Any]) -> dict:
    """Run one worker with ``env`` while ``load`` processes keep the CPUs busy."""
    clean = {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "SQLITE_ML_THREADS")
    }
    burners = [
        subprocess.Popen([sys.executable, __file__, "--burn"], env=clean) for _ in range(load)
    ]
    try:
        arguments = {"db": str(db), "experiment": name, **sizes}
        done = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(arguments)],
            env={**clean, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=3600,
        )
    finally:
        for process in burners:
            process.kill()
            process.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float], unit: str, digits: int) -> str:
    middle = statistics.median(values)
    text = f"{middle:.{digits}f} {unit}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f}–{max(values):.{digits}f})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1, help="busy processes")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--burn", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.burn:
        burn()
    if options.worker:
        worker(json.loads(options.worker))
        return
    rows = 2_000 if options.quick else 50_000
    predictions = 200 if options.quick else 1_000
    hyperparams = {"max_iter": 20} if options.quick else {}
    sizes = {"predictions": predictions, "options": json.dumps({"hyperparams": hyperparams})}
    rounds = options.rounds or (2 if options.quick else 3)
    results: dict[str, list[dict]] = {name: [] for name in settings()}
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "threads.db"
        make_data(db, rows)
        for round_number in range(rounds):
            for index, (name, env) in enumerate(settings().items()):
                experiment = f"hgb {round_number} {index}"
                results[name].append(measure(db, experiment, env, options.load, sizes))
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs;"
        f" Python {platform.python_version()}. {options.load} busy process(es) ran beside each"
        f" measurement. Load average {load_before[0]:.2f} before the run. {rounds} round(s),"
        f" {time.perf_counter() - started:.0f} s in all; {rows:,} rows x {len(FEATURES)}"
        f" features; hyperparameters {json.dumps(hyperparams)}; {predictions} single-row"
        " predictions per round, one call at a time, after the fit in the same process.\n"
    )
    print(
        "| threads | sqml_train, hist gradient boosting | single-row `sqml_predict`, median"
        " | the same, 90th percentile | threads fitting |"
    )
    print("|---|---|---|---|---|")
    for name, measured in results.items():
        print(
            f"| {name} | {spread([m['fit_s'] for m in measured], 's', 2)}"
            f" | {spread([m['predict_ms'] for m in measured], 'ms', 2)}"
            f" | {spread([m['predict_p90_ms'] for m in measured], 'ms', 2)}"
            f" | {measured[0]['threads']} |"
        )


if __name__ == "__main__":
    main()
