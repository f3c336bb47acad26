"""ONNX export of a stored pipeline (no SQL): the user's columns in, what ``sqml_predict``
answers out.

The graph has one input per feature column, named as the column, of shape ``[N, 1]``:
``tensor(double)`` for a numeric column (NULL as NaN) and ``tensor(string)`` for a column
the feature schema encodes as categories (one-hot, ordinal or target encoding; NULL as
the input's ``null`` text from the ``sqlite_ml.inputs`` metadata, which no category
uses). The schema's encoding, the pipeline's imputer and scaler (scikit-learn's
``SimpleImputer``/``StandardScaler`` or our ``ColumnImputer``/``ColumnScaler``) are
written as plain ONNX operators in double precision, exactly as numpy computes them;
the estimator is converted by skl2onnx (onnxmltools for XGBoost and LightGBM) and fed
double or float32 input as the library itself computes. Outputs: ``prediction`` (the
label, text or REAL; the regression value; the cluster id) and, for classifiers that
give them, ``probabilities`` (float32, in the model's class order).

The converters are an optional extra; :func:`require_libraries` says how to install it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import SqmlError, choices
from ..preprocessing import ColumnImputer, ColumnScaler
from .features import CATEGORICAL, NUMERIC, ORDINAL, TARGET_ENCODED, Feature, FeatureSchema
from .labels import TEXT_LABELS
from .probabilities import class_labels, gives_probabilities

EXTRA = "pip install 'sqlite-ml[onnx]'"
PREDICTION = "prediction"
PROBABILITIES = "probabilities"

# The opsets the exported graph declares: ONNX Runtime 1.13 (2022) and later run them.
DEFAULT_OPSET = 17
ML_OPSET = 3
IR_VERSION = 8  # the IR version of opset 17
# onnxmltools converts to at most this opset; its graph is then upgraded to DEFAULT_OPSET.
_ONNXMLTOOLS_OPSET = 15
ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")

# How each covered algorithm's estimator is converted: by skl2onnx fed double (linear
# models, neighbours, networks, SVC and k-means compute in double) or float32 (trees,
# whose scikit-learn implementation casts its input to float32, and converters that only
# take float32), or by onnxmltools (float32, as XGBoost compares; LightGBM's trees then
# get its exact double thresholds and a double input, as LightGBM compares).
_DOUBLE, _FLOAT, _XGBOOST, _LIGHTGBM = "skl2onnx-double", "skl2onnx-float", "xgboost", "lightgbm"
_HIST = "hist_gradient_boosting"  # our own converter, double thresholds
COVERED: dict[str, dict[str, str]] = {
    "classification": {
        "logistic_regression": _DOUBLE,
        "sgd": _DOUBLE,
        "ridge": _FLOAT,
        "ridge_cv": _FLOAT,
        "decision_tree": _FLOAT,
        "random_forest": _FLOAT,
        "extra_trees": _FLOAT,
        "gradient_boosting": _FLOAT,
        "ada_boost": _FLOAT,
        "bagging": _FLOAT,
        "knn": _DOUBLE,
        "mlp": _DOUBLE,
        "svc": _DOUBLE,
        "hist_gradient_boosting": _HIST,
        "xgboost": _XGBOOST,
        "lightgbm": _LIGHTGBM,
    },
    "regression": {
        "linear_regression": _DOUBLE,
        "sgd": _DOUBLE,
        "ridge": _DOUBLE,
        "ridge_cv": _DOUBLE,
        "elastic_net": _DOUBLE,
        "elastic_net_cv": _DOUBLE,
        "lasso": _DOUBLE,
        "lasso_cv": _DOUBLE,
        "decision_tree": _FLOAT,
        "random_forest": _FLOAT,
        "extra_trees": _FLOAT,
        "gradient_boosting": _FLOAT,
        "ada_boost": _FLOAT,
        "bagging": _FLOAT,
        "knn": _DOUBLE,
        "mlp": _DOUBLE,
        "svr": _FLOAT,
        "hist_gradient_boosting": _HIST,
        "xgboost": _XGBOOST,
        "lightgbm": _LIGHTGBM,
    },
    "clustering": {
        "kmeans": _DOUBLE,
        "mini_batch_kmeans": _DOUBLE,
    },
}


def covered_listing() -> str:
    return "; ".join(f"{kind}: {choices(names)}" for kind, names in COVERED.items())


def require_covered(prediction_type: str, algorithm: str, model_id: int) -> str:
    """How the algorithm's estimator converts; a clear error listing the covered ones."""
    how = COVERED.get(prediction_type, {}).get(algorithm)
    if how is None:
        raise SqmlError(
            f"model {model_id} ({prediction_type} algorithm '{algorithm}') cannot be exported "
            f"to ONNX; the covered algorithms are {covered_listing()}"
        )
    return how


def require_libraries(how: str = _DOUBLE) -> None:
    """The optional extra's libraries, or an error saying how to install them."""
    needed = ["onnx", "onnxruntime", "skl2onnx"]
    if how in (_XGBOOST, _LIGHTGBM):
        needed.append("onnxmltools")
    missing = [name for name in needed if not _installed(name)]
    if missing:
        raise SqmlError(
            f"ONNX export needs the optional extra 'onnx' ({choices(missing)} not installed); "
            f"install it with: {EXTRA}"
        )


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@dataclass(frozen=True)
class OnnxInput:
    """One graph input: a feature column as the host feeds it."""

    name: str
    type: str  # 'double' or 'string'
    encoding: str  # the feature kind: numeric, categorical (one-hot), ordinal, target
    null: Any  # what stands for NULL: NaN for numbers, a text no category uses

    def describe(self, feature: Feature) -> dict[str, Any]:
        item: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "encoding": "one_hot" if self.encoding == CATEGORICAL else self.encoding,
            "null": "NaN" if self.type == "double" else self.null,
        }
        if self.type == "string":
            item["categories"] = list(feature.categories)
        return item


def graph_inputs(schema: FeatureSchema) -> list[OnnxInput]:
    inputs = []
    for feature in schema.features:
        if feature.kind == NUMERIC:
            inputs.append(OnnxInput(feature.name, "double", NUMERIC, math.nan))
        else:
            inputs.append(OnnxInput(feature.name, "string", feature.kind, _null_text(feature)))
    return inputs


def _null_text(feature: Feature) -> str:
    """A text that is none of the feature's categories (NULL and an unseen category encode
    alike in every encoding, so any such text stands for NULL): '' unless it is one."""
    text = ""
    categories = set(feature.categories)
    while text in categories:
        text += "\u2400"  # SYMBOL FOR NULL
    return text


def input_value(onnx_input: OnnxInput, value: object) -> Any:
    """A SQL value as this input takes it (the host's side of the contract, for checks)."""
    from .values import category_of, number_or_nan

    if onnx_input.type == "double":
        return number_or_nan(value)
    category = category_of(value)
    return onnx_input.null if category is None else category


def input_feed(inputs: Sequence[OnnxInput], rows: Sequence[Sequence[object]]) -> dict[str, Any]:
    """Rows of SQL values (in feature order) as the graph's input arrays."""
    feed = {}
    for position, onnx_input in enumerate(inputs):
        values = [input_value(onnx_input, row[position]) for row in rows]
        dtype = np.float64 if onnx_input.type == "double" else object
        feed[onnx_input.name] = np.array(values, dtype=dtype).reshape(-1, 1)
    return feed


class _Builder:
    """Nodes and constants of the graph around the converted estimator."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, what: str) -> str:
        self._count += 1
        return f"{self.prefix}{what}_{self._count}"

    def constant(self, what: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(what)
        if array.dtype == object:
            from onnx import TensorProto, helper

            texts: Any = [str(v).encode() for v in array.ravel()]
            tensor = helper.make_tensor(name, TensorProto.STRING, array.shape, texts)
        else:
            tensor = numpy_helper.from_array(array, name)
        self.initializers.append(tensor)
        return name

    def node(
        self, op: str, inputs: Sequence[str], what: str, domain: str = "", **attributes: Any
    ) -> str:
        from onnx import helper

        output = self.name(what)
        self.nodes.append(
            helper.make_node(op, list(inputs), [output], name=output, domain=domain, **attributes)
        )
        return output

    def node_to(self, op: str, inputs: Sequence[str], output: str, **attributes: Any) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))


def _encode_feature(builder: _Builder, feature: Feature) -> str | None:
    """The feature's encoded columns as a double [N, width] tensor (None: no column)."""
    from onnx import TensorProto

    source = feature.name
    if feature.kind == NUMERIC:
        return source
    categories = list(feature.categories)
    if not categories:  # a column that was NULL in every training row encodes to nothing
        return None if feature.kind == CATEGORICAL else _missing_column(builder, source, feature)
    if feature.kind == ORDINAL:
        keys, positions_of_keys = _category_keys(categories)
        positions = builder.node(
            "LabelEncoder",
            [source],
            "ordinal",
            domain="ai.onnx.ml",
            keys_strings=keys,
            values_floats=[float(i) for i in positions_of_keys],
            default_float=math.nan,
        )
        return builder.node("Cast", [positions], "ordinal_double", to=TensorProto.DOUBLE)
    keys, positions_of_keys = _category_keys(categories)
    index = builder.node(
        "LabelEncoder",
        [source],
        "category_index",
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=positions_of_keys,
        default_int64=len(categories),  # NULL and unseen: one past the last category
    )
    if feature.kind == CATEGORICAL:
        positions = builder.constant(
            "one_hot_positions", np.arange(len(categories), dtype=np.int64).reshape(1, -1)
        )
        hits = builder.node("Equal", [index, positions], "one_hot")
        return builder.node("Cast", [hits], "one_hot_double", to=TensorProto.DOUBLE)
    if feature.kind == TARGET_ENCODED:
        if not feature.values:
            raise SqmlError(f"feature '{feature.name}' has no fitted target encoding to export")
        table = np.array(
            [*feature.values, [math.nan] * feature.outputs], dtype=np.float64
        )  # the last row: NULL and unseen categories, imputed next
        gathered = builder.node("Gather", [builder.constant("target_table", table), index], "te")
        shape = builder.constant("te_shape", np.array([-1, feature.outputs], dtype=np.int64))
        return builder.node("Reshape", [gathered, shape], "target_encoded")
    raise SqmlError(f"feature '{feature.name}' has kind '{feature.kind}', which ONNX export lacks")


def _category_keys(categories: list[str]) -> tuple[list[str], list[int]]:
    """The texts that select each category: the category itself, and for a whole number
    ('3', from an INTEGER 3 or a REAL 3.0, one SQLite value) also '3.0', as a host
    printing a REAL writes it (unless '3.0' is a category of its own)."""
    keys, positions = list(categories), list(range(len(categories)))
    taken = set(categories)
    for position, category in enumerate(categories):
        alias = category + ".0"
        if _WHOLE_NUMBER.fullmatch(category) and alias not in taken:
            keys.append(alias)
            positions.append(position)
    return keys, positions


_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def _missing_column(builder: _Builder, source: str, feature: Feature) -> str:
    """Ordinal or target columns of a feature without categories: NaN, then imputed."""
    from onnx import TensorProto

    zero = builder.node("Shape", [source], "rows", start=0, end=1)
    width = builder.constant("width", np.array([feature.width()], dtype=np.int64))
    shape = builder.node("Concat", [zero, width], "nan_shape", axis=0)
    filled = builder.node(
        "ConstantOfShape",
        [shape],
        "nan_column",
        value=_scalar_tensor(math.nan, TensorProto.DOUBLE),
    )
    return filled


def _scalar_tensor(value: float, data_type: int) -> Any:
    from onnx import helper

    return helper.make_tensor("value", data_type, [1], [value])


def _impute_and_scale(pipeline: Pipeline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fill, centre, divisor) of the pipeline's imputer and scaler, which transform as
    ``x[missing] = fill; x -= centre; x /= divisor``; an error for any other shape."""
    steps = [name for name, _ in pipeline.steps]
    if steps != ["impute", "scale", "model"]:
        raise SqmlError(f"the stored pipeline has steps {choices(steps)}, which ONNX export lacks")
    impute, scale = pipeline.named_steps["impute"], pipeline.named_steps["scale"]
    if type(impute) not in (SimpleImputer, ColumnImputer) or (
        isinstance(impute, SimpleImputer) and impute.add_indicator
    ):
        raise SqmlError(f"the imputer {type(impute).__name__} has no ONNX export")
    if type(scale) not in (StandardScaler, ColumnScaler):
        raise SqmlError(f"the scaler {type(scale).__name__} has no ONNX export")
    fill = np.asarray(impute.statistics_, dtype=np.float64)
    width = len(fill)
    mean = getattr(scale, "mean_", None)
    divisor = getattr(scale, "scale_", None)
    centre = np.zeros(width) if mean is None else np.asarray(mean, dtype=np.float64)
    divisor = np.ones(width) if divisor is None else np.asarray(divisor, dtype=np.float64)
    if not (len(centre) == len(divisor) == width) or not np.isfinite(fill).all():
        raise SqmlError("the stored imputer and scaler do not fit the feature schema")
    return fill, centre, divisor


def _front(builder: _Builder, schema: FeatureSchema, pipeline: Pipeline) -> str:
    """The user's columns -> the scaled double matrix the estimator takes."""
    columns = [c for c in (_encode_feature(builder, f) for f in schema.features) if c]
    matrix = builder.node("Concat", columns, "features", axis=1) if len(columns) > 1 else columns[0]
    fill, centre, divisor = _impute_and_scale(pipeline)
    missing = builder.node("IsNaN", [matrix], "missing")
    fill_row = builder.constant("fill", fill.reshape(1, -1))
    imputed = builder.node("Where", [missing, fill_row, matrix], "imputed")
    centred = builder.node("Sub", [imputed, builder.constant("centre", centre)], "centred")
    return builder.node("Div", [centred, builder.constant("divisor", divisor)], "scaled")


def _convert_estimator(estimator: Any, how: str, width: int, classifier: bool) -> Any:
    """The estimator alone as an ONNX model whose input is ``X`` [N, width]."""
    import warnings

    with warnings.catch_warnings():
        # The converters read attributes scikit-learn marks deprecated (SVC's probA_).
        warnings.simplefilter("ignore", FutureWarning)
        return _converted(estimator, how, width, classifier)


def _converted(estimator: Any, how: str, width: int, classifier: bool) -> Any:
    if how == _HIST:
        from . import onnx_hist_gradient_boosting

        opsets = {"": DEFAULT_OPSET, "ai.onnx.ml": ML_OPSET}
        return onnx_hist_gradient_boosting.convert(estimator, width, classifier, opsets)
    if how in (_DOUBLE, _FLOAT):
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        tensor_type = DoubleTensorType if how == _DOUBLE else FloatTensorType
        options = {id(estimator): {"zipmap": False}} if classifier else None
        return convert_sklearn(
            estimator,
            initial_types=[("X", tensor_type([None, width]))],
            options=options,
            target_opset={"": DEFAULT_OPSET, "ai.onnx.ml": ML_OPSET},
        )
    from onnxmltools.convert.common.data_types import FloatTensorType as MlFloatTensorType

    initial_types = [("X", MlFloatTensorType([None, width]))]
    if how == _XGBOOST:
        from onnxmltools import convert_xgboost

        # Our XGBoostClassifier decodes labels itself: its booster gives class positions.
        model = estimator.get_booster() if classifier else estimator
        converted = convert_xgboost(
            model, initial_types=initial_types, target_opset=_ONNXMLTOOLS_OPSET
        )
    else:
        from onnxmltools import convert_lightgbm

        converted = convert_lightgbm(
            estimator, initial_types=initial_types, target_opset=_ONNXMLTOOLS_OPSET, zipmap=False
        )
        _lightgbm_in_double(converted, estimator)
    return _upgraded(converted)


def _lightgbm_splits(estimator: Any) -> list[list[tuple[int, float]]]:
    """Each tree's splits as (feature, threshold), from LightGBM's own model dump; an
    error for a split the graph cannot reproduce (categorical, or zero as missing)."""
    splits: list[list[tuple[int, float]]] = []
    for tree in estimator.booster_.dump_model()["tree_info"]:
        found: list[tuple[int, float]] = []
        pending = [tree["tree_structure"]]
        while pending:
            node = pending.pop()
            if "split_index" not in node:
                continue
            if node.get("decision_type") != "<=" or node.get("missing_type") == "Zero":
                raise SqmlError(
                    "this LightGBM model has a split ONNX export cannot reproduce "
                    f"(decision {node.get('decision_type')!r}, missing type "
                    f"{node.get('missing_type')!r}); retrain without zero_as_missing"
                )
            found.append((int(node["split_feature"]), float(node["threshold"])))
            pending += [node["left_child"], node["right_child"]]
        splits.append(found)
    return splits


def _lightgbm_in_double(converted: Any, estimator: Any) -> None:
    """LightGBM compares double inputs with double thresholds, which onnxmltools writes as
    float32 (rows near a split then take the other branch). Here its tree nodes get the
    exact thresholds (``nodes_values_as_tensor``, double) and the graph a double input;
    each float32 threshold is matched to the one double threshold of its tree and feature
    that rounds to it (an error if that is ambiguous)."""
    from onnx import TensorProto, helper, numpy_helper

    splits = _lightgbm_splits(estimator)
    graph_input = converted.graph.input[0].name
    consumers = [n for n in converted.graph.node if graph_input in n.input]
    if not all(n.op_type.startswith("TreeEnsemble") for n in consumers):
        raise SqmlError("the LightGBM graph reads its input outside its trees; not exported")
    for node in consumers:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        rounded = np.asarray(attributes["nodes_values"], dtype=np.float32)
        exact = rounded.astype(np.float64)
        for k, mode in enumerate(attributes["nodes_modes"]):
            if mode == b"LEAF":
                continue
            tree, feature = attributes["nodes_treeids"][k], attributes["nodes_featureids"][k]
            matches = {t for f, t in splits[tree] if f == feature and np.float32(t) == rounded[k]}
            if len(matches) != 1:
                raise SqmlError(
                    f"a LightGBM split (tree {tree}, feature {feature}) cannot be told apart "
                    "from another in ONNX; not exported"
                )
            exact[k] = matches.pop()
        kept = [a for a in node.attribute if a.name != "nodes_values"]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.append(
            helper.make_attribute(
                "nodes_values_as_tensor", numpy_helper.from_array(exact, "nodes_values_as_tensor")
            )
        )
    converted.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    for opset in converted.opset_import:
        if opset.domain == "ai.onnx.ml":  # the tensor attributes are ai.onnx.ml 3's
            opset.version = max(opset.version, ML_OPSET)


def _upgraded(model: Any) -> Any:
    """onnxmltools writes an old default opset: brought up to the one the graph declares."""
    from onnx import version_converter

    default = {o.domain: o.version for o in model.opset_import}.get("")
    if default is None:  # no operator of the default domain (XGBoost's trees alone)
        return model
    if default >= DEFAULT_OPSET:
        return model
    return version_converter.convert_version(model, DEFAULT_OPSET)


@dataclass(frozen=True)
class Exported:
    model: Any  # onnx.ModelProto
    inputs: list[OnnxInput]
    classes: list[Any] | None  # probability order; None without probabilities


def to_onnx(
    pipeline: Pipeline,
    schema: FeatureSchema,
    prediction_type: str,
    algorithm: str,
    model_id: int,
    metadata: dict[str, str],
) -> Exported:
    """The whole stored pipeline as one ONNX model (checked by onnx's checker)."""
    import onnx
    from onnx import TensorProto, compose, helper

    how = require_covered(prediction_type, algorithm, model_id)
    require_libraries(how)
    names = set(schema.names)
    clashing = sorted(names & {PREDICTION, PROBABILITIES})
    if clashing:
        raise SqmlError(
            f"feature column {choices(clashing)} has the name of an ONNX output; train on a "
            "view that renames it to export this model"
        )
    prefix = "sqml_"
    while any(name.startswith(prefix) for name in names):
        prefix += "_"
    builder = _Builder(prefix)
    scaled = _front(builder, schema, pipeline)
    estimator = pipeline.named_steps["model"]
    classifier = prediction_type == "classification"
    converted = compose.add_prefix(
        _convert_estimator(estimator, how, schema.width, classifier), prefix + "model_"
    )
    model_input = converted.graph.input[0].name
    if converted.graph.input[0].type.tensor_type.elem_type == TensorProto.DOUBLE:
        builder.node_to("Identity", [scaled], model_input)
    else:
        builder.node_to("Cast", [scaled], model_input, to=TensorProto.FLOAT)
    produced = [output.name for output in converted.graph.output]
    outputs = []
    classes: list[Any] | None = None
    label_kind = schema.label_kind
    if prediction_type == "regression":
        flat = builder.node("Reshape", [produced[0], builder.constant("flat", _FLAT)], "flat")
        builder.node_to("Cast", [flat], PREDICTION, to=TensorProto.DOUBLE)
        outputs.append(helper.make_tensor_value_info(PREDICTION, TensorProto.DOUBLE, [None]))
    elif prediction_type == "clustering":
        flat = builder.node("Reshape", [produced[0], builder.constant("flat", _FLAT)], "flat")
        builder.node_to("Cast", [flat], PREDICTION, to=TensorProto.INT64)
        outputs.append(helper.make_tensor_value_info(PREDICTION, TensorProto.INT64, [None]))
    else:
        labels = class_labels(pipeline)
        _classifier_outputs(builder, produced[0], labels, label_kind, how == _XGBOOST)
        label_type = TensorProto.STRING if label_kind == TEXT_LABELS else TensorProto.DOUBLE
        outputs.append(helper.make_tensor_value_info(PREDICTION, label_type, [None]))
        if gives_probabilities(pipeline):
            builder.node_to("Cast", [produced[1]], PROBABILITIES, to=TensorProto.FLOAT)
            outputs.append(
                helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [None, len(labels)])
            )
            classes = labels
    inputs = graph_inputs(schema)
    graph = helper.make_graph(
        _ordered(builder, converted),
        "sqlite_ml_model",
        [_input_info(i) for i in inputs],
        outputs,
        initializer=[*builder.initializers, *converted.graph.initializer],
    )
    opsets = {o.domain or "": o.version for o in converted.opset_import}
    opsets[""] = max(opsets.get("", DEFAULT_OPSET), DEFAULT_OPSET)
    opsets["ai.onnx.ml"] = max(opsets.get("ai.onnx.ml", ML_OPSET), ML_OPSET)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, v) for domain, v in sorted(opsets.items())],
        producer_name="sqlite-ml",
        producer_version=metadata.get("sqlite_ml.version", ""),
        doc_string=f"sqlite-ml model {model_id}: {prediction_type} with '{algorithm}'",
    )
    model.ir_version = IR_VERSION
    described = [i.describe(f) for i, f in zip(inputs, schema.features, strict=True)]
    properties = dict(metadata)
    properties["sqlite_ml.inputs"] = json.dumps(described)
    properties["sqlite_ml.outputs"] = json.dumps([o.name for o in outputs])
    properties["sqlite_ml.label_kind"] = label_kind
    if classes is not None:
        properties["sqlite_ml.classes"] = json.dumps([_plain(c) for c in classes])
    helper.set_model_props(model, properties)
    onnx.checker.check_model(model, full_check=True)
    refuse_foreign_content(model)
    return Exported(model, inputs, classes)


_FLAT = np.array([-1], dtype=np.int64)


def _ordered(builder: _Builder, converted: Any) -> list[Any]:
    """Front nodes, the estimator's, then the outputs' (a topological order)."""
    model_input = converted.graph.input[0].name
    front: list[Any] = []
    back: list[Any] = []
    seen_input = False
    for node in builder.nodes:
        (back if seen_input else front).append(node)
        if model_input in node.output:
            seen_input = True
    return [*front, *converted.graph.node, *back]


def _classifier_outputs(
    builder: _Builder, label: str, labels: list[Any], label_kind: str, positions: bool
) -> None:
    """``prediction`` from the converter's label: class values (int64 for numeric labels,
    text for text labels), or class positions (XGBoost's booster) looked up in ``labels``."""
    from onnx import TensorProto

    if positions:
        if label_kind == TEXT_LABELS:
            table = np.array([str(v) for v in labels], dtype=object)
        else:
            table = np.array(labels, dtype=np.float64)
        flat = builder.node("Reshape", [label, builder.constant("flat", _FLAT)], "flat")
        builder.node_to("Gather", [builder.constant("classes", table), flat], PREDICTION)
        return
    flat = builder.node("Reshape", [label, builder.constant("flat", _FLAT)], "flat")
    if label_kind == TEXT_LABELS:
        builder.node_to("Identity", [flat], PREDICTION)
    else:
        builder.node_to("Cast", [flat], PREDICTION, to=TensorProto.DOUBLE)


def _input_info(onnx_input: OnnxInput) -> Any:
    from onnx import TensorProto, helper

    kind = TensorProto.DOUBLE if onnx_input.type == "double" else TensorProto.STRING
    return helper.make_tensor_value_info(onnx_input.name, kind, [None, 1])


def _plain(label: Any) -> Any:
    if isinstance(label, (np.integer, np.floating)):
        return label.item()
    return label


def _all_nodes(graph: Any) -> list[Any]:
    """Every node of a graph and of the subgraphs its nodes hold (Scan, Loop, If bodies)."""
    found = []
    for node in graph.node:
        found.append(node)
        for attribute in node.attribute:
            if attribute.HasField("g"):
                found += _all_nodes(attribute.g)
            for subgraph in attribute.graphs:
                found += _all_nodes(subgraph)
    return found


def refuse_foreign_content(model: Any) -> None:
    """The model must be nothing but an ONNX graph of standard operators: no custom
    domain (whose operators a runtime would load as code), no local functions, no
    external data files, no training section."""
    from onnx import TensorProto

    nodes = _all_nodes(model.graph)
    domains = {node.domain for node in nodes} | {o.domain for o in model.opset_import}
    foreign = sorted(domains - set(ALLOWED_DOMAINS))
    external = [t.name for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    if foreign or external or len(model.functions) or len(model.training_info):
        raise SqmlError(
            "the converted ONNX model holds more than a graph of standard operators "
            f"(domains {choices(foreign)}, external data {choices(external)}, "
            f"{len(model.functions)} function(s)); it was not exported"
        )
