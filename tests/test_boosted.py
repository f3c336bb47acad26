"""XGBoost and LightGBM (and scikit-learn's new ensembles): trained through SQL, stored
through skops with their types on the allow-list, reproducible, never pickled."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import skops.io

from sqlite_ml.ml import persistence

from .helpers import IRIS_FEATURES

BOOSTED = ["xgboost", "lightgbm", "hist_gradient_boosting", "extra_trees"]
SMALL = {
    "xgboost": {"n_estimators": 10},
    "lightgbm": {"n_estimators": 10},
    "hist_gradient_boosting": {"max_iter": 10},
    "extra_trees": {"n_estimators": 10},
}


@pytest.mark.parametrize("algorithm", BOOSTED)
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_same_seed_same_score_and_a_faithful_round_trip(iris, kind, algorithm):
    table = "dataset_iris"
    options = {"random_state": 5, "hyperparams": SMALL[algorithm]}
    first = iris.train_with("a", kind, algorithm, table, "target", options)
    second = iris.train_with("b", kind, algorithm, table, "target", options)
    assert first["score"] == second["score"]
    assert first["metrics"] == second["metrics"]

    blob = bytes(iris.value("SELECT data FROM sqml_models WHERE id = ?", (first["model_id"],)))
    assert blob[:2] == b"PK"  # a skops zip archive, not a pickle
    assert persistence.declared_types(blob) <= persistence.ALLOWED_TYPES
    loaded = persistence.loads(blob, first["model_id"])
    rows = np.array(iris.rows("SELECT * FROM dataset_iris"), dtype=np.float64)[:, :4]
    again = persistence.loads(persistence.dumps(loaded), 0)
    assert np.array_equal(loaded.predict(rows), again.predict(rows))
    predicted = iris.predict_batch("a", rows.tolist())
    assert predicted == pytest.approx(np.asarray(loaded.predict(rows), dtype=float).tolist())


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_text_and_sparse_labels(iris, algorithm):
    """XGBoost wants labels 0..k-1; ours come back as stored, text or numbers."""
    iris.conn.execute(
        "CREATE TABLE named AS SELECT *, CASE target WHEN 0 THEN 'setosa' WHEN 1 THEN"
        " 'versicolor' ELSE 'virginica' END AS species, target * 10 + 5 AS code FROM dataset_iris"
    )
    iris.conn.commit()
    hyper = {"hyperparams": SMALL[algorithm], "features": list(IRIS_FEATURES)}
    iris.train_with("t", "classification", algorithm, "named", "species", hyper)
    iris.train_with("n", "classification", algorithm, "named", "code", hyper)
    assert iris.predict("t", [5.1, 3.5, 1.4, 0.2]) == "setosa"
    assert iris.predict("n", [6.3, 3.3, 6.0, 2.5]) == 25.0


def test_the_allow_list_still_refuses_foreign_types(iris):
    """A booster next to a type we never allowed: refused before anything is built."""
    result = iris.train_with(
        "e",
        "classification",
        "xgboost",
        "dataset_iris",
        "target",
        {"hyperparams": SMALL["xgboost"]},
    )
    estimator, _ = iris.stored_model(result["model_id"])
    import collections

    blob = skops.io.dumps({"model": estimator, "extra": collections.Counter(a=1)})
    with pytest.raises(Exception, match="allow-list \\(collections.Counter\\)"):
        persistence.loads(blob, 99)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert "schema.json" in archive.namelist()
