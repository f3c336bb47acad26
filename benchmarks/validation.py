"""What checking a stored model costs when it is loaded, per model family (not a test).

For each family a model is trained through SQL on a synthetic table, then its stored blob
is loaded the way the model cache loads it, and these parts are timed (best of N):

* ``archive``: reading the zip within bounds and parsing schema.json (with its depth
  check) and walking it for the allow-list and the boosters;
* ``booster``: parsing and checking an XGBoost or LightGBM booster (ml/boosters.py);
* ``checks``: the structural checks of the built model (ml/validation.py; for k-nearest
  neighbours this is the refit that rebuilds the search index);
* ``load``: all of ``persistence.load_model`` (the three above, the digest and skops).

Run: ``.venv/bin/python benchmarks/validation.py`` (``--quick``: smaller models, fewer
repeats, seconds). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import sqlite_ml  # noqa: E402
from sqlite_ml.ml import persistence, validation  # noqa: E402

FAMILIES = [
    ("decision tree", "decision_tree", {}),
    ("random forest", "random_forest", {"n_estimators": 100}),
    ("gradient boosting", "gradient_boosting", {"n_estimators": 100}),
    ("hist gradient boosting", "hist_gradient_boosting", {"max_iter": 100}),
    ("k-nearest neighbours", "knn", {}),
    ("SVC", "svc", {}),
    ("MLP", "mlp", {"max_iter": 50}),
    ("logistic regression", "logistic_regression", {}),
    ("XGBoost", "xgboost", {"n_estimators": 100}),
    ("LightGBM", "lightgbm", {"n_estimators": 100}),
]


def best_us(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times) * 1e6


def table(rows: int, columns: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    sqlite_ml.register(conn)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    names = [f"c{i}" for i in range(columns)]
    conn.execute(f"CREATE TABLE data ({', '.join(f'{n} REAL' for n in names)}, y INTEGER)")
    marks = ", ".join("?" for _ in range(columns + 1))
    conn.executemany(
        f"INSERT INTO data VALUES ({marks})",  # noqa: S608 - fixed names
        [[*row, int(label)] for row, label in zip(x.tolist(), y, strict=True)],
    )
    return conn


def measure(conn: sqlite3.Connection, algorithm: str, hyperparams: dict, repeat: int) -> dict:
    options = json.dumps({"hyperparams": hyperparams, "random_state": 1, "importance": False})
    (text,) = conn.execute(
        "SELECT sqml_train(?, 'classification', ?, 'data', 'y', 0.25, 'shuffle', ?)",
        (algorithm, algorithm, options),
    ).fetchone()
    model_id = json.loads(text)["model_id"]
    blob = bytes(
        conn.execute("SELECT data FROM sqml_models WHERE id = ?", (model_id,)).fetchone()[0]
    )
    loaded = persistence.load_model(blob, model_id)
    archive = persistence.read_archive(blob)
    facts = persistence.schema_facts(archive.schema)
    result = {
        "blob": len(blob),
        "archive": best_us(
            lambda: persistence.schema_facts(persistence.read_archive(blob).schema), repeat
        ),
        "booster": 0.0,
        "checks": best_us(
            lambda: validation.check_model(loaded.estimator, loaded.ensemble), repeat
        ),
        "load": best_us(lambda: persistence.load_model(blob, model_id), repeat),
    }
    if facts.boosters:
        node = facts.boosters[0]
        result["booster"] = best_us(
            lambda: persistence._checked_booster(node, archive, facts), repeat
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models, 3 repeats")
    args = parser.parse_args()
    rows, columns, repeat = (400, 10, 3) if args.quick else (5000, 20, 10)
    conn = table(rows, columns)
    print(f"Model load cost per family ({rows} rows x {columns} columns, best of {repeat})\n")
    print(
        "| family | blob | archive (µs) | booster (µs) | checks (µs) | load (µs) "
        "| checks+booster share |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, algorithm, hyperparams in FAMILIES:
        small = {
            k: min(v, 10) if args.quick and isinstance(v, int) else v
            for k, v in hyperparams.items()
        }
        m = measure(conn, algorithm, small, repeat)
        share = (m["checks"] + m["booster"]) / m["load"]
        print(
            f"| {name} | {m['blob'] / 1024:.0f} KiB | {m['archive']:.0f} | {m['booster']:.0f} | "
            f"{m['checks']:.0f} | {m['load']:.0f} | {share:.0%} |"
        )


if __name__ == "__main__":
    main()
