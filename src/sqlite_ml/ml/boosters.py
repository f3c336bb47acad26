"""XGBoost and LightGBM models read by our own code: parsed, checked, described as plain data.

A stored model is untrusted data. XGBoost's and LightGBM's own loaders trust their input
(a scrambled XGBoost buffer or an edited LightGBM text crashes the process), so every
booster is parsed here, with bounded resources, and checked completely before its library
sees one byte of it. The result, an :class:`Ensemble`, describes everything exact
prediction needs; :func:`predict_margin` and :func:`predict_output` are a pure-numpy
reference predictor over it (the tests hold it equal to the libraries' own ``predict`` and
``predict_proba``), and native scoring reads the same description.

What is parsed
--------------
* XGBoost: the bytes ``xgboost.core.Booster.__getstate__()["handle"]`` holds (what skops
  stores): XGBoost 3.x serializes a booster as **UBJSON** (the binary JSON of ubjson.org,
  big-endian), an object ``{"Config": ..., "Model": ...}``. XGBoost 3.2 refuses a JSON
  text snapshot itself (its loader wants a letter after ``{``), and so do we. Only the
  shapes XGBoost's writer produces are accepted: objects of length-prefixed keys, arrays
  with a count (``[#L``) or typed arrays (``[$t#L``), no duplicate key, nothing after the
  document, nesting at most ``MAX_DEPTH`` deep, every count checked against the bytes left
  before anything is allocated.
* LightGBM: the model text of ``lightgbm.basic.Booster`` (``model_to_string()``, what its
  ``__getstate__`` stores): a header of ``key=value`` lines, one block per tree, the
  feature importances, the parameters. Only the lines LightGBM writes are accepted, every
  number must be a plain decimal literal, every array exactly as long as its tree says,
  ``tree_sizes`` must give every tree block's exact byte length (LightGBM's loader jumps
  by them), and no control character but the newline may appear.

Model families outside what sqlite-ml's catalogue trains are refused by name (XGBoost's
``gblinear`` booster and multi-output trees, categorical splits in XGBoost, LightGBM's
linear trees, ranking and survival objectives) rather than guessed at.

The semantics native scoring must implement exactly
---------------------------------------------------
Trees are flat node arrays, the root at index 0. At an internal node (``feature >= 0``)
the row's value ``x = row[feature]`` decides between ``left`` and ``right``; a leaf
(``feature == -1``, ``left == right == -1``) outputs ``value``. Every child index is
greater than its parent's and every node but the root has exactly one parent, so a walk
from the root ends at a leaf after at most ``n_nodes`` steps.

* ``Ensemble.comparison == "less"`` (XGBoost): the row is first rounded to float32, as
  XGBoost does; if ``x`` is NaN the row goes to ``left`` when ``default_left`` else
  ``right``; otherwise it goes left when ``float32(x) < threshold`` (``threshold`` holds
  XGBoost's float32 split value exactly). ``missing`` is ``MISSING_NAN`` at every node.
* ``Ensemble.comparison == "less_equal"`` (LightGBM), in float64:

  - a numeric split (``category_set == -1``): if ``x`` is NaN and ``missing`` is not
    ``MISSING_NAN``, ``x`` becomes 0.0. Then if (``missing == MISSING_ZERO`` and
    ``-1e-35 <= x <= 1e-35``) or (``missing == MISSING_NAN`` and ``x`` is NaN) the row goes
    to ``left`` when ``default_left`` else ``right``; otherwise left when ``x <= threshold``.
  - a categorical split (``category_set >= 0``): NaN goes right; otherwise ``c =
    int(x)`` (truncated toward zero); a negative ``c`` goes right; ``c`` goes left when it
    is in the node's set: with ``lo, hi = category_bounds[s], category_bounds[s + 1]``
    (``s = category_set``), ``c // 32 < hi - lo`` and bit ``c % 32`` of
    ``category_words[lo + c // 32]`` is set; else right.

Margins: ``margin[k] = base_margin[k] + sum(tree_weight[t] * leaf_t(row))`` over the trees
``t`` of the first ``iterations_used`` iterations with ``tree_output[t] == k``, in tree
order (XGBoost sums in float32, LightGBM in float64). With ``average_output`` (LightGBM's
random-forest mode) the margins are then divided by ``iterations_used``. The output is
the margin through ``link``:

=================  ========================================================================
``identity``       the margin
``sigmoid``        ``1 / (1 + exp(-sigmoid_scale * margin))``: P(class 1) of a binary model
``softmax``        ``exp(m_k - max m) / sum_j exp(m_j - max m)``: one probability per class
``sigmoid_each``   the sigmoid of every margin, not normalized (LightGBM ``multiclassova``)
``exp``            ``exp(margin)`` (Poisson, gamma, Tweedie)
``hinge``          1.0 when ``margin > 0`` else 0.0 (XGBoost ``binary:hinge``)
``signed_square``  ``sign(m) * m * m`` (LightGBM regression with ``reg_sqrt``)
``softplus``       ``log1p(exp(margin))`` (LightGBM ``cross_entropy_lambda``)
=================  ========================================================================

A classifier's class is the argmax of its probabilities (``[1 - p, p]`` for a binary
model: class 1 when ``p > 0.5``), the first of equal values.

``base_margin`` is already in margin space. XGBoost stores ``base_score`` in the output
(probability) space, as a list of one value per output since 3.1 (a scalar before), and
its loader maps it through the objective's inverse link (logit for the logistic
objectives, after clamping to [1e-6, 1 - 1e-6]; log for Poisson, gamma and Tweedie;
nothing for the others, softmax included); we do the same, in float32. LightGBM has no
base score at prediction time: its initial score is folded into the first iteration's
leaf values, so ``base_margin`` is 0.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import tree_links

XGBOOST = "xgboost"
LIGHTGBM = "lightgbm"

MISSING_NONE = 0  # LightGBM: NaN is read as 0.0, then compared
MISSING_ZERO = 1  # LightGBM: 0 (and NaN) take the default direction
MISSING_NAN = 2  # NaN takes the default direction (every XGBoost node)

LINKS = (
    "identity",
    "sigmoid",
    "softmax",
    "sigmoid_each",
    "exp",
    "hinge",
    "signed_square",
    "softplus",
)

# Bounds on what a stored booster may declare (each documented in docs/security.md). Sizes
# are also bounded by the bytes: every count is checked against what is left to read.
MAX_BOOSTER_BYTES = 1 << 31
MAX_DEPTH = 16  # nesting of XGBoost's UBJSON document (its own models reach 8)
MAX_FEATURES = 1 << 20
MAX_TREES = 1 << 20
MAX_NODES = 1 << 24  # per tree
MAX_CLASSES = 1 << 16
MAX_THREADS = 1024  # XGBoost's stored nthread / n_jobs

_KZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold
_XGB_RT_EPS = np.float32(1e-6)  # XGBoost's kRtEps, its clamp before the logit


class BoosterError(ValueError):
    """A stored booster failed a check; the message names the check."""


@dataclass(frozen=True, eq=False)
class Tree:
    """One tree as flat node arrays (see the module docstring for how a row walks it)."""

    feature: np.ndarray  # int32[n]: the split feature, -1 at a leaf
    threshold: np.ndarray  # float64[n]: the numeric split value (0 elsewhere)
    left: np.ndarray  # int32[n]: the left child, -1 at a leaf
    right: np.ndarray  # int32[n]: the right child, -1 at a leaf
    default_left: np.ndarray  # bool[n]: a missing value goes left
    missing: np.ndarray  # uint8[n]: MISSING_NONE, MISSING_ZERO or MISSING_NAN
    category_set: np.ndarray  # int32[n]: -1 for a numeric split, else its category set
    category_bounds: np.ndarray  # int32[sets + 1]: each set's words in category_words
    category_words: np.ndarray  # uint32[...]: the sets' bitsets, 32 categories a word
    value: np.ndarray  # float64[n]: a leaf's output (0 at internal nodes)

    @property
    def n_nodes(self) -> int:
        return len(self.feature)


@dataclass(frozen=True, eq=False)
class Ensemble:
    """A whole booster: its trees and how their leaves become a prediction."""

    library: str  # XGBOOST or LIGHTGBM
    objective: str  # the library's own objective name, e.g. 'binary:logistic', 'multiclass'
    link: str  # one of LINKS: how margins become outputs
    sigmoid_scale: float  # the sigmoid's factor (LightGBM's 'sigmoid:' parameter; else 1)
    comparison: str  # 'less' (XGBoost, float32) or 'less_equal' (LightGBM, float64)
    n_features: int  # the width of a row
    n_outputs: int  # margins per row
    n_classes: int  # classes of a classification objective (2 for binary), 0 otherwise
    trees: tuple[Tree, ...]
    tree_output: np.ndarray  # int32[trees]: the margin each tree adds to
    tree_weight: np.ndarray  # float64[trees]: each tree's factor (XGBoost dart), else 1
    trees_per_iteration: int
    n_iterations: int
    iterations_used: int  # iterations a prediction uses (early stopping's best, else all)
    base_margin: np.ndarray  # float64[n_outputs]: the margin before any tree
    average_output: bool  # LightGBM random forest: margins divided by iterations_used
    extra: dict[str, Any] = field(default_factory=dict)  # facts kept for cross-checks

    def using_iterations(self, count: int) -> Ensemble:
        """The same model predicting with its first ``count`` iterations (a recorded best
        iteration); refused when ``count`` is not between 1 and the iterations it has."""
        if isinstance(count, bool) or not isinstance(count, int):
            raise BoosterError(f"the iteration count to predict with is not an integer: {count!r}")
        if not 1 <= count <= self.n_iterations:
            raise BoosterError(
                f"the best iteration ({count}) is outside the model's {self.n_iterations} "
                "iterations"
            )
        return replace(self, iterations_used=count)


# --------------------------------------------------------------------------- UBJSON


@dataclass(frozen=True)
class _Typed:
    """A typed UBJSON array: its type letter and values."""

    kind: str
    values: np.ndarray


_TYPED_DTYPES = {
    kind: np.dtype(code)
    for kind, code in (
        ("d", ">f4"),
        ("D", ">f8"),
        ("i", "i1"),
        ("U", "u1"),
        ("I", ">i2"),
        ("l", ">i4"),
        ("L", ">i8"),
    )
}
_SCALARS = {
    ord("i"): struct.Struct(">b"),
    ord("U"): struct.Struct(">B"),
    ord("I"): struct.Struct(">h"),
    ord("l"): struct.Struct(">i"),
    ord("L"): struct.Struct(">q"),
    ord("d"): struct.Struct(">f"),
    ord("D"): struct.Struct(">d"),
}
_INT64 = struct.Struct(">q")
_CONSTANTS = {ord("T"): True, ord("F"): False, ord("Z"): None}


class _UbjsonReader:
    """A strict reader of the UBJSON subset XGBoost writes (see the module docstring).

    Reading past the end raises IndexError or struct.error, which ``read_ubjson`` turns
    into a BoosterError; every length is checked against the bytes left before use."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> BoosterError:
        return BoosterError(f"its UBJSON is malformed at byte {self.pos}: {what}")

    def length(self) -> int:
        """A count or a byte length: 'L' and an int64 no larger than the bytes left."""
        data, pos = self.data, self.pos
        if data[pos] != 0x4C:  # 'L'
            raise self.fail("expected a length")
        (count,) = _INT64.unpack_from(data, pos + 1)
        self.pos = pos = pos + 9
        if count < 0 or count > len(data) - pos:
            raise self.fail(f"a length of {count} with {len(data) - pos} bytes left")
        return int(count)

    def text(self) -> str:
        size = self.length()
        start = self.pos
        self.pos = start + size
        try:
            return self.data[start : start + size].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string that is not UTF-8") from None

    def document(self) -> Any:
        value = self.value(0)
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} bytes after the document")
        return value

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH}")
        data = self.data
        marker = data[self.pos]
        self.pos += 1
        if marker == 0x7B:  # '{'
            return self.object(depth + 1)
        if marker == 0x5B:  # '['
            return self.array(depth + 1)
        if marker == 0x53:  # 'S'
            return self.text()
        scalar = _SCALARS.get(marker)
        if scalar is not None:
            (number,) = scalar.unpack_from(data, self.pos)
            self.pos += scalar.size
            return number
        if marker in _CONSTANTS:
            return _CONSTANTS[marker]
        self.pos -= 1
        raise self.fail(f"an unknown marker {chr(marker)!r}")

    def object(self, depth: int) -> dict[str, Any]:
        found: dict[str, Any] = {}
        data = self.data
        while data[self.pos] != 0x7D:  # '}'
            key = self.text()
            if key in found:
                raise self.fail(f"the key {key[:40]!r} appears twice")
            found[key] = self.value(depth)
        self.pos += 1
        return found

    def array(self, depth: int) -> Any:
        data = self.data
        marker = data[self.pos]
        if marker == 0x24:  # '$': a typed array
            kind = chr(data[self.pos + 1])
            dtype = _TYPED_DTYPES.get(kind)
            if dtype is None or data[self.pos + 2] != 0x23:  # '#'
                raise self.fail(f"a typed array of unknown type {kind!r}")
            self.pos += 3
            count = self.length()
            size = count * dtype.itemsize
            if size > len(data) - self.pos:
                raise self.fail(f"a typed array of {count} items longer than the data")
            values = np.frombuffer(data, dtype=dtype, count=count, offset=self.pos)
            self.pos += size
            return _Typed(kind, values)  # big-endian, read-only: converted when used
        if marker == 0x23:  # '#': a counted array, every item at least one byte
            self.pos += 1
            count = self.length()
            return [self.value(depth) for _ in range(count)]
        raise self.fail("an array without a count (XGBoost always writes one)")


def read_ubjson(data: bytes) -> Any:
    """A UBJSON document as dicts, lists, str, int, float, bool, None and typed arrays."""
    if len(data) > MAX_BOOSTER_BYTES:
        raise BoosterError(f"it is {len(data)} bytes, more than the {MAX_BOOSTER_BYTES} allowed")
    reader = _UbjsonReader(bytes(data))
    try:
        return reader.document()
    except (IndexError, struct.error):
        raise reader.fail("it ends early") from None


# --------------------------------------------------------------------------- XGBoost

_XGB_IDENTITY = (
    "reg:squarederror",
    "reg:linear",
    "reg:squaredlogerror",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
    "binary:logitraw",
)
_XGB_LOGISTIC = ("binary:logistic", "reg:logistic")
_XGB_EXP = ("count:poisson", "reg:gamma", "reg:tweedie")
_XGB_SOFTMAX = ("multi:softprob", "multi:softmax")
_XGB_OBJECTIVES: dict[str, str] = {
    **dict.fromkeys(_XGB_IDENTITY, "identity"),
    **dict.fromkeys(_XGB_LOGISTIC, "sigmoid"),
    **dict.fromkeys(_XGB_EXP, "exp"),
    **dict.fromkeys(_XGB_SOFTMAX, "softmax"),
    "binary:hinge": "hinge",
}
_XGB_TREE_KEYS = {
    "base_weights",
    "categories",
    "categories_nodes",
    "categories_segments",
    "categories_sizes",
    "default_left",
    "id",
    "left_children",
    "loss_changes",
    "parents",
    "right_children",
    "split_conditions",
    "split_indices",
    "split_type",
    "sum_hessian",
    "tree_param",
}
_XGB_NO_PARENT = 0x7FFFFFFF  # the root's parent as XGBoost writes it
_XGB_DELETED = 0x7FFFFFFF  # split index of a node the pruner deleted (with default_left)
_FLOAT_LITERAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_INT_LITERAL = re.compile(r"-?[0-9]{1,18}")
_FLOAT_CHARS = re.compile(r"[-+.0-9eE ]+")
_INT_CHARS = re.compile(r"[-0-9 ]+")


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise BoosterError(message)


def _obj(value: Any, where: str, keys: set[str] | None = None) -> dict[str, Any]:
    _need(isinstance(value, dict), f"{where} is not an object")
    if keys is not None:
        unknown = sorted(set(value) - keys)
        _need(not unknown, f"{where} has keys it should not have: {unknown[:5]}")
    return value


def _key(value: dict[str, Any], key: str, where: str) -> Any:
    _need(key in value, f"{where} lacks '{key}'")
    return value[key]


def _int_text(text: Any, where: str, low: int, high: int) -> int:
    """An integer XGBoost stores as text ('3'), within [low, high]."""
    _need(
        isinstance(text, str) and _INT_LITERAL.fullmatch(text) is not None,
        f"{where} is not an integer: {str(text)[:40]!r}",
    )
    number = int(text)
    _need(low <= number <= high, f"{where} is {number}, outside [{low}, {high}]")
    return number


def _int(value: Any, where: str, low: int, high: int) -> int:
    _need(
        isinstance(value, int) and not isinstance(value, bool),
        f"{where} is not an integer",
    )
    _need(low <= value <= high, f"{where} is {value}, outside [{low}, {high}]")
    return int(value)


def _typed(value: Any, where: str, kinds: str, length: int | None = None) -> np.ndarray:
    _need(
        isinstance(value, _Typed) and value.kind in kinds,
        f"{where} is not a typed array of type {' or '.join(kinds)}",
    )
    assert isinstance(value, _Typed)
    if length is not None:
        _need(
            len(value.values) == length,
            f"{where} has {len(value.values)} items, not {length}",
        )
    return value.values


def _int_list(value: Any, where: str) -> list[int]:
    if isinstance(value, _Typed):
        _need(value.kind in "iUIlL", f"{where} is not an array of integers")
        return [int(v) for v in value.values]
    _need(isinstance(value, list), f"{where} is not an array")
    return [_int(v, f"an item of {where}", -(1 << 62), 1 << 62) for v in value]


def _floats_text(text: Any, where: str) -> list[float]:
    """XGBoost's base_score: '[5E-1]' or '[a,b,c]' (3.1 and later), '5E-1' before."""
    _need(isinstance(text, str) and len(text) <= 1 << 20, f"{where} is not text")
    body = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    items = body.split(",")
    _need(
        all(_FLOAT_LITERAL.fullmatch(item) for item in items),
        f"{where} is not a list of numbers: {text[:40]!r}",
    )
    numbers = [float(item) for item in items]
    _need(all(math.isfinite(n) for n in numbers), f"{where} is not finite: {text[:40]!r}")
    return numbers


def _all_finite(values: np.ndarray, where: str) -> None:
    _need(bool(np.isfinite(values).all()), f"{where} holds a value that is not finite")


def parse_xgboost(raw: bytes) -> Ensemble:
    """Parse and check the bytes of ``xgboost.core.Booster.__getstate__()["handle"]``;
    :class:`BoosterError` names the first check that fails."""
    data = bytes(raw)
    _need(data[:2] != b'{"', "it is a JSON text snapshot, which XGBoost 3 no longer reads")
    _need(data[:2] == b"{L", "it is not an XGBoost UBJSON snapshot")
    document = _obj(read_ubjson(data), "the snapshot", {"Config", "Model"})
    model = _obj(_key(document, "Model", "the snapshot"), "'Model'", {"learner", "version"})
    config = _obj(_key(document, "Config", "the snapshot"), "'Config'", {"learner", "version"})
    version = _int_list(_key(model, "version", "'Model'"), "the model's version")
    _need(len(version) == 3 and version[0] >= 1, f"the model's version {version} is not one")
    learner = _obj(
        _key(model, "learner", "'Model'"),
        "the learner",
        {
            "attributes",
            "feature_names",
            "feature_types",
            "gradient_booster",
            "learner_model_param",
            "objective",
        },
    )
    parameters = _xgb_model_parameters(_key(learner, "learner_model_param", "the learner"))
    n_features, n_classes, n_targets = (
        parameters["num_feature"],
        parameters["num_class"],
        parameters["num_target"],
    )
    _need(n_features >= 1, "the model has no feature")
    _need(n_targets == 1, f"the model has {n_targets} targets; sqlite-ml trains one")
    objective_config = _obj(_key(learner, "objective", "the learner"), "the objective")
    objective = _key(objective_config, "name", "the objective")
    _need(isinstance(objective, str), "the objective's name is not text")
    link = _XGB_OBJECTIVES.get(objective)
    _need(
        link is not None,
        f"objective {str(objective)[:40]!r} is not one sqlite-ml can check "
        f"(it checks {', '.join(sorted(_XGB_OBJECTIVES))})",
    )
    assert link is not None
    _xgb_objective_config(objective_config, objective, n_classes)
    if link == "softmax":
        _need(n_classes >= 2, f"objective {objective} with num_class {n_classes}")
    else:
        _need(n_classes == 0, f"objective {objective} with num_class {n_classes}")
    n_outputs = max(n_classes, 1)
    _xgb_feature_list(learner.get("feature_names", []), "feature_names", n_features)
    types = _xgb_feature_list(learner.get("feature_types", []), "feature_types", n_features)
    _need(
        not any(t == "c" for t in types),
        "a feature is categorical; sqlite-ml refuses XGBoost's categorical splits "
        "(its features are encoded before the model sees them)",
    )
    _need(
        all(t in ("q", "float", "int", "i") for t in types),
        "feature_types holds an unknown type",
    )
    attributes = _obj(_key(learner, "attributes", "the learner"), "the attributes")
    booster = _obj(_key(learner, "gradient_booster", "the learner"), "the gradient booster")
    name = _key(booster, "name", "the gradient booster")
    if name == "gbtree":
        _obj(booster, "the gbtree booster", {"name", "model"})
        trees_model, weights = _key(booster, "model", "the gbtree booster"), None
    elif name == "dart":
        _obj(booster, "the dart booster", {"name", "gbtree", "weight_drop"})
        inner = _obj(
            _key(booster, "gbtree", "the dart booster"), "dart's gbtree", {"name", "model"}
        )
        _need(inner.get("name") == "gbtree", "dart's inner booster is not gbtree")
        trees_model = _key(inner, "model", "dart's gbtree")
        weights = booster.get("weight_drop")
    elif name == "gblinear":
        raise BoosterError(
            "it uses XGBoost's gblinear booster, which sqlite-ml does not check; "
            "train with booster 'gbtree' or 'dart' (or a linear algorithm)"
        )
    else:
        raise BoosterError(f"unknown gradient booster {str(name)[:40]!r}")
    trees, outputs, per_iteration, iterations, num_parallel = _xgb_trees(
        trees_model, n_features, n_outputs
    )
    if weights is None:
        tree_weight = np.ones(len(trees), dtype=np.float64)
    else:
        tree_weight = np.array(
            [_xgb_number(w, "a dart tree weight") for w in _list(weights, "weight_drop")],
            dtype=np.float64,
        )
        _need(len(tree_weight) == len(trees), "weight_drop does not have one weight per tree")
    best = _xgb_best_iteration(attributes, iterations)
    base_margin = _xgb_base_margin(parameters["base_score"], objective, link, n_outputs)
    _xgb_check_config(config, parameters, objective, name)
    return Ensemble(
        library=XGBOOST,
        objective=objective,
        link=link,
        sigmoid_scale=1.0,
        comparison="less",
        n_features=n_features,
        n_outputs=n_outputs,
        n_classes=n_classes if link == "softmax" else (2 if objective.startswith("binary:") else 0),
        trees=tuple(trees),
        tree_output=_frozen(np.asarray(outputs, dtype=np.int32)),
        tree_weight=_frozen(tree_weight),
        trees_per_iteration=per_iteration,
        n_iterations=iterations,
        iterations_used=iterations if best is None else best + 1,
        base_margin=_frozen(base_margin),
        average_output=False,
        extra={"booster": name, "num_parallel_tree": num_parallel, "version": tuple(version)},
    )


def _list(value: Any, where: str) -> list[Any]:
    _need(isinstance(value, list), f"{where} is not an array")
    return value


def _xgb_number(value: Any, where: str) -> float:
    _need(
        isinstance(value, (int, float)) and not isinstance(value, bool),
        f"{where} is not a number",
    )
    _need(math.isfinite(value), f"{where} is not finite")
    return float(value)


def _xgb_model_parameters(value: Any) -> dict[str, Any]:
    where = "learner_model_param"
    params = _obj(
        value,
        where,
        {"base_score", "boost_from_average", "num_class", "num_feature", "num_target"},
    )
    return {
        "base_score": _floats_text(_key(params, "base_score", where), "base_score"),
        "num_class": _int_text(_key(params, "num_class", where), "num_class", 0, MAX_CLASSES),
        "num_feature": _int_text(
            _key(params, "num_feature", where), "num_feature", 0, MAX_FEATURES
        ),
        "num_target": _int_text(params.get("num_target", "1"), "num_target", 0, MAX_CLASSES),
        "boost_from_average": _int_text(
            params.get("boost_from_average", "1"), "boost_from_average", 0, 1
        ),
    }


def _xgb_objective_config(config: dict[str, Any], objective: str, n_classes: int) -> None:
    """The objective's own parameters: an object of text values, checked where they
    matter (the class count; a single quantile)."""
    for key, section in config.items():
        if key == "name":
            continue
        params = _obj(section, f"the objective's {key!r}")
        for name, value in params.items():
            if name == "quantile_alpha":
                alphas = _floats_text(value, "quantile_alpha")
                _need(len(alphas) == 1, "the quantile objective predicts several quantiles")
                continue
            _need(isinstance(value, str) and len(value) <= 64, f"objective parameter {name!r}")
        if key == "softmax_multiclass_param":
            count = _int_text(params.get("num_class"), "the objective's num_class", 0, MAX_CLASSES)
            _need(count == n_classes, f"the objective's num_class {count} is not {n_classes}")


def _xgb_feature_list(value: Any, where: str, n_features: int) -> list[str]:
    items = _list(value, where)
    _need(len(items) in (0, n_features), f"{where} does not name every feature")
    _need(all(isinstance(v, str) and len(v) <= 1024 for v in items), f"{where} is not text")
    return items


def _xgb_best_iteration(attributes: dict[str, Any], iterations: int) -> int | None:
    for key, value in attributes.items():
        _need(key in ("best_iteration", "best_score"), f"an unknown attribute {key[:40]!r}")
        _need(isinstance(value, str) and len(value) <= 64, f"attribute {key!r} is not text")
    if "best_score" in attributes:
        _floats_text(attributes["best_score"], "best_score")
    if "best_iteration" not in attributes:
        return None
    best = _int_text(attributes["best_iteration"], "best_iteration", 0, max(iterations - 1, 0))
    return best


def _xgb_base_margin(
    base_score: list[float], objective: str, link: str, outputs: int
) -> np.ndarray:
    _need(
        len(base_score) in (1, outputs),
        f"base_score has {len(base_score)} values for {outputs} outputs",
    )
    scores = np.array(base_score * (outputs if len(base_score) == 1 else 1), dtype=np.float32)
    if objective in _XGB_LOGISTIC:
        _need(bool(((scores >= 0) & (scores <= 1)).all()), "base_score is not a probability")
        clamped = np.minimum(np.maximum(scores, _XGB_RT_EPS), np.float32(1) - _XGB_RT_EPS)
        with np.errstate(divide="ignore"):
            margin = -np.log(np.float32(1) / clamped - np.float32(1))
    elif link == "exp":
        _need(bool((scores > 0).all()), f"base_score must be positive for {objective}")
        margin = np.log(scores)
    else:
        margin = scores
    margin = np.asarray(margin, dtype=np.float32)
    _all_finite(margin, "the base margin")
    return margin.astype(np.float64)


def _xgb_trees(
    value: Any, n_features: int, n_outputs: int
) -> tuple[list[Tree], list[int], int, int, int]:
    where = "the tree model"
    model = _obj(
        value,
        where,
        {"cats", "gbtree_model_param", "iteration_indptr", "tree_info", "trees"},
    )
    params = _obj(
        _key(model, "gbtree_model_param", where),
        "gbtree_model_param",
        {"num_parallel_tree", "num_trees"},
    )
    n_trees = _int_text(_key(params, "num_trees", "gbtree_model_param"), "num_trees", 0, MAX_TREES)
    parallel = _int_text(
        _key(params, "num_parallel_tree", "gbtree_model_param"), "num_parallel_tree", 1, MAX_TREES
    )
    trees_json = _list(_key(model, "trees", where), "trees")
    _need(len(trees_json) == n_trees, f"{len(trees_json)} trees where num_trees says {n_trees}")
    outputs = _int_list(_key(model, "tree_info", where), "tree_info")
    _need(len(outputs) == n_trees, "tree_info does not give every tree its output")
    _need(all(0 <= k < n_outputs for k in outputs), "tree_info names an output that is not one")
    per_iteration = n_outputs * parallel
    _need(n_trees % per_iteration == 0, "the trees do not make whole iterations")
    iterations = n_trees // per_iteration
    if "iteration_indptr" in model:
        indptr = _int_list(model["iteration_indptr"], "iteration_indptr")
        expected = [i * per_iteration for i in range(iterations + 1)]
        _need(indptr == expected, "iteration_indptr does not split the trees into iterations")
    for i in range(n_trees):
        expected_output = (i % per_iteration) // parallel
        _need(outputs[i] == expected_output, f"tree {i} adds to output {outputs[i]}")
    if "cats" in model:
        _xgb_no_categories(model["cats"])
    return _xgb_forest(trees_json, n_features), outputs, per_iteration, iterations, parallel


def _xgb_no_categories(value: Any) -> None:
    cats = _obj(value, "the model's categories", {"enc", "feature_segments", "sorted_idx"})
    for key, item in cats.items():
        size = len(item.values) if isinstance(item, _Typed) else len(_list(item, key))
        _need(
            size == 0,
            "the model holds category encodings; sqlite-ml refuses XGBoost's "
            "categorical splits (its features are encoded before the model sees them)",
        )


# A tree's typed arrays: (key, UBJSON types, numpy type read as), all one per node.
_XGB_NODE_ARRAYS = (
    ("left_children", "l", np.int64),
    ("right_children", "l", np.int64),
    ("parents", "l", np.int64),
    ("split_indices", "lL", np.int64),
    ("split_conditions", "d", np.float32),
    ("default_left", "U", np.uint8),
    ("split_type", "U", np.uint8),
    ("base_weights", "d", np.float32),
    ("loss_changes", "d", np.float32),
    ("sum_hessian", "d", np.float32),
)
_XGB_CATEGORY_ARRAYS = (
    ("categories", "l"),
    ("categories_nodes", "l"),
    ("categories_segments", "L"),
    ("categories_sizes", "L"),
)
_NO_CATEGORIES = (
    "sqlite-ml refuses XGBoost's categorical splits (its features are encoded before the "
    "model sees them)"
)


def _xgb_tree_arrays(value: Any, index: int, n_features: int) -> tuple[int, int, list[np.ndarray]]:
    """One tree's node count, deleted-node count and node arrays, each checked for its
    type and length (the checks across nodes run on all trees at once)."""
    where = f"tree {index}"
    tree = _obj(value, where, _XGB_TREE_KEYS)
    _need(
        len(tree) == len(_XGB_TREE_KEYS), f"{where} lacks {sorted(_XGB_TREE_KEYS - set(tree))[:5]}"
    )
    _need(_int(tree["id"], f"{where}'s id", 0, MAX_TREES) == index, f"{where} has another id")
    params = _obj(
        tree["tree_param"],
        f"{where}'s tree_param",
        {"num_deleted", "num_feature", "num_nodes", "size_leaf_vector"},
    )
    n = _int_text(params.get("num_nodes"), f"{where}'s num_nodes", 1, MAX_NODES)
    deleted = _int_text(params.get("num_deleted"), f"{where}'s num_deleted", 0, n - 1)
    width = _int_text(params.get("num_feature"), f"{where}'s num_feature", 0, MAX_FEATURES)
    _need(width == n_features, f"{where} has {width} features, the model {n_features}")
    leaf_size = _int_text(params.get("size_leaf_vector", "1"), f"{where}'s leaf size", 0, 1 << 16)
    _need(leaf_size in (0, 1), f"{where} has vector leaves (multi-output trees)")
    arrays = [_typed(tree[key], f"{where}'s {key}", kinds, n) for key, kinds, _ in _XGB_NODE_ARRAYS]
    for key, kinds in _XGB_CATEGORY_ARRAYS:
        found = _typed(tree[key], f"{where}'s {key}", kinds)
        _need(len(found) == 0, f"{where} has a categorical split; {_NO_CATEGORIES}")
    return n, deleted, arrays


def _xgb_forest(trees_json: list[Any], n_features: int) -> list[Tree]:
    """Every tree checked: per tree its fields, then over all trees' nodes at once the
    links, features, parents, deleted nodes and values."""
    counted = [_xgb_tree_arrays(tree, i, n_features) for i, tree in enumerate(trees_json)]
    if not counted:
        return []
    sizes = np.array([n for n, _, _ in counted], dtype=np.int64)
    deleted_counts = np.array([d for _, d, _ in counted], dtype=np.int64)
    columns = [
        np.concatenate([arrays[k] for _, _, arrays in counted]).astype(dtype)
        for k, (_, _, dtype) in enumerate(_XGB_NODE_ARRAYS)
    ]
    left, right, parents, split, conditions, default, split_type = columns[:7]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    start_of = np.repeat(starts, sizes)

    def first_bad(bad: np.ndarray, what: str) -> None:
        if bad.any():
            tree = int(np.searchsorted(starts, int(np.argmax(bad)), side="right")) - 1
            raise BoosterError(f"tree {tree} {what}")

    first_bad(split_type != 0, f"has a categorical split; {_NO_CATEGORIES}")
    first_bad((default != 0) & (default != 1), "has a default_left that is not 0/1")
    for k, (key, _, _) in enumerate(_XGB_NODE_ARRAYS):
        if columns[k].dtype == np.float32:
            first_bad(~np.isfinite(columns[k]), f"has a value in {key} that is not finite")
    is_deleted = (split == _XGB_DELETED) & (default == 1)
    per_tree = np.add.reduceat(is_deleted.astype(np.int64), starts)
    bad_tree = per_tree != deleted_counts
    _need(not bad_tree.any(), f"tree {int(np.argmax(bad_tree))} does not have its deleted nodes")
    first_bad(np.isin(np.arange(len(left)), starts) & is_deleted, "has its root deleted")
    root = np.zeros(len(left), dtype=bool)
    root[starts] = True
    first_bad(root & (parents != _XGB_NO_PARENT), "has a root with a parent")
    size_of = np.repeat(sizes, sizes)
    first_bad(~root & ((parents < 0) | (parents >= size_of)), "has a parent index out of range")
    leaf = left == -1
    first_bad(
        ~leaf & ((split < 0) | (split >= n_features)),
        f"splits on a feature that is not one of the {n_features}",
    )
    found = tree_links.forest_problem(left, right, sizes, unused=is_deleted)
    if found is not None:
        raise BoosterError(f"tree {found[0]} {found[1]}")
    inner = np.flatnonzero(~leaf)
    for child, side in ((left, "left"), (right, "right")):
        named = parents[child[inner] + start_of[inner]] + start_of[inner]
        first_bad_nodes = named != inner
        if first_bad_nodes.any():
            node = int(inner[np.argmax(first_bad_nodes)])
            tree = int(np.searchsorted(starts, node, side="right")) - 1
            raise BoosterError(f"tree {tree}: a {side} child does not name its parent")
    kept = ~is_deleted
    renumbered = np.cumsum(kept) - 1  # every node's index once deleted ones are dropped
    new_starts = renumbered[starts]
    new_sizes = np.add.reduceat(kept.astype(np.int64), starts)
    leaf_kept = leaf[kept]
    start_kept = np.repeat(new_starts, new_sizes)

    def kept_child(side: np.ndarray) -> np.ndarray:
        target = renumbered[np.maximum(side, 0) + start_of][kept] - start_kept
        return np.where(leaf_kept, -1, target).astype(np.int32)

    values = conditions.astype(np.float64)[kept]
    flat = {
        "feature": _frozen(np.where(leaf_kept, -1, split[kept]).astype(np.int32)),
        "threshold": _frozen(np.where(leaf_kept, 0.0, values)),
        "left": _frozen(kept_child(left)),
        "right": _frozen(kept_child(right)),
        "default_left": _frozen(default[kept].astype(bool)),
        "missing": _frozen(np.full(len(values), MISSING_NAN, dtype=np.uint8)),
        "category_set": _frozen(np.full(len(values), -1, dtype=np.int32)),
        "value": _frozen(np.where(leaf_kept, values, 0.0)),
    }
    no_bounds = _frozen(np.zeros(1, dtype=np.int32))
    no_words = _frozen(np.zeros(0, dtype=np.uint32))
    ends = new_starts + new_sizes
    return [
        Tree(
            **{name: array[a:b] for name, array in flat.items()},
            category_bounds=no_bounds,
            category_words=no_words,
        )
        for a, b in zip(new_starts.tolist(), ends.tolist(), strict=True)
    ]


def _check_tree_shape(
    left: np.ndarray, right: np.ndarray, where: str, unused: np.ndarray | None = None
) -> None:
    found = tree_links.problem(left, right, unused)
    _need(found is None, f"{where} {found}")


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


_XGB_CONFIG_THREADS = ("nthread", "n_jobs")


def _xgb_check_config(
    config: dict[str, Any], parameters: dict[str, Any], objective: str, booster: str
) -> None:
    """The snapshot's configuration: text values in nested objects, bounded, and agreeing
    with the model on everything both state."""
    _check_config_shape(config, "Config", 0)
    learner = _obj(_key(config, "learner", "'Config'"), "the configuration's learner")
    generic = _obj(learner.get("generic_param", {}), "generic_param")
    for key in _XGB_CONFIG_THREADS:
        if key in generic:
            _int_text(generic[key], f"the configuration's {key}", -1, MAX_THREADS)
    device = generic.get("device", "cpu")
    _need(device == "cpu", f"the configuration's device is {str(device)[:20]!r}, not 'cpu'")
    train = _obj(learner.get("learner_train_param", {}), "learner_train_param")
    _need(train.get("objective", objective) == objective, "the configuration's objective differs")
    _need(train.get("booster", booster) == booster, "the configuration's booster differs")
    strategy = train.get("multi_strategy", "one_output_per_tree")
    _need(strategy == "one_output_per_tree", "the configuration asks for multi-output trees")
    model_params = learner.get("learner_model_param")
    if model_params is not None:
        stated = _xgb_model_parameters(model_params)
        _need(stated == parameters, "the configuration's model parameters differ from the model's")
    objective_config = learner.get("objective")
    if objective_config is not None:
        _need(
            _obj(objective_config, "the configuration's objective").get("name") == objective,
            "the configuration's objective differs",
        )


def _check_config_shape(value: Any, where: str, depth: int) -> None:
    _need(depth <= MAX_DEPTH, f"{where} is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_config_shape(item, f"{where}.{key[:40]}", depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_config_shape(item, where, depth + 1)
    else:
        _need(
            (isinstance(value, str) and len(value) <= 4096)
            or isinstance(value, bool)
            or (isinstance(value, int) and -(1 << 31) <= value < 1 << 31),
            f"{where} is not a short text, a flag or a small integer",
        )


# --------------------------------------------------------------------------- LightGBM

_LGB_IDENTITY = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
_LGB_EXP = ("poisson", "gamma", "tweedie")
_LGB_HEADER_KEYS = {
    "version",
    "num_class",
    "num_tree_per_iteration",
    "label_index",
    "max_feature_idx",
    "objective",
    "average_output",
    "feature_names",
    "monotone_constraints",
    "feature_infos",
    "tree_sizes",
}
_LGB_TREE_KEYS = {
    "num_leaves",
    "num_cat",
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_weight",
    "leaf_count",
    "internal_value",
    "internal_weight",
    "internal_count",
    "cat_boundaries",
    "cat_threshold",
    "is_linear",
    "shrinkage",
}
_LGB_MAX_TREE_LINES = 22  # LightGBM's tree reader stops after this many lines
_NAME = re.compile(r"[^\s=]{1,256}")
_FEATURE_INFO = re.compile(r"none|\[[^\s\]]{1,80}:[^\s\]]{1,80}\]|-?[0-9]+(?::-?[0-9]+){0,65535}")
_PARAMETER_LINE = re.compile(r"\[[a-z0-9_]{1,64}: [^\n]{0,4096}\]")


def parse_lightgbm(text: str) -> Ensemble:
    """Parse and check LightGBM model text (``Booster.model_to_string()``, what its
    ``__getstate__`` stores); :class:`BoosterError` names the first check that fails."""
    _need(isinstance(text, str), "the model text is not text")
    _need(len(text) <= MAX_BOOSTER_BYTES, "the model text is too long")
    _need(
        re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text) is None,
        "the model text holds a control character",
    )
    _need(text.isascii(), "the model text holds a character that is not ASCII")
    lines = text.split("\n")
    _need(lines[0] == "tree", "the model text does not start with 'tree'")
    header, position = _lgb_header(lines)
    n_classes_declared = _lgb_int(header, "num_class", 1, MAX_CLASSES)
    per_iteration = _lgb_int(header, "num_tree_per_iteration", 1, MAX_CLASSES)
    _lgb_int(header, "label_index", 0, 0)
    n_features = _lgb_int(header, "max_feature_idx", 0, MAX_FEATURES - 1) + 1
    _need(header.get("version") == "v4", "the model text is not version v4")
    names = header.get("feature_names", "").split(" ")
    _need(len(names) == n_features, "feature_names does not name every feature")
    _need(all(_NAME.fullmatch(n) for n in names), "a feature name is not a plain word")
    infos = header.get("feature_infos", "").split(" ")
    _need(len(infos) == n_features, "feature_infos does not describe every feature")
    _need(all(_FEATURE_INFO.fullmatch(i) for i in infos), "a feature_infos entry is malformed")
    if "monotone_constraints" in header:
        constraints = header["monotone_constraints"].split(" ")
        _need(len(constraints) == n_features, "monotone_constraints does not cover every feature")
        _need(
            all(c in ("-1", "0", "1") for c in constraints), "a monotone constraint is not -1/0/1"
        )
    objective, link, scale, n_classes = _lgb_objective(header.get("objective"), n_classes_declared)
    _need(
        per_iteration == (n_classes_declared if n_classes_declared > 1 else 1),
        f"{per_iteration} trees per iteration for {n_classes_declared} classes",
    )
    average_output = "average_output" in header
    _need(header.get("average_output", "") == "", "average_output carries a value")
    sizes_text = header.get("tree_sizes")
    _need(sizes_text is not None, "the model text has no tree_sizes")
    assert sizes_text is not None
    sizes = [] if sizes_text == "" else sizes_text.split(" ")
    _need(all(re.fullmatch(r"[0-9]{1,12}", s) for s in sizes), "tree_sizes is malformed")
    _need(len(sizes) <= MAX_TREES, "the model has too many trees")
    _need(len(sizes) % per_iteration == 0, "the trees do not make whole iterations")
    _need(len(sizes) > 0, "the model has no tree")
    trees: list[Tree] = []
    for index, size in enumerate(sizes):
        tree, position = _lgb_tree(lines, position, index, int(size), n_features)
        trees.append(tree)
    _lgb_trailer(lines, position, names)
    n_trees = len(trees)
    iterations = n_trees // per_iteration
    return Ensemble(
        library=LIGHTGBM,
        objective=objective,
        link=link,
        sigmoid_scale=scale,
        comparison="less_equal",
        n_features=n_features,
        n_outputs=per_iteration,
        n_classes=n_classes,
        trees=tuple(trees),
        tree_output=_frozen(np.arange(n_trees, dtype=np.int32) % per_iteration),
        tree_weight=_frozen(np.ones(n_trees, dtype=np.float64)),
        trees_per_iteration=per_iteration,
        n_iterations=iterations,
        iterations_used=iterations,
        base_margin=_frozen(np.zeros(per_iteration, dtype=np.float64)),
        average_output=average_output,
        extra={"feature_names": tuple(names)},
    )


def _lgb_header(lines: list[str]) -> tuple[dict[str, str], int]:
    header: dict[str, str] = {}
    position = 1
    while position < len(lines) and lines[position] != "":
        line = lines[position]
        key, equals, value = line.partition("=")
        _need(
            key in _LGB_HEADER_KEYS,
            f"the header has a line that is not one of LightGBM's: {line[:40]!r}",
        )
        _need(key not in header, f"the header states {key!r} twice")
        _need(
            bool(equals) or key == "average_output",
            f"header line {line[:40]!r} has no value",
        )
        _need(
            "=" not in value or key in ("feature_names", "monotone_constraints"),
            f"header line {line[:40]!r} has a second '='",
        )
        header[key] = value
        position += 1
    _need(position < len(lines), "the model text has no trees")
    return header, position + 1  # past the blank line


def _lgb_int(header: dict[str, str], key: str, low: int, high: int) -> int:
    _need(key in header, f"the header lacks {key!r}")
    return _int_text(header[key], key, low, high)


def _lgb_objective(value: str | None, n_classes: int) -> tuple[str, str, float, int]:
    _need(value is not None, "the model text names no objective")
    assert value is not None
    parts = value.split(" ")
    name, options = parts[0], parts[1:]
    settings: dict[str, str] = {}
    flags: set[str] = set()
    for option in options:
        key, colon, setting = option.partition(":")
        _need(key not in settings and key not in flags, f"objective option {key!r} repeats")
        if colon:
            settings[key] = setting
        else:
            flags.add(key)

    def sigmoid() -> float:
        text = settings.get("sigmoid")
        _need(text is not None and _FLOAT_LITERAL.fullmatch(text) is not None, "no sigmoid")
        assert text is not None
        scale = float(text)
        _need(math.isfinite(scale) and scale > 0, "the sigmoid parameter is not positive")
        return scale

    def only(allowed_settings: set[str], allowed_flags: frozenset[str] = frozenset()) -> None:
        _need(set(settings) <= allowed_settings, f"objective {name} has unknown options")
        _need(flags <= allowed_flags, f"objective {name} has unknown options")

    if name == "binary":
        only({"sigmoid"})
        _need(n_classes == 1, f"objective binary with num_class {n_classes}")
        return name, "sigmoid", sigmoid(), 2
    if name in ("multiclass", "multiclassova"):
        only({"num_class", "sigmoid"} if name == "multiclassova" else {"num_class"})
        stated = _int_text(settings.get("num_class"), "the objective's num_class", 2, MAX_CLASSES)
        _need(stated == n_classes, f"the objective's num_class {stated} is not {n_classes}")
        if name == "multiclass":
            return name, "softmax", 1.0, n_classes
        return name, "sigmoid_each", sigmoid(), n_classes
    _need(n_classes == 1, f"objective {name} with num_class {n_classes}")
    if name in _LGB_IDENTITY:
        only(set(), frozenset({"sqrt"}))
        return name, "signed_square" if "sqrt" in flags else "identity", 1.0, 0
    if name in _LGB_EXP:
        only(set())
        return name, "exp", 1.0, 0
    if name == "cross_entropy":
        only(set())
        return name, "sigmoid", 1.0, 0
    if name == "cross_entropy_lambda":
        only(set())
        return name, "softplus", 1.0, 0
    raise BoosterError(f"objective {name[:40]!r} is not one sqlite-ml can check")


def _lgb_numbers(text: str, where: str, count: int, kind: str) -> np.ndarray:
    """A line of ``count`` numbers separated by single spaces: 'f' finite decimals,
    'int' int32 values, 'uint32' unsigned 32-bit values. The characters are checked by
    one regex, each number by numpy's conversion (which refuses anything but a decimal
    literal made of them, as an empty item from a doubled space)."""
    items = _lgb_items(text, where, count, kind)
    if not items:
        return np.zeros(0, dtype=np.float64 if kind == "f" else np.int64)
    try:
        values = np.array(items, dtype=np.float64 if kind == "f" else np.int64)
    except (ValueError, OverflowError):
        raise BoosterError(f"{where} holds a malformed number") from None
    if kind == "f":
        _all_finite(values, where)
        return values
    low, high = (-(1 << 31), 1 << 31) if kind == "int" else (0, 1 << 32)
    _need(bool(((values >= low) & (values < high)).all()), f"{where} holds an integer out of range")
    return values


def _lgb_items(text: str, where: str, count: int, kind: str) -> list[str]:
    """The items of a line of numbers, checked for their characters and their count (the
    fields prediction does not read are checked this far only)."""
    if count == 0:
        _need(text == "", f"{where} has values, not 0")
        return []
    pattern = _FLOAT_CHARS if kind == "f" else _INT_CHARS
    _need(
        pattern.fullmatch(text) is not None,
        f"{where} holds a non-number" if kind == "f" else f"{where} holds a non-integer",
    )
    items = text.split(" ")
    _need(len(items) == count, f"{where} has {len(items)} values, not {count}")
    return items


def _lgb_tree(
    lines: list[str], position: int, index: int, size: int, n_features: int
) -> tuple[Tree, int]:
    where = f"tree {index}"
    start = position
    _need(position < len(lines) and lines[position] == f"Tree={index}", f"{where} is missing")
    position += 1
    fields: dict[str, str] = {}
    while position < len(lines) and lines[position] != "":
        line = lines[position]
        key, equals, value = line.partition("=")
        _need(
            bool(equals) and key in _LGB_TREE_KEYS,
            f"{where} has a line that is not one of a tree's",
        )
        _need(key not in fields, f"{where} states {key!r} twice")
        fields[key] = value
        position += 1
    _need(len(fields) <= _LGB_MAX_TREE_LINES, f"{where} has too many lines")
    # LightGBM writes each block as 'Tree=i', its lines, and two newlines.
    _need(
        position + 1 < len(lines) and lines[position] == "" and lines[position + 1] == "",
        f"{where} does not end with a blank line",
    )
    position += 2
    block = sum(len(line) + 1 for line in lines[start:position])
    _need(block == size, f"tree_sizes gives {where} {size} bytes, it has {block}")
    is_linear = _int_text(fields.get("is_linear", "0"), f"{where}'s is_linear", 0, 1)
    _need(is_linear == 0, f"{where} is a linear tree, which sqlite-ml does not check")
    leaves = _int_text(fields.get("num_leaves"), f"{where}'s num_leaves", 1, MAX_NODES)
    n_cat = _int_text(fields.get("num_cat"), f"{where}'s num_cat", 0, MAX_NODES)
    shrinkage = fields.get("shrinkage", "1")
    _need(_FLOAT_LITERAL.fullmatch(shrinkage) is not None, f"{where}'s shrinkage")
    leaf_values = _lgb_numbers(
        _field(fields, "leaf_value", where), f"{where}'s leaf_value", leaves, "f"
    )
    if leaves == 1:
        # LightGBM writes the other fields of a one-leaf tree empty (or a leaf count) and
        # reads nothing of them but the leaf's value.
        _need(n_cat == 0, f"{where} has one leaf but categorical splits")
        for key, text in fields.items():
            if key not in ("num_leaves", "num_cat", "leaf_value", "is_linear", "shrinkage"):
                _need(
                    text == ""
                    or (key == "leaf_count" and _INT_LITERAL.fullmatch(text) is not None),
                    f"{where} has one leaf but a value in {key!r}",
                )
        return _lgb_single_leaf(float(leaf_values[0])), position
    for key, kind in (("leaf_weight", "f"), ("leaf_count", "int")):
        if key in fields:  # not read by prediction: their shape only
            _lgb_items(fields[key], f"{where}'s {key}", leaves, kind)
    inner = leaves - 1
    feature = _lgb_numbers(
        _field(fields, "split_feature", where), f"{where}'s split_feature", inner, "int"
    )
    threshold = _lgb_numbers(_field(fields, "threshold", where), f"{where}'s threshold", inner, "f")
    left = _lgb_numbers(_field(fields, "left_child", where), f"{where}'s left_child", inner, "int")
    right = _lgb_numbers(
        _field(fields, "right_child", where), f"{where}'s right_child", inner, "int"
    )
    decision = _lgb_numbers(
        fields.get("decision_type", " ".join(["0"] * inner)),
        f"{where}'s decision_type",
        inner,
        "int",
    )
    for key, kind in (
        ("split_gain", "f"),
        ("internal_value", "f"),
        ("internal_weight", "f"),
        ("internal_count", "int"),
    ):
        if key in fields:  # not read by prediction: their shape only
            _lgb_items(fields[key], f"{where}'s {key}", inner, kind)
    _need(
        bool(((feature >= 0) & (feature < n_features)).all()),
        f"{where} splits on a feature that is not one",
    )
    _need(bool(((decision >= 0) & (decision < 16)).all()), f"{where} has an unknown decision_type")
    categorical = (decision & 1) == 1
    missing_type = (decision >> 2) & 3
    _need(bool((missing_type <= 2).all()), f"{where} has an unknown missing type")
    bounds = np.zeros(1, dtype=np.int64)
    words = np.zeros(0, dtype=np.int64)
    if n_cat:
        bounds = _lgb_numbers(
            _field(fields, "cat_boundaries", where), f"{where}'s cat_boundaries", n_cat + 1, "int"
        )
        _need(int(bounds[0]) == 0, f"{where}'s cat_boundaries does not start at 0")
        _need(bool((np.diff(bounds) >= 1).all()), f"{where}'s cat_boundaries do not increase")
        words = _lgb_numbers(
            _field(fields, "cat_threshold", where),
            f"{where}'s cat_threshold",
            int(bounds[-1]),
            "uint32",
        )
    else:
        _need(
            "cat_boundaries" not in fields and "cat_threshold" not in fields,
            f"{where}'s categories",
        )
    category_set = np.full(inner, -1, dtype=np.int64)
    if categorical.any():
        sets = threshold[categorical]
        _need(bool((sets == np.floor(sets)).all()), f"{where}'s category set index is not whole")
        _need(
            bool(((sets >= 0) & (sets < n_cat)).all()),
            f"{where} names a category set that is not one",
        )
        category_set[categorical] = sets.astype(np.int64)
    # LightGBM gives every categorical split a set of its own.
    _need(int(categorical.sum()) == n_cat, f"{where} has {n_cat} category sets for its splits")
    chosen = category_set[categorical]
    _need(len(np.unique(chosen)) == len(chosen), f"{where} shares a category set")
    # Internal nodes first, leaves after them: LightGBM's leaf ~j becomes node inner + j.
    flat_left = np.where(left >= 0, left, inner + ~left)
    flat_right = np.where(right >= 0, right, inner + ~right)
    _need(
        bool(((left >= -leaves) & (left < inner) & (right >= -leaves) & (right < inner)).all()),
        f"{where} has a child out of range",
    )
    full_left = np.concatenate([flat_left, np.full(leaves, -1)])
    full_right = np.concatenate([flat_right, np.full(leaves, -1)])
    _check_tree_shape(full_left, full_right, where)
    return (
        Tree(
            feature=_frozen(np.concatenate([feature, np.full(leaves, -1)]).astype(np.int32)),
            threshold=_frozen(
                np.concatenate([np.where(categorical, 0.0, threshold), np.zeros(leaves)])
            ),
            left=_frozen(full_left.astype(np.int32)),
            right=_frozen(full_right.astype(np.int32)),
            default_left=_frozen(np.concatenate([(decision & 2) == 2, np.zeros(leaves, bool)])),
            missing=_frozen(
                np.concatenate([missing_type, np.zeros(leaves, np.int64)]).astype(np.uint8)
            ),
            category_set=_frozen(
                np.concatenate([category_set, np.full(leaves, -1)]).astype(np.int32)
            ),
            category_bounds=_frozen(bounds.astype(np.int32)),
            category_words=_frozen(words.astype(np.uint32)),
            value=_frozen(np.concatenate([np.zeros(inner), leaf_values])),
        ),
        position,
    )


def _field(fields: dict[str, str], key: str, where: str) -> str:
    _need(key in fields, f"{where} lacks {key!r}")
    return fields[key]


def _lgb_single_leaf(value: float) -> Tree:
    return Tree(
        feature=_frozen(np.full(1, -1, dtype=np.int32)),
        threshold=_frozen(np.zeros(1)),
        left=_frozen(np.full(1, -1, dtype=np.int32)),
        right=_frozen(np.full(1, -1, dtype=np.int32)),
        default_left=_frozen(np.zeros(1, dtype=bool)),
        missing=_frozen(np.zeros(1, dtype=np.uint8)),
        category_set=_frozen(np.full(1, -1, dtype=np.int32)),
        category_bounds=_frozen(np.zeros(1, dtype=np.int32)),
        category_words=_frozen(np.zeros(0, dtype=np.uint32)),
        value=_frozen(np.array([value])),
    )


def _lgb_trailer(lines: list[str], position: int, names: list[str]) -> None:
    """What follows the trees, exactly as LightGBM writes it: 'end of trees', the feature
    importances, the parameters, the pandas categories (always null for sqlite-ml)."""
    rest = lines[position:]
    _need(rest[:2] == ["end of trees", ""], "the trees are not followed by 'end of trees'")
    _need(len(rest) > 2 and rest[2] == "feature_importances:", "no feature_importances")
    i = 3
    known = set(names)
    while i < len(rest) and rest[i] != "":
        name, equals, count = rest[i].partition("=")
        _need(bool(equals) and name in known, "a feature importance names no feature")
        _need(re.fullmatch(r"[0-9]{1,20}", count) is not None, "a feature importance")
        i += 1
    _need(rest[i : i + 2] == ["", "parameters:"], "no parameters after the importances")
    i += 2
    while i < len(rest) and rest[i] not in ("", "end of parameters"):
        _need(
            _PARAMETER_LINE.fullmatch(rest[i]) is not None,
            f"a malformed parameter line {rest[i][:40]!r}",
        )
        _need(not rest[i].startswith("[linear_tree: 1"), "the model uses linear trees")
        i += 1
    if rest[i : i + 1] == [""]:  # LightGBM leaves a blank line after its parameters
        i += 1
    _need(rest[i : i + 2] == ["end of parameters", ""], "the parameters never end")
    _need(
        rest[i + 2 :] in (["pandas_categorical:null", ""], ["pandas_categorical:null"]),
        "the model text does not end with 'pandas_categorical:null'",
    )


# --------------------------------------------------------------------------- prediction


def _leaves(tree: Tree, rows: np.ndarray, comparison: str) -> np.ndarray:
    """The node each row ends at (rows: float64, NaN where missing)."""
    n_rows = len(rows)
    node = np.zeros(n_rows, dtype=np.int64)
    active = np.arange(n_rows)
    feature, left, right = tree.feature, tree.left, tree.right
    for _ in range(tree.n_nodes):  # children come after parents: at most n_nodes steps
        if not len(active):
            break
        at = node[active]
        split = feature[at]
        inner = split >= 0
        active, at, split = active[inner], at[inner], split[inner]
        if not len(active):
            break
        x = rows[active, split]
        node[active] = np.where(_goes_left(tree, at, x, comparison), left[at], right[at])
    return node


def _goes_left(tree: Tree, at: np.ndarray, x: np.ndarray, comparison: str) -> np.ndarray:
    default = tree.default_left[at]
    if comparison == "less":
        x32 = x.astype(np.float32)
        with np.errstate(invalid="ignore"):
            numeric = x32 < tree.threshold[at].astype(np.float32)
        return np.where(np.isnan(x), default, numeric)
    missing = tree.missing[at]
    nan = np.isnan(x)
    value = np.where(nan & (missing != MISSING_NAN), 0.0, x)
    is_default = ((missing == MISSING_ZERO) & (np.abs(value) <= _KZERO_THRESHOLD)) | (
        (missing == MISSING_NAN) & np.isnan(value)
    )
    with np.errstate(invalid="ignore"):
        numeric = np.where(is_default, default, value <= tree.threshold[at])
    sets = tree.category_set[at]
    categorical = sets >= 0
    if not categorical.any():
        return numeric
    return np.where(categorical, _in_category_set(tree, sets, x), numeric)


def _in_category_set(tree: Tree, sets: np.ndarray, x: np.ndarray) -> np.ndarray:
    result = np.zeros(len(x), dtype=bool)
    usable = (sets >= 0) & ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        usable &= np.trunc(np.where(usable, x, 0.0)) >= 0
        usable &= np.where(usable, x, 0.0) < 2.0**31  # int(x) as C++ truncates it
    index = np.flatnonzero(usable)
    if not len(index):
        return result
    codes = np.trunc(x[index]).astype(np.int64)
    low = tree.category_bounds[sets[index]].astype(np.int64)
    high = tree.category_bounds[sets[index] + 1].astype(np.int64)
    word = codes // 32
    inside = word < high - low
    bits = np.zeros(len(index), dtype=np.uint64)
    bits[inside] = tree.category_words[(low + word)[inside]]
    result[index] = inside & (((bits >> (codes % 32).astype(np.uint64)) & 1) == 1)
    return result


def predict_margin(model: Ensemble, rows: Any) -> np.ndarray:
    """The margins (float64, one column per output) for a matrix of rows."""
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != model.n_features:
        raise BoosterError(f"rows must be a matrix of {model.n_features} columns")
    used = model.iterations_used * model.trees_per_iteration
    if model.library == XGBOOST:
        margin = np.tile(model.base_margin.astype(np.float32), (len(x), 1))
        for t in range(used):
            tree = model.trees[t]
            leaf = tree.value[_leaves(tree, x, model.comparison)].astype(np.float32)
            weight = np.float32(model.tree_weight[t])
            k = int(model.tree_output[t])
            margin[:, k] += leaf if weight == 1 else weight * leaf
        out = margin.astype(np.float64)
    else:
        out = np.tile(model.base_margin, (len(x), 1))
        for t in range(used):
            tree = model.trees[t]
            out[:, int(model.tree_output[t])] += (
                model.tree_weight[t] * tree.value[_leaves(tree, x, model.comparison)]
            )
    if model.average_output:
        out /= model.iterations_used
    return out


_LINK_FUNCTIONS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "identity": lambda m, s: m,
    "sigmoid": lambda m, s: 1.0 / (1.0 + np.exp(-s * m)),
    "sigmoid_each": lambda m, s: 1.0 / (1.0 + np.exp(-s * m)),
    "exp": lambda m, s: np.exp(m),
    "hinge": lambda m, s: (m > 0).astype(np.float64),
    "signed_square": lambda m, s: np.sign(m) * m * m,
    "softplus": lambda m, s: np.log1p(np.exp(m)),
}


def predict_output(model: Ensemble, rows: Any) -> np.ndarray:
    """The model's output per row, one column per output: probabilities (binary: of
    class 1) for the classification links, the prediction for the others."""
    margin = predict_margin(model, rows)
    with np.errstate(over="ignore"):
        if model.link == "softmax":
            shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        return _LINK_FUNCTIONS[model.link](margin, model.sigmoid_scale)


def predict_proba(model: Ensemble, rows: Any) -> np.ndarray:
    """Class probabilities as the scikit-learn wrappers give them ([1 - p, p] for a
    binary model)."""
    if model.n_classes < 2:
        raise BoosterError(f"objective {model.objective} does not give class probabilities")
    output = predict_output(model, rows)
    if output.shape[1] == 1:
        return np.hstack([1.0 - output, output])
    return output


def predict_class_index(model: Ensemble, rows: Any) -> np.ndarray:
    """The predicted class position (the wrappers map it to their labels)."""
    return np.argmax(predict_proba(model, rows), axis=1)


# --------------------------------------------------------------------------- wrappers

# The extra LightGBM parameters sqlite-ml's catalogue sets (any other stored one is refused:
# the scikit-learn wrapper passes every parameter on to LightGBM's predictor).
_LGB_EXTRA_PARAMETERS = frozenset({"verbose", "deterministic", "force_col_wise"})
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.:+-]{0,64}")


def describe_estimator(model: Any) -> Ensemble:
    """The :class:`Ensemble` of a loaded XGBoost or LightGBM scikit-learn wrapper, checked
    against the wrapper's own state (classes, feature count, the parameters it passes to
    its library at prediction), with the iterations its ``predict`` uses."""
    if hasattr(model, "get_booster"):
        return _describe_xgboost(model)
    if hasattr(model, "booster_"):
        return _describe_lightgbm(model)
    raise BoosterError(f"{type(model).__name__} is not an XGBoost or LightGBM model")


def _plain_parameter(name: str, value: Any) -> None:
    """A parameter that goes to a library as text: no room to smuggle in another one."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _need(math.isfinite(value) or value != value, f"parameter {name!r} is not finite")
        return
    if isinstance(value, (np.random.RandomState, np.random.Generator)) and name == "random_state":
        return
    _need(
        isinstance(value, str) and _PLAIN_TEXT.fullmatch(value) is not None,
        f"parameter {name!r} is not a plain number or word",
    )


def _threads(value: Any, name: str) -> None:
    _need(
        value is None
        or (isinstance(value, int) and not isinstance(value, bool) and -1 <= value <= MAX_THREADS),
        f"{name} is not a thread count between -1 and {MAX_THREADS}",
    )


def _classes(labels: Any, count: int, where: str) -> None:
    array = np.asarray(labels)
    _need(array.ndim == 1 and len(array) == count, f"{where} does not list {count} classes")


def check_wrapper(model: Any, ensemble: Ensemble) -> Ensemble:
    """Check a loaded scikit-learn wrapper's own state against its parsed booster; the
    ensemble as the wrapper's ``predict`` uses it (a recorded best iteration applied)."""
    if ensemble.library == XGBOOST and hasattr(model, "get_booster"):
        return _check_xgboost_wrapper(model, ensemble)
    if ensemble.library == LIGHTGBM and hasattr(model, "booster_"):
        return _check_lightgbm_wrapper(model, ensemble)
    raise BoosterError(f"a {type(model).__name__} holds a {ensemble.library} booster")


def _describe_xgboost(model: Any) -> Ensemble:
    state = model.get_booster().__getstate__()
    _need(set(state) == {"handle"}, "the XGBoost booster carries state it should not have")
    return _check_xgboost_wrapper(model, parse_xgboost(bytes(state["handle"])))


def _describe_lightgbm(model: Any) -> Ensemble:
    text = model.booster_.model_to_string(num_iteration=-1)
    return _check_lightgbm_wrapper(model, parse_lightgbm(text))


def _check_xgboost_wrapper(model: Any, ensemble: Ensemble) -> Ensemble:
    params = model.get_params(deep=False)
    for name, value in params.items():
        if name in ("callbacks", "eval_metric", "feature_weights", "feature_types"):
            _need(value is None, f"parameter {name!r} is set")
        elif name in ("monotone_constraints", "interaction_constraints"):
            _need(value is None or isinstance(value, (str, tuple, list, dict)), name)
        elif name != "missing":
            _plain_parameter(name, value)
    missing = params.get("missing")
    _need(
        isinstance(missing, float) and math.isnan(missing),
        "parameter 'missing' is not NaN (sqlite-ml's models see NaN as missing only)",
    )
    _need(not params.get("enable_categorical"), "parameter 'enable_categorical' is set")
    _need(params.get("objective") == ensemble.objective, "the wrapper's objective differs")
    _need(
        params.get("booster") in (None, ensemble.extra["booster"]),
        "the wrapper's booster differs",
    )
    _need(params.get("device") in (None, "cpu"), "the wrapper's device is not the CPU")
    _threads(params.get("n_jobs"), "n_jobs")
    if hasattr(model, "n_classes_") or "labels_" in model.__dict__:
        _need(ensemble.n_classes >= 2, f"a classifier with objective {ensemble.objective}")
        count = model.__dict__.get("n_classes_")
        _need(count == ensemble.n_classes, "the wrapper's class count differs from the model's")
        if "labels_" in model.__dict__:
            _classes(model.__dict__["labels_"], ensemble.n_classes, "labels_")
    return ensemble


def _check_lightgbm_wrapper(model: Any, ensemble: Ensemble) -> Ensemble:
    booster = model.booster_
    state = model.__dict__
    _need(state.get("fitted_") is True, "the LightGBM wrapper is not fitted")
    for key in ("_n_features", "_n_features_in"):
        _need(state.get(key) == ensemble.n_features, f"the wrapper's {key} differs")
    _need(isinstance(state.get("_objective"), str), "the wrapper's objective is not text")
    other = state.get("_other_params", {})
    _need(isinstance(other, dict), "the wrapper's extra parameters are not a dict")
    allowed = set(type(model)._get_param_names()) | _LGB_EXTRA_PARAMETERS
    unknown = sorted(set(other) - allowed)
    _need(not unknown, f"the wrapper passes parameters it should not: {unknown[:5]}")
    for name, value in model.get_params(deep=False).items():
        if name in ("class_weight",):
            _need(value is None or isinstance(value, (str, dict)), name)
        else:
            _plain_parameter(name, value)
    _threads(model.get_params(deep=False).get("n_jobs"), "n_jobs")
    _need(booster.pandas_categorical is None, "the booster carries pandas categories")
    if "_n_classes" in state and hasattr(model, "_le"):
        count = state["_n_classes"]
        _need(count == ensemble.n_classes, "the wrapper's class count differs from the model's")
        _classes(state.get("_classes"), count, "the wrapper's classes")
        _classes(model._le.classes_, count, "the wrapper's label encoder")
    else:
        _need(ensemble.n_classes < 2 or ensemble.link == "sigmoid", "a regressor with classes")
    best = booster.best_iteration
    _need(
        isinstance(best, int) and not isinstance(best, bool) and 0 <= best <= ensemble.n_iterations,
        "the booster's best iteration is out of range",
    )
    return ensemble.using_iterations(best) if best > 0 else ensemble
