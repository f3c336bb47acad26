"""ROC and precision-recall curves (``sqml_roc_curve``), and the probability metrics
(roc_auc, average_precision, log_loss) recorded and usable as the deciding metric."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from sqlite_ml.ml.curves import curves

from .helpers import IRIS_FEATURES, expected_mode

native_only = pytest.mark.skipif(
    expected_mode() != "native", reason="table-valued functions need the native binding"
)


def probabilities(db, experiment, dataset, features):
    rows = db.rows(
        f"SELECT {', '.join(f'{chr(34)}{f}{chr(34)}' for f in features)}, target"  # noqa: S608
        f" FROM {dataset} ORDER BY rowid"
    )
    proba = [
        json.loads(
            db.value("SELECT sqml_predict_proba(?, ?)", (experiment, json.dumps(list(row[:-1]))))
        )
        for row in rows
    ]
    return np.array([row[-1] for row in rows]), proba


@native_only
def test_binary_curve_matches_scikit_learn(db):
    db.load("breast_cancer")
    db.train("b", "classification", "logistic_regression", "dataset_breast_cancer", "target")
    features = json.loads(db.value("SELECT feature_names FROM sqml_runs"))
    truth, proba = probabilities(db, "b", "dataset_breast_cancer", features)
    scores = np.array([p["1.0"] for p in proba])
    points = db.rows(
        "SELECT class, threshold, fpr, tpr, precision, recall, auc, average_precision, brier"
        " FROM sqml_roc_curve('b', 'dataset_breast_cancer') ORDER BY rowid"
    )
    assert {row[0] for row in points} == {1.0}
    assert points[0][1:6] == (float("inf"), 0.0, 0.0, 1.0, 0.0)
    assert points[-1][2:4] == (1.0, 1.0)
    fprs, tprs = [row[2] for row in points], [row[3] for row in points]
    assert fprs == sorted(fprs) and tprs == sorted(tprs)
    assert len(points) == len(set(scores.tolist())) + 1
    auc, average_precision, brier = points[0][6:9]
    assert auc == pytest.approx(skm.roc_auc_score(truth, scores), abs=1e-12)
    assert average_precision == pytest.approx(skm.average_precision_score(truth, scores), 1e-12)
    assert brier == pytest.approx(skm.brier_score_loss(truth, scores), abs=1e-12)
    # sqml_evaluate reports the same areas
    evaluated = json.loads(db.value("SELECT sqml_evaluate('b', 'dataset_breast_cancer')"))
    assert evaluated["roc_auc"] == pytest.approx(auc, abs=1e-12)
    assert evaluated["log_loss"] == pytest.approx(skm.log_loss(truth, scores), abs=1e-12)


@native_only
def test_one_vs_rest_curves_for_three_classes(iris):
    iris.train("i", "classification", "logistic_regression", "dataset_iris", "target")
    truth, proba = probabilities(iris, "i", "dataset_iris", IRIS_FEATURES)
    summary = iris.rows(
        "SELECT class, auc, average_precision, calibration_error, count(*)"
        " FROM sqml_roc_curve('i', 'dataset_iris', 'target') GROUP BY class ORDER BY class"
    )
    assert [row[0] for row in summary] == [0.0, 1.0, 2.0]
    for label, auc, average_precision, calibration_error, _ in summary:
        scores = np.array([p[repr(label)] for p in proba])
        positive = truth == label
        assert auc == pytest.approx(skm.roc_auc_score(positive, scores), abs=1e-12)
        assert average_precision == pytest.approx(
            skm.average_precision_score(positive, scores), abs=1e-12
        )
        bins = np.minimum((scores * 10).astype(int), 9)
        gaps = sum(abs(positive[bins == b].sum() - scores[bins == b].sum()) for b in range(10))
        assert calibration_error == pytest.approx(gaps / len(scores), abs=1e-12)


@native_only
def test_curve_errors(small):
    small.train("r", "regression", "ridge", "diabetes_small", "target")
    with pytest.raises(Exception, match="needs a classification experiment"):
        small.rows("SELECT * FROM sqml_roc_curve('r', 'diabetes_small')")
    small.train("s", "classification", "svc", "iris_small", "target")
    with pytest.raises(Exception, match="does not give class probabilities"):
        small.rows("SELECT * FROM sqml_roc_curve('s', 'iris_small')")
    with pytest.raises(Exception, match="unknown experiment 'nope'"):
        small.rows("SELECT * FROM sqml_roc_curve('nope', 'iris_small')")


def test_curves_with_ties_and_text_labels_match_scikit_learn():
    rng = np.random.default_rng(1)
    truth = np.array(rng.choice(["no", "yes"], 300), dtype=object)
    yes = np.round(rng.random(300), 1)  # many ties
    table = np.c_[1 - yes, yes]
    (curve,) = curves(truth, table, ["no", "yes"])
    assert curve.label == "yes"
    positive = truth == "yes"
    assert curve.auc == pytest.approx(skm.roc_auc_score(positive, yes), abs=1e-12)
    assert curve.average_precision == pytest.approx(
        skm.average_precision_score(positive, yes), abs=1e-12
    )
    fpr, tpr, _ = skm.roc_curve(positive, yes, drop_intermediate=False)
    assert np.allclose(curve.fpr, fpr) and np.allclose(curve.tpr, tpr)


def test_probability_metrics_are_recorded_and_can_decide(db):
    db.load("breast_cancer")
    first = db.train_with(
        "b", "classification", "dummy", "dataset_breast_cancer", "target", {"metric": "log_loss"}
    )
    assert {"roc_auc", "average_precision", "log_loss"} <= set(first["metrics"])
    assert first["metric"] == "log_loss" and first["deployed"]
    better = db.train(
        "b", "classification", "logistic_regression", "dataset_breast_cancer", "target"
    )
    assert better["metrics"]["log_loss"] < first["metrics"]["log_loss"] and better["deployed"]
    ranks = db.rows("SELECT model_id, rank, metric FROM sqml_leaderboard ORDER BY rank")
    assert ranks == [(better["model_id"], 1, "log_loss"), (first["model_id"], 2, "log_loss")]
    message = db.train_error(
        "b", "classification", "svc", "dataset_breast_cancer", "target", {"metric": "roc_auc"}
    )
    assert "metric 'roc_auc' is computed from class probabilities" in message
    assert "probability=true" in message
