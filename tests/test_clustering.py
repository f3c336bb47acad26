"""Clustering: no target needed, scored by silhouette, sqml_predict returns the cluster id."""

from __future__ import annotations

import json

import pytest

from .helpers import SETOSA, VIRGINICA

ALGORITHMS = ["kmeans", "mini_batch_kmeans", "birch", "gaussian_mixture"]


@pytest.fixture
def flowers(iris):
    iris.conn.execute(
        'CREATE VIEW flowers AS SELECT "sepal length (cm)", "sepal width (cm)",'
        ' "petal length (cm)", "petal width (cm)" FROM dataset_iris'
    )
    return iris


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cluster_without_a_target(flowers, algorithm):
    hyperparams = {"n_components" if algorithm == "gaussian_mixture" else "n_clusters": 3}
    result = flowers.train_with(
        "c", "clustering", algorithm, "flowers", None, {"hyperparams": hyperparams}
    )
    assert result["deployed"] is True
    assert -1 <= result["score"] <= 1
    assert result["metrics"]["silhouette"] == result["score"]
    assert {"calinski_harabasz", "davies_bouldin"} <= set(result["metrics"])
    setosa, virginica = flowers.predict("c", SETOSA), flowers.predict("c", VIRGINICA)
    typed = flowers.value("SELECT typeof(sqml_predict('c', json_array(5.1, 3.5, 1.4, 0.2)))")
    assert typed == "integer"
    assert isinstance(setosa, int) and 0 <= setosa < 3 and setosa != virginica
    reference = flowers.reference(result["model_id"])
    assert setosa == int(reference(SETOSA))
    batch = flowers.predict_batch("c", [SETOSA, VIRGINICA])
    assert batch == [setosa, virginica]
    assert flowers.value("SELECT target FROM sqml_runs") == ""
    importance = json.loads(flowers.value("SELECT sqml_feature_importance('c')"))
    assert len(importance) == 4


def test_clustering_is_reproducible(flowers):
    first = flowers.train_with("a", "clustering", "kmeans", "flowers", None, {"random_state": 3})
    second = flowers.train_with("b", "clustering", "kmeans", "flowers", None, {"random_state": 3})
    assert first["score"] == second["score"]


def test_clustering_with_a_target_column_leaves_it_out(iris):
    result = iris.train_with(
        "c", "clustering", "kmeans", "dataset_iris", "target", {"hyperparams": {"n_clusters": 3}}
    )
    names = json.loads(
        iris.value("SELECT feature_names FROM sqml_runs WHERE id = ?", (result["run_id"],))
    )
    assert "target" not in names and len(names) == 4


def test_clustering_search_scores_with_silhouette(flowers):
    result = flowers.train_with(
        "c",
        "clustering",
        "kmeans",
        "flowers",
        None,
        {"search": "grid", "search_params": {"n_clusters": [2, 3, 4]}, "search_args": {"cv": 2}},
    )
    scorings = {r[0] for r in flowers.rows("SELECT scoring FROM sqml_search_trials")}
    assert scorings == {"silhouette"} and result["candidates"] == 3


def test_one_cluster_cannot_be_scored(flowers):
    with pytest.raises(Exception, match="fewer than 2 clusters"):
        flowers.train_with(
            "c", "clustering", "kmeans", "flowers", None, {"hyperparams": {"n_clusters": 1}}
        )


def test_clustering_errors(flowers):
    assert "'stratified'" in flowers.train_error(
        "c", "clustering", "kmeans", "flowers", None, split_strategy="stratified"
    )
    assert "unknown algorithm 'svc' for prediction type 'clustering'" in flowers.train_error(
        "c", "clustering", "svc", "flowers", None
    )
    assert "unknown hyperparameter 'n_clusters' for algorithm 'gaussian_mixture'" in (
        flowers.train_error(
            "c",
            "clustering",
            "gaussian_mixture",
            "flowers",
            None,
            {"hyperparams": {"n_clusters": 3}},
        )
    )
    assert "needs a target column" in flowers.train_error(
        "c",
        "clustering",
        "kmeans",
        "dataset_iris",
        None,
        {"preprocess": {"target": {"encode": "target"}}},
    )
    # classification still needs its target
    assert "unknown target column NULL" in flowers.train_error(
        "k", "classification", "dummy", "flowers", None
    )
