"""Domain: predicting with an experiment's deployed model, loaded once and cached.

Loaded models are shared by every connection of the process, keyed by the SHA-256 of
their stored blob (content-addressed, so an entry can never be stale). Each connection
remembers which model every experiment it predicted with had deployed, and asks the
database again only when the file changed: ``PRAGMA data_version`` moves when another
connection or process commits, ``total_changes`` when this connection writes; inside a
transaction (where a rollback moves neither) it asks on every call.
"""

from __future__ import annotations

import gc
import json
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..db import records as store
from ..errors import SqmlError, choices, describe, shorten
from ..ml import persistence
from ..ml.features import Feature, FeatureSchema
from ..ml.labels import CLUSTER_LABELS, TEXT_LABELS
from ..ml.native_format import ServingDecision
from ..ml.predictors import (
    Predictor,
    QuickPredictor,
    RowPredictor,
    compile_predictor,
    compile_row_predictor,
)
from ..ml.pretrained import Embedder, load_embedder
from . import native_forms
from .experiments import require_active_model, require_experiment, require_experiment_name

_MAX_CACHED_MODELS = 32

# A JSON number as SQLite's json_object() and Python's json.dumps() write it. float()
# reads it; anything it cannot read goes through json.loads and its error messages.
_NUMBER = r"(-?[0-9][-+.eE0-9]*)"


def _layouts(names: Sequence[str]) -> list[Callable[[str], re.Match[str] | None]]:
    """Matchers for an object with exactly the model's keys in training order, and for an
    array of as many numbers: the shapes json_object()/json_array() give a row, read
    without building a dict (about half the cost of json.loads on 20 columns). SQLite
    writes them without spaces; Python's json.dumps with ", " and ": " (tried second)."""
    keys = [re.escape(json.dumps(name, ensure_ascii=False)) for name in names]
    matchers: list[Callable[[str], re.Match[str] | None]] = []
    for comma, colon in ((",", ":"), (", ?", ": ?")):
        pairs = comma.join(f"{key}{colon}{_NUMBER}" for key in keys)
        matchers.append(re.compile(r"\{" + pairs + r"\}").fullmatch)
        matchers.append(re.compile(r"\[" + comma.join(_NUMBER for _ in names) + r"\]").fullmatch)
    return matchers


@dataclass
class LoadedModel:
    model_id: int
    estimator: Any
    schema: FeatureSchema
    predictor: Predictor
    row_predictor: RowPredictor  # a row of floats (NaN when missing) -> SQL value
    quick: QuickPredictor | None = None  # raw numbers -> SQL value, None when unsure
    # Which path serves it (and its native form); recorded in the database when it could be.
    serving: ServingDecision | None = None
    _layouts: list[Callable[[str], re.Match[str] | None]] = field(init=False, repr=False)
    # The C quick path's reader of json_object()/json_array() text, with the keys it
    # expects (as SQLite writes them), when the quick path is the native one.
    _text_quick: Callable[[str, tuple[str, ...]], Any] | None = field(init=False, repr=False)
    _batch_quick: Callable[[str, tuple[str, ...]], list[Any] | None] | None = field(
        init=False, repr=False
    )
    _keys: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.schema.width != len(self.schema.names) or not self.schema.plain_numbers:
            self.quick = None  # one-hot columns, texts or vectors: no quick path
        self._layouts = _layouts(self.schema.names)
        self._text_quick = getattr(self.quick, "text", None)
        self._batch_quick = getattr(self.quick, "batch", None)
        self._keys = tuple(json.dumps(name, ensure_ascii=False) for name in self.schema.names)

    def predict(self, matrix: np.ndarray) -> list[Any]:
        predictions = self.predictor(matrix)
        if self.schema.label_kind == TEXT_LABELS:
            return [str(value) for value in predictions]
        if self.schema.label_kind == CLUSTER_LABELS:  # cluster ids are integers
            return np.asarray(predictions, dtype=np.int64).tolist()
        return np.asarray(predictions, dtype=np.float64).tolist()

    def predict_row(self, row: list[float]) -> Any:
        return self.row_predictor(row)

    def predict_text(self, text: object) -> Any:
        """One row given as JSON text (an object keyed by column, or an array); for a
        model of one vector feature, a BLOB is that vector."""
        if type(text) is bytes and self.schema.single_vector:
            return self.predict_values([text])
        quick = self.quick
        if quick is not None and type(text) is str:
            text_quick = self._text_quick
            if text_quick is not None:
                result = text_quick(text, self._keys)
                if result is not None:
                    return result
            for layout in self._layouts:
                match = layout(text)
                if match is not None:
                    try:
                        values = list(map(float, match.groups()))
                    except ValueError:
                        break  # not a JSON number after all: json.loads words the error
                    result = quick(values)
                    if result is not None:
                        return result
                    break
        return predict_one(self, self.features_of(text))

    def features_of(self, argument: object) -> Any:
        """One SQL argument as a feature record: JSON text (an object or an array); for a
        model of a single feature, a number or NULL is also that feature's value."""
        if len(self.schema.names) == 1 and (argument is None or isinstance(argument, (int, float))):
            return [argument]
        return parse_features(argument)

    def positional(self, values: Sequence[Any], function: str = "sqml_predict") -> list[Any]:
        """Feature values given one by one (``function(experiment, v1, v2, ...)``), checked
        to be as many as the model's features."""
        names = self.schema.names
        if len(values) != len(names):
            raise SqmlError(
                f"{function} got {len(values)} feature values but the model expects "
                f"{len(names)}, in this order: {choices(names)}"
            )
        return list(values)

    def predict_batch_text(self, text: object) -> list[Any] | None:
        """Every row of a JSON array of json_object()/json_array() rows through the C
        quick path, or None when it cannot vouch for one of them (then the caller reads
        the array with json.loads)."""
        batch = self._batch_quick
        if batch is None or type(text) is not str:
            return None
        return batch(text, self._keys)

    def predict_values(self, values: Sequence[Any]) -> Any:
        """One row given as SQL values in training-column order."""
        record = self.positional(values)
        quick = self.quick
        if quick is not None:
            result = quick(values)
            if result is not None:
                return result
        return self.row_predictor(self.schema.encode_record(record))


CacheKey = tuple[str, str]  # (SHA-256 of the model blob, its feature schema JSON)


class _ModelCache:
    """Loaded models shared by every connection of the process.

    Keyed by the blob's SHA-256 as recorded at training (checked against the blob's real
    digest when it is loaded) together with the feature schema's exact text, so a
    database whose schema was edited never gets another database's model, nor the
    reverse."""

    def __init__(self) -> None:
        self._models: OrderedDict[CacheKey, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # deserializations so far, for tests and diagnostics

    def get(self, key: CacheKey) -> LoadedModel | None:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
            return model

    def load(self, conn: sqlite3.Connection, active: store.ActiveModel) -> LoadedModel:
        model_id = active.model_id
        blob = store.model_blob(conn, model_id)
        # Refuses 0.1.x pickles, types outside the allow-list, then bytes not as trained.
        estimator = persistence.loads(blob, model_id, active.digest)
        digest = active.digest or persistence.digest(blob)  # equal once loads() accepted it
        schema_json = active.schema_json
        if not schema_json:
            raise SqmlError(
                f"model {model_id} has no feature schema (it was not made by this version of "
                "sqlite-ml); retrain the experiment"
            )
        schema = schema_for(estimator, schema_json, model_id)
        schema.bind_embedders(lambda feature: _embedder_for(feature, model_id))
        serving = native_forms.settle(
            conn, model_id, estimator, schema, digest, schema_json, len(blob)
        )
        predictor = compile_predictor(estimator)
        row_predictor, quick = compile_row_predictor(estimator, predictor, schema.label_kind)
        model = LoadedModel(model_id, estimator, schema, predictor, row_predictor, quick, serving)
        with self._lock:
            self.loads += 1
            self._models[(digest, schema_json)] = model
            while len(self._models) > _MAX_CACHED_MODELS:
                self._models.popitem(last=False)
        return model


def _embedder_for(feature: Feature, model_id: int) -> Embedder:
    try:
        return load_embedder(feature.model)
    except SqmlError as error:
        raise SqmlError(
            f"model {model_id} embeds column '{feature.name}' with the pretrained model "
            f"'{feature.model}', which cannot be loaded here: {error.message}"
        ) from None


def schema_for(estimator: Any, schema_json: str, model_id: int) -> FeatureSchema:
    """The stored feature schema, checked for shape and against the model's input width."""
    try:
        schema = FeatureSchema.from_json(schema_json)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise SqmlError(
            f"model {model_id}'s feature schema is damaged ({error}); retrain the experiment"
        ) from None
    expected = getattr(estimator, "n_features_in_", schema.width)
    if schema.width != expected:
        raise SqmlError(
            f"model {model_id}'s feature schema describes {schema.width} model inputs but the "
            f"model takes {expected}; the schema is damaged: retrain the experiment"
        )
    return schema


MODELS = _ModelCache()


def loaded_model(conn: sqlite3.Connection, active: store.ActiveModel) -> LoadedModel:
    """The model a deployment record points at, from the cache or loaded once."""
    if active.digest is not None and active.schema_json is not None:
        cached = MODELS.get((active.digest, active.schema_json))
        if cached is not None:
            return cached
    return MODELS.load(conn, active)


def model_by_id(conn: sqlite3.Connection, model_id: int) -> LoadedModel:
    """Any stored model (deployed or not), by id, from the cache or loaded once."""
    record = store.model_record(conn, model_id)
    if record is None:
        raise SqmlError(f"there is no model {model_id} in this database")
    return loaded_model(conn, record)


# A cheap reading of the connection that changes whenever the database may have changed
# since the last reading; None when it cannot tell (then the database is asked).
ChangeProbe = Callable[[], "int | None"]


class DeployedModels:
    """One connection's view of which model each experiment has deployed."""

    def __init__(self, probe: ChangeProbe | None = None) -> None:
        self._by_experiment: dict[str, LoadedModel] = {}
        self._seen: tuple[int, int, bool] | None = None
        self._probe = probe
        self._probed: int | None = None  # the probe's reading when the cache was checked

    def current(self, experiment_name: object) -> LoadedModel | None:
        """The model found before, when the probe vouches that nothing changed since
        (a few ctypes calls instead of a query); None: ask ``model_for``."""
        probe = self._probe
        if probe is None:
            return None
        reading = probe()
        if reading is None or reading != self._probed:
            return None
        return self._by_experiment.get(experiment_name)  # type: ignore[call-overload]

    def _database_changed(self, conn: sqlite3.Connection) -> bool:
        in_transaction = conn.in_transaction
        version = (
            conn.execute("PRAGMA data_version").fetchone()[0],
            conn.total_changes,
            in_transaction,
        )
        changed = version != self._seen
        self._seen = version
        # Inside a transaction a ROLLBACK (TO a savepoint) can undo a deployment without
        # moving either counter, so there the deployment is looked up on every call.
        return changed or in_transaction

    def model_for(self, conn: sqlite3.Connection, experiment_name: object) -> LoadedModel:
        reading = self._probe() if self._probe is not None else None
        if self._database_changed(conn):
            self._by_experiment.clear()
        self._probed = reading
        if isinstance(experiment_name, str):
            model = self._by_experiment.get(experiment_name)
            if model is not None:
                return model
        model = self._resolve(conn, experiment_name)
        self._by_experiment[require_experiment_name(experiment_name)] = model
        return model

    def _resolve(self, conn: sqlite3.Connection, experiment_name: object) -> LoadedModel:
        experiment = require_experiment(conn, experiment_name)
        return loaded_model(conn, require_active_model(conn, experiment))


# Above this size, the cyclic garbage collector is paused while a batch is parsed and
# encoded: that makes a container or two per row, which triggers collection after
# collection (a fifth of the time of a 100,000-row batch) although plain JSON data and
# the rows made from it can never hold a cycle.
_PAUSE_GC_ABOVE = 1 << 16


@contextmanager
def gc_paused_for(text: object) -> Iterator[None]:
    if not isinstance(text, str) or len(text) < _PAUSE_GC_ABOVE or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def parse_features(text: object, what: str = "features") -> Any:
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        raise SqmlError(
            f"{what} must be JSON text (an object keyed by column name or an array in "
            f"training-column order), got {describe(text)}"
        )
    try:
        return json.loads(text)
    except ValueError as error:
        raise SqmlError(f"{what} is not valid JSON ({error}): {shorten(text)}") from None
    except RecursionError:
        raise SqmlError(f"{what} is nested too deeply to be features: {shorten(text)}") from None


def predict_one(model: LoadedModel, features: Any) -> Any:
    return model.predict_row(model.schema.encode_record(features))


def predict_many(model: LoadedModel, items: Any) -> list[Any]:
    if not isinstance(items, list):
        raise SqmlError(
            "batch features must be a JSON array of objects or arrays, got "
            f"{shorten(json.dumps(items))}"
        )
    if not items:
        return []
    matrix = model.schema.encode_records(items, batch=True)
    return model.predict(matrix)
