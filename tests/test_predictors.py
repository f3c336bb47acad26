"""Compiled predictors give the same answers as scikit-learn, row by row and in batch."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sqlite_ml.ml.predictors import compile_predictor, compile_row_predictor

LINEAR = {
    "classification": ["logistic_regression", "sgd", "ridge", "ridge_cv"],
    "regression": ["linear_regression", "ridge", "lasso", "elastic_net", "sgd"],
}
CASES = [(kind, algorithm) for kind, names in LINEAR.items() for algorithm in names]


@pytest.fixture
def noisy(db):
    """400 rows, 6 features with NULLs, a binary and a three-class label, a numeric target."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 6))
    score = x @ np.array([1.5, -2.0, 0.5, 0.0, 1.0, -0.3])
    db.conn.execute("CREATE TABLE noisy (a, b, c, d, e, f, binary_label, three, amount)")
    rows = []
    for features, s in zip(x.tolist(), score.tolist(), strict=True):
        features = [None if rng.random() < 0.05 else value for value in features]
        three = "low" if s < -1 else ("mid" if s < 1 else "high")
        rows.append([*features, int(s + rng.normal() > 0), three, s * 10 + rng.normal()])
    db.conn.executemany("INSERT INTO noisy VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.conn.execute("CREATE VIEW noisy_binary AS SELECT a, b, c, d, e, f, binary_label FROM noisy")
    db.conn.execute("CREATE VIEW noisy_three AS SELECT a, b, c, d, e, f, three FROM noisy")
    db.conn.execute("CREATE VIEW noisy_amount AS SELECT a, b, c, d, e, f, amount FROM noisy")
    db.conn.commit()
    return db, [list(row[:6]) for row in rows]


@pytest.mark.parametrize(("kind", "algorithm"), CASES, ids=[f"{k}-{a}" for k, a in CASES])
def test_linear_rows_match_scikit_learn(noisy, kind, algorithm):
    db, rows = noisy
    targets = ["noisy_binary", "noisy_three"] if kind == "classification" else ["noisy_amount"]
    for view in targets:
        target = {"noisy_binary": "binary_label", "noisy_three": "three"}.get(view, "amount")
        result = db.train(view, kind, algorithm, view, target)
        expected_all = db.reference_batch(result["model_id"], rows)
        batch = db.predict_batch(view, rows)
        for row, batched, expected in zip(rows, batch, expected_all, strict=True):
            predicted = db.predict(view, row)
            if kind == "classification":
                assert (
                    predicted == batched == (str(expected) if view == "noisy_three" else expected)
                )
            else:
                assert predicted == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
                assert batched == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


def test_a_row_on_the_decision_boundary_is_decided_as_scikit_learn_does():
    """Folded weights could round a tie either way; such rows take scikit-learn's path."""
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression()),
        ]
    ).fit(x, [0, 1, 1, 0])
    model = pipeline.named_steps["model"]
    model.coef_ = np.array([[1.0, -1.0]])
    model.intercept_ = np.array([0.0])
    exact = compile_predictor(pipeline)
    row_predict, _quick = compile_row_predictor(pipeline, exact)
    for row in ([1.0, 1.0], [0.5, 0.5], [2.0, 0.0], [0.0, 2.0], [float("nan"), 1.0]):
        assert row_predict(row) == pipeline.predict(np.array([row]))[0]


def test_batch_applies_the_same_rules_as_single_rows(noisy):
    db, rows = noisy
    rows = [row for row in rows if None not in row]
    db.train("amount", "regression", "ridge", "noisy_amount", "amount")
    mixed = [
        [None, *rows[0][1:]],  # missing: imputed
        [str(value) for value in rows[1]],  # numbers as text
        {"A": rows[2][0], "b": rows[2][1], "c": 0, "d": 1, "e": True, "f": None},  # case, int, bool
    ]
    singles = [db.predict("amount", item) for item in mixed]
    assert db.predict_batch("amount", mixed) == pytest.approx(singles, rel=1e-9)
    assert db.predict_batch("amount", [["NaN", *rows[0][1:]]]) == pytest.approx(
        [db.predict("amount", [None, *rows[0][1:]])], rel=1e-9
    )
    for bad, shown in (("abc", '"abc"'), ("inf", '"inf"'), (float("inf"), "Infinity")):
        items = [rows[0], [bad, *rows[1][1:]]]
        with pytest.raises(sqlite3.OperationalError, match=r"feature 'a' \(item 1\)") as error:
            db.predict_batch("amount", items)
        assert shown in str(error.value)


def test_the_cached_deployment_follows_changes_inside_table_queries(iris, connect):
    """Queries over a table answer from the cached deployment while SQLite's data version
    stands still; another connection's deployment, a ROLLBACK TO and this connection's own
    training are all noticed."""
    from .helpers import IRIS_FEATURES, Db

    features = ", ".join(f'"{name}"' for name in IRIS_FEATURES)
    query = f"SELECT sqml_predict('flowers', {features}) FROM dataset_iris ORDER BY rowid"  # noqa: S608

    def predictions(db: Db) -> list[float]:
        return [row[0] for row in db.rows(query)]

    iris.train("flowers", "classification", "dummy", "dataset_iris", "target")
    dummy = predictions(iris)
    assert len(set(dummy)) == 1
    other = Db(connect(), iris.path)
    result = other.train(
        "flowers", "classification", "logistic_regression", "dataset_iris", "target"
    )
    assert result["deployed"] is True
    better = predictions(iris)
    assert len(set(better)) == 3
    assert better == [
        float(v)
        for v in iris.reference_batch(
            result["model_id"],
            [list(row[:4]) for row in iris.rows("SELECT * FROM dataset_iris ORDER BY rowid")],
        )
    ]

    # Inside a transaction: a deployment undone by ROLLBACK TO is undone for predictions too.
    iris.conn.execute("SAVEPOINT before")
    iris.conn.execute("UPDATE sqml_deployments SET active = 0")
    iris.conn.execute(
        "INSERT INTO sqml_deployments (experiment_id, model_id, strategy, active)"
        " SELECT experiment_id, ?, 'manual', 1 FROM sqml_runs WHERE id = 1",
        (1,),
    )
    assert predictions(iris) == dummy
    iris.conn.execute("ROLLBACK TO before")
    iris.conn.execute("RELEASE before")
    assert predictions(iris) == better
