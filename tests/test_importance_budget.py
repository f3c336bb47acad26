"""Permutation importance never dominates training: sampled and time-bounded (by default
the fit's own time, at least a quarter second), its budget written on the run, skippable
with the option importance false."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from sqlite_ml.ops import importance


@pytest.fixture
def wide(db):
    """400 rows of 300 features (two of which decide the label)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 300))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    columns = ", ".join(f"c{i} REAL" for i in range(300))
    db.conn.execute(f"CREATE TABLE wide ({columns}, y INTEGER)")
    marks = ", ".join("?" for _ in range(301))
    db.conn.executemany(
        f"INSERT INTO wide VALUES ({marks})",  # noqa: S608 - fixed column count
        [[*row, int(label)] for row, label in zip(x.tolist(), y, strict=True)],
    )
    db.conn.commit()
    return db


def run_row(db, run_id: int) -> tuple:
    return db.conn.execute(
        "SELECT importance_time, importance_budget, warnings, fit_time FROM sqml_runs WHERE id = ?",
        (run_id,),
    ).fetchone()


def test_an_explicit_budget_bounds_importance_and_is_recorded(wide):
    db = wide
    result = db.train_with("w", "classification", "knn", "wide", "y", {"importance": 0.3})
    spent, budget, warnings_text, _ = run_row(db, result["run_id"])
    assert budget == 0.3
    assert spent < 0.3 + 0.5  # one stacked prediction may end after the budget
    covered = json.loads(db.value("SELECT sqml_feature_importance('w')"))
    assert 1 <= len(covered) <= 300
    if len(covered) < 300:
        assert f"covers {len(covered)} of 300 features" in warnings_text


def test_the_default_budget_is_the_fit_time(wide):
    db = wide
    result = db.train_with("w", "classification", "logistic_regression", "wide", "y")
    spent, budget, _, fit_time = run_row(db, result["run_id"])
    assert budget == pytest.approx(max(fit_time, importance.MIN_BUDGET))
    assert spent < budget + 0.5


def test_a_small_model_gets_every_feature_with_repeats(iris):
    result = iris.train("e", "classification", "decision_tree", "dataset_iris", "target")
    covered = json.loads(iris.value("SELECT sqml_feature_importance('e')"))
    assert len(covered) == 4
    assert iris.value("SELECT warnings FROM sqml_runs WHERE id = ?", (result["run_id"],)) is None


def test_importance_can_be_skipped(iris):
    result = iris.train_with(
        "e",
        "classification",
        "logistic_regression",
        "dataset_iris",
        "target",
        {"importance": False},
    )
    assert (
        iris.value("SELECT feature_importance FROM sqml_models WHERE id = ?", (result["model_id"],))
        is None
    )
    assert (
        iris.value("SELECT importance_budget FROM sqml_runs WHERE id = ?", (result["run_id"],)) == 0
    )
    with pytest.raises(sqlite3.OperationalError, match="option importance false"):
        iris.value("SELECT sqml_feature_importance('e')")


@pytest.mark.parametrize("value", [-1, 0, "fast", [1], 1e9])
def test_a_bad_importance_option_is_refused(iris, value):
    message = iris.train_error(
        "e",
        "classification",
        "logistic_regression",
        "dataset_iris",
        "target",
        {"importance": value},
    )
    assert "option importance must be true, false or the seconds" in message
