"""One benchmark measurement in its own process: ``worker.py IMPL TASK DB [N]``.

Runs under either virtual environment: IMPL ``ours`` imports this checkout's sqlite_ml,
``ref`` sqlite-ml 0.1.2 (whose API is ``sqlite_ml.sqml.SQML``), ``floor`` neither. Prints
one JSON object: the seconds the timed part took, the rows it handled and the process's
peak RSS in MiB. Kept free of imports from the bench driver so both venvs can run it.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import sys
import time

FEATURES = [f"f{i}" for i in range(20)]
COLUMNS = ", ".join(FEATURES)
AS_OBJECT = "json_object(" + ", ".join(f"'{name}', {name}" for name in FEATURES) + ")"
AS_ARRAY = f"json_array({COLUMNS})"


def connect(impl: str, path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    if impl == "ours":
        import sqlite_ml

        sqlite_ml.register(conn)
    elif impl == "ref":
        from sqlite_ml.sqml import SQML

        sqml = SQML()
        sqml.setup_schema(conn)
        sqml.register_functions(conn)
    return conn


def rows_sql(n: int) -> str:
    return f"(SELECT * FROM predict_rows WHERE rowid <= {int(n)})"


def timed(conn: sqlite3.Connection, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql).fetchall()
    return time.perf_counter() - started


def setup(conn: sqlite3.Connection, impl: str) -> float:
    """Train the models the prediction tasks use (skipped when already there)."""
    started = time.perf_counter()
    existing = {row[0] for row in conn.execute("SELECT name FROM sqml_experiments")}
    for name, algorithm in (("lr", "logistic_regression"), ("rf", "random_forest")):
        if name not in existing:
            result = conn.execute(
                "SELECT sqml_train(?, 'classification', ?, ?, 'label')",
                (name, algorithm, f"fit_{name}"),
            ).fetchone()[0]
            if "error" in json.loads(result):
                raise SystemExit(f"{impl}: training {name} failed: {result}")
    conn.commit()
    return time.perf_counter() - started


def run(impl: str, task: str, path: str, n: int) -> dict[str, float]:
    conn = connect(impl, path)
    if task == "setup":
        return {"seconds": setup(conn, impl), "rows": 0}
    if task == "train_lr":
        started = time.perf_counter()
        text = conn.execute(
            "SELECT sqml_train('big', 'classification', 'logistic_regression', 'train_data',"
            " 'label')"
        ).fetchone()[0]
        seconds = time.perf_counter() - started
        if "error" in json.loads(text):
            raise SystemExit(f"{impl}: {text}")
        return {
            "seconds": seconds,
            "rows": conn.execute("SELECT count(*) FROM train_data").fetchone()[0],
        }
    sql = {
        "predict_json_lr": f"SELECT count(sqml_predict('lr', {AS_OBJECT})) FROM {rows_sql(n)}",
        "predict_json_rf": f"SELECT count(sqml_predict('rf', {AS_OBJECT})) FROM {rows_sql(n)}",
        "predict_array_lr": f"SELECT count(sqml_predict('lr', {AS_ARRAY})) FROM {rows_sql(n)}",
        "predict_positional_lr": f"SELECT count(sqml_predict('lr', {COLUMNS})) FROM {rows_sql(n)}",
        "predict_positional_rf": f"SELECT count(sqml_predict('rf', {COLUMNS})) FROM {rows_sql(n)}",
        "batch_lr": f"SELECT length(sqml_predict_batch('lr', json_group_array({AS_OBJECT})))"
        f" FROM {rows_sql(n)}",
        "batch_array_lr": f"SELECT length(sqml_predict_batch('lr', json_group_array({AS_ARRAY})))"
        f" FROM {rows_sql(n)}",
        "noop20": f"SELECT count(noop20({COLUMNS})) FROM {rows_sql(n)}",
        "noop_json": f"SELECT count(noop({AS_OBJECT})) FROM {rows_sql(n)}",
        "noop_batch": f"SELECT noop(json_group_array({AS_OBJECT})) FROM {rows_sql(n)}",
        "bare_scan": "SELECT "
        + ", ".join(f"max({c})" for c in [*FEATURES, "label"])
        + " FROM train_data",
    }.get(task)
    if task in ("noop20", "noop_json", "noop_batch"):
        conn.create_function("noop", 1, lambda value: None)
        conn.create_function("noop20", 20, lambda *values: None)
    if sql is not None:
        if task.startswith(("predict", "batch")):
            conn.execute(sql.replace(f"<= {int(n)})", "<= 2)")).fetchall()  # load the model
        seconds = timed(conn, sql)
        rows = (
            n
            if task != "bare_scan"
            else conn.execute("SELECT count(*) FROM train_data").fetchone()[0]
        )
        return {"seconds": seconds, "rows": rows}
    if task in ("table_lr", "table_rf"):
        source = "train_data" if task == "table_lr" else rows_sql(n)[1:-1]
        sql = f"SELECT count(prediction) FROM sqml_predict_table('{task[-2:]}', '{source}')"
        conn.execute(sql.replace(source, "SELECT * FROM predict_rows LIMIT 2")).fetchall()
        started = time.perf_counter()
        (count,) = conn.execute(sql).fetchone()
        return {"seconds": time.perf_counter() - started, "rows": count}
    if task == "model_predict_scan_rf":
        return model_predict_and_scan(conn, "rf", n)
    if task == "native_read":
        import numpy as np

        from sqlite_ml import native

        count = conn.execute("SELECT count(*) FROM train_data").fetchone()[0]
        started = time.perf_counter()
        reader = native.reader(conn, f"SELECT {COLUMNS}, label FROM train_data")
        block = np.empty((count, 21), dtype=np.float64)
        filled, _ = reader.fill(block)
        reader.close()
        return {"seconds": time.perf_counter() - started, "rows": filled}
    if task in ("noop1_stdlib", "noop1_native", "noop20_stdlib", "noop20_native"):
        return noop_calls(conn, task, n)
    if task == "callable_json_lr" or task == "callable_positional_lr":
        return callable_alone(conn, task, n)
    if task == "fromiter":
        import numpy as np

        count = conn.execute("SELECT count(*) FROM train_data").fetchone()[0]
        started = time.perf_counter()
        cursor = conn.execute(f"SELECT {COLUMNS}, label FROM train_data")
        np.fromiter(cursor, dtype=np.dtype((np.float64, 21)), count=count)
        return {"seconds": time.perf_counter() - started, "rows": count}
    if task in ("sklearn_row_lr", "sklearn_row_rf"):
        return sklearn_one_row(conn, task[-2:], n)
    raise SystemExit(f"unknown task {task!r}")


def callable_alone(conn: sqlite3.Connection, task: str, n: int) -> dict[str, float]:
    """Our Python callable without any binding: called n times from inside one statement
    (where a prediction normally runs), with the values SQLite would pass."""
    import sqlite_ml

    session = sqlite_ml._sessions.get(id(conn))
    predict = session.calls["sqml_predict"]
    if task == "callable_json_lr":
        args = [("lr", row[0]) for row in conn.execute(f"SELECT {AS_OBJECT} FROM {rows_sql(n)}")]
    else:
        args = [("lr", *row) for row in conn.execute(f"SELECT {COLUMNS} FROM {rows_sql(n)}")]
    spent: list[float] = []

    def loop() -> None:
        predict(*args[0])
        started = time.perf_counter()
        for arguments in args:
            predict(*arguments)
        spent.append(time.perf_counter() - started)

    conn.create_function("loop", 0, loop)
    conn.execute("SELECT loop() FROM predict_rows LIMIT 1").fetchall()
    return {"seconds": spent[0], "rows": len(args)}


def noop_calls(conn: sqlite3.Connection, task: str, n: int) -> dict[str, float]:
    """A no-op Python function taking 1 or 20 REAL columns, registered with the stdlib's
    create_function or with our native binding's C callback (the per-call overhead)."""
    from sqlite_ml.sqlite import binders as binding

    width = 1 if task.startswith("noop1_") else 20

    def noop(*values: object) -> None:
        return None

    if task.endswith("_native"):
        binder = binding.native_binder()
        assert binder is not None, "the native binding is not in use"
        binder.native.create_function(
            binder.api.handle(conn), "bench_noop", width, 0, noop, lambda error: str(error)
        )
    else:
        conn.create_function("bench_noop", width, noop)
    sql = f"SELECT count(bench_noop({', '.join(FEATURES[:width])})) FROM {rows_sql(n)}"
    conn.execute(sql.replace(f"<= {int(n)})", "<= 2)")).fetchall()
    return {"seconds": timed(conn, sql), "rows": n}


def model_predict_and_scan(conn: sqlite3.Connection, name: str, n: int) -> dict[str, float]:
    """The floor of a bulk prediction: SQLite scanning the rows (max of every column)
    plus the deployed model's own vectorized predict on the same rows as a matrix."""
    import numpy as np

    import sqlite_ml
    from sqlite_ml.sqlite.rows import plain_rows

    session = sqlite_ml._sessions.get(id(conn))
    with plain_rows(conn):
        model = session.deployed.model_for(conn, name)
    scan = "SELECT " + ", ".join(f"max({c})" for c in FEATURES) + f" FROM {rows_sql(n)}"
    matrix = np.array(conn.execute(f"SELECT {COLUMNS} FROM {rows_sql(n)}").fetchall())
    model.estimator.predict(matrix[:2])
    started = time.perf_counter()
    conn.execute(scan).fetchall()
    model.estimator.predict(matrix)
    return {"seconds": time.perf_counter() - started, "rows": len(matrix)}


def sklearn_one_row(conn: sqlite3.Connection, name: str, n: int) -> dict[str, float]:
    """scikit-learn 1.x's own predict on one row at a time, with the same pipeline as ours."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    data = np.array(conn.execute(f"SELECT {COLUMNS}, label FROM fit_{name}").fetchall())
    model = LogisticRegression() if name == "lr" else RandomForestClassifier(random_state=0)
    pipeline = Pipeline(
        [("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", model)]
    )
    pipeline.fit(data[:, :-1], data[:, -1])
    rows = np.array(conn.execute(f"SELECT {COLUMNS} FROM {rows_sql(n)}").fetchall())
    pipeline.predict(rows[:1])
    started = time.perf_counter()
    for i in range(len(rows)):
        pipeline.predict(rows[i : i + 1])
    return {"seconds": time.perf_counter() - started, "rows": len(rows)}


def main() -> None:
    impl, task, path = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    result = run(impl, task, path, n)
    if impl == "ours":  # the binding this process's connections use: sqml_binding_mode()
        mode = connect(impl, path).execute("SELECT sqml_binding_mode()").fetchone()[0]
        result["mode"] = mode
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result["peak_rss_mib"] = peak
    result["pid"] = os.getpid()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
