"""Compiled predictors: a fitted pipeline turned into the cheapest exact prediction path.

scikit-learn validates its input on every call (about 2.5 ms per single-row predict for
an impute + scale + logistic regression pipeline here, most of it in input checks). The
input is already checked by the feature schema, so a predictor applies the imputer and
the scaler with plain numpy and, for linear models, evaluates ``X @ coef.T + intercept``
itself: the same operations in the same order as scikit-learn, so the results are the
same numbers. Other models get the preprocessed matrix through their own ``predict``
with scikit-learn's repeated validation switched off.

One row at a time (``compile_row_predictor``), numpy's per-call overhead dominates, so:

- linear models are evaluated in plain Python with the imputer and scaler folded into
  the weights; a result too close to a tie (or, for regression, to zero) to be sure of
  the same answer to 1e-9 goes through the matrix path instead;
- decision trees, random forests, extra trees and gradient boosting are compiled into
  flat lists walked in plain Python, with scikit-learn's own arithmetic: inputs rounded
  to float32 as its trees see them, leaf values summed in the same order;
- anything else goes through the matrix path.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sklearn
from sklearn import dummy
from sklearn.pipeline import Pipeline

from . import families, threads
from .labels import CLUSTER_LABELS, NUMERIC_LABELS, TEXT_LABELS

Predictor = Callable[[np.ndarray], np.ndarray]
# A row of floats (NaN where a value is missing) -> the prediction as an SQL value.
RowPredictor = Callable[[Sequence[float]], Any]
# Raw values (floats, ints, anything else) -> the prediction, or None when this quick
# path cannot vouch for the exact answer (missing or non-numeric values, near ties).
QuickPredictor = Callable[[Sequence[Any]], Any]

# Plain-Python evaluation of one row beats numpy's per-call overhead up to about this many
# multiply-adds (classes x features); larger models go through the matrix path.
_ROW_PATH_MAX_TERMS = 400
# Unit roundoff of float64. Folded and scikit-learn's arithmetic each differ from the
# exact value by at most about (terms + 3) * eps * (sum of the terms' magnitudes).
_EPS = 2.0**-53


def compile_predictor(pipeline: Pipeline) -> Predictor:
    steps = dict(pipeline.steps)
    statistics = np.asarray(steps["impute"].statistics_, dtype=np.float64)
    center = np.asarray(steps["scale"].mean_, dtype=np.float64)
    scale = np.asarray(steps["scale"].scale_, dtype=np.float64)
    model = steps["model"]

    def preprocess(matrix: np.ndarray) -> np.ndarray:
        x = np.array(matrix, dtype=np.float64)  # a copy: the caller's matrix stays as it was
        missing = np.isnan(x)
        if missing.any():
            x[missing] = np.broadcast_to(statistics, x.shape)[missing]
        x -= center
        x /= scale
        return x

    if type(model) in families.LINEAR_CLASSIFIERS:
        return _linear_classifier(model, preprocess)
    if type(model) in families.LINEAR_REGRESSORS:
        return _linear_regressor(model, preprocess)

    def predict(matrix: np.ndarray) -> np.ndarray:
        x = preprocess(matrix)
        with (
            sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
            threads.predicting(len(x)),
        ):
            return np.asarray(model.predict(x))

    return predict


def _linear_classifier(model: Any, preprocess: Callable[[np.ndarray], np.ndarray]) -> Predictor:
    # RidgeClassifier keeps a 1-D coef_ for two classes; the others a (1, p) or (k, p) one.
    coef_t = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64)).T
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    classes = np.asarray(model.classes_)

    def predict(matrix: np.ndarray) -> np.ndarray:
        scores = preprocess(matrix) @ coef_t + intercept
        if scores.shape[1] == 1:
            return classes[(scores[:, 0] > 0).astype(int)]
        return classes[scores.argmax(axis=1)]

    return predict


def _linear_regressor(model: Any, preprocess: Callable[[np.ndarray], np.ndarray]) -> Predictor:
    coef_t = np.asarray(model.coef_, dtype=np.float64).T
    intercept = np.asarray(model.intercept_, dtype=np.float64)

    def predict(matrix: np.ndarray) -> np.ndarray:
        values = preprocess(matrix) @ coef_t + intercept
        return values.reshape(len(matrix))

    return predict


def sql_value(label_kind: str) -> Callable[[Any], Any]:
    """How a prediction becomes an SQL value: a TEXT label, an INTEGER cluster id, or a
    REAL."""
    if label_kind == TEXT_LABELS:
        return str
    return int if label_kind == CLUSTER_LABELS else float


def compile_row_predictor(
    pipeline: Pipeline, exact: Predictor, label_kind: str = NUMERIC_LABELS
) -> tuple[RowPredictor, QuickPredictor | None]:
    """The exact one-row predictor, plus (linear models) a quick path for raw values."""
    as_sql = sql_value(label_kind)

    def through_matrix(row: Sequence[float]) -> Any:
        return as_sql(exact(np.array([row], dtype=np.float64))[0])

    steps = dict(pipeline.steps)
    model = steps["model"]
    kind = type(model)
    if kind in families.LINEAR_CLASSIFIERS + families.LINEAR_REGRESSORS:
        quick = _linear_quick(pipeline, as_sql)
        if quick is None:
            return through_matrix, None

        def linear_row(row: Sequence[float]) -> Any:
            result = quick(row)
            return through_matrix(row) if result is None else result

        return linear_row, quick
    walker = _tree_walker(model, as_sql)
    if walker is None:
        return through_matrix, None
    prepare = _tree_inputs(pipeline)

    def tree_row(row: Sequence[float]) -> Any:
        return walker(prepare(row))

    return tree_row, None


def _linear_quick(pipeline: Pipeline, as_sql: Callable[[Any], Any]) -> QuickPredictor | None:
    """Folded weights in plain Python; None (the caller goes exact) when unsure."""
    steps = dict(pipeline.steps)
    model = steps["model"]
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    if coef.size > _ROW_PATH_MAX_TERMS:
        return None
    scale = np.asarray(steps["scale"].scale_, dtype=np.float64)
    center = np.asarray(steps["scale"].mean_, dtype=np.float64)
    folded = coef / scale
    intercepts = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    weights = [[float(v) for v in row] for row in folded]
    biases = [float(b) for b in intercepts - folded @ center]
    fill = [float(value) for value in steps["impute"].statistics_]
    # Both computations are within (terms) * eps * M of the exact value, where
    # M <= per_x * max|x| + constant: a result further than that from the decision is safe.
    terms = coef.shape[1] + 3
    per_x = float(np.abs(folded).sum(axis=1).max())
    constant = float((np.abs(folded) @ np.abs(center) + np.abs(intercepts)).max())
    mul = operator.mul

    def filled(x: Sequence[Any]) -> list[Any] | None:
        """NaN (missing) replaced by the imputer's value; None when there is no NaN."""
        if not any(v != v for v in x):
            return None
        return [f if v != v else v for v, f in zip(x, fill, strict=True)]

    classes = None
    if hasattr(model, "classes_"):
        classes = [as_sql(c) for c in np.asarray(model.classes_)]
    if classes is None:
        # Equal to 1e-9 relative: the difference of two results within the error
        # bound must stay under 1e-9 of the value (with a factor 4 to spare).
        tolerance = 4 * 2 * terms * _EPS * 1e9
    else:
        tolerance = 2 * 2 * terms * _EPS * 4  # a sign (an order) no rounding can flip
    native = _native_linear(weights, biases, fill, classes, tolerance, per_x, constant)
    if native is not None:
        return native
    if len(weights) == 1:
        (w,), (b,) = weights, biases
        if classes is None:
            finish: Callable[[float], Any] = float
        else:
            negative, positive = classes[0], classes[1]

            def finish(score: float) -> Any:
                return positive if score > 0 else negative

        def decide(x: Sequence[Any]) -> Any:
            try:
                score = sum(map(mul, w, x), b)
            except (TypeError, OverflowError):
                return None  # NULL, text, a huge integer: the encoder decides
            if score - score != 0:
                x = filled(x)  # type: ignore[assignment]
                if x is None:
                    return None
                score = sum(map(mul, w, x), b)
                if score - score != 0:
                    return None
            high, low = max(x), min(x)
            if abs(score) > tolerance * (per_x * (high if high > -low else -low) + constant):
                return finish(score)
            return None

        return decide
    assert classes is not None

    pairs = list(zip(weights, biases, strict=True))

    def classify(x: Sequence[Any]) -> Any:
        try:
            scores = [sum(map(mul, w, x), b) for w, b in pairs]
        except (TypeError, OverflowError):
            return None
        total = sum(scores)
        if total - total != 0:
            x = filled(x)  # type: ignore[assignment]
            if x is None:
                return None
            scores = [sum(map(mul, w, x), b) for w, b in pairs]
            total = sum(scores)
            if total - total != 0:
                return None
        best = max(range(len(scores)), key=scores.__getitem__)
        runner_up = max(s for i, s in enumerate(scores) if i != best)
        high, low = max(x), min(x)
        if scores[best] - runner_up > 2 * tolerance * (
            per_x * (high if high > -low else -low) + constant
        ):
            return classes[best]
        return None

    return classify


# Whether linear rows go through the C twin of the quick path below (the same
# arithmetic in the same order, without the interpreter); tests switch it off to compare.
NATIVE_QUICK = True


def _native_linear(
    weights: list[list[float]],
    biases: list[float],
    fill: list[float],
    classes: list[Any] | None,
    tolerance: float,
    per_x: float,
    constant: float,
) -> QuickPredictor | None:
    """The C quick path (``_native.LinearQuick``), None when the extension is not built."""
    if not NATIVE_QUICK:
        return None
    try:
        from .._native import LinearQuick
    except ImportError:
        return None
    flat = [value for row in weights for value in row]
    return LinearQuick(
        flat,
        biases,
        fill,
        None if classes is None else tuple(classes),
        tolerance,
        per_x,
        constant,
    )


def _tree_inputs(pipeline: Pipeline) -> Callable[[Sequence[float]], list[float]]:
    """Impute, scale, then round to float32, exactly as the pipeline feeds its trees."""
    steps = dict(pipeline.steps)
    columns = list(
        zip(
            (float(v) for v in steps["impute"].statistics_),
            (float(v) for v in steps["scale"].mean_),
            (float(v) for v in steps["scale"].scale_),
            strict=True,
        )
    )

    def prepare(row: Sequence[float]) -> list[float]:
        scaled = [((f if v != v else v) - m) / s for v, (f, m, s) in zip(row, columns, strict=True)]
        return array("f", scaled).tolist()

    return prepare


# One compiled tree: feature per node (negative at a leaf), threshold, left, right, and
# the value of every node as scikit-learn stores it for the model's use.
_Tree = tuple[list[int], list[float], list[int], list[int], list[Any]]


def _flat_tree(fitted: Any, leaf_value: Callable[[np.ndarray], Any]) -> _Tree:
    t = fitted.tree_
    return (
        t.feature.tolist(),
        t.threshold.tolist(),
        t.children_left.tolist(),
        t.children_right.tolist(),
        [leaf_value(v) for v in t.value],
    )


def _leaf(trees: Sequence[_Tree], x: list[float]) -> list[Any]:
    """The leaf values that ``x`` reaches in each tree, in tree order."""
    out = []
    for feature, threshold, left, right, value in trees:
        node = 0
        f = feature[0]
        while f >= 0:
            node = left[node] if x[f] <= threshold[node] else right[node]
            f = feature[node]
        out.append(value[node])
    return out


def _tree_walker(model: Any, as_sql: Callable[[Any], Any]) -> Callable[[list[float]], Any] | None:
    kind = type(model)
    if kind in families.SINGLE_TREES:
        if model.n_outputs_ != 1:
            return None
        if hasattr(model, "classes_"):
            classes = [as_sql(c) for c in np.asarray(model.classes_)]
            # DecisionTreeClassifier.predict: argmax of the leaf's stored value.
            trees = [_flat_tree(model, lambda v: classes[int(np.argmax(v[0]))])]
        else:
            trees = [_flat_tree(model, lambda v: float(v[0][0]))]
        return lambda x: _leaf(trees, x)[0]
    if kind in families.FORESTS:
        return _forest_walker(model, as_sql)
    if kind in families.BOOSTING:
        return _boosting_walker(model, as_sql)
    if kind in families.ADA_BOOST:
        return _ada_boost_walker(model, as_sql)
    if kind in families.BAGGING:
        return _bagging_walker(model, as_sql)
    return None


def _plain_trees(estimators: Any) -> bool:
    return all(type(e) in families.SINGLE_TREES and e.n_outputs_ == 1 for e in estimators)


def _ada_boost_walker(
    model: Any, as_sql: Callable[[Any], Any]
) -> Callable[[list[float]], Any] | None:
    """AdaBoost's weighted vote (classes) or weighted median (regression), as scikit-learn
    computes them from its trees' predictions."""
    if not _plain_trees(model.estimators_):
        return None
    weights = np.asarray(model.estimator_weights_, dtype=np.float64)
    if not hasattr(model, "classes_"):
        trees = [_flat_tree(e, lambda v: float(v[0][0])) for e in model.estimators_]
        used = weights[: len(trees)]

        def weighted_median(x: list[float]) -> Any:
            predictions = np.array(_leaf(trees, x))
            order = np.argsort(predictions)
            cdf = np.cumsum(used[order])
            return float(predictions[order[int(np.argmax(cdf >= 0.5 * cdf[-1]))]])

        return weighted_median
    classes = np.asarray(model.classes_)
    n_classes = len(classes)
    if n_classes < 2:
        return None
    position = {c: i for i, c in enumerate(classes.tolist())}

    def predicted_position(own_classes: list[Any]) -> Callable[[np.ndarray], int]:
        return lambda v: position[own_classes[int(np.argmax(v[0]))]]

    trees = [
        _flat_tree(e, predicted_position(np.asarray(e.classes_).tolist()))
        for e in model.estimators_
    ]
    votes = [(float(w), float(-1 / (n_classes - 1) * w)) for w in weights[: len(trees)]]
    total = float(weights.sum())
    labels = [as_sql(c) for c in classes]

    def vote(x: list[float]) -> Any:
        scores = [0.0] * n_classes
        for predicted, (hit, miss) in zip(_leaf(trees, x), votes, strict=True):
            for k in range(n_classes):
                scores[k] += hit if k == predicted else miss
        scores = [score / total for score in scores]
        if n_classes == 2:
            return labels[1] if -scores[0] + scores[1] > 0 else labels[0]
        return labels[scores.index(max(scores))]

    return vote


def _bagging_walker(
    model: Any, as_sql: Callable[[Any], Any]
) -> Callable[[list[float]], Any] | None:
    """Bagged trees, each on its own subset (and order) of the features."""
    if not _plain_trees(model.estimators_) or model.n_jobs not in (None, 1):
        return None
    subsets = [np.asarray(f).tolist() for f in model.estimators_features_]
    count = model.n_estimators
    if not hasattr(model, "classes_"):
        trees = [_flat_tree(e, lambda v: float(v[0][0])) for e in model.estimators_]

        def regress(x: list[float]) -> Any:
            total = 0
            for t, subset in zip(trees, subsets, strict=True):
                total = total + _leaf([t], [x[i] for i in subset])[0]
            return (0 + total) / count

        return regress
    classes = [as_sql(c) for c in np.asarray(model.classes_)]
    n_classes = len(classes)
    if any(len(e.classes_) != n_classes for e in model.estimators_):
        return None  # a tree that saw fewer classes: scikit-learn spreads its votes
    if not all(hasattr(e, "predict_proba") for e in model.estimators_):
        return None
    trees = [_flat_tree(e, lambda v: v[0][:n_classes].tolist()) for e in model.estimators_]
    add = operator.add

    def classify(x: list[float]) -> Any:
        totals = [0.0] * n_classes
        for t, subset in zip(trees, subsets, strict=True):
            totals = list(map(add, totals, _leaf([t], [x[i] for i in subset])[0]))
        means = [t / count for t in totals]
        return classes[means.index(max(means))]

    return classify


def _forest_walker(model: Any, as_sql: Callable[[Any], Any]) -> Callable[[list[float]], Any] | None:
    if model.n_outputs_ != 1:
        return None
    count = len(model.estimators_)
    if not hasattr(model, "classes_"):
        trees = [_flat_tree(e, lambda v: float(v[0][0])) for e in model.estimators_]

        def regress(x: list[float]) -> Any:
            total = 0.0
            for value in _leaf(trees, x):  # summed in tree order, as scikit-learn does
                total += value
            return total / count

        return regress
    classes = [as_sql(c) for c in np.asarray(model.classes_)]
    n_classes = len(classes)
    trees = [_flat_tree(e, lambda v: v[0][:n_classes].tolist()) for e in model.estimators_]
    add = operator.add

    def classify(x: list[float]) -> Any:
        totals = [0.0] * n_classes
        for proba in _leaf(trees, x):
            totals = list(map(add, totals, proba))
        means = [t / count for t in totals]
        return classes[means.index(max(means))]  # argmax: the first of equal values

    return classify


def _boosting_walker(
    model: Any, as_sql: Callable[[Any], Any]
) -> Callable[[list[float]], Any] | None:
    init = model.init_
    if not (init == "zero" or isinstance(init, (dummy.DummyClassifier, dummy.DummyRegressor))):
        return None  # a custom init estimator may depend on the row
    # The init estimator's raw prediction is the same for every row.
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        start = model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0].tolist()
    rate = float(model.learning_rate)
    stages = [
        [_flat_tree(e, lambda v: float(v[0][0])) for e in stage] for stage in model.estimators_
    ]
    per_stage = len(start)

    def raw(x: list[float]) -> list[float]:
        out = list(start)
        for stage in stages:
            values = _leaf(stage, x)
            for k in range(per_stage):
                out[k] += rate * values[k]
        return out

    if not hasattr(model, "classes_"):
        return lambda x: raw(x)[0]
    classes = [as_sql(c) for c in np.asarray(model.classes_)]
    if per_stage == 1:
        return lambda x: classes[1] if raw(x)[0] >= 0 else classes[0]

    def classify(x: list[float]) -> Any:
        scores = raw(x)
        return classes[scores.index(max(scores))]

    return classify
