"""Structural checks of every stored model, run when it is loaded, before any code walks it.

skops rebuilds only allow-listed types, but it rebuilds them from arrays a database
supplies, and compiled prediction code trusts those arrays: a tree child out of range
reads outside memory, a child pointing back loops forever, a k-d tree index out of range
crashes, libsvm reads as many support vectors as its counts say. So every model family
has its checks here, one function each, and a model that fails one is refused with a
message naming the part and the check:

* preprocessing: imputer and scaler arrays of the model's width, finite;
* trees (single, forests, bagging, AdaBoost, gradient boosting): node arrays that form a
  tree (``tree_links``), split features below the width, finite thresholds and values,
  value shapes and class counts that agree with the estimator's, stage arrays of the
  shape prediction writes into;
* histogram gradient boosting: predictor nodes that form a tree, features, thresholds,
  the baseline's and the stages' shapes; categorical splits are refused (our catalogue
  never makes them);
* k-nearest neighbours: the stored search index is never used: it is rebuilt from the
  stored training points (themselves checked), so an index cannot point anywhere;
* linear models, SVMs (every array libsvm reads, against its counts), MLPs (the layer
  chain), dummies, clustering centres and mixtures: shapes, counts and finite values;
* XGBoost and LightGBM: their boosters were parsed and checked by ``boosters`` before the
  library saw them; here the scikit-learn wrapper's state is checked against that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import (
    cluster,
    dummy,
    ensemble,
    linear_model,
    mixture,
    naive_bayes,
    neighbors,
    svm,
    tree,
)
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..estimators import BirchClusters
from ..preprocessing import IMPUTE_STRATEGIES, SCALE_STRATEGIES, ColumnImputer, ColumnScaler
from . import boosters, tree_links

MAX_NODES = 1 << 26  # per tree
MAX_ESTIMATORS = 1 << 20
MAX_THREADS = boosters.MAX_THREADS
_TREE_LEAF = -1
_TREE_UNDEFINED = -2


class ModelCheckError(ValueError):
    """A stored model failed a structural check; the message names the part and check."""


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ModelCheckError(message)


def check_model(pipeline: Any, booster: boosters.Ensemble | None = None) -> None:
    """Check a loaded pipeline (impute, scale, model) completely; ``booster`` is the
    parsed XGBoost or LightGBM booster the archive held, if any."""
    _need(isinstance(pipeline, Pipeline), f"it is a {type(pipeline).__name__}, not a pipeline")
    names = [name for name, _ in pipeline.steps]
    _need(names == ["impute", "scale", "model"], f"its steps are {names[:5]}")
    width = _check_preprocessing(pipeline.steps[0][1], pipeline.steps[1][1])
    model = pipeline.steps[2][1]
    if booster is not None:
        _need(booster.n_features == width, "its booster's feature count differs")
        try:
            boosters.check_wrapper(model, booster)
        except boosters.BoosterError as error:
            raise ModelCheckError(f"its booster {error}") from None
        return
    check = _CHECKS.get(type(model))
    _need(check is not None, f"sqlite-ml has no structural check for {type(model).__name__}")
    assert check is not None
    check(model, width)


# ----------------------------------------------------------------------------- helpers


def _array(
    value: Any,
    where: str,
    shape: tuple[int | None, ...] | None = None,
    kinds: str = "f",
    finite: bool = True,
) -> np.ndarray:
    """``value`` as an ndarray of one of the numpy ``kinds`` ('f', 'i', 'u', 'b', 'O',
    'U'), of ``shape`` (None: any length there), with finite floats."""
    _need(isinstance(value, np.ndarray), f"{where} is not an array")
    assert isinstance(value, np.ndarray)
    _need(value.dtype.kind in kinds, f"{where} has dtype {value.dtype}")
    if shape is not None:
        _need(
            value.ndim == len(shape)
            and all(
                want is None or got == want for got, want in zip(value.shape, shape, strict=True)
            ),
            f"{where} has shape {value.shape}, not {shape}",
        )
    if finite and value.dtype.kind == "f":
        _need(bool(np.isfinite(value).all()), f"{where} holds a value that is not finite")
    return value


def _integer(value: Any, where: str, low: int, high: int) -> int:
    _need(
        isinstance(value, (int, np.integer)) and not isinstance(value, bool),
        f"{where} is not an integer",
    )
    _need(low <= int(value) <= high, f"{where} is {value}, outside [{low}, {high}]")
    return int(value)


def _number(value: Any, where: str) -> float:
    _need(
        isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool),
        f"{where} is not a number",
    )
    _need(math.isfinite(float(value)), f"{where} is not finite")
    return float(value)


def _features_in(model: Any, width: int) -> None:
    if "n_features_in_" in model.__dict__:
        _need(
            model.__dict__["n_features_in_"] == width,
            f"{type(model).__name__} takes {model.__dict__['n_features_in_']} features, "
            f"the pipeline {width}",
        )


def _classes(model: Any, where: str = "the model") -> int:
    classes = _array(getattr(model, "classes_", None), f"{where}'s classes", (None,), "fiuUOb")
    _need(len(classes) >= 1, f"{where} has no class")
    if "n_classes_" in model.__dict__ and np.ndim(model.__dict__["n_classes_"]) == 0:
        _need(model.__dict__["n_classes_"] == len(classes), f"{where}'s class count differs")
    return len(classes)


def _one_of(value: Any, allowed: tuple[Any, ...], where: str) -> None:
    _need(
        isinstance(value, (str, type(None))) and value in allowed,
        f"{where} is {str(value)[:40]!r}, not one of {allowed}",
    )


def _threads(value: Any, where: str) -> None:
    _need(
        value is None or (isinstance(value, int) and -1 <= value <= MAX_THREADS),
        f"{where} is not a thread count",
    )


# ----------------------------------------------------------------------- preprocessing


def _check_preprocessing(impute: Any, scale: Any) -> int:
    """The imputer's and scaler's arrays, all of one width; returns that width."""
    if isinstance(impute, SimpleImputer) and type(impute) is SimpleImputer:
        fill = _array(impute.__dict__.get("statistics_"), "the imputer's values", (None,))
        _need(impute.add_indicator is False, "the imputer adds indicator columns")
        _need(
            isinstance(impute.missing_values, float) and math.isnan(impute.missing_values),
            "the imputer's missing value is not NaN",
        )
    else:
        _need(type(impute) is ColumnImputer, f"the impute step is a {type(impute).__name__}")
        fill = _array(impute.__dict__.get("statistics_"), "the imputer's values", (None,))
        _strategies(impute.strategies, len(fill), IMPUTE_STRATEGIES, "imputer")
    width = len(fill)
    _need(1 <= width <= boosters.MAX_FEATURES, f"the pipeline has {width} features")
    _features_in(impute, width)
    if type(scale) is StandardScaler:
        _need(scale.with_mean is True and scale.with_std is True, "the scaler skips a step")
    else:
        _need(type(scale) is ColumnScaler, f"the scale step is a {type(scale).__name__}")
        _strategies(scale.strategies, width, SCALE_STRATEGIES, "scaler")
    _array(scale.__dict__.get("mean_"), "the scaler's centres", (width,))
    divisors = _array(scale.__dict__.get("scale_"), "the scaler's divisors", (width,))
    _need(bool((divisors != 0).all()), "the scaler divides by zero")
    _features_in(scale, width)
    return width


def _strategies(value: Any, width: int, allowed: tuple[str, ...], what: str) -> None:
    _need(
        isinstance(value, tuple) and len(value) == width and all(v in allowed for v in value),
        f"the {what}'s per-column strategies are malformed",
    )


# ------------------------------------------------------------------------------ trees

_SINGLE_TREES = (
    tree.DecisionTreeClassifier,
    tree.DecisionTreeRegressor,
    tree.ExtraTreeClassifier,
    tree.ExtraTreeRegressor,
)


def _check_sklearn_tree(model: Any, width: int, where: str, n_classes: int | None) -> None:
    """One fitted scikit-learn tree: ``n_classes`` None for a regression tree."""
    _need(type(model) in _SINGLE_TREES, f"{where} is a {type(model).__name__}, not a tree")
    _features_in(model, width)
    _need(model.__dict__.get("n_outputs_") == 1, f"{where} has several outputs")
    structure = model.__dict__.get("tree_")
    _need(type(structure).__name__ == "Tree", f"{where} has no tree structure")
    # node_count is stored apart from the node array it indexes: reading the arrays with a
    # node_count beyond the array (the capacity) would read outside it.
    count, capacity = structure.node_count, structure.capacity
    _need(1 <= count == capacity <= MAX_NODES, f"{where} counts {count} nodes in {capacity}")
    _need(structure.n_features == width, f"{where} splits {structure.n_features} features")
    _need(structure.n_outputs == 1, f"{where} has several outputs")
    classes = np.asarray(structure.n_classes)
    if n_classes is None:
        _need(classes.tolist() == [1], f"{where} is not a regression tree")
    else:
        _need(classes.tolist() == [n_classes], f"{where} separates {classes.tolist()} classes")
        _need(model.__dict__.get("n_classes_") == n_classes, f"{where}'s class count differs")
        _need(len(np.asarray(model.__dict__.get("classes_"))) == n_classes, f"{where}'s classes")
    _need(0 <= structure.max_depth < count, f"{where}'s depth is {structure.max_depth}")
    left, right = structure.children_left, structure.children_right
    found = tree_links.problem(left, right)
    _need(found is None, f"{where} {found}")
    inner = left != _TREE_LEAF
    feature = structure.feature
    _need(
        bool(((feature[inner] >= 0) & (feature[inner] < width)).all()),
        f"{where} splits on a feature that is not one of the {width}",
    )
    _need(bool((feature[~inner] == _TREE_UNDEFINED).all()), f"{where} has a leaf that splits")
    _need(
        bool(np.isfinite(structure.threshold[inner]).all()),
        f"{where} has a threshold that is not finite",
    )
    _need(bool(np.isfinite(structure.value).all()), f"{where} has a value that is not finite")


def _check_decision_tree(model: Any, width: int) -> None:
    n_classes = _classes(model) if hasattr(model, "classes_") else None
    _check_sklearn_tree(model, width, "the tree", n_classes)


def _estimators(model: Any, where: str) -> list[Any]:
    found = model.__dict__.get("estimators_")
    _need(isinstance(found, list), f"{where}'s estimators are not a list")
    _need(1 <= len(found) <= MAX_ESTIMATORS, f"{where} has {len(found)} estimators")
    return found


def _check_forest(model: Any, width: int) -> None:
    _features_in(model, width)
    _need(model.__dict__.get("n_outputs_") == 1, "the forest has several outputs")
    n_classes = _classes(model) if hasattr(model, "classes_") else None
    for i, member in enumerate(_estimators(model, "the forest")):
        _check_sklearn_tree(member, width, f"tree {i}", n_classes)


def _check_bagging(model: Any, width: int) -> None:
    _features_in(model, width)
    members = _estimators(model, "the bagging ensemble")
    subsets = model.__dict__.get("estimators_features_")
    _need(
        isinstance(subsets, list) and len(subsets) == len(members),
        "the bagging ensemble's feature subsets do not match its trees",
    )
    classifier = hasattr(model, "classes_")
    n_classes = _classes(model) if classifier else None
    _threads(model.n_jobs, "n_jobs")
    for i, (member, subset) in enumerate(zip(members, subsets, strict=True)):
        columns = _array(subset, f"tree {i}'s features", (None,), "iu")
        _need(
            len(columns) >= 1 and bool(((columns >= 0) & (columns < width)).all()),
            f"tree {i} reads a feature that is not one of the {width}",
        )
        if classifier:
            own = _array(member.__dict__.get("classes_"), f"tree {i}'s classes", (None,), "iuf")
            assert n_classes is not None
            _need(
                bool(((own >= 0) & (own < n_classes) & (own == np.floor(own))).all()),
                f"tree {i}'s classes are not positions of the ensemble's",
            )
            _check_sklearn_tree(member, len(columns), f"tree {i}", len(own))
        else:
            _check_sklearn_tree(member, len(columns), f"tree {i}", None)


def _check_ada_boost(model: Any, width: int) -> None:
    _features_in(model, width)
    members = _estimators(model, "AdaBoost")
    weights = _array(model.__dict__.get("estimator_weights_"), "AdaBoost's weights", (None,))
    _need(len(weights) >= len(members), "AdaBoost has fewer weights than trees")
    if hasattr(model, "classes_"):
        n_classes = _classes(model)
        labels = set(np.asarray(model.classes_).tolist())
        for i, member in enumerate(members):
            own = np.asarray(member.__dict__.get("classes_", []))
            _need(set(own.tolist()) <= labels, f"tree {i} predicts classes AdaBoost lacks")
            _check_sklearn_tree(member, width, f"tree {i}", len(own))
        _need(n_classes >= 2, "AdaBoost has fewer than two classes")
    else:
        for i, member in enumerate(members):
            _check_sklearn_tree(member, width, f"tree {i}", None)


def _check_gradient_boosting(model: Any, width: int) -> None:
    """predict_stages (compiled) adds stage k's tree into column k of an array whose width
    comes from the loss: the stage array's shape must be that width."""
    _features_in(model, width)
    stages = _array(model.__dict__.get("estimators_"), "the stages", (None, None), "O", False)
    count = _integer(model.__dict__.get("n_estimators_"), "the stage count", 1, MAX_ESTIMATORS)
    _need(stages.shape[0] == count, "the stage array does not hold every stage")
    _number(model.learning_rate, "the learning rate")
    loss = type(model.__dict__.get("_loss")).__name__
    if hasattr(model, "classes_"):
        n_classes = _classes(model)
        _need(n_classes >= 2, "gradient boosting has fewer than two classes")
        per_stage = 1 if n_classes == 2 else n_classes
        expected_loss = "HalfBinomialLoss" if n_classes == 2 else "HalfMultinomialLoss"
        _need(loss == expected_loss, f"its loss is {loss}, not {expected_loss}")
        if n_classes > 2:
            _need(getattr(model._loss, "n_classes", None) == n_classes, "the loss's classes")
    else:
        per_stage = 1
        _need(loss == "HalfSquaredError", f"its loss is {loss}")
    _need(stages.shape[1] == per_stage, f"the stages hold {stages.shape[1]} trees, not {per_stage}")
    _need(model.__dict__.get("n_trees_per_iteration_") == per_stage, "the trees per stage")
    init = model.__dict__.get("init_")
    if isinstance(init, str):
        _need(init == "zero", f"the initial estimator is {init[:20]!r}")
    else:
        _need(
            type(init) in (dummy.DummyClassifier, dummy.DummyRegressor),
            f"the initial estimator is a {type(init).__name__}",
        )
        _check_dummy(init, width)
        if hasattr(model, "classes_"):  # fitted on the class positions, not the labels
            _need(
                len(np.asarray(init.classes_)) == len(np.asarray(model.classes_)),
                "the initial estimator's class count differs",
            )
    for (i, k), member in np.ndenumerate(stages):
        _check_sklearn_tree(member, width, f"the tree of stage {i}, output {k}", None)


def _check_hist_gradient_boosting(model: Any, width: int) -> None:
    _features_in(model, width)
    _need(model.__dict__.get("_n_features") == width, "its feature count differs")
    per_iteration = _integer(
        model.__dict__.get("n_trees_per_iteration_"), "its trees per iteration", 1, 1 << 16
    )
    if hasattr(model, "classes_"):
        n_classes = _classes(model)
        _need(per_iteration == (1 if n_classes == 2 else n_classes), "its trees per iteration")
        encoder = model.__dict__.get("_label_encoder")
        _need(len(np.asarray(getattr(encoder, "classes_", []))) == n_classes, "its label encoder")
    else:
        _need(per_iteration == 1, "a regressor with several trees per iteration")
    _array(model.__dict__.get("_baseline_prediction"), "its baseline", (1, per_iteration))
    for key in ("is_categorical_", "_preprocessor", "_is_categorical_remapped"):
        _need(
            model.__dict__.get(key) is None, "it has categorical features, which sqlite-ml refuses"
        )
    mapper = model.__dict__.get("_bin_mapper")
    _need(type(mapper).__name__ == "_BinMapper", "it has no bin mapper")
    categorical = mapper.__dict__.get("is_categorical_")
    _need(
        categorical is None or not np.asarray(categorical).any(),
        "its bin mapper has categorical features, which sqlite-ml refuses",
    )
    _need(
        np.asarray(categorical).shape in ((), (width,)) if categorical is not None else True,
        "its bin mapper's categorical flags",
    )
    iterations = model.__dict__.get("_predictors")
    _need(
        isinstance(iterations, list) and 1 <= len(iterations) <= MAX_ESTIMATORS,
        "its predictors are not a list",
    )
    for i, predictors in enumerate(iterations):
        _need(
            isinstance(predictors, list) and len(predictors) == per_iteration,
            f"iteration {i} does not have {per_iteration} trees",
        )
        for k, predictor in enumerate(predictors):
            _check_hgb_predictor(predictor, width, f"the tree of iteration {i}, output {k}")


def _check_hgb_predictor(predictor: Any, width: int, where: str) -> None:
    _need(type(predictor).__name__ == "TreePredictor", f"{where} is not a tree predictor")
    nodes = predictor.__dict__.get("nodes")
    _need(isinstance(nodes, np.ndarray) and nodes.ndim == 1, f"{where} has no node array")
    names = set(nodes.dtype.names or ())
    fields = {
        "value",
        "feature_idx",
        "num_threshold",
        "missing_go_to_left",
        "left",
        "right",
        "is_leaf",
        "is_categorical",
    }
    _need(fields <= names, f"{where}'s nodes lack fields")
    _need(1 <= len(nodes) <= MAX_NODES, f"{where} has {len(nodes)} nodes")
    _need(nodes.flags.c_contiguous, f"{where}'s nodes are not contiguous")
    leaf = nodes["is_leaf"].astype(np.int64)
    _need(bool(((leaf == 0) | (leaf == 1)).all()), f"{where} has a malformed leaf flag")
    is_leaf = leaf == 1
    _need(
        not nodes["is_categorical"].any(),
        f"{where} has a categorical split, which sqlite-ml refuses",
    )
    left = np.where(is_leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(is_leaf, -1, nodes["right"].astype(np.int64))
    found = tree_links.problem(left, right)
    _need(found is None, f"{where} {found}")
    features = nodes["feature_idx"][~is_leaf]
    _need(
        bool(((features >= 0) & (features < width)).all()),
        f"{where} splits on a feature that is not one",
    )
    _need(not np.isnan(nodes["num_threshold"][~is_leaf]).any(), f"{where} has a NaN threshold")
    _need(
        bool(np.isfinite(nodes["value"][is_leaf]).all()), f"{where} has a value that is not finite"
    )
    for key in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
        bitsets = predictor.__dict__.get(key)
        _need(isinstance(bitsets, np.ndarray) and bitsets.ndim == 2, f"{where}'s {key}")


# ------------------------------------------------------------------------- neighbours


_KNN_METRICS = ("minkowski", "euclidean", "manhattan", "chebyshev")


def _check_knn(model: Any, width: int) -> None:
    """The stored search index is never trusted: the model is refitted from its stored
    training points, which rebuilds the index (and every derived array) from them."""
    _features_in(model, width)
    points = _array(model.__dict__.get("_fit_X"), "the stored training points", (None, width))
    n = len(points)
    _need(1 <= n <= 1 << 26, f"it stores {n} training points")
    stored = model.__dict__.get("_y")
    _integer(model.n_neighbors, "n_neighbors", 1, n)
    _integer(model.leaf_size, "leaf_size", 1, 1 << 20)
    _one_of(model.weights, ("uniform", "distance"), "weights")
    _one_of(model.algorithm, ("auto", "ball_tree", "kd_tree", "brute"), "the search algorithm")
    _one_of(model.metric, _KNN_METRICS, "the metric")
    _need(model.metric_params is None, "the metric has parameters")
    _number(model.p, "the Minkowski power")
    _need(model.p >= 1, "the Minkowski power is below 1")
    _threads(model.n_jobs, "n_jobs")
    if isinstance(model, neighbors.KNeighborsClassifier):
        n_classes = _classes(model)
        codes = _array(stored, "the stored labels", (n,), "iu")
        _need(bool(((codes >= 0) & (codes < n_classes)).all()), "a stored label is not a class")
        labels = np.asarray(model.classes_)[codes]
    else:
        labels = _array(stored, "the stored targets", (n,))
    model.fit(points, labels)


# ------------------------------------------------------------------------ linear models


def _check_linear_classifier(model: Any, width: int) -> None:
    _features_in(model, width)
    n_classes = _classes(model)
    _need(n_classes >= 2, "the classifier has fewer than two classes")
    rows = 1 if n_classes == 2 else n_classes
    coef = _array(model.__dict__.get("coef_"), "the coefficients", None)
    _need(
        coef.shape in ((rows, width),) + (((width,),) if rows == 1 else ()),
        f"the coefficients have shape {coef.shape}",
    )
    intercept = np.atleast_1d(np.asarray(model.__dict__.get("intercept_"), dtype=object))
    _need(len(intercept) == rows, "the intercepts do not match the coefficients")
    _array(np.asarray(model.intercept_, dtype=np.float64).reshape(-1), "the intercepts", (rows,))
    binarizer = model.__dict__.get("_label_binarizer")
    if binarizer is not None:
        _need(
            np.array_equal(np.asarray(binarizer.classes_), np.asarray(model.classes_)),
            "the label binarizer's classes differ",
        )


def _check_linear_regressor(model: Any, width: int) -> None:
    _features_in(model, width)
    coef = _array(model.__dict__.get("coef_"), "the coefficients", None)
    _need(coef.shape in ((width,), (1, width)), f"the coefficients have shape {coef.shape}")
    intercept = np.asarray(model.__dict__.get("intercept_"))
    _need(intercept.size == 1 and intercept.dtype.kind in "fi", "the intercept is not one number")
    _need(bool(np.isfinite(intercept).all()), "the intercept is not finite")


# ------------------------------------------------------------------------------- SVMs

_KERNELS = ("linear", "poly", "rbf", "sigmoid")


def _check_svm(model: Any, width: int) -> None:
    """Every array libsvm's predict reads, against the counts it trusts."""
    _features_in(model, width)
    classifier = isinstance(model, svm.SVC)
    _one_of(
        getattr(model, "_impl", None),
        ("c_svc",) if classifier else ("epsilon_svr",),
        "the SVM type",
    )
    _one_of(model.kernel, _KERNELS, "the kernel")
    _need(model.__dict__.get("_sparse") is False, "the SVM is sparse")
    _need(model.__dict__.get("fit_status_") == 0, "the SVM did not fit")
    _integer(model.degree, "the degree", 0, 100)
    _number(model.coef0, "coef0")
    _number(model.cache_size, "the cache size")
    _need(0 < model.cache_size <= 1 << 16, "the cache size is out of range")
    gamma = _number(model.__dict__.get("_gamma"), "gamma")
    _need(gamma >= 0, "gamma is negative")
    vectors = _array(model.__dict__.get("support_vectors_"), "the support vectors", (None, width))
    count = len(vectors)
    _need(1 <= count <= 1 << 26, f"it has {count} support vectors")
    _array(model.__dict__.get("support_"), "the support indices", (count,), "i")
    shape_fit = model.__dict__.get("shape_fit_")
    _need(
        isinstance(shape_fit, tuple) and len(shape_fit) == 2 and shape_fit[1] == width, "shape_fit_"
    )
    n_support = _array(model.__dict__.get("_n_support"), "the support counts", (None,), "i")
    if classifier:
        n_classes = _classes(model)
        _need(n_classes >= 2, "the SVC has fewer than two classes")
        _need(len(n_support) == n_classes, "the support counts do not match the classes")
        _need(
            bool((n_support >= 0).all()) and int(n_support.sum()) == count,
            "the support counts do not add up",
        )
        _array(model.__dict__.get("class_weight_"), "the class weights", (n_classes,))
        _one_of(model.decision_function_shape, ("ovr", "ovo"), "decision_function_shape")
    else:
        n_classes = 2  # libsvm's regression: one decision, counts unused
        _need(len(n_support) == 2, "the support counts")
    pairs = n_classes * (n_classes - 1) // 2
    for key in ("_dual_coef_", "dual_coef_"):
        _array(model.__dict__.get(key), "the dual coefficients", (n_classes - 1, count))
    for key in ("_intercept_", "intercept_"):
        _array(model.__dict__.get(key), "the intercepts", (pairs,))
    for key in ("_probA", "_probB"):
        probabilities = _array(model.__dict__.get(key), "the probability calibration", (None,))
        _need(len(probabilities) in (0, pairs), "the probability calibration has a wrong length")


# ------------------------------------------------------------------------------- MLPs

_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


def _check_mlp(model: Any, width: int) -> None:
    _features_in(model, width)
    weights, biases = model.__dict__.get("coefs_"), model.__dict__.get("intercepts_")
    _need(
        isinstance(weights, list)
        and isinstance(biases, list)
        and 1 <= len(weights) == len(biases) <= 1000,
        "the layers are malformed",
    )
    inputs = width
    for i, (layer, bias) in enumerate(zip(weights, biases, strict=True)):
        layer = _array(layer, f"layer {i}'s weights", (inputs, None))
        _array(bias, f"layer {i}'s biases", (layer.shape[1],))
        inputs = layer.shape[1]
    _need(model.__dict__.get("n_layers_") == len(weights) + 1, "the layer count differs")
    _need(model.__dict__.get("n_outputs_") == inputs, "the output count differs")
    _one_of(model.activation, _ACTIVATIONS, "the activation")
    out = model.__dict__.get("out_activation_")
    if isinstance(model, MLPClassifier):
        n_classes = _classes(model)
        _need(n_classes >= 2, "the classifier has fewer than two classes")
        expected = ("logistic", 1) if n_classes == 2 else ("softmax", n_classes)
        _need((out, inputs) == expected, "the output layer does not match the classes")
        binarizer = model.__dict__.get("_label_binarizer")
        _need(
            np.array_equal(
                np.asarray(getattr(binarizer, "classes_", [])), np.asarray(model.classes_)
            ),
            "the label binarizer's classes differ",
        )
    else:
        _need((out, inputs) == ("identity", 1), "the output layer is not one identity unit")


# ---------------------------------------------------------------------------- dummies


def _check_dummy(model: Any, width: int) -> None:
    _features_in(model, width)
    _need(model.__dict__.get("n_outputs_") == 1, "the dummy has several outputs")
    if isinstance(model, dummy.DummyClassifier):
        n_classes = _classes(model)
        _array(model.__dict__.get("class_prior_"), "the class priors", (n_classes,))
        _one_of(
            model.__dict__.get("_strategy"),
            ("most_frequent", "prior", "stratified", "uniform", "constant"),
            "the strategy",
        )
        _need(model.__dict__.get("sparse_output_") is False, "the dummy's output is sparse")
    else:
        _array(model.__dict__.get("constant_"), "the constant", (1, 1))


# ------------------------------------------------------------------------ naive Bayes


def _check_naive_bayes(model: Any, width: int) -> None:
    _features_in(model, width)
    n_classes = _classes(model)
    if isinstance(model, naive_bayes.GaussianNB):
        _array(model.__dict__.get("theta_"), "the class means", (n_classes, width))
        variances = _array(model.__dict__.get("var_"), "the class variances", (n_classes, width))
        _need(bool((variances > 0).all()), "a class variance is not positive")
        _array(model.__dict__.get("class_prior_"), "the class priors", (n_classes,))
    else:
        _array(
            model.__dict__.get("feature_log_prob_"),
            "the feature log-probabilities",
            (n_classes, width),
        )
        _array(model.__dict__.get("class_log_prior_"), "the class log-priors", (n_classes,))


# ------------------------------------------------------------------------- clustering


def _check_kmeans(model: Any, width: int) -> None:
    _features_in(model, width)
    centres = _array(model.__dict__.get("cluster_centers_"), "the cluster centres", (None, width))
    _need(1 <= len(centres) <= 1 << 20, f"it has {len(centres)} clusters")
    _need(centres.dtype == np.float64 and centres.flags.c_contiguous, "the centres' layout")
    _integer(model.__dict__.get("_n_threads"), "its thread count", 1, MAX_THREADS)


def _check_birch(model: Any, width: int) -> None:
    _features_in(model, width)
    centres = _array(
        model.__dict__.get("subcluster_centers_"), "the subcluster centres", (None, width)
    )
    count = len(centres)
    _need(count >= 1, "it has no subcluster")
    _array(model.__dict__.get("subcluster_labels_"), "the subcluster labels", (count,), "iu")
    _array(model.__dict__.get("subcluster_norms_"), "the subcluster norms", (count,))


def _check_gaussian_mixture(model: Any, width: int) -> None:
    _features_in(model, width)
    weights = _array(model.__dict__.get("weights_"), "the mixture weights", (None,))
    k = len(weights)
    _need(k >= 1, "the mixture has no component")
    _array(model.__dict__.get("means_"), "the means", (k, width))
    shapes = {
        "full": (k, width, width),
        "tied": (width, width),
        "diag": (k, width),
        "spherical": (k,),
    }
    kind = model.covariance_type
    _need(kind in shapes, f"the covariance type is {str(kind)[:20]!r}")
    _array(model.__dict__.get("precisions_cholesky_"), "the precisions", shapes[kind])


# ------------------------------------------------------------------------------ table

_CHECKS: dict[type[Any], Callable[[Any, int], None]] = {
    **dict.fromkeys(_SINGLE_TREES, _check_decision_tree),
    **dict.fromkeys(
        (
            ensemble.RandomForestClassifier,
            ensemble.RandomForestRegressor,
            ensemble.ExtraTreesClassifier,
            ensemble.ExtraTreesRegressor,
        ),
        _check_forest,
    ),
    ensemble.BaggingClassifier: _check_bagging,
    ensemble.BaggingRegressor: _check_bagging,
    ensemble.AdaBoostClassifier: _check_ada_boost,
    ensemble.AdaBoostRegressor: _check_ada_boost,
    ensemble.GradientBoostingClassifier: _check_gradient_boosting,
    ensemble.GradientBoostingRegressor: _check_gradient_boosting,
    ensemble.HistGradientBoostingClassifier: _check_hist_gradient_boosting,
    ensemble.HistGradientBoostingRegressor: _check_hist_gradient_boosting,
    neighbors.KNeighborsClassifier: _check_knn,
    neighbors.KNeighborsRegressor: _check_knn,
    **dict.fromkeys(
        (
            linear_model.LogisticRegression,
            linear_model.SGDClassifier,
            linear_model.RidgeClassifier,
            linear_model.RidgeClassifierCV,
            linear_model.Perceptron,
        ),
        _check_linear_classifier,
    ),
    **dict.fromkeys(
        (
            linear_model.LinearRegression,
            linear_model.SGDRegressor,
            linear_model.Ridge,
            linear_model.RidgeCV,
            linear_model.ElasticNet,
            linear_model.ElasticNetCV,
            linear_model.Lasso,
            linear_model.LassoCV,
        ),
        _check_linear_regressor,
    ),
    naive_bayes.GaussianNB: _check_naive_bayes,
    naive_bayes.MultinomialNB: _check_naive_bayes,
    svm.SVC: _check_svm,
    svm.SVR: _check_svm,
    MLPClassifier: _check_mlp,
    MLPRegressor: _check_mlp,
    dummy.DummyClassifier: _check_dummy,
    dummy.DummyRegressor: _check_dummy,
    cluster.KMeans: _check_kmeans,
    cluster.MiniBatchKMeans: _check_kmeans,
    BirchClusters: _check_birch,
    mixture.GaussianMixture: _check_gaussian_mixture,
}
