"""Drift: per-feature summaries of the training rows, stored with the model, and
``sqml_drift(experiment, dataset)`` against them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from sqlite_ml.ml import drift


def report(db, experiment, dataset):
    return json.loads(db.value("SELECT sqml_drift(?, ?)", (experiment, dataset)))


def test_the_training_data_itself_does_not_drift_and_a_shift_does(iris):
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    same = report(iris, "e", "dataset_iris")
    assert set(same) == {
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    }
    for name, entry in same.items():
        assert entry["kind"] == "numeric" and entry["test"] == "ks" and not entry["drift"], name
        assert entry["psi"] < 0.1 and entry["statistic"] < 0.1 and entry["rows"] == 150
    iris.conn.execute(
        'CREATE VIEW shifted AS SELECT "sepal length (cm)" + 1.5 AS "sepal length (cm)",'
        ' "sepal width (cm)", "petal length (cm)", NULL AS "petal width (cm)" FROM dataset_iris'
    )
    moved = report(iris, "e", "shifted")
    assert moved["sepal length (cm)"]["drift"] and moved["sepal length (cm)"]["psi"] > 1
    assert moved["sepal length (cm)"]["statistic"] > 0.5
    assert moved["sepal length (cm)"]["p_value"] < 1e-6
    assert not moved["sepal width (cm)"]["drift"]
    gone = moved["petal width (cm)"]
    assert gone["missing_share"] == 1.0 and gone["training_missing_share"] == 0.0
    assert gone["drift"] and gone["psi"] > 1


def test_categories_drift_with_chi_square(db):
    db.conn.execute("CREATE TABLE shop (plan TEXT, fee REAL, churned TEXT)")
    rows = [(["basic", "pro"][i % 2], float(i % 50), ["no", "yes"][i % 3 == 0]) for i in range(400)]
    db.conn.executemany("INSERT INTO shop VALUES (?, ?, ?)", rows)
    db.conn.execute(
        "CREATE TABLE later AS SELECT CASE WHEN rowid % 10 = 0 THEN 'pro' WHEN rowid % 10 = 1"
        " THEN 'gold' ELSE 'basic' END AS plan, fee, churned FROM shop"
    )
    db.conn.commit()
    db.train("c", "classification", "logistic_regression", "shop", "churned")
    same = report(db, "c", "shop")["plan"]
    assert same["kind"] == "categorical" and same["test"] == "chi_square" and not same["drift"]
    changed = report(db, "c", "later")["plan"]
    assert changed["drift"] and changed["new_categories"] == ["gold"]
    assert changed["cramers_v"] > 0.3 and changed["p_value"] < 1e-6
    assert not report(db, "c", "later")["fee"]["drift"]


def test_the_statistics_against_scipy():
    rng = np.random.default_rng(3)
    trained, new = rng.normal(size=5000), rng.normal(0.3, 1, size=3000)
    summary = drift.summarize_numeric(trained)
    result = drift.compare_numeric(summary, new)
    exact = stats.ks_2samp(trained, new)
    assert result["statistic"] == pytest.approx(exact.statistic, abs=0.012)
    assert result["p_value"] < 1e-10 and result["drift"]
    categories = drift.summarize_categories(["a"] * 60 + ["b"] * 40)
    compared = drift.compare_categories(categories, ["a"] * 30 + ["b"] * 70)
    chi2 = stats.chi2_contingency([[60, 40], [30, 70]], correction=False)
    assert compared["statistic"] == pytest.approx(chi2.statistic)
    assert compared["p_value"] == pytest.approx(chi2.pvalue)
    expected = (0.3 - 0.6) * np.log(0.3 / 0.6) + (0.7 - 0.4) * np.log(0.7 / 0.4)
    assert compared["psi"] == pytest.approx(expected)


def test_drift_errors(iris):
    with pytest.raises(Exception, match="unknown experiment 'e'"):
        iris.value("SELECT sqml_drift('e', 'dataset_iris')")
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    iris.conn.execute('CREATE TABLE partial AS SELECT "sepal length (cm)" FROM dataset_iris')
    with pytest.raises(Exception, match="lacks the model's feature column"):
        iris.value("SELECT sqml_drift('e', 'partial')")
    iris.conn.execute("UPDATE sqml_models SET training_summary = NULL")
    with pytest.raises(Exception, match="has no summary of its training rows"):
        iris.value("SELECT sqml_drift('e', 'dataset_iris')")
