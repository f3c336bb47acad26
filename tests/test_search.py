"""Hyperparameter search: grid and random, cross-validated on the training split, every
candidate recorded in sqml_search_trials, the best refit and scored on the test split."""

from __future__ import annotations

import json

import pytest

GRID = {"search": "grid", "search_params": {"C": [0.01, 1, 100]}, "search_args": {"cv": 2}}


def trials(db, run_id):
    return db.rows(
        "SELECT candidate, params, scoring, mean_score, std_score, rank, fit_time"
        " FROM sqml_search_trials WHERE run_id = ? ORDER BY candidate",
        (run_id,),
    )


def test_grid_search_records_every_candidate_and_refits_the_best(iris):
    result = iris.train_with("e", "classification", "svc", "dataset_iris", "target", GRID)
    rows = trials(iris, result["run_id"])
    assert [json.loads(r[1]) for r in rows] == [{"C": 0.01}, {"C": 1}, {"C": 100}]
    assert {r[2] for r in rows} == {"accuracy"}
    assert all(0 <= r[3] <= 1 and r[4] >= 0 and r[6] > 0 for r in rows)
    best = min(rows, key=lambda r: (r[5], r[0]))
    assert best[5] == 1
    assert result["best_params"] == json.loads(best[1])
    assert result["candidates"] == 3
    # ranks follow the mean CV scores
    ordered = sorted(rows, key=lambda r: -r[3])
    assert [r[5] for r in ordered] == sorted(r[5] for r in rows)
    estimator, _ = iris.stored_model(result["model_id"])
    assert estimator.named_steps["model"].C == result["best_params"]["C"]
    hyperparams = json.loads(
        iris.value("SELECT hyperparams FROM sqml_runs WHERE id = ?", (result["run_id"],))
    )
    assert hyperparams["C"] == result["best_params"]["C"]


def test_random_search_samples_n_iter_candidates_reproducibly(iris):
    options = {
        "search": "random",
        "search_params": {"max_depth": [1, 2, 3, 4], "n_estimators": [3, 5]},
        "search_args": {"cv": 2, "n_iter": 3},
        "random_state": 11,
    }
    first = iris.train_with("a", "classification", "xgboost", "dataset_iris", "target", options)
    second = iris.train_with("b", "classification", "xgboost", "dataset_iris", "target", options)
    assert first["candidates"] == 3
    assert first["score"] == second["score"]
    assert first["best_params"] == second["best_params"]
    one, two = trials(iris, first["run_id"]), trials(iris, second["run_id"])
    assert [r[:6] for r in one] == [r[:6] for r in two]  # fit times differ, nothing else


def test_random_search_with_more_iterations_than_candidates_tries_each_once(iris):
    result = iris.train_with(
        "e",
        "classification",
        "knn",
        "dataset_iris",
        "target",
        {"search": "random", "search_params": {"n_neighbors": [1, 5]}, "search_args": {"cv": 2}},
    )
    params = sorted(json.loads(r[1])["n_neighbors"] for r in trials(iris, result["run_id"]))
    assert params == [1, 5]


def test_regression_search_scores_with_r2(db):
    db.load("diabetes")
    result = db.train_with(
        "e",
        "regression",
        "lightgbm",
        "dataset_diabetes",
        "target",
        {
            "search": "grid",
            "search_params": {"n_estimators": [5, 10], "num_leaves": [4]},
            "search_args": {"cv": 2},
        },
    )
    rows = trials(db, result["run_id"])
    assert {r[2] for r in rows} == {"r2"} and len(rows) == 2


def test_search_with_more_folds_than_rows_fails_the_run_clearly(db):
    db.conn.execute("CREATE TABLE tiny (x REAL, y INTEGER)")
    # 6 rows: whatever the hashed split tests, at most 5 train, fewer than 7 folds
    db.conn.executemany("INSERT INTO tiny VALUES (?, ?)", [(i, i % 2) for i in range(6)])
    db.conn.commit()
    with pytest.raises(
        Exception, match=r"search_args cv is 7 but the training split has only \d rows"
    ):
        db.train_with(
            "e",
            "classification",
            "knn",
            "tiny",
            "y",
            {"search": "grid", "search_params": {"n_neighbors": [1]}, "search_args": {"cv": 7}},
        )
    assert db.value("SELECT count(*) FROM sqml_search_trials") == 0
    assert db.value("SELECT status FROM sqml_runs") == "failed"


def test_a_run_without_search_has_no_trials(iris):
    iris.train("e", "classification", "dummy", "dataset_iris", "target")
    assert iris.value("SELECT count(*) FROM sqml_search_trials") == 0
