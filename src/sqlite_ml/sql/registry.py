"""The registry of every ``sqml_*`` SQL function, scalar and table-valued: its name, its
arguments (and the usage text an arity error shows), its SQLite flags and the thin
function in ``functions.py`` that implements it.

Every binder (native, ctypes, stdlib) and the sqlite3 shell's host attach from here, so
a function added to ``FUNCTIONS`` exists everywhere; ``docs/functions/`` documents each.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import SqmlError
from ..sqlite.rows import plain_rows
from . import functions
from .session import RowsTable, Session


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


@dataclass(frozen=True)
class TableFunction:
    """A table-valued function: an eponymous virtual table of the native layer
    (``csrc/table.c``, with its Python side in ``bridge.py``); the ctypes and stdlib
    bindings cannot provide one."""

    name: str
    arguments: tuple[str, ...]
    columns: tuple[str, ...]
    optional: int = 0

    def usage(self) -> str:
        required = self.arguments[: len(self.arguments) - self.optional]
        text = ", ".join(required)
        for argument in self.arguments[len(required) :]:
            text += f" [, {argument}]"
        return f"{self.name}({text})"


@dataclass(frozen=True)
class RowsFunction:
    """A table-valued function whose rows a Python function gives, computed when a query
    starts and handed to SQLite in chunks of row tuples (an eponymous virtual table of the
    native layer, like ``TableFunction``; absent from the ctypes and stdlib bindings)."""

    name: str
    implementation: Callable[..., Iterator[list[tuple[Any, ...]]]]  # (session, *sql_args)
    arguments: tuple[str, ...]
    columns: tuple[str, ...]
    optional: int = 0
    # Each column's declared type ('' for none), when given: one per column.
    column_types: tuple[str, ...] = ()
    # The error when a required argument is missing, with an example ('': a generic one).
    missing_arguments: str = ""

    def usage(self) -> str:
        required = self.arguments[: len(self.arguments) - self.optional]
        optional = self.arguments[len(required) :]
        text = ", ".join(required) + "".join(f" [, {argument}" for argument in optional)
        return f"{self.name}({text}{']' * len(optional)})"

    def declaration(self) -> str:
        types = self.column_types or ("",) * len(self.columns)
        columns = [f"{name} {kind}".strip() for name, kind in zip(self.columns, types, strict=True)]
        hidden = [f"{argument} HIDDEN" for argument in self.arguments]
        return f"CREATE TABLE x({', '.join([*columns, *hidden])})"

    def spec(self, session: Session) -> RowsTable:
        """What the native layer registers: (declaration, columns, arguments, required,
        rows(*sql_args))."""
        session_ref = weakref.ref(session)  # SQLite keeps this as long as the connection
        implementation = self.implementation

        def rows(*args: Any) -> Iterator[list[tuple[Any, ...]]]:
            owner = session_ref()
            assert owner is not None  # the connection that calls us keeps it alive
            with plain_rows(owner.conn):
                return implementation(owner, *args)

        required = len(self.arguments) - self.optional
        return (self.declaration(), len(self.columns), len(self.arguments), required, rows)


FUNCTIONS: tuple[SqlFunction | TableFunction | RowsFunction, ...] = (
    SqlFunction("sqml_version", functions.version, (), deterministic=True),
    SqlFunction("sqml_python_version", functions.python_version, (), deterministic=True),
    SqlFunction("sqml_sklearn_version", functions.sklearn_version, (), deterministic=True),
    SqlFunction(
        "sqml_load_dataset", functions.load_dataset, ("name", "table"), optional=1, direct_only=True
    ),
    SqlFunction(
        "sqml_train",
        functions.train,
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
        "sqml_deploy",
        functions.deploy,
        ("experiment_name", "strategy_or_model_id"),
        direct_only=True,
    ),
    SqlFunction(
        "sqml_delete_experiment",
        functions.delete_experiment,
        ("experiment_name",),
        direct_only=True,
    ),
    SqlFunction(
        "sqml_rename_experiment",
        functions.rename_experiment,
        ("old_name", "new_name"),
        direct_only=True,
    ),
    SqlFunction(
        "sqml_tag",
        functions.tag,
        ("experiment_name", "key", "value", "run_id"),
        optional=1,
        direct_only=True,
    ),
    SqlFunction(
        "sqml_note",
        functions.note,
        ("experiment_name", "text", "run_id"),
        optional=1,
        direct_only=True,
    ),
    SqlFunction("sqml_feature_importance", functions.feature_importance, ("experiment_name",)),
    SqlFunction(
        "sqml_predict",
        functions.predict,
        ("experiment_name", "features"),
        variadic=("value1", "value2", "..."),
        own_plain_rows=True,
    ),
    SqlFunction(
        "sqml_predict_batch",
        functions.predict_batch,
        ("experiment_name", "features"),
        own_plain_rows=True,
    ),
    SqlFunction(
        "sqml_predict_proba",
        functions.predict_proba,
        ("experiment_name", "features"),
        variadic=("value1", "value2", "..."),
    ),
    SqlFunction("sqml_drift", functions.drift, ("experiment_name", "dataset")),
    SqlFunction(
        "sqml_explain", functions.explain, ("experiment_name", "features", "top_k"), optional=1
    ),
    RowsFunction(
        "sqml_explain_table",
        functions.explain_table,
        ("experiment_name", "source", "top_k"),
        (
            "row_id",
            "prediction",
            "raw_output",
            "baseline",
            "feature",
            "value",
            "contribution",
            "rank",
        ),
        optional=1,
    ),
    SqlFunction(
        "sqml_evaluate", functions.evaluate, ("experiment_name", "dataset", "target"), optional=1
    ),
    SqlFunction(
        "sqml_export_model",
        functions.export_model,
        ("experiment_or_model_id", "format"),
    ),
    # Not direct-only: a trigger may keep a vector table in step with its text. Their one
    # write, the first use of a model on a connection in sqml_pretrained, is provenance.
    SqlFunction("sqml_embed", functions.embed, ("model", "text"), own_plain_rows=True),
    SqlFunction("sqml_embed_batch", functions.embed_batch, ("model", "texts")),
    SqlFunction("sqml_classify_text", functions.classify_text, ("model", "text", "labels")),
    TableFunction(
        "sqml_predict_table",
        ("experiment_name", "source", "key_column"),
        ("row_id", "prediction", "probabilities"),
        optional=1,
    ),
    RowsFunction(
        "sqml_embed_table",
        functions.embed_table,
        ("model", "source"),
        ("row_id", "embedding", "text"),
        column_types=("INTEGER", "BLOB", "TEXT"),
        missing_arguments="sqml_embed_table needs a model and a source: "
        "SELECT * FROM sqml_embed_table('default', 'SELECT id, text FROM ...')",
    ),
    RowsFunction("sqml_test_rows", functions.test_rows, ("run_id",), ("row_id",)),
    RowsFunction(
        "sqml_roc_curve",
        functions.roc_curve,
        ("experiment_name", "dataset", "target"),
        (
            "class",
            "threshold",
            "fpr",
            "tpr",
            "precision",
            "recall",
            "auc",
            "average_precision",
            "brier",
            "calibration_error",
        ),
        optional=1,
    ),
)

# sqml_binding_mode() is attached by each binder itself (it owns the session).
BINDING_MODE = "sqml_binding_mode"


def new_session(conn: sqlite3.Connection | Any) -> Session:
    """A connection's session with every SQL function bound to it, ready to attach."""
    session = Session(conn)
    for function in FUNCTIONS:
        if isinstance(function, TableFunction):
            continue  # the native layer's own (csrc/table.c)
        if isinstance(function, RowsFunction):
            session.row_tables[function.name] = function.spec(session)
            continue
        session.calls[function.name] = function.bound_to(session)
        session.flags[function.name] = (function.deterministic, function.direct_only)
    return session


def table_valued_names() -> list[str]:
    """The table-valued functions: only the native binding has them."""
    return [f.name for f in FUNCTIONS if isinstance(f, (TableFunction, RowsFunction))]


def registered_names() -> list[str]:
    """Every SQL function a registered connection has, ``sqml_binding_mode`` included."""
    return [function.name for function in FUNCTIONS] + [BINDING_MODE]
