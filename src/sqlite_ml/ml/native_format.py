"""The native model format: a fitted pipeline compiled into plain data that the C
extension scores without Python (``csrc/model_load.c`` reads and validates it,
``csrc/model_score.c`` scores it).

It is data only, never code: a versioned little-endian layout of counts, numbers and
UTF-8 strings, stored in ``sqml_models.native_model`` beside the skops blob with its own
SHA-256. The C loader checks every structure before any loop walks it (counts against
the bytes present, tree children strictly after their node, feature indices in range,
finite thresholds, consistent class and category tables), so a damaged or hostile blob is
refused, never followed.

Layout, version 1 (``u32``/``i32``: 4 bytes, ``f64``: 8 bytes, all little-endian;
``str``: a ``u32`` byte count then UTF-8 bytes)::

    magic "SQMLNATV"; u32 version = 1; u32 flags = 0; str model digest (the SHA-256 of
              the skops blob the form was compiled from, as sqml_models.digest records it:
              a form stored beside another model's is refused); str schema digest (the
              SHA-256 of the feature schema's JSON text, sqml_models.feature_schema: a row
              whose schema was edited since is served by the Python side, which reads it);
              f64 model size (the skops blob's length; a row whose blob has another length
              is served by the Python side, which checks the blob's SHA-256)
    schema:   u32 label_kind (0 numeric, 1 text, 2 cluster); u32 n_features;
              per feature: str name; u32 kind (0 numeric, 1 one-hot, 2 ordinal,
              3 target); u32 required; u32 n_categories; str category x n;
              f64 numeric_alias x n (the float whose repr is the category, else NaN);
              target only: u32 outputs; f64 values x (n * outputs)
    steps:    u32 width; f64 fill x width; f64 center x width; f64 scale x width
    labels:   u32 n_classes; text labels: str x n; numeric labels: f64 x n;
              cluster ids: nothing (0 .. n-1)
    model:    u32 family (1 linear, 2 trees, 3 nearest centroid, 4 booster), then its
              payload
    end:      u32 end marker "SQME"

    linear:   u32 decision (0 value, 1 binary score > 0, 2 argmax); u32 outputs;
              u32 probability (0 none, 1 logistic one-vs-rest, 2 softmax);
              f64 coef x (outputs * width); f64 intercept x outputs
    trees:    u32 input (0 float64, 1 rounded to float32); u32 compare (0 x <= t,
              1 x < t); u32 combine (1 mean, 2 sum, 3 SAMME vote, 4 weighted median);
              u32 outputs; f64 init x outputs; f64 divisor; u32 decision (0 value,
              1 argmax, 2 binary > 0, 3 binary >= 0); u32 probability (0 none,
              1 the mean, 2 logistic, 3 softmax, 4 SAMME, 5 logistic of 2x);
              u32 link (0 identity, 1 exp); u32 n_trees;
              SAMME: f64 total weight, then f64 hit, f64 miss per tree;
              weighted median: f64 weight per tree;
              per tree: u32 slot; u32 n_mapped; u32 feature x n_mapped (0: all
              inputs in order); u32 n_nodes; u32 leaf_width; u32 n_leaves;
              i32 feature x n_nodes (-1: leaf); f64 threshold x n_nodes;
              u32 left x n_nodes (a leaf: its leaf number); u32 right x n_nodes;
              u8 missing_left x n_nodes; f64 leaf values x (n_leaves * leaf_width)
    centroid: u32 k; f64 centers x (k * width); f64 squared norms x k
    booster:  (XGBoost and LightGBM, from ml/boosters.py's Ensemble, whose docstring gives
              the exact semantics) u32 float32 sums (XGBoost); u32 compare (0 x <= t,
              1 x < t); u32 input (0 float64, 1 rounded to float32); u32 outputs;
              u32 link (the index of the link in boosters.LINKS); f64 sigmoid scale;
              u32 average; f64 iterations used; f64 base margin x outputs; u32 n_trees;
              per tree: u32 output; f64 weight; u32 flags (1 missing types, 2 categorical
              splits); u32 n_nodes; u32 n_leaves; i32 feature x n_nodes; f64 threshold x
              n_nodes; u32 left x n_nodes (a leaf: its leaf number); u32 right x n_nodes;
              u8 default_left x n_nodes; flag 1: u8 missing type x n_nodes; flag 2:
              i32 category set x n_nodes, u32 n_sets, u32 bounds x (n_sets + 1),
              u32 n_words, u32 words x n_words; f64 leaf values x n_leaves

Every arithmetic step is scikit-learn's own, in its order: the imputer's fill, then
``(x - center) / scale``, then the estimator (trees see float32-rounded inputs and their
float64 thresholds, as scikit-learn's trees do; boosting adds ``rate * value`` products
computed here with numpy, exactly as scikit-learn multiplies them).
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import cluster, ensemble, linear_model
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..preprocessing import ColumnImputer, ColumnScaler
from . import families, threads
from .features import (
    CATEGORICAL,
    DATE,
    EMBEDDING,
    NUMERIC,
    ORDINAL,
    TARGET_ENCODED,
    VECTOR,
    FeatureSchema,
)
from .labels import CLUSTER_LABELS, TEXT_LABELS

MAGIC = b"SQMLNATV"
VERSION = 1
END_MARKER = 0x454D5153  # "SQME"

SERVED_NATIVE = "native"
SERVED_PYTHON = "python"

_LABEL_KINDS = {"numeric": 0, TEXT_LABELS: 1, CLUSTER_LABELS: 2}
_FEATURE_KINDS = {NUMERIC: 0, CATEGORICAL: 1, ORDINAL: 2, TARGET_ENCODED: 3}
# The feature kinds the format does not cover (the C scorer reads none of them), as the
# reason a model with one is served by Python says them.
_PYTHON_FEATURES = {
    EMBEDDING: "text embedded by a pretrained model",
    VECTOR: "a vector (float32 BLOB)",
    DATE: "a date read as date parts",
}

FAMILY_LINEAR, FAMILY_TREES, FAMILY_CENTROIDS, FAMILY_BOOSTER = 1, 2, 3, 4
DECIDE_VALUE, DECIDE_BINARY, DECIDE_ARGMAX = 0, 1, 2
DECIDE_TREES_VALUE, DECIDE_TREES_ARGMAX, DECIDE_POSITIVE, DECIDE_NOT_NEGATIVE = 0, 1, 2, 3
PROBA_NONE, PROBA_OVR_LOGISTIC, PROBA_SOFTMAX = 0, 1, 2
TREE_PROBA_NONE, TREE_PROBA_MEAN, TREE_PROBA_LOGISTIC, TREE_PROBA_SOFTMAX = 0, 1, 2, 3
TREE_PROBA_SAMME, TREE_PROBA_LOGISTIC_2X = 4, 5
COMBINE_MEAN, COMBINE_SUM, COMBINE_SAMME, COMBINE_MEDIAN = 1, 2, 3, 4
INPUT_FLOAT64, INPUT_FLOAT32 = 0, 1
COMPARE_LE, COMPARE_LT = 0, 1
LINK_IDENTITY, LINK_EXP = 0, 1


class NotNative(Exception):
    """The pipeline has a part the native format does not cover; the message says which
    (it is recorded as the reason the model is served by Python)."""


@dataclass(frozen=True)
class ServingDecision:
    """How a model is served: natively (with its compiled form) or by Python (and why)."""

    serving: str
    blob: bytes | None = None
    digest: str | None = None
    reason: str | None = None


def decide_serving(
    pipeline: Any,
    schema: FeatureSchema,
    model_digest: str,
    schema_text: str | None = None,
    model_size: int = 0,
) -> ServingDecision:
    """Compile ``pipeline`` when the format covers every part of it, else say why not
    (``schema_text``: the schema's JSON as stored, when it is not ``schema.to_json()``)."""
    try:
        text = schema.to_json() if schema_text is None else schema_text
        blob = compile_native(pipeline, schema, model_digest, text, model_size)
    except NotNative as why:
        return ServingDecision(SERVED_PYTHON, reason=str(why))
    return ServingDecision(SERVED_NATIVE, blob, hashlib.sha256(blob).hexdigest())


# -- writing -----------------------------------------------------------------------------


class _Writer:
    """Little-endian fields appended in order."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u32(self, value: int) -> None:
        if not 0 <= int(value) < 2**32:
            raise NotNative(f"a count or index ({value}) does not fit the native format")
        self._parts.append(struct.pack("<I", int(value)))

    def f64(self, value: float) -> None:
        self._parts.append(struct.pack("<d", float(value)))

    def f64s(self, values: Any) -> None:
        self._parts.append(np.ascontiguousarray(values, dtype="<f8").ravel().tobytes())

    def u32s(self, values: Any) -> None:
        array = np.asarray(values, dtype=np.int64).ravel()
        if len(array) and (array.min() < 0 or array.max() >= 2**32):
            raise NotNative("an index does not fit the native format")
        self._parts.append(array.astype("<u4").tobytes())

    def i32s(self, values: Any) -> None:
        array = np.asarray(values, dtype=np.int64).ravel()
        if len(array) and (array.min() < -(2**31) or array.max() >= 2**31):
            raise NotNative("a feature index does not fit the native format")
        self._parts.append(array.astype("<i4").tobytes())

    def u8s(self, values: Any) -> None:
        self._parts.append(np.asarray(values, dtype=np.uint8).ravel().tobytes())

    def text(self, value: str) -> None:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise NotNative(f"the text {value!r} is not valid UTF-8") from None
        self.u32(len(data))
        self._parts.append(data)

    def bytes(self) -> bytes:
        return b"".join(self._parts)


# -- the pipeline's steps ----------------------------------------------------------------


def _steps(pipeline: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """(fill, center, scale, model) of an impute + scale + model pipeline, as its
    transforms apply them: ``x[missing] = fill``, then ``(x - center) / scale``."""
    if not isinstance(pipeline, Pipeline) or [name for name, _ in pipeline.steps] != [
        "impute",
        "scale",
        "model",
    ]:
        raise NotNative("the model is not an impute + scale + model pipeline")
    impute, scale, model = (step for _, step in pipeline.steps)
    width = int(getattr(impute, "n_features_in_", 0))
    if isinstance(impute, SimpleImputer) and type(impute) is SimpleImputer:
        if impute.add_indicator or not _is_nan(impute.missing_values):
            raise NotNative("the imputer adds indicator columns or imputes non-NaN values")
    elif type(impute) is not ColumnImputer:
        raise NotNative(f"imputer {type(impute).__name__} is not in the native format")
    # What the imputer really fills (keep_empty_features columns get 0, not statistics_).
    fill = np.asarray(impute.transform(np.full((1, width), np.nan)), dtype=np.float64)[0]
    if type(scale) is StandardScaler:
        center = np.asarray(scale.mean_, dtype=np.float64) if scale.with_mean else np.zeros(width)
        divisor = np.asarray(scale.scale_, dtype=np.float64) if scale.with_std else np.ones(width)
    elif type(scale) is ColumnScaler:
        center = np.asarray(scale.mean_, dtype=np.float64)
        divisor = np.asarray(scale.scale_, dtype=np.float64)
    else:
        raise NotNative(f"scaler {type(scale).__name__} is not in the native format")
    for name, values in (("imputer", fill), ("scaler", center), ("scaler", divisor)):
        if values.shape != (width,) or not np.isfinite(values).all():
            raise NotNative(f"the {name}'s values are not {width} finite numbers")
    if (divisor == 0).any():
        raise NotNative("the scaler divides by zero")
    return fill, center, divisor, model


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _numeric_alias(category: str) -> float:
    """The float whose Python repr is ``category`` (so a JSON or REAL number that is not
    whole matches it, as ``category_of`` makes its text), else NaN."""
    try:
        number = float(category)
    except ValueError:
        return math.nan
    if math.isnan(number) or number.is_integer() or repr(number) != category:
        return math.nan
    return number


def _write_schema(out: _Writer, schema: FeatureSchema) -> None:
    out.u32(_LABEL_KINDS[schema.label_kind])
    out.u32(len(schema.features))
    for feature in schema.features:
        if feature.kind not in _FEATURE_KINDS:
            what = _PYTHON_FEATURES.get(feature.kind, f"of kind '{feature.kind}'")
            raise NotNative(
                f"feature '{feature.name}' is {what} (kind '{feature.kind}'), which the "
                "native format does not cover"
            )
        out.text(feature.name)
        out.u32(_FEATURE_KINDS[feature.kind])
        out.u32(1 if feature.required else 0)
        categories = feature.categories if feature.kind != NUMERIC else []
        out.u32(len(categories))
        for category in categories:
            out.text(category)
        out.f64s([_numeric_alias(c) for c in categories])
        if feature.kind == TARGET_ENCODED:
            if len(feature.values) != len(categories) or not feature.values:
                raise NotNative(f"feature '{feature.name}' has no fitted target encoding")
            out.u32(feature.outputs)
            values = np.asarray(feature.values, dtype=np.float64)
            if values.shape != (len(categories), feature.outputs):
                raise NotNative(f"feature '{feature.name}' has malformed target encoding values")
            out.f64s(values)


def _write_labels(out: _Writer, schema: FeatureSchema, model: Any) -> int:
    """The class labels (or the number of clusters); returns how many."""
    if schema.label_kind == CLUSTER_LABELS:
        count = int(getattr(model, "n_clusters", 0))
        out.u32(count)
        return count
    classes = getattr(model, "classes_", None)
    if classes is None:
        out.u32(0)
        return 0
    labels = list(np.asarray(classes).tolist())
    out.u32(len(labels))
    for label in labels:
        if schema.label_kind == TEXT_LABELS:
            out.text(str(label))
        else:
            out.f64(float(label))
    return len(labels)


# -- estimators --------------------------------------------------------------------------

_CENTROIDS = (cluster.KMeans, cluster.MiniBatchKMeans)


def compile_native(
    pipeline: Any,
    schema: FeatureSchema,
    model_digest: str = "",
    schema_text: str = "",
    model_size: int = 0,
) -> bytes:
    """The native form of a fitted impute + scale + model pipeline (``model_digest``: the
    SHA-256 of its skops blob; ``schema_text``: the feature schema's JSON as stored);
    ``NotNative`` (with the reason) for a part the format does not cover."""
    fill, center, scale, model = _steps(pipeline)
    width = len(fill)
    if schema.width != width:
        raise NotNative(f"the feature schema has {schema.width} inputs, the model {width}")
    out = _Writer()
    out._parts.append(MAGIC)
    out.u32(VERSION)
    out.u32(0)
    out.text(model_digest)
    out.text(hashlib.sha256(schema_text.encode("utf-8")).hexdigest() if schema_text else "")
    out.f64(float(model_size))
    _write_schema(out, schema)
    out.u32(width)
    out.f64s(fill)
    out.f64s(center)
    out.f64s(scale)
    n_classes = _write_labels(out, schema, model)
    kind = type(model)
    if kind in (*families.LINEAR_CLASSIFIERS, linear_model.Perceptron) or (
        kind in families.LINEAR_REGRESSORS
    ):
        _write_linear(out, model, width, n_classes)
    elif kind in _CENTROIDS:
        _write_centroids(out, model, width)
    elif hasattr(model, "get_booster") or hasattr(model, "booster_"):
        _write_booster(out, model, width, n_classes)
    else:
        _write_trees(out, model, width, n_classes)
    out.u32(END_MARKER)
    return out.bytes()


def _write_linear(out: _Writer, model: Any, width: int, n_classes: int) -> None:
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    if coef.shape[1] != width or intercept.shape != (coef.shape[0],):
        raise NotNative("the linear model's coefficients do not match its inputs")
    outputs = coef.shape[0]
    if hasattr(model, "classes_"):
        if outputs == 1 and n_classes == 2:
            decision = DECIDE_BINARY
        elif outputs == n_classes and n_classes > 2:
            decision = DECIDE_ARGMAX
        else:
            raise NotNative("the linear classifier's outputs do not match its classes")
        probability = _linear_probability(model, n_classes)
    else:
        if outputs != 1:
            raise NotNative("a linear regression with several targets")
        decision, probability = DECIDE_VALUE, PROBA_NONE
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise NotNative("the linear model's coefficients are not all finite")
    out.u32(FAMILY_LINEAR)
    out.u32(decision)
    out.u32(outputs)
    out.u32(probability)
    out.f64s(coef)
    out.f64s(intercept)


def _linear_probability(model: Any, n_classes: int) -> int:
    """scikit-learn's formula for the model's predict_proba (none, one-vs-rest logistic,
    softmax); NotNative for one the format lacks."""
    if not hasattr(model, "predict_proba"):
        return PROBA_NONE  # hinge loss, ridge classifiers: no probabilities
    if type(model) is linear_model.LogisticRegression:
        return PROBA_OVR_LOGISTIC if n_classes <= 2 else PROBA_SOFTMAX
    if type(model) is linear_model.SGDClassifier and model.loss == "log_loss":
        return PROBA_OVR_LOGISTIC
    raise NotNative(
        f"the probabilities of {type(model).__name__} with loss "
        f"'{getattr(model, 'loss', '?')}' are not in the native format"
    )


def _write_centroids(out: _Writer, model: Any, width: int) -> None:
    centers = np.asarray(model.cluster_centers_, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != width or not np.isfinite(centers).all():
        raise NotNative("the cluster centres do not match the inputs")
    out.u32(FAMILY_CENTROIDS)
    out.u32(centers.shape[0])
    out.f64s(centers)
    out.f64s(np.einsum("ij,ij->i", centers, centers))  # what k-means' predict adds


# -- XGBoost and LightGBM ------------------------------------------------------------------


def _write_booster(out: _Writer, model: Any, width: int, n_classes: int) -> None:
    """An XGBoost or LightGBM model, as ml/boosters.py parses and describes it."""
    from . import boosters

    try:
        ensemble = boosters.describe_estimator(model)
    except boosters.BoosterError as error:
        raise NotNative(f"the booster is not in the native format ({error})") from None
    if ensemble.n_features != width:
        raise NotNative("the booster's feature count differs from the pipeline's")
    if n_classes:
        wanted = 1 if n_classes == 2 else n_classes
        if ensemble.n_classes != n_classes or ensemble.n_outputs != wanted:
            raise NotNative("the booster's classes differ from the model's")
    elif ensemble.n_classes or ensemble.n_outputs != 1:
        raise NotNative("a regression booster with several outputs")
    used = ensemble.iterations_used * ensemble.trees_per_iteration
    trees = ensemble.trees[:used]
    out.u32(FAMILY_BOOSTER)
    out.u32(1 if ensemble.library == boosters.XGBOOST else 0)
    out.u32(COMPARE_LT if ensemble.comparison == "less" else COMPARE_LE)
    out.u32(INPUT_FLOAT32 if ensemble.comparison == "less" else INPUT_FLOAT64)
    out.u32(ensemble.n_outputs)
    out.u32(boosters.LINKS.index(ensemble.link))
    out.f64(ensemble.sigmoid_scale)
    out.u32(1 if ensemble.average_output else 0)
    out.f64(float(ensemble.iterations_used))
    out.f64s(ensemble.base_margin)
    out.u32(len(trees))
    for index, tree in enumerate(trees):
        _write_booster_tree(
            out, tree, int(ensemble.tree_output[index]), float(ensemble.tree_weight[index])
        )


def _write_booster_tree(out: _Writer, tree: Any, output: int, weight: float) -> None:
    """One tree of a booster: boosters.py checked that children come after their node."""
    leaf = np.asarray(tree.feature) < 0
    numbers = np.cumsum(leaf) - 1
    categorical = bool((np.asarray(tree.category_set) >= 0).any())
    missing = np.asarray(tree.missing, dtype=np.uint8)
    typed = bool((missing != missing[0]).any()) or int(missing[0]) != 2  # not all MISSING_NAN
    out.u32(output)
    out.f64(weight)
    out.u32((1 if typed else 0) | (2 if categorical else 0))
    out.u32(len(leaf))
    out.u32(int(leaf.sum()))
    out.i32s(np.where(leaf, -1, tree.feature))
    out.f64s(np.where(leaf, 0.0, tree.threshold))
    out.u32s(np.where(leaf, numbers, tree.left))
    out.u32s(np.where(leaf, 0, tree.right))
    out.u8s(np.where(leaf, 0, np.asarray(tree.default_left, dtype=np.uint8)))
    if typed:
        out.u8s(missing)
    if categorical:
        out.i32s(tree.category_set)
        out.u32(len(tree.category_bounds) - 1)
        out.u32s(tree.category_bounds)
        out.u32(len(tree.category_words))
        out.u32s(tree.category_words)
    out.f64s(np.asarray(tree.value, dtype=np.float64)[leaf])


# -- trees -------------------------------------------------------------------------------


@dataclass
class _Tree:
    """One tree in the format's preorder layout (children after their node)."""

    slot: int
    features: np.ndarray  # per node, -1 at a leaf
    thresholds: np.ndarray
    left: np.ndarray  # a leaf: its leaf number
    right: np.ndarray
    missing_left: np.ndarray
    leaf_values: np.ndarray  # (n_leaves, leaf_width)
    mapped: Sequence[int] = ()


def _preorder(
    features: np.ndarray,
    thresholds: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing_left: np.ndarray,
    is_leaf: np.ndarray,
    node_values: np.ndarray,
    slot: int = 0,
) -> _Tree:
    """A tree in the format's layout: every child after its node (scikit-learn's trees
    already are; others are renumbered in preorder), leaf values only at leaves."""
    count = len(features)
    is_leaf = np.asarray(is_leaf, dtype=bool)
    nodes = np.arange(count)
    inner = ~is_leaf
    forward = bool(
        np.all(np.asarray(left)[inner] > nodes[inner])
        and np.all(np.asarray(right)[inner] > nodes[inner])
        and np.all(np.asarray(left)[inner] < count)
        and np.all(np.asarray(right)[inner] < count)
    )
    if not forward:
        order = _preorder_order(left, right, is_leaf, count)
        position = np.full(count, -1, dtype=np.int64)
        position[order] = np.arange(len(order))
        keep = np.asarray(order)
        features, thresholds = np.asarray(features)[keep], np.asarray(thresholds)[keep]
        missing_left, node_values = np.asarray(missing_left)[keep], np.asarray(node_values)[keep]
        left = np.where(is_leaf[keep], 0, position[np.asarray(left)[keep].clip(0, count - 1)])
        right = np.where(is_leaf[keep], 0, position[np.asarray(right)[keep].clip(0, count - 1)])
        is_leaf = is_leaf[keep]
        inner = ~is_leaf
    leaf_number = np.cumsum(is_leaf) - 1
    thresholds = np.where(inner, np.asarray(thresholds, dtype=np.float64), 0.0)
    if not np.isfinite(thresholds).all():
        raise NotNative("a tree has a threshold that is not a finite number")
    values = np.asarray(node_values, dtype=np.float64)[is_leaf]
    values = values.reshape(int(is_leaf.sum()), -1)
    if not np.isfinite(values).all():
        raise NotNative("a tree has a leaf value that is not a finite number")
    return _Tree(
        slot,
        np.where(inner, np.asarray(features, dtype=np.int64), -1),
        thresholds,
        np.where(inner, np.asarray(left, dtype=np.int64), leaf_number),
        np.where(inner, np.asarray(right, dtype=np.int64), 0),
        np.where(inner, np.asarray(missing_left, dtype=np.uint8), 0),
        values,
    )


def _preorder_order(left: Any, right: Any, is_leaf: np.ndarray, count: int) -> list[int]:
    order: list[int] = []
    stack = [0]
    seen = np.zeros(count, dtype=bool)
    while stack:
        node = stack.pop()
        if not 0 <= node < count or seen[node]:
            raise NotNative("a tree's nodes do not form a tree")
        seen[node] = True
        order.append(node)
        if not is_leaf[node]:
            stack.append(int(right[node]))
            stack.append(int(left[node]))
    return order


def _sklearn_tree(fitted: Any, node_values: np.ndarray, slot: int = 0) -> _Tree:
    t = fitted.tree_
    left = np.asarray(t.children_left)
    missing = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8))
    return _preorder(
        np.asarray(t.feature),
        np.asarray(t.threshold, dtype=np.float64),
        left,
        np.asarray(t.children_right),
        np.asarray(missing),
        left == -1,
        node_values,
        slot,
    )


@dataclass
class _Ensemble:
    trees: list[_Tree]
    input: int
    combine: int
    outputs: int
    init: np.ndarray
    divisor: float
    decision: int
    probability: int
    link: int = LINK_IDENTITY
    compare: int = COMPARE_LE
    samme: tuple[float, list[tuple[float, float]]] | None = None
    median_weights: list[float] | None = None


def _single_tree_ready(fitted: Any) -> None:
    if type(fitted) not in families.SINGLE_TREES:
        raise NotNative(f"an ensemble member is a {type(fitted).__name__}, not a decision tree")
    if fitted.n_outputs_ != 1:
        raise NotNative("a tree with several outputs")


def _class_values(fitted: Any, n_classes: int) -> np.ndarray:
    """What a classification tree's predict_proba returns at each node."""
    return np.asarray(fitted.tree_.value, dtype=np.float64)[:, 0, :n_classes]


def _regression_values(fitted: Any) -> np.ndarray:
    return np.asarray(fitted.tree_.value, dtype=np.float64)[:, 0, :1]


def _write_trees(out: _Writer, model: Any, width: int, n_classes: int) -> None:
    ensemble_ = _ensemble(model, width, n_classes)
    out.u32(FAMILY_TREES)
    out.u32(ensemble_.input)
    out.u32(ensemble_.compare)
    out.u32(ensemble_.combine)
    out.u32(ensemble_.outputs)
    init = np.asarray(ensemble_.init, dtype=np.float64)
    if init.shape != (ensemble_.outputs,) or not np.isfinite(init).all():
        raise NotNative("the ensemble's starting values are not finite")
    out.f64s(init)
    out.f64(ensemble_.divisor)
    out.u32(ensemble_.decision)
    out.u32(ensemble_.probability)
    out.u32(ensemble_.link)
    out.u32(len(ensemble_.trees))
    if ensemble_.combine == COMBINE_SAMME:
        assert ensemble_.samme is not None
        total, votes = ensemble_.samme
        out.f64(total)
        for hit, miss in votes:
            out.f64(hit)
            out.f64(miss)
    elif ensemble_.combine == COMBINE_MEDIAN:
        assert ensemble_.median_weights is not None
        out.f64s(ensemble_.median_weights)
    for one in ensemble_.trees:
        if len(one.features) and one.features.max() >= (len(one.mapped) or width):
            raise NotNative("a tree uses a feature the model does not have")
        out.u32(one.slot)
        out.u32(len(one.mapped))
        out.u32s(list(one.mapped))
        out.u32(len(one.features))
        out.u32(one.leaf_values.shape[1])
        out.u32(one.leaf_values.shape[0])
        out.i32s(one.features)
        out.f64s(one.thresholds)
        out.u32s(one.left)
        out.u32s(one.right)
        out.u8s(one.missing_left)
        out.f64s(one.leaf_values)


def _ensemble(model: Any, width: int, n_classes: int) -> _Ensemble:
    kind = type(model)
    classifier = hasattr(model, "classes_")
    if kind in families.SINGLE_TREES:
        _single_tree_ready(model)
        if classifier:
            trees = [_sklearn_tree(model, _class_values(model, n_classes))]
            return _Ensemble(
                trees,
                INPUT_FLOAT32,
                COMBINE_MEAN,
                n_classes,
                np.zeros(n_classes),
                1.0,
                DECIDE_TREES_ARGMAX,
                TREE_PROBA_MEAN,
            )
        trees = [_sklearn_tree(model, _regression_values(model))]
        return _Ensemble(
            trees,
            INPUT_FLOAT32,
            COMBINE_MEAN,
            1,
            np.zeros(1),
            1.0,
            DECIDE_TREES_VALUE,
            TREE_PROBA_NONE,
        )
    if kind in families.FORESTS:
        return _forest(model, n_classes)
    if kind in (ensemble.BaggingClassifier, ensemble.BaggingRegressor):
        return _bagging(model, width, n_classes)
    if kind in families.BOOSTING:
        return _gradient_boosting(model, n_classes)
    if kind in families.HIST_BOOSTING:
        return _hist_gradient_boosting(model, n_classes)
    if kind is ensemble.AdaBoostClassifier:
        return _ada_boost_classifier(model, n_classes)
    if kind is ensemble.AdaBoostRegressor:
        return _ada_boost_regressor(model)
    raise NotNative(f"{kind.__name__} is not in the native format")


def _mean_of_trees(
    model: Any, n_classes: int, count: float, subsets: list[list[int]] | None = None
) -> _Ensemble:
    """The ensemble of a forest or a bagging of trees: the mean of its trees' class
    probabilities or values (``subsets``: each tree's feature columns, for bagging)."""
    classifier = hasattr(model, "classes_")
    if classifier:
        trees = [_sklearn_tree(e, _class_values(e, n_classes)) for e in model.estimators_]
    else:
        trees = [_sklearn_tree(e, _regression_values(e)) for e in model.estimators_]
    if subsets is not None:
        for one, subset in zip(trees, subsets, strict=True):
            one.mapped = subset
    outputs = n_classes if classifier else 1
    return _Ensemble(
        trees,
        INPUT_FLOAT32,
        COMBINE_MEAN,
        outputs,
        np.zeros(outputs),
        count,
        DECIDE_TREES_ARGMAX if classifier else DECIDE_TREES_VALUE,
        TREE_PROBA_MEAN if classifier else TREE_PROBA_NONE,
    )


def _forest(model: Any, n_classes: int) -> _Ensemble:
    if model.n_outputs_ != 1:
        raise NotNative("a forest with several outputs")
    for member in model.estimators_:
        _single_tree_ready(member)
    return _mean_of_trees(model, n_classes, float(len(model.estimators_)))


def _bagging(model: Any, width: int, n_classes: int) -> _Ensemble:
    if model.n_jobs not in (None, 1):
        raise NotNative("bagging predicted with several jobs sums its trees in parts")
    for member in model.estimators_:
        _single_tree_ready(member)
    subsets = [np.asarray(f, dtype=np.int64).tolist() for f in model.estimators_features_]
    if any(len(s) == 0 or max(s) >= width for s in subsets):
        raise NotNative("a bagged tree's feature subset does not match the inputs")
    if hasattr(model, "classes_") and any(len(e.classes_) != n_classes for e in model.estimators_):
        raise NotNative("a bagged tree saw fewer classes than the ensemble")
    return _mean_of_trees(model, n_classes, float(model.n_estimators), subsets)


def _gradient_boosting(model: Any, n_classes: int) -> _Ensemble:
    from sklearn import dummy

    init = model.init_
    if not (init == "zero" or isinstance(init, (dummy.DummyClassifier, dummy.DummyRegressor))):
        raise NotNative("gradient boosting with a custom init estimator")
    import sklearn

    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        start = np.asarray(
            model._raw_predict_init(np.zeros((1, model.n_features_in_))), dtype=np.float64
        )[0]
    rate = float(model.learning_rate)
    per_stage = model.estimators_.shape[1]
    trees = []
    for stage in model.estimators_:
        for k, member in enumerate(stage):
            _single_tree_ready(member)
            # scikit-learn adds rate * value: the products are taken here, as numpy does.
            values = rate * np.asarray(member.tree_.value, dtype=np.float64)[:, 0, :1]
            trees.append(_sklearn_tree(member, values, slot=k))
    if not hasattr(model, "classes_"):
        return _Ensemble(
            trees,
            INPUT_FLOAT32,
            COMBINE_SUM,
            1,
            start,
            1.0,
            DECIDE_TREES_VALUE,
            TREE_PROBA_NONE,
        )
    loss = type(model._loss).__name__
    if per_stage == 1:
        probability = {
            "HalfBinomialLoss": TREE_PROBA_LOGISTIC,
            "ExponentialLoss": TREE_PROBA_LOGISTIC_2X,
        }.get(loss)
        decision = DECIDE_NOT_NEGATIVE
    else:
        probability = TREE_PROBA_SOFTMAX if loss == "HalfMultinomialLoss" else None
        decision = DECIDE_TREES_ARGMAX
    if probability is None:
        raise NotNative(f"gradient boosting with loss {loss} is not in the native format")
    return _Ensemble(
        trees, INPUT_FLOAT32, COMBINE_SUM, per_stage, start, 1.0, decision, probability
    )


def _hist_gradient_boosting(model: Any, n_classes: int) -> _Ensemble:
    per_iteration = int(model.n_trees_per_iteration_)
    trees = []
    for iteration in model._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise NotNative("hist gradient boosting with categorical splits")
            trees.append(
                _preorder(
                    np.asarray(nodes["feature_idx"], dtype=np.int64),
                    np.asarray(nodes["num_threshold"], dtype=np.float64),
                    np.asarray(nodes["left"], dtype=np.int64),
                    np.asarray(nodes["right"], dtype=np.int64),
                    np.asarray(nodes["missing_go_to_left"]),
                    np.asarray(nodes["is_leaf"]).astype(bool),
                    np.asarray(nodes["value"], dtype=np.float64).reshape(-1, 1),
                    slot=k,
                )
            )
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    start = np.zeros(per_iteration) + baseline  # as scikit-learn starts: zeros + baseline
    link_name = type(model._loss.link).__name__
    if not hasattr(model, "classes_"):
        link = {"IdentityLink": LINK_IDENTITY, "LogLink": LINK_EXP}.get(link_name)
        if link is None:
            raise NotNative(f"hist gradient boosting with link {link_name}")
        return _Ensemble(
            trees,
            INPUT_FLOAT64,
            COMBINE_SUM,
            1,
            start,
            1.0,
            DECIDE_TREES_VALUE,
            TREE_PROBA_NONE,
            link,
        )
    if per_iteration == 1:
        decision, probability = DECIDE_POSITIVE, TREE_PROBA_LOGISTIC
    else:
        decision, probability = DECIDE_TREES_ARGMAX, TREE_PROBA_SOFTMAX
    return _Ensemble(
        trees, INPUT_FLOAT64, COMBINE_SUM, per_iteration, start, 1.0, decision, probability
    )


def _ada_boost_classifier(model: Any, n_classes: int) -> _Ensemble:
    if n_classes < 2:
        raise NotNative("AdaBoost with one class")
    position = {c: i for i, c in enumerate(np.asarray(model.classes_).tolist())}
    weights = np.asarray(model.estimator_weights_, dtype=np.float64)
    trees, votes = [], []
    for member, weight in zip(model.estimators_, weights, strict=False):
        _single_tree_ready(member)
        own = np.asarray(member.classes_).tolist()
        values = np.asarray(member.tree_.value, dtype=np.float64)[:, 0, :]
        # Each tree votes for its predict's class: the argmax of the node's value.
        predicted = [float(position[own[int(np.argmax(row))]]) for row in values]
        trees.append(_sklearn_tree(member, np.asarray(predicted).reshape(-1, 1)))
        miss = -1 / (n_classes - 1) * weight  # as scikit-learn computes it
        votes.append((float(weight), float(miss)))
    total = float(weights.sum())
    decision = DECIDE_POSITIVE if n_classes == 2 else DECIDE_TREES_ARGMAX
    return _Ensemble(
        trees,
        INPUT_FLOAT32,
        COMBINE_SAMME,
        n_classes,
        np.zeros(n_classes),
        1.0,
        decision,
        TREE_PROBA_SAMME,
        samme=(total, votes),
    )


def _ada_boost_regressor(model: Any) -> _Ensemble:
    trees = []
    for member in model.estimators_:
        _single_tree_ready(member)
        trees.append(_sklearn_tree(member, _regression_values(member)))
    weights = np.asarray(model.estimator_weights_, dtype=np.float64)[: len(trees)]
    return _Ensemble(
        trees,
        INPUT_FLOAT32,
        COMBINE_MEDIAN,
        1,
        np.zeros(1),
        1.0,
        DECIDE_TREES_VALUE,
        TREE_PROBA_NONE,
        median_weights=weights.tolist(),
    )


# -- checking a compiled form against the model ---------------------------------------

# How many rows a check scores at most (a sample of the test split, plus made-up rows).
CHECK_ROWS = 256


def check_rows(schema: FeatureSchema, pipeline: Any, sample: np.ndarray | None) -> np.ndarray:
    """Encoded rows to check a native form on: ``sample`` (rows of the test split) and
    rows spread around the scaler's centres, one of them all missing."""
    fill, center, scale, _model = _steps(pipeline)
    rng = np.random.default_rng(0)
    made = rng.normal(size=(32, len(center))) * np.abs(scale) * 2 + center
    made[0] = np.nan
    made[1][:: max(1, len(center) // 3)] = np.nan
    parts = [made]
    if sample is not None and len(sample):
        parts.insert(0, np.asarray(sample, dtype=np.float64)[: CHECK_ROWS - len(made)])
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float64)


def check_against(blob: bytes, pipeline: Any, rows: np.ndarray, label_kind: str) -> None:
    """Score ``rows`` with the C scorer and with the pipeline's own predict (and
    predict_proba): NotNative unless classes and cluster ids are identical and numbers
    equal to 1e-9 relative. Rows the scorer calls a near tie are left to the exact path,
    as they are when served."""
    from .. import _native  # the caller made sure it is built

    final = pipeline[-1]
    # XGBoost and LightGBM answer within float32 (XGBoost sums in float32): their own
    # tolerance; scikit-learn's models to 1e-9 relative.
    booster = hasattr(final, "get_booster") or hasattr(final, "booster_")
    rtol, atol = (1e-5, 2e-6) if booster else (1e-9, 0.0)
    failed = _native.validate_native(blob)
    if failed is not None:
        raise NotNative(f"the compiled form fails its own checks ({failed})")
    ours, unsure = _native.score_native(blob, rows)
    theirs = np.asarray(pipeline.predict(rows))
    sure = ~np.asarray(unsure, dtype=bool)
    if label_kind == TEXT_LABELS:
        same = np.array([str(a) == str(b) for a, b in zip(ours, theirs.tolist(), strict=True)])
    elif label_kind == CLUSTER_LABELS or hasattr(final, "classes_"):
        same = np.asarray(ours, dtype=np.float64) == theirs.astype(np.float64)
    else:
        same = np.isclose(np.asarray(ours, dtype=np.float64), theirs, rtol=rtol, atol=atol)
        same |= np.isnan(theirs) & np.isnan(np.asarray(ours, dtype=np.float64))
    if not same[sure].all():
        row = int(np.flatnonzero(~same & sure)[0])
        raise NotNative(
            f"the compiled form predicted {ours[row]!r} where the model predicts "
            f"{theirs[row]!r} (row {row} of the check)"
        )
    if hasattr(pipeline, "predict_proba") and hasattr(final, "classes_"):
        try:
            expected = np.asarray(pipeline.predict_proba(rows), dtype=np.float64)
        except AttributeError:  # scikit-learn says the model has none after all
            return
        got = np.asarray(_native.score_native(blob, rows, True), dtype=np.float64)
        atol = atol if booster else 1e-15
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=rtol, atol=atol):
            raise NotNative("the compiled form's probabilities differ from the model's")


def native_scorer_built() -> bool:
    try:
        from .. import _native
    except ImportError:
        return False
    return hasattr(_native, "score_native")


def decide_checked(
    pipeline: Any,
    schema: FeatureSchema,
    model_digest: str,
    sample: np.ndarray | None = None,
    schema_text: str | None = None,
    model_size: int = 0,
) -> ServingDecision:
    """``decide_serving``, with the compiled form checked against the model on rows of
    ``sample`` and made-up rows when the C scorer is built (and refused when it differs:
    then Python serves the model, and the reason says why)."""
    decision = decide_serving(pipeline, schema, model_digest, schema_text, model_size)
    if decision.blob is None or not native_scorer_built():
        return decision
    try:
        import sklearn

        rows = check_rows(schema, pipeline, sample)
        with (
            sklearn.config_context(assume_finite=True),
            np.errstate(all="ignore"),
            threads.predicting(len(rows)),  # the model's own predictions, as served
        ):
            check_against(decision.blob, pipeline, rows, schema.label_kind)
    except NotNative as why:
        return ServingDecision(SERVED_PYTHON, reason=str(why))
    return decision
