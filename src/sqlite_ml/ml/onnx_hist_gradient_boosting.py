"""scikit-learn's hist gradient boosting as ONNX, written here: skl2onnx's converter
fails on this scikit-learn's tree records, and float32 thresholds would not reproduce
it anyway (it compares double inputs with double thresholds).

One ``TreeEnsembleRegressor`` (ai.onnx.ml 3) holds every tree with its exact double
thresholds, leaf values and baseline (ONNX Runtime sums them in double and rounds the
raw score once to float32); the link (identity, logistic, softmax) follows in double.
The model returned looks like a converter's: input ``X`` (double), and for a classifier
``label`` (class values) and ``probabilities``, for a regressor ``variable`` [N, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import SqmlError


def _trees(estimator: Any) -> tuple[dict[str, Any], np.ndarray]:
    """The node attributes of every tree, and each leaf's value (double)."""
    attributes: dict[str, Any] = {
        key: []
        for key in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "thresholds",
            "target_treeids",
            "target_nodeids",
            "target_ids",
        )
    }
    leaves: list[float] = []
    per_iteration = estimator.n_trees_per_iteration_
    for iteration, predictors in enumerate(estimator._predictors):
        for k, predictor in enumerate(predictors):
            tree = iteration * per_iteration + k
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise SqmlError("hist gradient boosting with categorical splits has no ONNX export")
            for i, node in enumerate(nodes):
                leaf = bool(node["is_leaf"])
                attributes["nodes_treeids"].append(tree)
                attributes["nodes_nodeids"].append(i)
                attributes["nodes_featureids"].append(0 if leaf else int(node["feature_idx"]))
                attributes["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
                attributes["nodes_truenodeids"].append(0 if leaf else int(node["left"]))
                attributes["nodes_falsenodeids"].append(0 if leaf else int(node["right"]))
                attributes["nodes_missing_value_tracks_true"].append(
                    0 if leaf else int(node["missing_go_to_left"])
                )
                attributes["thresholds"].append(0.0 if leaf else float(node["num_threshold"]))
                if leaf:
                    attributes["target_treeids"].append(tree)
                    attributes["target_nodeids"].append(i)
                    attributes["target_ids"].append(k)
                    leaves.append(float(node["value"]))
    return attributes, np.asarray(leaves, dtype=np.float64)


def convert(estimator: Any, width: int, classifier: bool, opsets: dict[str, int]) -> Any:
    """The estimator as an ONNX model (see the module's docstring)."""
    from onnx import TensorProto, helper, numpy_helper

    link = type(estimator._loss.link).__name__
    if link not in ("IdentityLink", "LogitLink", "MultinomialLogit"):
        raise SqmlError(f"hist gradient boosting with a {link} link has no ONNX export")
    attributes, leaves = _trees(estimator)
    thresholds = np.asarray(attributes.pop("thresholds"), dtype=np.float64)
    per_iteration = estimator.n_trees_per_iteration_
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)

    def tensor(name: str, values: np.ndarray) -> Any:
        return numpy_helper.from_array(values, name)

    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor",
            ["X"],
            ["raw_float"],
            domain="ai.onnx.ml",
            n_targets=per_iteration,
            aggregate_function="SUM",
            post_transform="NONE",
            nodes_values_as_tensor=tensor("nodes_values_as_tensor", thresholds),
            target_weights_as_tensor=tensor("target_weights_as_tensor", leaves),
            base_values_as_tensor=tensor("base_values_as_tensor", baseline),
            **attributes,
        ),
        helper.make_node("Cast", ["raw_float"], ["raw"], to=TensorProto.DOUBLE),
    ]
    initializers = []
    if not classifier:
        if link != "IdentityLink":
            raise SqmlError(f"hist gradient boosting regression with a {link} link has no export")
        nodes.append(helper.make_node("Identity", ["raw"], ["variable"]))
        outputs = [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])]
    else:
        classes = np.asarray(estimator.classes_)
        table = (
            classes.astype(np.float64)
            if classes.dtype.kind in "iuf"
            else np.array([str(c) for c in classes], dtype=object)
        )
        if table.dtype == object:
            texts: Any = [c.encode() for c in table]
            initializers.append(
                helper.make_tensor("classes", TensorProto.STRING, [len(table)], texts)
            )
            label_type = TensorProto.STRING
        else:
            initializers.append(tensor("classes", table))
            label_type = TensorProto.DOUBLE
        if per_iteration == 1:  # binary: class 1 when the raw score is above 0, as predict
            initializers += [tensor("zero", np.zeros(1)), tensor("one", np.ones(1))]
            nodes += [
                helper.make_node("Sigmoid", ["raw"], ["p1"]),
                helper.make_node("Sub", ["one", "p1"], ["p0"]),
                helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
                helper.make_node("Greater", ["raw", "zero"], ["positive"]),
                helper.make_node("Cast", ["positive"], ["index2d"], to=TensorProto.INT64),
                helper.make_node("Reshape", ["index2d", "flat"], ["index"]),
            ]
            initializers.append(tensor("flat", np.array([-1], dtype=np.int64)))
        else:
            nodes += [
                helper.make_node("Softmax", ["raw"], ["probabilities"], axis=1),
                helper.make_node("ArgMax", ["raw"], ["index"], axis=1, keepdims=0),
            ]
        nodes.append(helper.make_node("Gather", ["classes", "index"], ["label"]))
        outputs = [
            helper.make_tensor_value_info("label", label_type, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, None]),
        ]
    graph = helper.make_graph(
        nodes,
        "hist_gradient_boosting",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, width])],
        outputs,
        initializer=initializers,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
