"""End-to-end demo: ``sqml demo PATH`` (or ``python -m sqlite_ml.faces.demo PATH``).

Creates a fresh SQLite database at PATH and does the whole job through SQL only: loads
scikit-learn's bundled datasets, imports the messy ``customers`` example table, trains
several models per experiment (the best one of each is deployed automatically), trains
with options (hyperparameters, a stratified split, a grid search), shows the leaderboard
view, deploys by hand (rollback, best score), predicts in every form (JSON object,
positional, batch, the ``sqml_predict_table`` table-valued function), gives class
probabilities, evaluates a model with its confusion matrix, reads feature importances,
names a run's test rows, draws a ROC curve, explains a prediction, checks drift, gates a
deployment, clusters with k-means, and shows what a misuse looks like.
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

from .text_tables import format_table, sql_error_text

USAGE = "usage: python -m sqlite_ml.faces.demo PATH   (PATH: a new SQLite database file)"

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


def show(conn: sqlite3.Connection, query: str, digits: int | None = 4) -> None:
    """Print the SQL, run it, and print its rows as a table under its column names."""
    sql(query)
    cursor = conn.execute(query)
    headers = [description[0] for description in cursor.description]
    print()
    print(format_table(headers, cursor.fetchall(), digits))


def training_options(conn: sqlite3.Connection) -> None:
    section("4. Training options: hyperparameters, a stratified split, a grid search")
    print("  The optional 6th to 8th arguments: test_size, split_strategy and an options object.")
    runs = [
        (
            "churn",
            "random_forest",
            "customers",
            "churned",
            '{"hyperparams": {"n_estimators": 50, "max_depth": 5}}',
        ),
        (
            "iris",
            "svc",
            "dataset_iris",
            "target",
            '{"search": "grid", "search_params": {"C": [0.1, 1, 10], "probability": [true]},'
            ' "search_args": {"cv": 3}}',
        ),
    ]
    rows = []
    for experiment, algorithm, dataset, target, options in runs:
        print()
        sql(
            f"SELECT sqml_train('{experiment}', 'classification', '{algorithm}', '{dataset}',"
            f" '{target}',\n                  0.25, 'stratified', '{options}');"
        )
        (text,) = conn.execute(
            "SELECT sqml_train(?, 'classification', ?, ?, ?, 0.25, 'stratified', ?)",
            (experiment, algorithm, dataset, target, options),
        ).fetchone()
        result = json.loads(text)
        rows.append(
            (
                experiment,
                algorithm,
                result["run_id"],
                f"accuracy {result['score']:.4f}",
                "deployed" if result["deployed"] else "-",
                json.dumps(
                    result["best_params"]
                    if "best_params" in result
                    else json.loads(options)["hyperparams"]
                ),
            )
        )
    print()
    print(format_table(["experiment", "algorithm", "run", "score", "", "parameters"], rows))
    print()
    print("  Every candidate of the search, scored by 3-fold cross-validation on the training")
    print("  split (the best is refitted on the whole training split, scored on the test split):")
    show(
        conn,
        "SELECT candidate, params, round(mean_score, 4) AS mean_score,\n"
        "       round(std_score, 4) AS std_score, rank\n"
        "FROM sqml_search_trials WHERE run_id = (SELECT max(run_id) FROM sqml_search_trials)",
    )


def leaderboard(conn: sqlite3.Connection) -> None:
    section("5. Leaderboard: the sqml_leaderboard view (every model, best first)")
    show(
        conn,
        "SELECT experiment, rank, algorithm, metric, score, deployed, run_id\n"
        "FROM sqml_leaderboard WHERE rank <= 3",
    )


def deployment(conn: sqlite3.Connection) -> None:
    section("6. Deploying by hand: sqml_deploy")
    for strategy in ("rollback", "best_score"):
        query = f"SELECT sqml_deploy('iris', '{strategy}');"
        sql(query)
        (text,) = conn.execute(query).fetchone()
        print(f"  -> {text}")
    print()
    print("  The history (sqml_deployments keeps one active row per experiment):")
    show(
        conn,
        """
SELECT d.id, d.model_id, r.algorithm, d.strategy, d.active
FROM sqml_deployments AS d
JOIN sqml_models AS m ON m.id = d.model_id
JOIN sqml_runs AS r ON r.id = m.run_id
JOIN sqml_experiments AS e ON e.id = r.experiment_id
WHERE e.name = 'iris' ORDER BY d.id""",
    )


def predictions(conn: sqlite3.Connection, loaded: dict[str, dict[str, object]]) -> None:
    section("7. Predictions: sqml_predict, sqml_predict_batch, sqml_predict_table")
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

    print()
    print("  The positional form: the feature values as arguments, in training-column order")
    print("  (no JSON is built, the fastest way to predict row by row):")
    show(
        conn,
        """
SELECT rowid, target, sqml_predict('iris', "sepal length (cm)", "sepal width (cm)",
                                   "petal length (cm)", "petal width (cm)") AS predicted
FROM dataset_iris WHERE rowid IN (1, 51, 101)""",
        1,
    )

    print()
    print("  A whole table at once, joined back to it by rowid (sqml_predict_table):")
    mode = sqlite_ml.binding_mode(conn)
    if mode != "native":
        print(
            f"  (skipped: sqml_predict_table needs the 'native' binding; this connection uses"
            f" '{mode}')"
        )
        return
    show(
        conn,
        """
SELECT c.rowid, c.plan, c.country, p.prediction AS churn,
       round(json_extract(p.probabilities, '$.yes'), 3) AS p_yes
FROM customers AS c
JOIN sqml_predict_table('churn', 'customers') AS p ON p.row_id = c.rowid
WHERE c.churned IS NULL ORDER BY p_yes DESC LIMIT 5""",
        3,
    )


def model_insight(conn: sqlite3.Connection, loaded: dict[str, dict[str, object]]) -> None:
    section("8. Probabilities, evaluation and feature importance")
    print("  Class probabilities of the deployed churn model (TEXT labels are the keys):")
    show(
        conn,
        """
WITH unknown AS (
  SELECT rowid AS id, json_object(
           'tenure_months', tenure_months, 'monthly_fee', monthly_fee, 'plan', plan,
           'country', country, 'support_tickets', support_tickets,
           'satisfaction', satisfaction) AS features
  FROM customers WHERE churned IS NULL LIMIT 3)
SELECT id, sqml_predict('churn', features) AS churn,
       sqml_predict_proba('churn', features) AS probabilities
FROM unknown""",
    )

    print()
    print("  The deployed iris model on the whole table (sqml_evaluate writes nothing):")
    query = "SELECT sqml_evaluate('iris', 'dataset_iris');"
    sql(query)
    (text,) = conn.execute(query).fetchone()
    report = json.loads(text)
    print(
        f"  -> model {report['model_id']}: {report['rows']} rows, accuracy"
        f" {report['accuracy']:.4f}, f1 {report['f1']:.4f}; confusion matrix"
        " (rows: true label, columns: predicted):"
    )
    species = [str(name) for name in loaded["iris"]["target_names"]]  # type: ignore[attr-defined]
    names = [species[int(label)] for label in report["confusion_matrix"]["labels"]]
    matrix = report["confusion_matrix"]["matrix"]
    print()
    rows = [[name, *counts] for name, counts in zip(names, matrix, strict=True)]
    print(format_table(["true \\ predicted", *names], rows))

    print()
    print("  What the churn model relies on: permutation importance, stored at training:")
    show(
        conn,
        "SELECT key AS feature, round(value, 4) AS importance\n"
        "FROM json_each(sqml_feature_importance('churn'))",
    )


def trusted_evaluation(conn: sqlite3.Connection) -> None:
    section("9. Evaluation you can trust: test rows, curves, explanations, drift, a gate")
    native = sqlite_ml.binding_mode(conn) == "native"
    print("  Every run records how it split its rows: a seeded hash of each row's key (the")
    print("  rowid here), so its test rows can be named again, and its metrics recomputed:")
    show(
        conn,
        "SELECT id AS run_id, algorithm, split_strategy, split_scheme, test_rows\n"
        "FROM sqml_runs WHERE dataset = 'dataset_iris' ORDER BY id LIMIT 3",
    )
    if native:
        print()
        show(
            conn,
            """
SELECT count(*) AS test_rows,
       avg(d.target = sqml_predict('iris', d."sepal length (cm)", d."sepal width (cm)",
                                   d."petal length (cm)", d."petal width (cm)")) AS accuracy
FROM sqml_test_rows((SELECT run_id FROM sqml_runs_overview
                     WHERE experiment = 'iris' AND deployed)) AS t
JOIN dataset_iris AS d ON d.rowid = t.row_id""",
        )
        print("  (the deployed model's stored accuracy, recomputed on exactly its test rows)")
        print()
        print("  ROC curve of the deployed breast cancer model (sqml_roc_curve, table-valued):")
        show(
            conn,
            "SELECT class, round(max(auc), 4) AS auc, round(max(average_precision), 4) AS ap,\n"
            "       round(max(brier), 4) AS brier, round(max(tpr), 3) AS tpr_at_fpr_5pct\n"
            "FROM sqml_roc_curve('breast_cancer', 'dataset_breast_cancer')\n"
            "WHERE fpr <= 0.05 GROUP BY class",
        )
    else:
        print("  (sqml_test_rows and sqml_roc_curve need the 'native' binding: skipped)")
    print()
    print("  Why the churn model predicts what it does for one customer (sqml_explain):")
    query = """
SELECT sqml_explain('churn', json_object(
         'tenure_months', 2, 'monthly_fee', 95, 'plan', 'basic', 'country', 'France',
         'support_tickets', '5', 'satisfaction', 1), 3) AS explanation"""
    sql(query)
    try:
        (text,) = conn.execute(query).fetchone()
    except sqlite3.Error as error:
        print(f"  -> {sql_error_text(conn, error)}")
    else:
        explained = json.loads(text)
        print(
            f"  -> prediction {explained['prediction']!r}: {explained['output']}"
            f" {explained['raw_output']:.3f} = baseline {explained['baseline']:.3f}"
        )
        for item in explained["contributions"]:
            print(f"     {item['contribution']:+.3f}  {item['feature']} = {item['value']!r}")
        print(f"     {explained.get('other_contributions', 0.0):+.3f}  the other features")
    print()
    print("  Drift: new flowers measured with a ruler that adds 1.5 cm to the sepals:")
    conn.execute(
        'CREATE VIEW new_flowers AS SELECT "sepal length (cm)" + 1.5 AS "sepal length (cm)",'
        ' "sepal width (cm)", "petal length (cm)", "petal width (cm)" FROM dataset_iris'
    )
    show(
        conn,
        "SELECT key AS feature, round(json_extract(value, '$.psi'), 3) AS psi,\n"
        "       round(json_extract(value, '$.statistic'), 3) AS ks,"
        " json_extract(value, '$.drift') AS drift\n"
        "FROM json_each(sqml_drift('iris', 'new_flowers'))",
        3,
    )
    print()
    print("  A gated deployment: deploy only if a paired bootstrap on the same test rows shows")
    print("  an improvement of at least 0.01 with 95% confidence: ridge beats the mean, a")
    print("  near-twin of ridge is refused:")
    conn.execute(
        "SELECT sqml_train('gated', 'regression', 'dummy', 'dataset_diabetes', 'target')"
    ).fetchone()
    for algorithm, alpha in (("ridge", 1.0), ("ridge", 1.05)):
        options = json.dumps(
            {
                "hyperparams": {"alpha": alpha},
                "deploy_if": {"min_improvement": 0.01, "confidence": 0.95},
            }
        )
        sql(
            f"SELECT sqml_train('gated', 'regression', '{algorithm}', 'dataset_diabetes',"
            f" 'target',\n                  0.25, 'shuffle', '{options}');"
        )
        (text,) = conn.execute(
            "SELECT sqml_train('gated', 'regression', ?, 'dataset_diabetes', 'target',"
            " 0.25, 'shuffle', ?)",
            (algorithm, options),
        ).fetchone()
        print(f"  -> {json.loads(text)['deploy_decision']['summary']}")
    show(
        conn,
        "SELECT run_id, algorithm, deployed, round(p_value, 4) AS p_value,"
        " improvement_interval\n"
        "FROM sqml_leaderboard WHERE experiment = 'gated' ORDER BY run_id",
    )


def clustering(conn: sqlite3.Connection, loaded: dict[str, dict[str, object]]) -> None:
    section("10. Clustering: k-means without a target")
    query = """
CREATE VIEW iris_measurements AS
SELECT "sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"
FROM dataset_iris;
SELECT sqml_train('iris clusters', 'clustering', 'kmeans', 'iris_measurements', NULL,
                  0.25, 'shuffle', '{"hyperparams": {"n_clusters": 3}}');"""
    sql(query)
    create, train = query.strip().split(";\n")
    conn.execute(create)
    (text,) = conn.execute(train).fetchone()
    result = json.loads(text)
    print(
        f"  -> run {result['run_id']}: silhouette {result['metrics']['silhouette']:.4f},"
        f" Davies-Bouldin {result['metrics']['davies_bouldin']:.4f}"
    )
    print()
    print("  The clusters against the species (sqml_predict returns the cluster id):")
    query = """
SELECT target, sqml_predict('iris clusters', "sepal length (cm)", "sepal width (cm)",
                            "petal length (cm)", "petal width (cm)") AS cluster, count(*) AS flowers
FROM dataset_iris GROUP BY 1, 2 ORDER BY 1, 2"""
    sql(query)
    species = [str(name) for name in loaded["iris"]["target_names"]]  # type: ignore[attr-defined]
    rows = [(species[int(target)], cluster, n) for target, cluster, n in conn.execute(query)]
    print()
    print(format_table(["species", "cluster", "flowers"], rows))


def errors(conn: sqlite3.Connection) -> None:
    section("11. Mistakes are SQL errors that say what is wrong")
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
        training_options(conn)
        leaderboard(conn)
        deployment(conn)
        predictions(conn, loaded)
        model_insight(conn, loaded)
        trusted_evaluation(conn)
        clustering(conn, loaded)
        errors(conn)
        conn.commit()
    finally:
        conn.close()
    print()
    print(f"Done in {time.perf_counter() - started:.1f} s. Everything above is stored in {path}.")
    print("Next:")
    print(f"  sqml report {path} churn -o report.html   # an HTML report of one experiment")
    print(f"  datasette {path}                          # then open /-/sqml, the dashboard")
    print(f"  sqml shell {path}                         # SQL with every sqml_* function")


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
