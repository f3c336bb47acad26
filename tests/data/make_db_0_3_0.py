"""Write ``tests/data/sqlite-ml-0.3.0.db`` and its expected answers, with sqlite-ml 0.3.0.

This was run once with sqlite-ml 0.3.0 (the last flat-layout release), before the
modules moved into subpackages, so that later versions are tested against a database
that an older version really wrote: its skops blobs name the dotted paths of 0.3.0
(``sqlite_ml.preprocessing.ColumnImputer``, ``sqlite_ml.estimators.XGBoostClassifier``,
...), its schema is version 2, and ``sqlite-ml-0.3.0.json`` holds what 0.3.0 predicted.
Running it again with a later version would not test anything: keep the files as they are.

    .venv/bin/python tests/data/make_db_0_3_0.py
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import sqlite_ml

HERE = Path(__file__).resolve().parent
DB = HERE / "sqlite-ml-0.3.0.db"
ANSWERS = HERE / "sqlite-ml-0.3.0.json"
CUSTOMERS = HERE.parent.parent / "src" / "sqlite_ml" / "data" / "customers.sql"

IRIS = '"sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"'
CHURN = "tenure_months, monthly_fee, plan, country, support_tickets, satisfaction"
DIABETES = "age, sex, bmi, bp, s1, s2, s3, s4, s5, s6"

# (experiment, prediction type, algorithm, dataset, target, split, options)
RUNS = [
    ("iris", "classification", "logistic_regression", "dataset_iris", "target", "shuffle", None),
    (
        "iris",
        "classification",
        "random_forest",
        "dataset_iris",
        "target",
        "stratified",
        {"hyperparams": {"n_estimators": 5, "max_depth": 3}},
    ),
    (
        "iris",
        "classification",
        "svc",
        "dataset_iris",
        "target",
        "shuffle",
        {
            "search": "grid",
            "search_params": {"C": [0.5, 5], "probability": [True]},
            "search_args": {"cv": 3},
        },
    ),
    ("diabetes", "regression", "ridge", "dataset_diabetes", "target", "shuffle", None),
    (
        "diabetes",
        "regression",
        "gradient_boosting",
        "dataset_diabetes",
        "target",
        "shuffle",
        {"hyperparams": {"n_estimators": 10, "max_depth": 2}, "metric": "mae"},
    ),
    (
        "churn",
        "classification",
        "logistic_regression",
        "customers",
        "churned",
        "shuffle",
        {
            "preprocess": {
                "plan": {"encode": "ordinal"},
                "monthly_fee": {"impute": "median", "scale": "robust"},
            }
        },
    ),
    (
        "churn xgb",
        "classification",
        "xgboost",
        "customers",
        "churned",
        "shuffle",
        {"hyperparams": {"n_estimators": 10, "max_depth": 3}},
    ),
    (
        "churn lgbm",
        "classification",
        "lightgbm",
        "customers",
        "churned",
        "shuffle",
        {"hyperparams": {"n_estimators": 10}, "preprocess": {"country": {"encode": "target"}}},
    ),
    (
        "diabetes hgb",
        "regression",
        "hist_gradient_boosting",
        "dataset_diabetes",
        "target",
        "shuffle",
        {"hyperparams": {"max_iter": 10}},
    ),
    (
        "iris groups",
        "clustering",
        "kmeans",
        "iris_measurements",
        None,
        "shuffle",
        {"hyperparams": {"n_clusters": 3}},
    ),
]


def main() -> None:
    if DB.exists():
        DB.unlink()
    conn = sqlite3.connect(DB)
    sqlite_ml.register(conn)
    assert sqlite_ml.__version__ == "0.3.0", sqlite_ml.__version__
    for name in ("iris", "diabetes"):
        conn.execute("SELECT sqml_load_dataset(?)", (name,))
    conn.executescript(CUSTOMERS.read_text(encoding="utf-8"))
    # The SQL is built from the fixed column names above only.
    conn.execute(f"CREATE VIEW iris_measurements AS SELECT {IRIS} FROM dataset_iris")  # noqa: S608
    for experiment, kind, algorithm, dataset, target, split, options in RUNS:
        conn.execute(
            "SELECT sqml_train(?, ?, ?, ?, ?, 0.25, ?, ?)",
            (
                experiment,
                kind,
                algorithm,
                dataset,
                target,
                split,
                None if options is None else json.dumps(options),
            ),
        )
    conn.execute("SELECT sqml_deploy('iris', 'most_recent')")
    conn.execute("SELECT sqml_deploy('iris', 'rollback')")
    conn.commit()
    answers: dict[str, object] = {"experiments": {}}
    queries = {
        "iris": ("dataset_iris", IRIS),
        "diabetes": ("dataset_diabetes", DIABETES),
        "churn": ("customers", CHURN),
        "churn xgb": ("customers", CHURN),
        "churn lgbm": ("customers", CHURN),
        "diabetes hgb": ("dataset_diabetes", DIABETES),
        "iris groups": ("dataset_iris", IRIS),
    }
    for experiment, (table, columns) in queries.items():
        rows = conn.execute(
            f"SELECT rowid, sqml_predict(?, {columns}) FROM {table} ORDER BY rowid",  # noqa: S608
            (experiment,),
        ).fetchall()
        model_id = conn.execute(
            "SELECT d.model_id FROM sqml_deployments d JOIN sqml_experiments e"
            " ON e.id = d.experiment_id WHERE e.name = ? AND d.active",
            (experiment,),
        ).fetchone()[0]
        entry: dict[str, object] = {
            "table": table,
            "columns": columns,
            "model_id": model_id,
            "predictions": [[rowid, value] for rowid, value in rows],
        }
        if experiment in ("iris", "churn", "churn xgb", "churn lgbm"):
            first = conn.execute(
                f"SELECT json_array({columns}) FROM {table} ORDER BY rowid LIMIT 3"  # noqa: S608
            ).fetchall()
            entry["probabilities"] = [
                [
                    features,
                    conn.execute(
                        "SELECT sqml_predict_proba(?, ?)", (experiment, features)
                    ).fetchone()[0],
                ]
                for (features,) in first
            ]
        answers["experiments"][experiment] = entry  # type: ignore[index]
    answers["feature_importance"] = conn.execute(
        "SELECT sqml_feature_importance('churn')"
    ).fetchone()[0]
    answers["evaluate"] = conn.execute(
        "SELECT sqml_evaluate('diabetes', 'dataset_diabetes')"
    ).fetchone()[0]
    answers["leaderboard"] = conn.execute(
        "SELECT experiment, model_id, metric, score, rank FROM sqml_leaderboard"
    ).fetchall()
    conn.close()
    ANSWERS.write_text(json.dumps(answers) + "\n", encoding="utf-8")
    print(f"wrote {DB} ({DB.stat().st_size} bytes) and {ANSWERS}")


if __name__ == "__main__":
    main()
