"""sqml_deploy: best_score, most_recent, rollback through history, a model id; the
deployment history keeps one active row per experiment, and predictions follow at once,
in this connection and in others."""

from __future__ import annotations

import json
import sqlite3

import pytest

from .helpers import SETOSA, VERSICOLOR, Db


def deploy(db, experiment, strategy):
    return json.loads(db.value("SELECT sqml_deploy(?, ?)", (experiment, strategy)))


def history(db, experiment="e"):
    return db.rows(
        "SELECT d.model_id, d.strategy, d.active FROM sqml_deployments AS d"
        " JOIN sqml_experiments AS e ON e.id = d.experiment_id WHERE e.name = ? ORDER BY d.id",
        (experiment,),
    )


@pytest.fixture
def three(iris):
    """Models 1 (dummy), 2 (logistic regression, best), 3 (dummy) of experiment 'e'."""
    for algorithm in ("dummy", "logistic_regression", "dummy"):
        iris.train("e", "classification", algorithm, "dataset_iris", "target")
    return iris


def test_most_recent_best_score_and_a_model_id(three):
    assert deploy(three, "e", "most_recent") == {
        "experiment_name": "e",
        "model_id": 3,
        "strategy": "most_recent",
    }
    assert three.active_model_id("e") == 3
    assert deploy(three, "e", "best_score")["model_id"] == 2
    assert deploy(three, "e", 1) == {"experiment_name": "e", "model_id": 1, "strategy": "specific"}
    assert deploy(three, "e", "3")["model_id"] == 3
    assert history(three) == [
        (1, "automatic", 0),
        (2, "automatic", 0),
        (3, "most_recent", 0),
        (2, "best_score", 0),
        (1, "specific", 0),
        (3, "specific", 1),
    ]


def test_rollback_walks_back_through_history(three):
    deploy(three, "e", 3)  # history: 1, 2, 3
    assert deploy(three, "e", "rollback")["model_id"] == 2
    assert deploy(three, "e", "rollback")["model_id"] == 1
    with pytest.raises(sqlite3.OperationalError, match="no earlier deployment to roll back to"):
        deploy(three, "e", "rollback")
    deploy(three, "e", 3)  # 1, 2, 3, [2, 1], 3: a rollback from here goes back to 1
    assert deploy(three, "e", "rollback")["model_id"] == 1
    assert three.value("SELECT count(*) FROM sqml_deployments WHERE active") == 1


def test_rollback_after_a_deployment_skips_what_was_rolled_back(three):
    deploy(three, "e", 3)  # 1, 2, 3
    deploy(three, "e", "rollback")  # back to 2 (3 is rolled back)
    deploy(three, "e", 1)  # then 1 by id
    assert deploy(three, "e", "rollback")["model_id"] == 2
    assert deploy(three, "e", "rollback")["model_id"] == 1


def test_predictions_follow_deployments_in_this_and_another_connection(three, connect):
    other = Db(connect(), three.path)
    assert three.predict("e", VERSICOLOR) == 1.0  # logistic regression
    assert other.predict("e", VERSICOLOR) == 1.0
    deploy(three, "e", 1)  # a dummy: always the most frequent class
    dummy = three.predict("e", SETOSA)
    assert three.predict("e", VERSICOLOR) == dummy
    assert other.predict("e", VERSICOLOR) == dummy
    deploy(other, "e", "best_score")
    assert three.predict("e", VERSICOLOR) == 1.0
    assert other.predict("e", VERSICOLOR) == 1.0


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("newest", "unknown deployment strategy 'newest'; available: 'best_score'"),
        (None, "unknown deployment strategy NULL"),
        (99, "model 99 does not belong to experiment 'e'; its models: 1, 2, 3"),
        (4, "model 4 does not belong to experiment 'e'"),
    ],
)
def test_bad_strategies_are_refused_and_write_nothing(three, strategy, expected):
    three.train("other", "classification", "dummy", "dataset_iris", "target")  # model 4
    before = three.counts()
    with pytest.raises(sqlite3.OperationalError) as error:
        deploy(three, "e", strategy)
    assert expected in str(error.value)
    assert three.counts() == before


def test_unknown_experiment_and_no_models(iris):
    with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'nope'"):
        deploy(iris, "nope", "best_score")
    iris.train_with(
        "e", "classification", "dummy", "dataset_iris", "target", {"automatic_deploy": False}
    )
    with pytest.raises(sqlite3.OperationalError, match="no active deployment to roll back"):
        deploy(iris, "e", "rollback")
    assert deploy(iris, "e", "most_recent")["model_id"] == 1


def test_best_score_follows_the_experiments_metric(db):
    db.load("diabetes")
    db.conn.execute("CREATE TABLE d AS SELECT * FROM dataset_diabetes LIMIT 150")
    good = db.train_with("e", "regression", "ridge", "d", "target", {"metric": "rmse"})
    db.train("e", "regression", "dummy", "d", "target")
    deploy(db, "e", "most_recent")
    assert deploy(db, "e", "best_score")["model_id"] == good["model_id"]  # lowest rmse


def test_sqml_deploy_cannot_run_from_a_view(three):
    three.conn.execute("CREATE VIEW sneaky AS SELECT sqml_deploy('e', 1)")
    with pytest.raises(sqlite3.OperationalError):
        three.value("SELECT * FROM sneaky")
    assert history(three)[-1] == (2, "automatic", 1)
