"""Domain: predicting with an experiment's deployed model, loaded once and cached.

Loaded models are shared by every connection of the process, keyed by the SHA-256 of
their stored blob (content-addressed, so an entry can never be stale). Each connection
remembers which model every experiment it predicted with had deployed, and asks the
database again only when the file changed: ``PRAGMA data_version`` moves when another
connection or process commits, ``total_changes`` when this connection writes; inside a
transaction (where a rollback moves neither) it asks on every call.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import persistence, store
from .errors import SqmlError, describe, shorten
from .features import CLUSTER_LABELS, TEXT_LABELS, FeatureSchema
from .predictors import Predictor, RowPredictor, compile_predictor, compile_row_predictor

_MAX_CACHED_MODELS = 32


@dataclass
class LoadedModel:
    model_id: int
    estimator: Any
    schema: FeatureSchema
    predictor: Predictor
    row_predictor: RowPredictor

    def predict(self, matrix: np.ndarray) -> list[Any]:
        predictions = self.predictor(matrix)
        if self.schema.label_kind == TEXT_LABELS:
            return [str(value) for value in predictions]
        if self.schema.label_kind == CLUSTER_LABELS:  # cluster ids are integers
            return np.asarray(predictions, dtype=np.int64).tolist()
        return np.asarray(predictions, dtype=np.float64).tolist()

    def predict_row(self, row: list[float]) -> Any:
        prediction = self.row_predictor(row)
        if self.schema.label_kind == TEXT_LABELS:
            return str(prediction)
        return int(prediction) if self.schema.label_kind == CLUSTER_LABELS else float(prediction)


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
        predictor = compile_predictor(estimator)
        model = LoadedModel(
            model_id, estimator, schema, predictor, compile_row_predictor(estimator, predictor)
        )
        with self._lock:
            self.loads += 1
            self._models[(digest, schema_json)] = model
            while len(self._models) > _MAX_CACHED_MODELS:
                self._models.popitem(last=False)
        return model


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


class DeployedModels:
    """One connection's view of which model each experiment has deployed."""

    def __init__(self) -> None:
        self._by_experiment: dict[str, LoadedModel] = {}
        self._seen: tuple[int, int, bool] | None = None

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
        if self._database_changed(conn):
            self._by_experiment.clear()
        if isinstance(experiment_name, str):
            model = self._by_experiment.get(experiment_name)
            if model is not None:
                return model
        model = self._resolve(conn, experiment_name)
        self._by_experiment[model_name(experiment_name)] = model
        return model

    def _resolve(self, conn: sqlite3.Connection, experiment_name: object) -> LoadedModel:
        name = model_name(experiment_name)
        experiment = store.find_experiment(conn, name)
        if experiment is None:
            known = store.experiment_names(conn)
            listed = ", ".join(f"'{n}'" for n in known[:20]) or "none yet"
            raise SqmlError(f"unknown experiment {describe(name)}; experiments: {listed}")
        active = store.active_model(conn, experiment.id)
        if active is None:
            raise SqmlError(
                f"experiment {describe(name)} has no deployed model yet; "
                "train one successfully with sqml_train first"
            )
        if active.digest is not None and active.schema_json is not None:
            cached = MODELS.get((active.digest, active.schema_json))
            if cached is not None:
                return cached
        return MODELS.load(conn, active)


def model_name(experiment_name: object) -> str:
    if not isinstance(experiment_name, str):
        raise SqmlError(f"experiment name must be text, got {describe(experiment_name)}")
    return experiment_name


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
