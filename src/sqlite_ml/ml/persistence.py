"""Model formats: the only module that serializes models, and the home of the allow-list.

Models are written with skops (never pickle). On load, every type the blob mentions is
checked against ``ALLOWED_TYPES``, a fixed list in this file (the catalogue's estimators
plus the support types they are built from), before skops is asked to build anything; the
type list a blob declares about itself is never used as its own trust list.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import skops.io as skops_io

from ..errors import SqmlError
from .catalogue import all_estimator_classes

FORMAT = "skops"

_SUPPORT_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.str",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        "builtins.slice",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.float64",
        "numpy.float32",
        "numpy.int64",
        "numpy.int32",
        "numpy.uint64",
        "numpy.uint8",
        "numpy.bool_",
        "numpy.str_",
        "numpy.object_",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
        "sklearn.pipeline.Pipeline",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.tree._tree.Tree",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.dummy.DummyClassifier",
        "sklearn.dummy.DummyRegressor",
        "sklearn.linear_model._sgd_fast.Hinge",
        "sklearn.linear_model._sgd_fast.SquaredLoss",
        "sklearn.linear_model._sgd_fast.Huber",
        "sklearn.linear_model._sgd_fast.EpsilonInsensitive",
        "sklearn.linear_model._sgd_fast.Log",
        "sklearn.linear_model._sgd_fast.ModifiedHuber",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sqlite_ml.preprocessing.ColumnImputer",
        "sqlite_ml.preprocessing.ColumnScaler",
        # XGBoost and LightGBM boosters: skops rebuilds each from its __getstate__, which
        # holds the trees in the library's own data format (XGBoost's raw model bytes,
        # LightGBM's model text), read back by the library's loader; no code is stored.
        "builtins.bytearray",
        "collections.OrderedDict",
        "collections.defaultdict",
        "xgboost.core.Booster",
        "lightgbm.basic.Booster",
    }
)

ALLOWED_TYPES = frozenset(
    _SUPPORT_TYPES | {f"{cls.__module__}.{cls.__qualname__}" for cls in all_estimator_classes()}
)


def dumps(model: Any) -> bytes:
    return bytes(skops_io.dumps(model))


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def declared_types(blob: bytes) -> set[str]:
    """Every ``module.Class`` named in a skops blob's schema, without building anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as error:
        raise ValueError("not a skops archive") from error
    found: set[str] = set()
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                found.add(f"{module}.{name}")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def loads(blob: bytes, model_id: int, recorded_digest: str | None = None) -> Any:
    """Rebuild a stored model, refusing anything that is not a skops blob of allowed types,
    or (when ``recorded_digest`` is given) whose bytes are not the ones trained."""
    retrain = "retrain the experiment with this version of sqlite-ml"
    if blob[:1] == b"\x80":
        raise SqmlError(
            f"model {model_id} is stored as a Python pickle (as sqlite-ml 0.1.x did); "
            f"pickles can run arbitrary code, so sqlite-ml refuses to load it: {retrain}"
        )
    try:
        types = declared_types(blob)
    except ValueError:
        raise SqmlError(
            f"model {model_id} is not a skops model archive (corrupted or foreign data); {retrain}"
        ) from None
    refused = sorted(types - ALLOWED_TYPES)
    if refused:
        raise SqmlError(
            f"model {model_id} contains types outside sqlite-ml's allow-list "
            f"({', '.join(refused[:5])}); it was not loaded: {retrain}"
        )
    if recorded_digest is not None and digest(blob) != recorded_digest:
        raise SqmlError(
            f"model {model_id}'s data does not match the SHA-256 recorded when it was "
            f"trained (corrupted or tampered with); it was not loaded: {retrain}"
        )
    try:
        return skops_io.loads(blob, trusted=sorted(ALLOWED_TYPES))
    except Exception as error:  # skops raises many types for a damaged archive
        raise SqmlError(f"model {model_id} could not be loaded ({error}); {retrain}") from error
