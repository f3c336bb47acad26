"""SQL surface: one thin function per ``sqml_*`` SQL function.

Each checks its SQL arguments, calls the domain and turns the answer into an SQL value
(REAL, TEXT, JSON text) or raises ``SqmlError`` with a message for the user.
"""

from __future__ import annotations

import ctypes
import json
import math
import sqlite3
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sklearn

from . import datasets, deployment, evaluation, training
from ._version import __version__
from .data import plain_rows
from .errors import SqmlError
from .prediction import DeployedModels, parse_features, predict_many, predict_one


class Session:
    """What a connection's SQL functions share. It refers to the connection by address
    only: SQLite calls our functions only while the connection is open, and holding it
    strongly from callbacks SQLite keeps would stop it from ever being freed."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn_address = id(conn)
        self.deployed = DeployedModels()
        self.calls: dict[str, Callable[..., Any]] = {}
        self.flags: dict[str, tuple[bool, bool]] = {}
        self.last_error: str | None = None
        self.mode = ""

    @property
    def conn(self) -> sqlite3.Connection:
        return ctypes.cast(self._conn_address, ctypes.py_object).value


@dataclass(frozen=True)
class SqlFunction:
    name: str
    implementation: Callable[..., Any]  # (session, *sql_args)
    arguments: tuple[str, ...]
    optional: int = 0
    deterministic: bool = False
    direct_only: bool = False  # writes tables: never callable from a view or trigger

    def usage(self) -> str:
        required = self.arguments[: len(self.arguments) - self.optional]
        optional = self.arguments[len(required) :]
        text = ", ".join(required)
        for argument in optional:
            text += f" [, {argument}"
        return f"{self.name}({text}{']' * len(optional)})"

    def bound_to(self, session: Session) -> Callable[..., Any]:
        minimum = len(self.arguments) - self.optional
        maximum = len(self.arguments)
        implementation = self.implementation
        # Weak: the session stores this function, and a cycle would keep the session (and
        # what binding_mode() and last_error() report) alive after the connection closes.
        session_ref = weakref.ref(session)

        def call(*args: Any) -> Any:
            if not minimum <= len(args) <= maximum:
                expected = str(minimum) if minimum == maximum else f"{minimum} to {maximum}"
                raise SqmlError(
                    f"{self.name} takes {expected} arguments, got {len(args)}; "
                    f"usage: {self.usage()}"
                )
            session = session_ref()
            assert session is not None  # the connection that calls us keeps it alive
            with plain_rows(session.conn):
                return implementation(session, *args)

        return call


def _version(session: Session) -> str:
    return __version__


def _python_version(session: Session) -> str:
    return sys.version


def _sklearn_version(session: Session) -> str:
    return sklearn.__version__


def _load_dataset(session: Session, name: Any, table: Any = None) -> str:
    return json.dumps(datasets.load_dataset(session.conn, name, table))


def _train(
    session: Session,
    experiment_name: Any,
    prediction_type: Any,
    algorithm: Any,
    dataset: Any,
    target: Any,
    test_size: Any = 0.25,
    split_strategy: Any = "shuffle",
    options: Any = None,
) -> str:
    conn = session.conn
    request = training.validate(
        conn,
        experiment_name,
        prediction_type,
        algorithm,
        dataset,
        target,
        test_size,
        split_strategy,
        options,
    )
    return json.dumps(training.train(conn, request))


def _deploy(session: Session, experiment_name: Any, strategy: Any) -> str:
    return json.dumps(deployment.deploy(session.conn, experiment_name, strategy))


def _feature_importance(session: Session, experiment_name: Any) -> str:
    return deployment.feature_importance(session.conn, experiment_name)


def _predict(session: Session, experiment_name: Any, features: Any) -> Any:
    model = session.deployed.model_for(session.conn, experiment_name)
    return predict_one(model, parse_features(features))


def _predict_batch(session: Session, experiment_name: Any, features: Any) -> str:
    model = session.deployed.model_for(session.conn, experiment_name)
    predictions = predict_many(model, parse_features(features, "batch features"))
    try:
        return json.dumps(predictions, allow_nan=False)
    except ValueError:  # JSON has no NaN or infinity: such a prediction is written as null
        return json.dumps([_finite_or_none(p) for p in predictions])


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _predict_proba(session: Session, experiment_name: Any, features: Any) -> str:
    model = session.deployed.model_for(session.conn, experiment_name)
    return evaluation.probabilities_json(model, experiment_name, parse_features(features))


def _evaluate(session: Session, experiment_name: Any, dataset: Any, target: Any = None) -> str:
    conn = session.conn
    model = session.deployed.model_for(conn, experiment_name)
    return json.dumps(evaluation.evaluate(conn, model, experiment_name, dataset, target))


FUNCTIONS = (
    SqlFunction("sqml_version", _version, (), deterministic=True),
    SqlFunction("sqml_python_version", _python_version, (), deterministic=True),
    SqlFunction("sqml_sklearn_version", _sklearn_version, (), deterministic=True),
    SqlFunction(
        "sqml_load_dataset", _load_dataset, ("name", "table"), optional=1, direct_only=True
    ),
    SqlFunction(
        "sqml_train",
        _train,
        (
            "experiment_name",
            "prediction_type",
            "algorithm",
            "dataset",
            "target",
            "test_size",
            "split_strategy",
            "options",
        ),
        optional=3,
        direct_only=True,
    ),
    SqlFunction(
        "sqml_deploy", _deploy, ("experiment_name", "strategy_or_model_id"), direct_only=True
    ),
    SqlFunction("sqml_feature_importance", _feature_importance, ("experiment_name",)),
    SqlFunction("sqml_predict", _predict, ("experiment_name", "features")),
    SqlFunction("sqml_predict_batch", _predict_batch, ("experiment_name", "features")),
    SqlFunction("sqml_predict_proba", _predict_proba, ("experiment_name", "features")),
    SqlFunction("sqml_evaluate", _evaluate, ("experiment_name", "dataset", "target"), optional=1),
)


def new_session(conn: sqlite3.Connection) -> Session:
    """A connection's session with every SQL function bound to it, ready to attach."""
    session = Session(conn)
    for function in FUNCTIONS:
        session.calls[function.name] = function.bound_to(session)
        session.flags[function.name] = (function.deterministic, function.direct_only)
    return session
