"""Every run records what is needed to repeat it; the same inputs give the same score."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import sklearn
import skops

import sqlite_ml

from .helpers import IRIS_FEATURES

RUN_COLUMNS = (
    "seed",
    "data_digest",
    "feature_names",
    "feature_types",
    "library_versions",
    "fit_time",
    "hyperparams",
)


def run_record(db, run_id):
    row = db.rows(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM sqml_runs WHERE id = ?",  # noqa: S608
        (run_id,),
    )[0]
    return dict(zip(RUN_COLUMNS, row, strict=True))


@pytest.mark.parametrize(
    ("kind", "algorithm", "table"),
    [
        ("classification", "random_forest", "iris_small"),
        ("classification", "mlp", "iris_small"),
        ("regression", "sgd", "diabetes_small"),
        ("regression", "gradient_boosting", "diabetes_small"),
    ],
)
def test_same_data_algorithm_and_seed_give_the_same_score(small, kind, algorithm, table):
    first = small.train("exp", kind, algorithm, table, "target")
    second = small.train("exp", kind, algorithm, table, "target")
    assert second["seed"] == first["seed"]
    assert second["score"] == first["score"]
    assert second["metrics"] == first["metrics"]
    a, b = run_record(small, first["run_id"]), run_record(small, second["run_id"])
    assert a["seed"] == b["seed"] == first["seed"]
    assert a["data_digest"] == b["data_digest"]
    assert a["hyperparams"] == b["hyperparams"]


def test_run_records_seed_digest_features_versions_and_hyperparams(iris):
    result = iris.train("e", "classification", "random_forest", "dataset_iris", "target")
    run = run_record(iris, result["run_id"])
    assert isinstance(run["seed"], int) and run["seed"] == result["seed"]
    assert run["seed"] == iris.value("SELECT random_state FROM sqml_experiments WHERE name = 'e'")
    assert isinstance(run["data_digest"], str) and len(run["data_digest"]) == 64
    assert json.loads(run["feature_names"]) == list(IRIS_FEATURES)
    assert json.loads(run["feature_types"]) == dict.fromkeys(IRIS_FEATURES, "numeric")
    versions = json.loads(run["library_versions"])
    assert versions["scikit-learn"] == sklearn.__version__
    assert versions["numpy"] == np.__version__
    assert versions["skops"] == skops.__version__
    assert versions["sqlite_ml"] == sqlite_ml.__version__
    assert versions["python"] == sys.version.split()[0]
    assert isinstance(run["fit_time"], float) and run["fit_time"] > 0
    hyperparams = json.loads(run["hyperparams"])
    assert hyperparams["random_state"] == run["seed"]
    assert hyperparams["n_estimators"] == 100


def test_data_digest_follows_the_data(iris):
    first = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    iris.conn.execute('UPDATE dataset_iris SET "sepal width (cm)" = 3.0 WHERE rowid = 1')
    iris.conn.commit()
    second = iris.train("e", "classification", "dummy", "dataset_iris", "target")
    assert (
        run_record(iris, first["run_id"])["data_digest"]
        != (run_record(iris, second["run_id"])["data_digest"])
    )
