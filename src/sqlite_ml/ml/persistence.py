"""Model formats: the only module that serializes models, and the home of the allow-list.

Models are written with skops (never pickle). On load, every type the blob mentions is
checked against ``ALLOWED_TYPES``, a fixed list in this file (the catalogue's estimators
plus the support types they are built from), before skops is asked to build anything; the
type list a blob declares about itself is never used as its own trust list.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .. import jsontext
from ..errors import SqmlError
from . import boosters, validation
from .catalogue import all_estimator_classes


def _import_skops() -> ModuleType:
    """``skops.io``, without the array libraries it would drag in. On import, skops lists
    scikit-learn's estimators by walking every scikit-learn package, and the walk imports
    scikit-learn's array-API shims for PyTorch, Dask and CuPy, which import those libraries
    whenever they are installed (PyTorch comes with the sentence-transformers extra): 2 s
    more on the first model load of a process, and PyTorch resets OpenMP's thread count.
    The shims are hidden during that import only; scikit-learn imports them as usual
    later, when an array-API computation asks for them."""
    shims = [f"sklearn.externals.array_api_compat.{name}" for name in ("torch", "dask", "cupy")]
    hidden = [name for name in shims if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import of it: ImportError
    try:
        import skops.io
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    return skops.io


skops_io = _import_skops()

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


# Bounds on what loading one stored model may take (docs/security.md lists them): an
# archive's members are read only up to the sizes it declares, which must stay under
# these, and only stored (uncompressed) or deflated members are read.
MAX_MEMBERS = 100_000
MAX_MEMBER_BYTES = 1 << 30  # 1 GiB for one member
MAX_TOTAL_BYTES = 2 << 30  # 2 GiB for all members together
MAX_EXPANSION = 16  # members may unpack to 16 times the blob (sqlite-ml stores, 1x)...
_EXPANSION_FLOOR = 1 << 20  # ...plus 1 MiB, for tiny blobs
MAX_SCHEMA_BYTES = 256 << 20  # schema.json
_READ_CHUNK = 1 << 20
_RETRAIN = "retrain the experiment with this version of sqlite-ml"


def dumps(model: Any) -> bytes:
    """A fitted pipeline as a skops archive, once it passed the checks every load makes
    (so that a model sqlite-ml could not serve is refused when it is trained)."""
    check_fitted(model)
    return bytes(skops_io.dumps(model))


def check_fitted(model: Any) -> None:
    """The structural checks of a load, on a model just fitted; SqmlError when it fails."""
    try:
        step = model.steps[-1][1] if hasattr(model, "steps") else None
        ensemble = None
        if hasattr(step, "get_booster") or hasattr(step, "booster_"):
            ensemble = boosters.describe_estimator(step)
        validation.check_model(model, ensemble)
    except (boosters.BoosterError, validation.ModelCheckError) as error:
        raise SqmlError(
            f"the trained model cannot be stored: sqlite-ml would refuse to load it ({error})"
        ) from None


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


class ArchiveError(ValueError):
    """A stored archive broke a bound or is not what sqlite-ml writes."""


@dataclass
class Archive:
    """A skops archive checked within bounds: its members' sizes, its parsed schema, and
    the members' bytes as they are needed (all of them at once when some are compressed,
    for the stored copy skops then reads)."""

    blob: bytes
    infos: dict[str, zipfile.ZipInfo]
    schema: Any
    compressed: bool
    _read: dict[str, bytes] = field(default_factory=dict)

    def read(self, name: str) -> bytes:
        if name not in self._read:
            with zipfile.ZipFile(io.BytesIO(self.blob)) as archive:
                self._read[name] = _read_member(archive, self.infos[name])
        return self._read[name]

    def for_skops(self) -> bytes:
        """What skops reads: the blob itself, or a stored copy of compressed members."""
        if not self.compressed:
            return self.blob
        return _stored_copy({name: self.read(name) for name in self.infos})


def read_archive(blob: bytes) -> Archive:
    """A skops zip archive checked within the bounds above and its schema.json read;
    ArchiveError (or zipfile.BadZipFile) names what is wrong."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"has {len(infos)} members, more than {MAX_MEMBERS}")
        budget = min(MAX_TOTAL_BYTES, MAX_EXPANSION * len(blob) + _EXPANSION_FLOOR)
        declared = sum(info.file_size for info in infos)
        if declared > budget:
            raise ArchiveError(
                f"unpacks to {declared} bytes, more than the {budget} allowed "
                f"for a blob of {len(blob)} bytes"
            )
        by_name: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in by_name:
                raise ArchiveError(f"holds member {info.filename[:60]!r} twice")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"holds encrypted member {info.filename[:60]!r}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArchiveError(
                    f"holds member {info.filename[:60]!r} compressed with method "
                    f"{info.compress_type}; only stored and deflated members are read"
                )
            limit = MAX_SCHEMA_BYTES if info.filename == "schema.json" else MAX_MEMBER_BYTES
            if info.file_size > limit:
                raise ArchiveError(
                    f"declares member {info.filename[:60]!r} of {info.file_size} bytes, more "
                    f"than {limit}"
                )
            by_name[info.filename] = info
    if "schema.json" not in by_name:
        raise ArchiveError("has no schema.json")
    compressed = any(info.compress_type != zipfile.ZIP_STORED for info in infos)
    found = Archive(blob, by_name, None, compressed)
    try:
        # Its nesting is measured by schema_facts, on the same walk that reads its types.
        found.schema = jsontext.loads(found.read("schema.json"), max_depth=None)
    except (ValueError, UnicodeDecodeError) as error:
        raise ArchiveError(f"has a schema.json that is not usable JSON: {error}") from None
    return found


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, in bounded chunks: zipfile stops at the declared size and checks
    the CRC at the end, and each chunk inflates to at most the chunk's size."""
    parts: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        while True:
            chunk = member.read(_READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > info.file_size:
                raise ArchiveError(f"has member {info.filename[:60]!r} longer than declared")
            parts.append(chunk)
    if size != info.file_size:
        raise ArchiveError(f"has member {info.filename[:60]!r} shorter than declared")
    return b"".join(parts)


def _stored_copy(members: dict[str, bytes]) -> bytes:
    """The members again, uncompressed, for skops to read (never the original's deflate
    streams, which its own reads would inflate without a bound)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@dataclass
class SchemaFacts:
    """What one walk over a skops schema finds."""

    types: set[str] = field(default_factory=set)
    boosters: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)


_BOOSTER_TYPES = {
    "xgboost.core.Booster": boosters.XGBOOST,
    "lightgbm.basic.Booster": boosters.LIGHTGBM,
}


def schema_facts(schema: Any) -> SchemaFacts:
    """Every ``module.Class`` a skops schema names, its booster nodes, and its nodes by
    ``__id__`` (skops reuses the first node built for an id wherever the id recurs)."""
    facts = SchemaFacts()
    pending: list[tuple[Any, int]] = [(schema, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > jsontext.MAX_DEPTH and isinstance(node, (dict, list)):
            raise ArchiveError(f"has a schema.json nested deeper than {jsontext.MAX_DEPTH}")
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                dotted = f"{module}.{name}"
                facts.types.add(dotted)
                if dotted in _BOOSTER_TYPES:
                    facts.boosters.append(node)
            node_id = node.get("__id__")
            if node_id is not None:
                facts.by_id.setdefault(repr(node_id), []).append(node)
            pending.extend((item, depth + 1) for item in node.values())
        elif isinstance(node, list):
            pending.extend((item, depth + 1) for item in node)
    return facts


def declared_types(blob: bytes) -> set[str]:
    """Every ``module.Class`` named in a skops blob's schema, without building anything."""
    try:
        return schema_facts(read_archive(blob).schema).types
    except (zipfile.BadZipFile, ArchiveError, OSError, EOFError) as error:
        raise ValueError("not a skops archive") from error


def loads(blob: bytes, model_id: int, recorded_digest: str | None = None) -> Any:
    """Rebuild a stored model, refusing anything that is not a skops blob of allowed types
    whose every part passed its structural checks, or (when ``recorded_digest`` is given)
    whose bytes are not the ones trained."""
    return load_model(blob, model_id, recorded_digest).estimator


@dataclass
class LoadedModel:
    estimator: Any
    ensemble: boosters.Ensemble | None  # the XGBoost or LightGBM model, as parsed


def load_model(blob: bytes, model_id: int, recorded_digest: str | None = None) -> LoadedModel:
    """``loads``, also giving the parsed description of an XGBoost or LightGBM booster."""
    if blob[:1] == b"\x80":
        raise SqmlError(
            f"model {model_id} is stored as a Python pickle (as sqlite-ml 0.1.x did); "
            f"pickles can run arbitrary code, so sqlite-ml refuses to load it: {_RETRAIN}"
        )
    try:
        archive = read_archive(blob)
        facts = schema_facts(archive.schema)
    except ArchiveError as error:
        raise SqmlError(
            f"model {model_id} was not loaded: its archive {error}; {_RETRAIN}"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, RuntimeError):
        raise SqmlError(
            f"model {model_id} is not a skops model archive (corrupted or foreign data); {_RETRAIN}"
        ) from None
    refused = sorted(facts.types - ALLOWED_TYPES)
    if refused:
        raise SqmlError(
            f"model {model_id} contains types outside sqlite-ml's allow-list "
            f"({', '.join(refused[:5])}); it was not loaded: {_RETRAIN}"
        )
    if recorded_digest is not None and digest(blob) != recorded_digest:
        raise SqmlError(
            f"model {model_id}'s data does not match the SHA-256 recorded when it was "
            f"trained (corrupted or tampered with); it was not loaded: {_RETRAIN}"
        )
    try:
        ensembles = [_checked_booster(node, archive, facts) for node in facts.boosters]
    except boosters.BoosterError as error:
        raise SqmlError(
            f"model {model_id} failed a structural check: its booster {error}; it was not "
            f"loaded: {_RETRAIN}"
        ) from None
    if len(ensembles) > 1:
        raise SqmlError(
            f"model {model_id} holds {len(ensembles)} boosters where sqlite-ml stores one; "
            f"it was not loaded: {_RETRAIN}"
        )
    try:
        estimator = skops_io.loads(archive.for_skops(), trusted=sorted(ALLOWED_TYPES))
    except (MemoryError, RecursionError) as error:
        raise SqmlError(
            f"model {model_id} could not be loaded: it needs more "
            f"{'memory' if isinstance(error, MemoryError) else 'nesting'} than allowed; "
            f"{_RETRAIN}"
        ) from None
    except Exception as error:  # skops raises many types for a damaged archive
        raise SqmlError(f"model {model_id} could not be loaded ({error}); {_RETRAIN}") from error
    ensemble = ensembles[0] if ensembles else None
    try:
        validation.check_model(estimator, ensemble)
    except validation.ModelCheckError as error:
        raise SqmlError(
            f"model {model_id} failed a structural check: {error}; it was not loaded: {_RETRAIN}"
        ) from None
    return LoadedModel(estimator, ensemble)


# The state XGBoost's and LightGBM's boosters keep (LightGBM's private names as its
# __getstate__ writes them): any other key is refused before the library sees the booster.
_XGBOOST_STATE = frozenset({"handle"})
_LIGHTGBM_STATE = frozenset(
    {
        "_Booster__higher_better_inner_eval",
        "_Booster__init_predictor",
        "_Booster__inner_predict_buffer",
        "_Booster__is_predicted_cur_iter",
        "_Booster__name_inner_eval",
        "_Booster__need_reload_eval_info",
        "_Booster__num_class",
        "_Booster__num_dataset",
        "_Booster__num_inner_eval",
        "_Booster__set_objective_to_none",
        "_handle",
        "_network",
        "_train_data_name",
        "best_iteration",
        "best_score",
        "name_valid_sets",
        "pandas_categorical",
        "params",
        "train_set_version",
    }
)


def _checked_booster(
    node: dict[str, Any], archive: Archive, facts: SchemaFacts
) -> boosters.Ensemble:
    """Parse and check the data a booster node hands its library, before skops builds it.

    The node must have the shape skops gives a booster (an object whose state is a dict of
    text keys), and no other node may share an ``__id__`` with it, its state or its model
    data unless it is identical: skops builds the first node of an id wherever the id
    recurs, so the node checked here is the one that is built."""
    library = _BOOSTER_TYPES[f"{node['__module__']}.{node['__class__']}"]
    _need(node.get("__loader__") == "ObjectNode", "is not stored as an object")
    state = node.get("content")
    _need(isinstance(state, dict) and state.get("__loader__") == "DictNode", "has no state")
    assert isinstance(state, dict)
    content = state.get("content")
    _need(isinstance(content, dict), "has no state")
    assert isinstance(content, dict)
    _check_text_keys(state.get("key_types"), len(content), facts)
    if library == boosters.XGBOOST:
        _need(set(content) == _XGBOOST_STATE, "keeps state a booster does not have")
        handle = content["handle"]
        _need(
            isinstance(handle, dict)
            and handle.get("__loader__") == "BytearrayNode"
            and f"{handle.get('__module__')}.{handle.get('__class__')}" == "builtins.bytearray"
            and handle.get("file") in archive.infos,
            "does not keep its model as bytes in the archive",
        )
        payload: Any = archive.read(handle["file"])
    else:
        _need(
            "_handle" in content and set(content) <= _LIGHTGBM_STATE,
            "keeps state a booster does not have",
        )
        handle = content["_handle"]
        _need(
            isinstance(handle, dict)
            and handle.get("__loader__") == "JsonNode"
            and handle.get("is_json") is True
            and f"{handle.get('__module__')}.{handle.get('__class__')}" == "builtins.str"
            and isinstance(handle.get("content"), str),
            "does not keep its model as text",
        )
        try:
            payload = jsontext.loads(handle["content"])
        except ValueError as error:
            raise boosters.BoosterError(f"model text is not JSON text ({error})") from None
        _need(isinstance(payload, str), "does not keep its model as text")
    for part in (node, state, state.get("key_types"), handle):
        _check_shared_ids(part, facts)
    if library == boosters.XGBOOST:
        return boosters.parse_xgboost(payload)
    return boosters.parse_lightgbm(payload)


def _check_text_keys(key_types: Any, count: int, facts: SchemaFacts) -> None:
    """A dict node's key types: one 'builtins.str' per key (skops zips keys with types)."""
    _need(
        isinstance(key_types, dict) and key_types.get("__loader__") == "ListNode",
        "has malformed key types",
    )
    items = key_types.get("content")
    _need(isinstance(items, list) and len(items) == count, "has malformed key types")
    for item in items:
        _need(
            isinstance(item, dict)
            and item.get("__loader__") == "TypeNode"
            and item.get("__module__") == "builtins"
            and item.get("__class__") == "str",
            "has a key that is not text",
        )
        _check_shared_ids(item, facts)


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise boosters.BoosterError(message)


def _check_shared_ids(part: Any, facts: SchemaFacts) -> None:
    if not isinstance(part, dict) or part.get("__id__") is None:
        return
    for other in facts.by_id.get(repr(part["__id__"]), []):
        _need(other is part or other == part, "shares an id with a different node")
