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
from .binding import change_probe
from .data import plain_rows
from .errors import SqmlError
from .prediction import (
    DeployedModels,
    LoadedModel,
    gc_paused_for,
    parse_features,
    predict_many,
)


class Session:
    """What a connection's SQL functions share. It refers to the connection by address
    only: SQLite calls our functions only while the connection is open, and holding it
    strongly from callbacks SQLite keeps would stop it from ever being freed."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn_address = id(conn)
        self.deployed = DeployedModels(change_probe(conn))
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
    # Another form taking any number of arguments from len(arguments) on (its usage text,
    # arguments after the first len(arguments) - 1), e.g. feature values one by one.
    variadic: tuple[str, ...] = ()
    # Whether it runs its queries itself under plain_rows (so that a call answered from
    # memory pays for no context manager): prediction, on every row of a query.
    own_plain_rows: bool = False

    def usage(self) -> str:
        required = self.arguments[: len(self.arguments) - self.optional]
        optional = self.arguments[len(required) :]
        text = ", ".join(required)
        for argument in optional:
            text += f" [, {argument}"
        usage = f"{self.name}({text}{']' * len(optional)})"
        if self.variadic:
            other = ", ".join([*self.arguments[:-1], *self.variadic])
            usage += f" or {self.name}({other})"
        return usage

    def arity_error(self, got: int) -> SqmlError:
        minimum = len(self.arguments) - self.optional
        maximum = len(self.arguments)
        if self.variadic:
            expected = f"{minimum} or more"
        else:
            expected = str(minimum) if minimum == maximum else f"{minimum} to {maximum}"
        return SqmlError(
            f"{self.name} takes {expected} arguments, got {got}; usage: {self.usage()}"
        )

    def bound_to(self, session: Session) -> Callable[..., Any]:
        minimum = len(self.arguments) - self.optional
        maximum = 2**31 if self.variadic else len(self.arguments)
        implementation = self.implementation
        # Weak: the session stores this function, and a cycle would keep the session (and
        # what binding_mode() and last_error() report) alive after the connection closes.
        session_ref = weakref.ref(session)

        if self.own_plain_rows:

            def call_direct(*args: Any) -> Any:
                if not minimum <= len(args) <= maximum:
                    raise self.arity_error(len(args))
                return implementation(session_ref(), *args)

            return call_direct

        def call(*args: Any) -> Any:
            if not minimum <= len(args) <= maximum:
                raise self.arity_error(len(args))
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


def _deployed_model(session: Session, experiment_name: Any) -> LoadedModel:
    model = session.deployed.current(experiment_name)
    if model is None:
        conn = session.conn
        with plain_rows(conn):
            model = session.deployed.model_for(conn, experiment_name)
    return model


def _predict(session: Session, experiment_name: Any, *features: Any) -> Any:
    # Called for every row of a query: the cached model is looked up inline.
    model = session.deployed.current(experiment_name) or _deployed_model(session, experiment_name)
    if len(features) == 1:
        return model.predict_text(features[0])
    return model.predict_values(features)


def _predict_batch(session: Session, experiment_name: Any, features: Any) -> str:
    model = _deployed_model(session, experiment_name)
    predictions = model.predict_batch_text(features)
    if predictions is None:
        with gc_paused_for(features):
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
    SqlFunction(
        "sqml_predict",
        _predict,
        ("experiment_name", "features"),
        variadic=("value1", "value2", "..."),
        own_plain_rows=True,
    ),
    SqlFunction(
        "sqml_predict_batch", _predict_batch, ("experiment_name", "features"), own_plain_rows=True
    ),
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
