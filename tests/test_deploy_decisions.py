"""Automatic deployment compares like with like: the active model is scored on the new
run's test rows when they differ, the decision is recorded on the run, and the optional
``deploy_if`` gate deploys only what a paired bootstrap shows to be better."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sqlite_ml.ops.held_out import held_out_rows


def decision(db, run_id):
    return json.loads(db.value("SELECT deploy_decision FROM sqml_runs WHERE id = ?", (run_id,)))


def active_accuracy_on(db, experiment, run_id, dataset, features):
    """What the deployed model scores on a run's test rows, recomputed through SQL."""
    keys = held_out_rows(db.conn, run_id).keys.tolist()
    columns = ", ".join(f'"{f}"' for f in features)
    right = 0
    for key in keys:
        row = db.rows(f"SELECT {columns}, target FROM {dataset} WHERE rowid = ?", (key,))[0]  # noqa: S608
        right += db.predict(experiment, list(row[:-1])) == row[-1]
    return right / len(keys)


def test_the_first_model_deploys_and_the_same_rows_compare_stored_metrics(iris):
    first = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    assert first["deployed"] and decision(iris, first["run_id"])["comparison"] == "no active model"
    second = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    recorded = decision(iris, second["run_id"])
    assert recorded["comparison"] == "same test rows" and second["deployed"]
    assert recorded["active"] == first["score"] and recorded["candidate"] == second["score"]
    assert recorded["summary"].startswith("deployed: accuracy ")
    assert second["deploy_decision"] == recorded


def test_another_test_size_is_compared_on_the_new_runs_rows(iris):
    features = json.loads(json.dumps(list(iris.load("iris")["feature_names"])))
    strong = iris.train_with(
        "e", "classification", "logistic_regression", "dataset_iris", "target", None, 0.5
    )
    weak = iris.train_with("e", "classification", "dummy", "dataset_iris", "target", None, 0.2)
    recorded = decision(iris, weak["run_id"])
    assert recorded["comparison"] == "active model scored on this run's test rows"
    assert not weak["deployed"] and iris.active_model_id("e") == strong["model_id"]
    assert recorded["active"] == pytest.approx(
        active_accuracy_on(iris, "e", weak["run_id"], "dataset_iris", features)
    )
    assert recorded["active_stored"] == strong["score"]
    assert recorded["summary"].startswith(f"kept model {strong['model_id']}: accuracy ")


def test_an_active_model_with_other_features_is_read_again_by_key(db):
    db.conn.execute("CREATE TABLE t (a REAL, b TEXT, y INTEGER)")
    rng = np.random.default_rng(0)
    rows = [(float(x), ["u", "v", "w"][i % 3], int(x > 0.3)) for i, x in enumerate(rng.random(300))]
    db.conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    db.conn.commit()
    old = db.train_with("e", "classification", "logistic_regression", "t", "y", None, 0.4)
    new = db.train_with("e", "classification", "decision_tree", "t", "y", {"features": ["a"]}, 0.25)
    recorded = decision(db, new["run_id"])
    assert recorded["comparison"] == "active model scored on this run's test rows"
    keys = held_out_rows(db.conn, new["run_id"]).keys.tolist()
    truth = [db.value("SELECT y FROM t WHERE rowid = ?", (k,)) for k in keys]
    before = db.active_model_id("e")
    db.value("SELECT sqml_deploy('e', ?)", (old["model_id"],))
    predicted = [
        db.predict("e", {"a": a, "b": b})
        for a, b in (db.rows("SELECT a, b FROM t WHERE rowid = ?", (k,))[0] for k in keys)
    ]
    assert recorded["active"] == pytest.approx(np.mean(np.array(predicted) == np.array(truth)))
    assert before in (old["model_id"], new["model_id"])


def test_an_active_model_that_cannot_be_scored_stays(db):
    db.conn.execute("CREATE TABLE t (a REAL, b REAL, y INTEGER)")
    db.conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i % 7, i % 2) for i in range(80)])
    db.conn.execute("CREATE TABLE narrow AS SELECT a, y FROM t")
    db.conn.commit()
    first = db.train("e", "classification", "logistic_regression", "t", "y")
    second = db.train("e", "classification", "decision_tree", "narrow", "y")
    recorded = decision(db, second["run_id"])
    assert recorded["comparison"] == "not comparable" and not second["deployed"]
    assert "lacks a column" in recorded["reason"] and "'b'" in recorded["reason"]
    assert db.active_model_id("e") == first["model_id"]


GATE = {"deploy_if": {"min_improvement": 0.01, "confidence": 0.95}}


def test_the_gate_refuses_a_run_better_by_noise_only(db):
    db.load("breast_cancer")
    db.train_with(
        "g",
        "classification",
        "logistic_regression",
        "dataset_breast_cancer",
        "target",
        {"hyperparams": {"C": 1.0}},
    )
    twin = db.train_with(
        "g",
        "classification",
        "logistic_regression",
        "dataset_breast_cancer",
        "target",
        {"hyperparams": {"C": 1.05}, **GATE},
    )
    gate = decision(db, twin["run_id"])["gate"]
    assert not twin["deployed"] and not gate["passed"]
    assert gate["p_value"] > 0.05 and abs(gate["improvement"]) < 0.01
    low, high = gate["interval"]
    assert low <= gate["improvement"] <= high and high - low < 0.1
    assert gate["resamples"] == 1000


def test_the_gate_accepts_a_real_improvement_and_the_leaderboard_shows_it(db):
    db.load("breast_cancer")
    db.train("g", "classification", "dummy", "dataset_breast_cancer", "target")
    real = db.train_with(
        "g", "classification", "logistic_regression", "dataset_breast_cancer", "target", GATE
    )
    recorded = decision(db, real["run_id"])
    gate = recorded["gate"]
    assert real["deployed"] and gate["passed"] and gate["p_value"] < 0.05
    assert gate["interval"][0] > 0.01 and gate["improvement"] > 0.2
    assert recorded["comparison"] == "paired bootstrap on this run's test rows"
    row = db.rows(
        "SELECT decision, p_value, improvement_interval FROM sqml_leaderboard WHERE model_id = ?",
        (real["model_id"],),
    )[0]
    assert row[0].startswith("deployed: gate passed") and row[1] == gate["p_value"]
    assert json.loads(row[2]) == gate["interval"]
    # the same seed gives the same decision: the bootstrap is seeded by the run
    again = db.train_with(
        "h", "classification", "dummy", "dataset_breast_cancer", "target", {"random_state": 5}
    )
    assert again["deployed"]


@pytest.mark.parametrize(
    "metric, algorithm, better", [("r2", "ridge", True), ("mae", "dummy", False)]
)
def test_the_gate_on_regression_metrics(db, metric, algorithm, better):
    db.load("diabetes")
    db.train_with(
        "r",
        "regression",
        "dummy" if better else "ridge",
        "dataset_diabetes",
        "target",
        {"metric": metric, "random_state": 1},
    )
    run = db.train_with(
        "r",
        "regression",
        algorithm,
        "dataset_diabetes",
        "target",
        {
            "random_state": 1,
            "deploy_if": {"min_improvement": 0.0, "confidence": 0.9, "resamples": 200},
        },
    )
    gate = decision(db, run["run_id"])["gate"]
    assert gate["resamples"] == 200 and run["deployed"] is better is gate["passed"]


def test_the_gate_on_a_metric_computed_per_resample(iris):
    iris.train_with("f", "classification", "dummy", "dataset_iris", "target", {"metric": "f1"})
    run = iris.train_with(
        "f",
        "classification",
        "logistic_regression",
        "dataset_iris",
        "target",
        {"deploy_if": {"resamples": 100}},
    )
    gate = decision(iris, run["run_id"])["gate"]
    assert run["deployed"] and gate["passed"] and gate["resamples"] == 100


@pytest.mark.parametrize(
    "gate, message",
    [
        ({"confidence": 1.5}, "deploy_if confidence must be a number strictly between 0 and 1"),
        ({"min_improvement": -1}, "deploy_if min_improvement must be a number >= 0"),
        ({"resamples": 10}, "option deploy_if.resamples must be an integer >= 100"),
        ({"level": 1}, "unknown deploy_if key 'level'"),
        ("yes", "option deploy_if must be a JSON object"),
    ],
)
def test_bad_gates_are_refused(iris, gate, message):
    assert message in iris.train_error(
        "e", "classification", "dummy", "dataset_iris", "target", {"deploy_if": gate}
    )


def test_no_gate_for_clustering(iris):
    message = iris.train_error("c", "clustering", "kmeans", "dataset_iris", None, {"deploy_if": {}})
    assert "clustering has none" in message
