"""The sqml_leaderboard view and sqml_feature_importance."""

from __future__ import annotations

import json
import sqlite3

import pytest

COLUMNS = [
    "experiment",
    "model_id",
    "run_id",
    "algorithm",
    "metric",
    "score",
    "metrics",
    "hyperparams",
    "deployed",
    "created_at",
    "rank",
    "decision",
    "p_value",
    "improvement_interval",
]


def board(db):
    cursor = db.conn.execute("SELECT * FROM sqml_leaderboard")
    assert [d[0] for d in cursor.description] == COLUMNS
    return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def test_best_first_per_experiment_with_every_model(iris):
    iris.load("diabetes")
    scores = {}
    for algorithm in ("dummy", "logistic_regression", "knn"):
        result = iris.train("flowers", "classification", algorithm, "dataset_iris", "target")
        scores[result["model_id"]] = result["score"]
    for algorithm in ("dummy", "ridge"):
        result = iris.train_with(
            "sugar", "regression", algorithm, "dataset_diabetes", "target", {"metric": "mae"}
        )
        scores[result["model_id"]] = result["metrics"]["mae"]
    rows = board(iris)
    assert [r["experiment"] for r in rows] == ["flowers"] * 3 + ["sugar"] * 2
    flowers = rows[:3]
    assert [r["score"] for r in flowers] == sorted((r["score"] for r in flowers), reverse=True)
    assert flowers[0]["rank"] == 1 and flowers[-1]["algorithm"] == "dummy"
    sugar = rows[3:]
    assert [r["algorithm"] for r in sugar] == ["ridge", "dummy"]  # mae: lower is better
    assert [r["rank"] for r in sugar] == [1, 2]
    assert {r["metric"] for r in sugar} == {"mae"}
    for row in rows:
        assert row["score"] == pytest.approx(scores[row["model_id"]])
        metrics = json.loads(row["metrics"])
        stored = iris.rows(
            "SELECT name, value FROM sqml_metrics WHERE model_id = ?", (row["model_id"],)
        )
        assert metrics == dict(stored)  # exactly, not rounded
        assert isinstance(json.loads(row["hyperparams"]), dict)
        assert row["created_at"]
    deployed = [r for r in rows if r["deployed"]]
    assert [r["experiment"] for r in deployed] == ["flowers", "sugar"]
    assert all(r["rank"] == 1 for r in deployed)  # automatic deployment keeps the best
    assert iris.active_model_id("flowers") == deployed[0]["model_id"]


def test_ties_share_a_rank(iris):
    iris.train("e", "classification", "decision_tree", "dataset_iris", "target")
    iris.train("e", "classification", "decision_tree", "dataset_iris", "target")
    assert [r["rank"] for r in board(iris)] == [1, 1]


def test_feature_importance_of_the_deployed_model_sorted(iris):
    iris.train("e", "classification", "decision_tree", "dataset_iris", "target")
    text = iris.value("SELECT sqml_feature_importance('e')")
    importance = json.loads(text)
    values = list(importance.values())
    assert values == sorted(values, reverse=True)
    assert set(importance) == {
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    }
    assert next(iter(importance)).startswith("petal")  # iris is decided by its petals
    time = iris.value("SELECT importance_time FROM sqml_runs")
    assert 0 <= time < 300


def test_feature_importance_groups_one_hot_columns(db):
    db.conn.execute("CREATE TABLE t (noise REAL, colour TEXT, y TEXT)")
    rows = [(float(i % 7), c, c) for i, c in enumerate(["red", "green", "blue"] * 30)]
    db.conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    db.conn.commit()
    db.train("e", "classification", "logistic_regression", "t", "y")
    importance = json.loads(db.value("SELECT sqml_feature_importance('e')"))
    assert list(importance) == ["colour", "noise"]
    assert importance["colour"] > 0.3


def test_feature_importance_errors(iris):
    with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'nope'"):
        iris.value("SELECT sqml_feature_importance('nope')")
    iris.train("e", "classification", "dummy", "dataset_iris", "target")
    iris.conn.execute("UPDATE sqml_models SET feature_importance = NULL")
    iris.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match="has no stored feature importance"):
        iris.value("SELECT sqml_feature_importance('e')")
