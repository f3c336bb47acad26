"""Exact per-row explanations of a fitted pipeline's raw output: each model input's
contribution, plus a baseline, summing to the raw output (no SQL here).

- Linear models: coefficient x (input - its training mean), through the pipeline's
  imputation and scaling; the baseline is the intercept plus the coefficients times the
  training means.
- XGBoost and LightGBM: their own SHAP outputs (``pred_contribs`` / ``pred_contrib``), in
  margin space; the baseline is their bias column.
- scikit-learn decision trees, random forests, extra trees and gradient boosting:
  TreeSHAP (``treeshap.py``).

The raw output: a regression's prediction (gradient boosting and boosters: their
margin); for a classifier, the raw score of the predicted class: its log-odds for two
classes (a linear model's or booster's decision for the second class, negated for the
first), its logit (decision function) for more, and for trees and forests the predicted
class's probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import xgboost
from sklearn import ensemble, linear_model, tree

from ..estimators import XGBoostClassifier
from . import treeshap

LINEAR = (
    linear_model.LogisticRegression,
    linear_model.SGDClassifier,
    linear_model.RidgeClassifier,
    linear_model.RidgeClassifierCV,
    linear_model.LinearRegression,
    linear_model.SGDRegressor,
    linear_model.Ridge,
    linear_model.RidgeCV,
    linear_model.ElasticNet,
    linear_model.ElasticNetCV,
    linear_model.Lasso,
    linear_model.LassoCV,
)
FORESTS = (
    tree.DecisionTreeClassifier,
    tree.DecisionTreeRegressor,
    ensemble.RandomForestClassifier,
    ensemble.RandomForestRegressor,
    ensemble.ExtraTreesClassifier,
    ensemble.ExtraTreesRegressor,
)
BOOSTED_TREES = (ensemble.GradientBoostingClassifier, ensemble.GradientBoostingRegressor)
BOOSTERS = (
    XGBoostClassifier,
    xgboost.XGBClassifier,
    xgboost.XGBRegressor,
    lightgbm.LGBMClassifier,
    lightgbm.LGBMRegressor,
)


def explainable(estimator_cls: type[Any]) -> bool:
    return issubclass(estimator_cls, (*LINEAR, *FORESTS, *BOOSTED_TREES, *BOOSTERS))


@dataclass(frozen=True)
class Explanations:
    """Rows of explanations: raw output = baseline + contributions summed over columns."""

    raw_output: np.ndarray  # (rows,)
    baseline: np.ndarray  # (rows,)
    contributions: np.ndarray  # (rows, model inputs)
    classes: np.ndarray | None  # the class each row's raw output is of (classifiers)
    output: str  # what the raw output is, in words


# (model inputs after the pipeline's steps, as float64) -> explanations
Explain = Callable[[np.ndarray], Explanations]


def explainer(pipeline: Any, model_input_mean: np.ndarray | None = None) -> Explain:
    """The explanation function of a fitted impute + scale + model pipeline; raises
    TypeError for a model that has none (the caller words the error)."""
    model = pipeline[-1]
    steps = pipeline[:-1]
    if isinstance(model, LINEAR):
        inner = _linear(model, model_input_mean)
    elif isinstance(model, FORESTS):
        inner = _forest(model)
    elif isinstance(model, BOOSTED_TREES):
        inner = _gradient_boosting(model)
    elif isinstance(model, (xgboost.XGBClassifier, xgboost.XGBRegressor)):
        inner = _xgboost(model)
    elif isinstance(model, (lightgbm.LGBMClassifier, lightgbm.LGBMRegressor)):
        inner = _lightgbm(model)
    else:
        raise TypeError(type(model).__name__)

    def explain(matrix: np.ndarray) -> Explanations:
        return inner(np.asarray(steps.transform(matrix), dtype=np.float64))

    return explain


def _pick(
    raw: np.ndarray, baseline: np.ndarray, contributions: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's output ``chosen`` (one per row) from per-output arrays: raw (rows,
    outputs), baseline (rows, outputs), contributions (rows, inputs, outputs)."""
    rows = np.arange(len(chosen))
    return raw[rows, chosen], baseline[rows, chosen], contributions[rows, :, chosen]


def _scores(
    raw: np.ndarray,
    base: np.ndarray,
    parts: np.ndarray,
    classes: np.ndarray | None,
    two_classes: str,
    more_classes: str,
) -> Explanations:
    """Explanations from per-output scores: raw (rows, outputs), base (rows, outputs),
    parts (rows, inputs, outputs). A regression has one output; a classifier with one
    output scores its second class (the first is explained by the negation); with more,
    the predicted class is the highest score's."""
    if classes is None:
        return Explanations(raw[:, 0], base[:, 0], parts[:, :, 0], None, "prediction")
    if raw.shape[1] == 1:
        raw, base, parts = _two_sided(raw[:, 0], parts[:, :, 0], base[:, 0])
        chosen = (raw[:, 1] > 0).astype(np.int64)
        words = f"{two_classes} of the predicted class"
    else:
        chosen = np.argmax(raw, axis=1)
        words = f"{more_classes} of the predicted class"
    picked = _pick(raw, base, parts, chosen)
    return Explanations(*picked, np.asarray(classes)[chosen], words)


def _two_sided(
    scores: np.ndarray, parts: np.ndarray, base: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One binary score (for the second class) as two outputs: the second class's and
    the first's (negated), so either class can be explained."""
    raw = np.c_[-scores, scores]
    baseline = np.c_[-base, base]
    contributions = np.stack([-parts, parts], axis=2)
    return raw, baseline, contributions


def _linear(model: Any, mean: np.ndarray | None) -> Explain:
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    centre = np.zeros(coef.shape[1]) if mean is None else np.asarray(mean, dtype=np.float64)
    classes = getattr(model, "classes_", None)
    kind = "log-odds" if isinstance(model, linear_model.LogisticRegression) else "decision"

    def explain(z: np.ndarray) -> Explanations:
        parts = (z - centre)[:, :, None] * coef.T[None, :, :]  # (rows, inputs, outputs)
        base = np.broadcast_to(intercept + coef @ centre, (len(z), len(intercept)))
        raw = parts.sum(axis=1) + base
        more = "logit" if kind == "log-odds" else kind
        return _scores(raw, np.asarray(base), parts, classes, kind, more)

    return explain


def _as_trees_sees(z: np.ndarray) -> np.ndarray:
    """scikit-learn's trees compare float32 inputs with their thresholds."""
    return z.astype(np.float32).astype(np.float64)


def _forest(model: Any) -> Explain:
    members = getattr(model, "estimators_", [model])
    classes = getattr(model, "classes_", None)
    outputs = 1 if classes is None else len(classes)
    table = treeshap.leaf_table(
        [member.tree_ for member in members], [1.0 / len(members)] * len(members), outputs
    )
    width = int(model.n_features_in_)

    def explain(z: np.ndarray) -> Explanations:
        parts = treeshap.shap_values(table, _as_trees_sees(z), width)
        base = np.broadcast_to(table.baseline, (len(z), outputs))
        raw = parts.sum(axis=1) + base
        if classes is None:
            return Explanations(raw[:, 0], base[:, 0], parts[:, :, 0], None, "prediction")
        chosen = np.argmax(raw, axis=1)
        picked = _pick(raw, np.asarray(base), parts, chosen)
        return Explanations(
            *picked, np.asarray(classes)[chosen], "probability of the predicted class"
        )

    return explain


def _gradient_boosting(model: Any) -> Explain:
    stages = np.asarray(model.estimators_)  # (stages, outputs) of regression trees
    outputs = stages.shape[1]
    rate = float(model.learning_rate)
    # One table per output: its trees are the column of the stages.
    tables = [
        treeshap.leaf_table([s.tree_ for s in stages[:, k]], [rate] * len(stages), 1)
        for k in range(outputs)
    ]
    width = int(model.n_features_in_)
    classes = getattr(model, "classes_", None)

    def explain(z: np.ndarray) -> Explanations:
        seen = _as_trees_sees(z)
        init = np.asarray(model._raw_predict_init(seen.astype(np.float32)), dtype=np.float64)
        parts = np.concatenate(
            [treeshap.shap_values(t, seen, width) for t in tables], axis=2
        )  # (rows, inputs, outputs)
        base = init + np.array([t.baseline[0] for t in tables])[None, :]
        raw = parts.sum(axis=1) + base
        return _scores(raw, base, parts, classes, "log-odds", "logit")

    return explain


def _booster_outputs(
    raw: np.ndarray, contributions: np.ndarray, classes: np.ndarray | None, kind: str
) -> Explanations:
    """raw (rows, outputs), contributions (rows, inputs + 1, outputs) with the bias last."""
    parts, base = contributions[:, :-1, :], contributions[:, -1, :]
    return _scores(raw, base, parts, classes, f"{kind} log-odds", f"{kind} margin")


def _xgboost(model: Any) -> Explain:
    booster = model.get_booster()
    classes = getattr(model, "classes_", None) if is_classifier_model(model) else None

    def explain(z: np.ndarray) -> Explanations:
        matrix = xgboost.DMatrix(z)
        raw = np.asarray(booster.predict(matrix, output_margin=True), dtype=np.float64)
        parts = np.asarray(booster.predict(matrix, pred_contribs=True), dtype=np.float64)
        if parts.ndim == 3:  # (rows, classes, inputs + 1)
            parts = np.transpose(parts, (0, 2, 1))
        else:
            parts = parts[:, :, None]
        raw = raw.reshape(len(z), -1)
        return _booster_outputs(raw, parts, classes, "XGBoost")

    return explain


def _lightgbm(model: Any) -> Explain:
    classes = getattr(model, "classes_", None) if is_classifier_model(model) else None

    booster = model.booster_

    def explain(z: np.ndarray) -> Explanations:
        # The booster itself, on one thread: the scikit-learn wrapper's checks and
        # LightGBM's thread pool cost milliseconds per call, the prediction microseconds.
        raw = np.asarray(booster.predict(z, raw_score=True, num_threads=1), dtype=np.float64)
        raw = raw.reshape(len(z), -1)
        parts = np.asarray(booster.predict(z, pred_contrib=True, num_threads=1), dtype=np.float64)
        outputs = raw.shape[1]
        # (rows, outputs x (inputs + 1)), one block per class
        parts = np.transpose(parts.reshape(len(z), outputs, -1), (0, 2, 1))
        return _booster_outputs(raw, parts, classes, "LightGBM")

    return explain


def is_classifier_model(model: Any) -> bool:
    return hasattr(model, "classes_") and not isinstance(
        model, (xgboost.XGBRegressor, lightgbm.LGBMRegressor)
    )
