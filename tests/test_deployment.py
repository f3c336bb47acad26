"""Automatic deployment: the first model, then only a strictly better score replaces it."""

from __future__ import annotations

import sqlite3

import pytest

from .helpers import SETOSA


def active_deployments(db, experiment):
    return db.rows(
        "SELECT d.model_id FROM sqml_deployments AS d"
        " JOIN sqml_experiments AS e ON e.id = d.experiment_id WHERE e.name = ? AND d.active",
        (experiment,),
    )


def test_first_model_is_deployed_and_a_better_one_replaces_it(iris):
    low = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    assert low["deployed"] is True
    assert active_deployments(iris, "e") == [(low["model_id"],)]

    high = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    assert high["score"] > low["score"]
    assert high["deployed"] is True
    assert active_deployments(iris, "e") == [(high["model_id"],)]
    # the old deployment row is kept, inactive
    assert iris.rows("SELECT model_id, active FROM sqml_deployments ORDER BY id") == [
        (low["model_id"], 0),
        (high["model_id"], 1),
    ]

    again_low = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    assert again_low["deployed"] is False
    assert again_low["score"] == low["score"]
    assert active_deployments(iris, "e") == [(high["model_id"],)]
    assert iris.predict("e", SETOSA) == 0.0


def test_an_equal_score_does_not_replace_the_active_model(iris):
    first = iris.train("e", "classification", "decision_tree", "dataset_iris", "target")
    second = iris.train("e", "classification", "decision_tree", "dataset_iris", "target")
    assert second["score"] == first["score"]
    assert first["deployed"] is True
    assert second["deployed"] is False
    assert active_deployments(iris, "e") == [(first["model_id"],)]
    assert iris.value("SELECT count(*) FROM sqml_deployments") == 1


def test_a_lower_score_does_not_replace_the_active_model(iris):
    good = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    bad = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    assert bad["score"] < good["score"]
    assert bad["deployed"] is False
    assert active_deployments(iris, "e") == [(good["model_id"],)]


def test_the_score_row_in_sqml_metrics_decides(iris):
    """The active model's `score` row is the source of truth, not a cached number."""
    good = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    iris.conn.execute(
        "UPDATE sqml_metrics SET value = 0.0 WHERE model_id = ? AND name = 'score'",
        (good["model_id"],),
    )
    iris.conn.commit()
    bad = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    assert bad["deployed"] is True
    assert active_deployments(iris, "e") == [(bad["model_id"],)]


def test_each_experiment_has_its_own_single_active_deployment(iris):
    iris.load("diabetes")
    for algorithm in ("dummy", "logistic_regression", "knn", "dummy"):
        iris.train("flowers", "classification", algorithm, "dataset_iris", "target")
    for algorithm in ("dummy", "ridge", "dummy"):
        iris.train("sugar", "regression", algorithm, "dataset_diabetes", "target")
    per_experiment = iris.rows(
        "SELECT e.name, count(d.id) FROM sqml_experiments AS e"
        " LEFT JOIN sqml_deployments AS d ON d.experiment_id = e.id AND d.active"
        " GROUP BY e.name ORDER BY e.name"
    )
    assert per_experiment == [("flowers", 1), ("sugar", 1)]
    best = iris.rows(
        "SELECT e.name, max(m.value) FROM sqml_metrics AS m"
        " JOIN sqml_models AS md ON md.id = m.model_id JOIN sqml_runs AS r ON r.id = md.run_id"
        " JOIN sqml_experiments AS e ON e.id = r.experiment_id WHERE m.name = 'score'"
        " GROUP BY e.name ORDER BY e.name"
    )
    active = iris.rows(
        "SELECT e.name, m.value FROM sqml_deployments AS d"
        " JOIN sqml_experiments AS e ON e.id = d.experiment_id"
        " JOIN sqml_metrics AS m ON m.model_id = d.model_id AND m.name = 'score'"
        " WHERE d.active ORDER BY e.name"
    )
    assert active == best


def test_runs_overview_shows_status_and_score(iris):
    iris.conn.execute("CREATE TABLE one_class (x REAL, y TEXT)")
    iris.conn.executemany("INSERT INTO one_class VALUES (?, 'a')", [(i,) for i in range(10)])
    iris.conn.commit()
    low = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    high = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    with pytest.raises(sqlite3.OperationalError, match="training run 3 failed"):
        iris.train("lonely", "classification", "logistic_regression", "one_class", "y")
    rows = iris.rows(
        "SELECT run_id, experiment, status, algorithm, score, start_time IS NOT NULL"
        " FROM sqml_runs_overview ORDER BY run_id"
    )
    assert rows == [
        (low["run_id"], "e", "success", "dummy", low["score"], 1),
        (high["run_id"], "e", "success", "logistic_regression", high["score"], 1),
        (3, "lonely", "failed", "logistic_regression", None, 1),
    ]
