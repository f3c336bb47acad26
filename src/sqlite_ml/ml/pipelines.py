"""The fitted object a run stores: impute, scale, model.

A run without ``preprocess`` keeps the foundation's mean imputation and standard scaling;
a run with it gets per-column steps (``preprocessing.ColumnImputer`` and ``ColumnScaler``,
whose dotted paths stored models name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..preprocessing import ColumnImputer, ColumnScaler
from .catalogue import NON_NEGATIVE_INPUT
from .features import FeatureSchema

# A column's preprocessing: (impute strategy, scale strategy).
ColumnSteps = tuple[str, str]
DEFAULT_STEPS: ColumnSteps = ("mean", "standard")


def build_pipeline(
    model: Any, schema: FeatureSchema, preprocess: Mapping[str, ColumnSteps]
) -> Pipeline:
    """Impute, scale, ``model``; ``preprocess`` maps a feature to its steps (a feature it
    does not name gets mean imputation and standard scaling, as every feature of a run
    without ``preprocess`` does)."""
    if not preprocess and type(model) in NON_NEGATIVE_INPUT:
        preprocess = {feature.name: ("mean", "min_max") for feature in schema.features}
    if not preprocess:
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("model", model),
            ]
        )
    impute: list[str] = []
    scale: list[str] = []
    for feature in schema.features:
        column_impute, column_scale = preprocess.get(feature.name, DEFAULT_STEPS)
        impute += [column_impute] * feature.width()
        scale += [column_scale] * feature.width()
    return Pipeline(
        [
            ("impute", ColumnImputer(tuple(impute))),
            ("scale", ColumnScaler(tuple(scale))),
            ("model", model),
        ]
    )


def transform_in_place(pipeline: Pipeline, in_place: bool) -> None:
    """scikit-learn's imputer and scaler may work on the split's own copies (two fewer
    copies of the data at the peak); the stored pipeline copies its input again."""
    if isinstance(pipeline.named_steps["impute"], SimpleImputer):
        pipeline.set_params(impute__copy=not in_place, scale__copy=not in_place)
