"""End-to-end demo: ``python -m sqlite_ml.demo PATH``.

Creates a fresh SQLite database at PATH and does the whole job through SQL only: loads
scikit-learn's bundled datasets, imports the messy ``customers`` example table, trains
several models per experiment (the best one of each is deployed automatically), prints a
leaderboard of runs and sample predictions, and shows what a misuse looks like.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import sqlite_ml

USAGE = "usage: python -m sqlite_ml.demo PATH   (PATH: a new SQLite database file)"

# experiment, prediction type, dataset (table), target column, algorithms to train
PLAN: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    (
        "iris",
        "classification",
        "dataset_iris",
        "target",
        ("dummy", "logistic_regression", "svc", "random_forest"),
    ),
    (
        "diabetes",
        "regression",
        "dataset_diabetes",
        "target",
        ("linear_regression", "ridge", "random_forest"),
    ),
    (
        "breast_cancer",
        "classification",
        "dataset_breast_cancer",
        "target",
        ("dummy", "logistic_regression", "knn"),
    ),
    (
        "churn",
        "classification",
        "customers",
        "churned",
        ("dummy", "logistic_regression", "random_forest", "gradient_boosting"),
    ),
]

# --- output -------------------------------------------------------------------------------


def _cell(value: object, digits: int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value) if digits is None else f"{value:.{digits}f}"
    if isinstance(value, bytes):
        return f"<BLOB {len(value)} bytes>"
    if value == "":
        return "''"
    return str(value)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], digits: int | None = 4
) -> str:
    """Rows as an aligned plain-text table: numbers right-aligned, everything else left.

    Floats get ``digits`` decimals, or their shortest exact form when ``digits`` is None."""
    cells = [[_cell(value, digits) for value in row] for row in rows]
    numeric = [
        all(
            isinstance(row[i], (int, float)) and not isinstance(row[i], bool)
            for row in rows
            if row[i] is not None
        )
        and any(row[i] is not None for row in rows)
        for i in range(len(headers))
    ]
    widths = [
        max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)
    ]

    def line(values: Sequence[str], align_numbers: bool = True) -> str:
        parts = [
            value.rjust(width) if numeric[i] and align_numbers else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return ("  " + "  ".join(parts)).rstrip()

    out = [line(headers, align_numbers=False), line(["-" * width for width in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def section(title: str) -> None:
    print()
    print(title)
    print("=" * len(title))


def sql(statement: str) -> None:
    """Show the SQL a step runs, indented, so the demo doubles as a cheat sheet."""
    for text in statement.strip().splitlines():
        print("  sql> " + text)


# --- the job ------------------------------------------------------------------------------


def customers_sql() -> str:
    """The bundled example table, packaged with sqlite-ml (sqlite_ml/data/customers.sql)."""
    packaged = resources.files("sqlite_ml").joinpath("data").joinpath("customers.sql")
    return packaged.read_text(encoding="utf-8")


def sql_error_text(conn: sqlite3.Connection, error: sqlite3.Error) -> str:
    """The message a failed sqml call gave (kept aside in 'stdlib' binding mode)."""
    if sqlite_ml.binding_mode(conn) == "stdlib":
        return sqlite_ml.last_error(conn) or str(error)
    return str(error)


def load_datasets(conn: sqlite3.Connection) -> dict[str, dict[str, object]]:
    section("1. Bundled datasets: sqml_load_dataset")
    sql("SELECT sqml_load_dataset('iris');  -- likewise 'diabetes', 'breast_cancer'")
    loaded: dict[str, dict[str, object]] = {}
    rows = []
    for name in ("iris", "diabetes", "breast_cancer"):
        (text,) = conn.execute("SELECT sqml_load_dataset(?)", (name,)).fetchone()
        info = json.loads(text)
        loaded[name] = info
        classes = len(info["target_names"]) or "-"
        rows.append((info["table"], info["size"], len(info["feature_names"]), classes))
    print()
    print(format_table(["table", "rows", "features", "classes"], rows))
    return loaded


def import_customers(conn: sqlite3.Connection) -> None:
    section("2. A messy table of your own: customers")
    print("  Imported from the bundled customers.sql (conn.executescript). Like a CSV import,")
    print("  it has NULLs, TEXT categories, a count stored as TEXT with blanks ('') and a")
    print("  TEXT label 'yes'/'no' that is NULL for customers whose outcome is not known yet.")
    conn.executescript(customers_sql())
    print()
    sample = conn.execute("SELECT * FROM customers WHERE rowid IN (1, 2, 3, 7, 12, 400)")
    headers = [description[0] for description in sample.description]
    print(format_table(headers, sample.fetchall(), digits=2))
    (
        total,
        no_tenure,
        no_fee,
        no_plan,
        blank_tickets,
        no_satisfaction,
        no_label,
    ) = conn.execute(
        "SELECT count(*), sum(tenure_months IS NULL), sum(monthly_fee IS NULL),"
        " sum(plan IS NULL), sum(support_tickets = ''), sum(satisfaction IS NULL),"
        " sum(churned IS NULL) FROM customers"
    ).fetchone()
    print()
    print(
        f"  {total} rows. NULL: tenure_months {no_tenure}, monthly_fee {no_fee}, plan {no_plan},"
        f" satisfaction {no_satisfaction}.\n  Blank support_tickets: {blank_tickets}."
        f" NULL churned: {no_label} (sqml_train leaves those rows out)."
    )


def train_models(conn: sqlite3.Connection) -> None:
    section("3. Training: sqml_train (the first model, then any better one, is deployed)")
    sql(
        "SELECT sqml_train('iris', 'classification', 'logistic_regression',"
        " 'dataset_iris', 'target');"
    )
    print()
    rows = []
    for experiment, prediction_type, dataset, target, algorithms in PLAN:
        for algorithm in algorithms:
            (text,) = conn.execute(
                "SELECT sqml_train(?, ?, ?, ?, ?)",
                (experiment, prediction_type, algorithm, dataset, target),
            ).fetchone()
            result = json.loads(text)
            metric = "accuracy" if prediction_type == "classification" else "r2"
            rows.append(
                (
                    result["experiment_name"],
                    result["algorithm"],
                    dataset,
                    f"{metric} {result['score']:.4f}",
                    "deployed" if result["deployed"] else "-",
                    result["fit_time"],
                )
            )
    print(format_table(["experiment", "algorithm", "dataset", "score", "", "fit s"], rows, 3))


def leaderboard(conn: sqlite3.Connection) -> None:
    section("4. Leaderboard: sqml_runs_overview (* = deployed model)")
    query = (
        "SELECT experiment, algorithm, score, deployed, run_id, status\n"
        "FROM sqml_runs_overview ORDER BY experiment, score DESC, run_id"
    )
    sql(query)
    print()
    rows = [
        ("*" if deployed else " ", experiment, algorithm, score, run_id, status)
        for experiment, algorithm, score, deployed, run_id, status in conn.execute(query)
    ]
    print(format_table(["", "experiment", "algorithm", "score", "run", "status"], rows))


def predictions(conn: sqlite3.Connection, loaded: dict[str, dict[str, object]]) -> None:
    section("5. Predictions: sqml_predict and sqml_predict_batch")
    species = [str(name) for name in loaded["iris"]["target_names"]]  # type: ignore[attr-defined]

    print()
    print("  Iris, one row at a time (features as a JSON object keyed by column name):")
    query = """
SELECT rowid, target, sqml_predict('iris', json_object(
         'sepal length (cm)', "sepal length (cm)", 'sepal width (cm)', "sepal width (cm)",
         'petal length (cm)', "petal length (cm)", 'petal width (cm)', "petal width (cm)"
       )) AS predicted
FROM dataset_iris WHERE rowid IN (1, 26, 51, 76, 101, 126)"""
    sql(query)
    print()
    rows = [
        (rowid, species[int(actual)], species[int(predicted)], predicted)
        for rowid, actual, predicted in conn.execute(query)
    ]
    print(format_table(["rowid", "actual", "predicted", "sqml_predict"], rows, 1))

    print()
    print("  Diabetes, five rows in one call (a JSON array built with json_group_array):")
    query = """
SELECT sqml_predict_batch('diabetes', json_group_array(json_object(
         'age', age, 'sex', sex, 'bmi', bmi, 'bp', bp, 's1', s1, 's2', s2,
         's3', s3, 's4', s4, 's5', s5, 's6', s6
       ))),
       json_group_array(target)
FROM (SELECT * FROM dataset_diabetes ORDER BY rowid LIMIT 5)"""
    sql(query)
    print()
    predicted_text, actual_text = conn.execute(query).fetchone()
    predicted, actual = json.loads(predicted_text), json.loads(actual_text)
    rows = [(i + 1, a, p, p - a) for i, (a, p) in enumerate(zip(actual, predicted, strict=True))]
    print(format_table(["rowid", "actual", "predicted", "error"], rows, 1))

    print()
    print("  Churn for the customers whose outcome is not known yet (TEXT labels come back):")
    query = """
SELECT sqml_predict_batch('churn', json_group_array(json_object(
         'tenure_months', tenure_months, 'monthly_fee', monthly_fee, 'plan', plan,
         'country', country, 'support_tickets', support_tickets, 'satisfaction', satisfaction
       )))
FROM customers WHERE churned IS NULL"""
    sql(query)
    print()
    (predicted_text,) = conn.execute(query).fetchone()
    labels = json.loads(predicted_text)
    customers = conn.execute(
        "SELECT rowid, tenure_months, monthly_fee, plan, country, support_tickets, satisfaction"
        " FROM customers WHERE churned IS NULL"
    ).fetchall()
    rows = [(*customer, label) for customer, label in zip(customers, labels, strict=True)]
    headers = ["rowid", "tenure", "fee", "plan", "country", "tickets", "satisfaction", "churn?"]
    print(format_table(headers, rows, 2))

    print()
    print("  A hand-written customer: unseen country, missing fee, tickets as text:")
    query = """
SELECT sqml_predict('churn', json_object(
         'tenure_months', 2, 'monthly_fee', NULL, 'plan', 'basic', 'country', 'Portugal',
         'support_tickets', '4', 'satisfaction', 2
       )) AS churn"""
    sql(query)
    (label,) = conn.execute(query).fetchone()
    print(f"  -> {label!r} ({type(label).__name__}, the label as it was stored)")


def errors(conn: sqlite3.Connection) -> None:
    section("6. Mistakes are SQL errors that say what is wrong")
    for query in (
        "SELECT sqml_predict('iris', json_object('sepal length (cm)', 5.1))",
        "SELECT sqml_train('iris', 'regression', 'ridge', 'dataset_iris', 'target')",
    ):
        sql(query)
        try:
            conn.execute(query).fetchone()
        except sqlite3.Error as error:
            print(f"  -> {type(error).__name__}: {sql_error_text(conn, error)}")
        else:
            print("  -> (no error?)")


def run(path: Path) -> None:
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    try:
        sqlite_ml.register(conn)
        version, sklearn_version, sqlite_version = conn.execute(
            "SELECT sqml_version(), sqml_sklearn_version(), sqlite_version()"
        ).fetchone()
        print(
            f"sqlite-ml {version} demo: scikit-learn {sklearn_version}, SQLite {sqlite_version},"
            f" binding '{sqlite_ml.binding_mode(conn)}'"
        )
        print(f"Database: {path}")
        loaded = load_datasets(conn)
        import_customers(conn)
        train_models(conn)
        leaderboard(conn)
        predictions(conn, loaded)
        errors(conn)
        conn.commit()
    finally:
        conn.close()
    print()
    print(f"Done in {time.perf_counter() - started:.1f} s. Everything above is stored in {path},")
    print("e.g. sqlite3", path, "'SELECT * FROM sqml_runs_overview'")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    path = Path(args[0])
    if path.exists():
        print(
            f"{path} already exists; the demo writes a fresh database: remove it or pick "
            "another path",
            file=sys.stderr,
        )
        return 2
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # non-ASCII names on a non-UTF-8 terminal
    run(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
