"""The ``options`` argument of ``sqml_train``: parsed and checked before anything is written."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from .. import jsontext
from ..db.relations import Relation, require_column
from ..errors import SqmlError, choices, describe, refuse_unknown, shorten, unknown
from ..ml.catalogue import make_estimator, parameter_names
from ..preprocessing import IMPUTE_STRATEGIES, SCALE_STRATEGIES
from ..scoring import METRIC_NAMES
from .big_data_options import BIG_DATA_KEYS, BigDataOptions, validate_big_data_options

ENCODINGS = ("one_hot", "ordinal", "target", "none")
SEARCHES = ("grid", "random")
OPTION_KEYS = (
    "hyperparams",
    "search",
    "search_params",
    "search_args",
    "preprocess",
    "features",
    "order_by",
    "random_state",
    "automatic_deploy",
    "metric",
    "importance",
    "deploy_if",
    *BIG_DATA_KEYS,  # key_column among them
)
DEPLOY_IF_KEYS = ("min_improvement", "confidence", "resamples")
SEARCH_ARGS = ("cv", "n_iter")
PREPROCESS_KEYS = ("impute", "scale", "encode")
MAX_CANDIDATES = 1000
MAX_IMPORTANCE_SECONDS = 86_400
_TRIAL_ROWS = 32


@dataclass(frozen=True)
class ColumnPreprocess:
    impute: str = "mean"
    scale: str = "standard"
    encode: str | None = None  # None: automatic (numbers as numbers, text one-hot)


@dataclass(frozen=True)
class DeployGate:
    """The ``deploy_if`` option: deploy automatically only when a paired bootstrap on the
    new run's test rows shows an improvement above ``min_improvement`` of the deciding
    metric with ``confidence``."""

    min_improvement: float = 0.0
    confidence: float = 0.95
    resamples: int = 1000


@dataclass(frozen=True)
class TrainOptions:
    hyperparams: dict[str, Any] = field(default_factory=dict)
    search: str | None = None
    search_params: dict[str, list[Any]] = field(default_factory=dict)
    cv: int = 5
    n_iter: int = 10
    preprocess: dict[str, ColumnPreprocess] = field(default_factory=dict)
    features: list[str] | None = None
    order_by: str | None = None
    random_state: int | None = None
    automatic_deploy: bool = True
    metric: str | None = None
    # Permutation importance: True (a budget of the fit's own time), False (skipped), or
    # the seconds it may take.
    importance: bool | float = True
    deploy_if: DeployGate | None = None
    big_data: BigDataOptions = BigDataOptions()  # streaming, sampling, Dask
    text: str | None = None  # the options as given, normalized, for the run record

    @property
    def key_column(self) -> str | None:
        """The column that names each row where the rowid cannot (a view's)."""
        return self.big_data.key_column


def parse_options(value: object) -> dict[str, Any]:
    """The options argument as a JSON object (NULL or '' mean none)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if not isinstance(value, str):
        raise SqmlError(f"options must be a JSON object as text, got {describe(value)}")
    try:
        parsed = jsontext.loads(value)
    except ValueError as error:
        raise SqmlError(f"options is not valid JSON ({error}): {shorten(value)}") from None
    if not isinstance(parsed, dict):
        raise SqmlError(f"options must be a JSON object, got {shorten(value)}")
    refuse_unknown("option", parsed, OPTION_KEYS, listing="valid options")
    return parsed


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SqmlError(f"option {name} must be an integer >= {minimum}, got {describe(value)}")
    return value


def _plain_value(where: str, value: object) -> None:
    if isinstance(value, dict) or (
        isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
    ):
        raise SqmlError(
            f"{where} must be a number, text, true/false, null or a list of those, "
            f"got {shorten(json.dumps(value))}"
        )


def check_hyperparams(estimator_cls: type[Any], algorithm: str, params: object, where: str) -> None:
    if not isinstance(params, dict):
        raise SqmlError(f"option {where} must be a JSON object, got {describe(params)}")
    valid = parameter_names(estimator_cls)
    refuse_unknown("hyperparameter", params, valid, context=f" for algorithm '{algorithm}'")


def _check_values(estimator_cls: type[Any], algorithm: str, params: dict[str, Any]) -> None:
    """Let the library's own parameter checks speak before anything is written:
    scikit-learn's declared constraints, else (XGBoost, LightGBM) a fit on a tiny
    made-up dataset, which is where those libraries check their parameters."""
    for name, value in params.items():
        _plain_value(f"hyperparameter '{name}'", value)
    if not params:
        return
    estimator = make_estimator(estimator_cls, 0, params)
    try:
        if hasattr(estimator, "_parameter_constraints"):
            estimator._validate_params()
        else:
            _trial_fit(estimator)
    except Exception as error:  # noqa: BLE001 - each library raises its own types
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise SqmlError(f"invalid hyperparameters for '{algorithm}': {message}") from None


def _trial_fit(estimator: Any) -> None:
    rows = np.random.default_rng(0).normal(size=(_TRIAL_ROWS, 2))
    labels = np.arange(_TRIAL_ROWS) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(rows, labels if is_classifier(estimator) else labels.astype(float))


def _search(raw: dict[str, Any], estimator_cls: type[Any], algorithm: str) -> dict[str, Any]:
    search = raw.get("search")
    if search is None:
        for key in ("search_params", "search_args"):
            if key in raw:
                raise SqmlError(f"option {key} needs option search ({choices(SEARCHES)})")
        return {}
    if search not in SEARCHES:
        raise unknown("search", search, SEARCHES)
    grid = raw.get("search_params")
    if not isinstance(grid, dict) or not grid:
        raise SqmlError(
            'search needs option search_params, an object of value lists such as {"C": [1, 10]}'
            f", got {describe(json.dumps(grid) if grid is not None else None)}"
        )
    check_hyperparams(estimator_cls, algorithm, grid, "search_params")
    candidates = 1
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SqmlError(
                f"search_params '{name}' must be a non-empty list of values, "
                f"got {shorten(json.dumps(values))}"
            )
        _plain_value(f"search_params '{name}'", values)
        for value in values:
            _check_values(estimator_cls, algorithm, {**raw.get("hyperparams", {}), name: value})
        candidates *= len(values)
    args = raw.get("search_args", {})
    if not isinstance(args, dict):
        raise SqmlError(f"option search_args must be a JSON object, got {describe(args)}")
    refuse_unknown("search_args", args, SEARCH_ARGS)
    cv = _integer("search_args.cv", args.get("cv", 5), 2)
    n_iter = _integer("search_args.n_iter", args.get("n_iter", 10), 1)
    if search == "grid" and candidates > MAX_CANDIDATES:
        raise SqmlError(
            f"search_params make {candidates} grid candidates, more than {MAX_CANDIDATES}; "
            "use fewer values or search 'random' with n_iter"
        )
    return {"search": search, "search_params": grid, "cv": cv, "n_iter": n_iter}


def _preprocess(raw: object, features: list[str]) -> dict[str, ColumnPreprocess]:
    if not isinstance(raw, dict):
        raise SqmlError(f"option preprocess must be a JSON object, got {describe(raw)}")
    out: dict[str, ColumnPreprocess] = {}
    for column, spec in raw.items():
        if column not in features:
            raise SqmlError(
                f"preprocess names {describe(column)}, which is not a feature column; "
                f"features: {choices(features)}"
            )
        if not isinstance(spec, dict):
            raise SqmlError(
                f"preprocess '{column}' must be an object with {choices(PREPROCESS_KEYS)}, "
                f"got {shorten(json.dumps(spec))}"
            )
        refuse_unknown("preprocess key", spec, PREPROCESS_KEYS, context=f" for '{column}'")
        allowed = {"impute": IMPUTE_STRATEGIES, "scale": SCALE_STRATEGIES, "encode": ENCODINGS}
        for key, value in spec.items():
            if value not in allowed[key]:
                raise unknown(key, value, allowed[key], context=f" for preprocess '{column}'")
        out[column] = ColumnPreprocess(
            spec.get("impute", "mean"), spec.get("scale", "standard"), spec.get("encode")
        )
    return out


def _features(raw: object, relation: Relation, target: str | None) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise SqmlError(f"option features must be a non-empty list of column names, got {raw!r}")
    names = [require_column(relation, name, "feature") for name in raw]
    if target is not None and target in names:
        raise SqmlError(f"option features lists the target column '{target}'")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SqmlError(f"option features lists {choices(repeated)} more than once")
    return names


def _deploy_gate(raw: object, prediction_type: str) -> DeployGate:
    if not isinstance(raw, dict):
        raise SqmlError(
            'option deploy_if must be a JSON object such as {"min_improvement": 0.01, '
            f'"confidence": 0.95}}, got {describe(raw)}'
        )
    refuse_unknown("deploy_if key", raw, DEPLOY_IF_KEYS)
    if prediction_type == "clustering":
        raise SqmlError("option deploy_if compares predictions with a target; clustering has none")
    minimum = raw.get("min_improvement", 0.0)
    if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or minimum < 0:
        raise SqmlError(f"deploy_if min_improvement must be a number >= 0, got {describe(minimum)}")
    confidence = raw.get("confidence", 0.95)
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float))
        or not (0 < confidence < 1)
    ):
        raise SqmlError(
            f"deploy_if confidence must be a number strictly between 0 and 1, got "
            f"{describe(confidence)}"
        )
    resamples = _integer("deploy_if.resamples", raw.get("resamples", 1000), 100)
    if resamples > 100_000:
        raise SqmlError(f"deploy_if resamples must be at most 100000, got {resamples}")
    return DeployGate(float(minimum), float(confidence), resamples)


def validate_options(
    value: object,
    *,
    prediction_type: str,
    algorithm: str,
    estimator_cls: type[Any],
    relation: Relation,
    target: str | None,
    default_features: list[str],
) -> TrainOptions:
    raw = parse_options(value)
    key_column = raw.get("key_column")
    if key_column is not None:
        key_column = require_column(relation, key_column, "key_column")
        if key_column == target:
            raise SqmlError(
                f"option key_column names the target column '{target}'; name a column that "
                "identifies each row"
            )
        default_features = [column for column in default_features if column != key_column]
    hyperparams = raw.get("hyperparams", {})
    check_hyperparams(estimator_cls, algorithm, hyperparams, "hyperparams")
    _check_values(estimator_cls, algorithm, hyperparams)
    search = _search(raw, estimator_cls, algorithm)
    features = _features(raw["features"], relation, target) if "features" in raw else None
    preprocess = _preprocess(raw.get("preprocess", {}), features or default_features)
    if any(spec.encode == "target" for spec in preprocess.values()) and target is None:
        raise SqmlError("preprocess encode 'target' needs a target column")
    order_by = raw.get("order_by")
    if order_by is not None:
        order_by = require_column(relation, order_by, "order_by")
    random_state = raw.get("random_state")
    if random_state is not None:
        random_state = _integer("random_state", random_state, 0)
        if random_state >= 2**32:
            raise SqmlError(f"option random_state must be below 2^32, got {random_state}")
    automatic = raw.get("automatic_deploy", True)
    if not isinstance(automatic, bool):
        raise SqmlError(f"option automatic_deploy must be true or false, got {automatic!r}")
    importance = raw.get("importance", True)
    if not isinstance(importance, bool) and not (
        isinstance(importance, (int, float)) and 0 < importance <= MAX_IMPORTANCE_SECONDS
    ):
        raise SqmlError(
            "option importance must be true, false or the seconds permutation importance may "
            f"take (above 0, at most {MAX_IMPORTANCE_SECONDS}), got {describe(importance)}"
        )
    metric = raw.get("metric")
    if metric is not None and metric not in METRIC_NAMES[prediction_type]:
        raise unknown(
            "metric", metric, METRIC_NAMES[prediction_type], context=f" for {prediction_type}"
        )
    big_data = validate_big_data_options(raw, prediction_type=prediction_type, relation=relation)
    return TrainOptions(
        hyperparams=hyperparams,
        search=search.get("search"),
        search_params=search.get("search_params", {}),
        cv=search.get("cv", 5),
        n_iter=search.get("n_iter", 10),
        preprocess=preprocess,
        features=features,
        order_by=order_by,
        random_state=random_state,
        automatic_deploy=automatic,
        metric=metric,
        importance=importance if isinstance(importance, bool) else float(importance),
        deploy_if=_deploy_gate(raw["deploy_if"], prediction_type) if "deploy_if" in raw else None,
        big_data=big_data,
        text=json.dumps(raw, sort_keys=True) if raw else None,
    )
