"""Domain: the toy datasets scikit-learn ships, written as ordinary tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from sklearn import datasets as skd

from ..db.readers import replace_table
from ..db.relations import (
    main_relation,
    main_table_columns,
    table_name_to_create,
    temporary_relation_kind,
)
from ..db.transactions import savepoint
from ..errors import SqmlError, describe, unknown

LOADERS: dict[str, Callable[[], Any]] = {
    "iris": skd.load_iris,
    "digits": skd.load_digits,
    "wine": skd.load_wine,
    "breast_cancer": skd.load_breast_cancer,
    "diabetes": skd.load_diabetes,
}


def load_dataset(conn: sqlite3.Connection, name: object, table: object = None) -> dict[str, Any]:
    if name not in LOADERS:
        raise unknown("dataset", name, list(LOADERS))
    assert isinstance(name, str)
    table = table_name_to_create(f"dataset_{name}" if table is None else table)
    bunch = LOADERS[name]()
    feature_names = [str(feature) for feature in bunch["feature_names"]]
    target = bunch["target"]
    columns = [(feature, "REAL") for feature in feature_names] + [("target", "REAL")]
    rows = [
        [float(value) for value in features] + [float(label)]
        for features, label in zip(bunch["data"], target, strict=True)
    ]
    with savepoint(conn):
        _refuse_foreign_table(conn, table, [column for column, _ in columns])
        replace_table(conn, table, columns, rows)
    target_names = bunch.get("target_names")
    return {
        "table": table,
        "feature_names": feature_names,
        "target_names": [str(t) for t in target_names] if target_names is not None else [],
        "size": len(rows),
    }


def _refuse_foreign_table(conn: sqlite3.Connection, table: str, columns: list[str]) -> None:
    """Reloading a dataset replaces its table; any other table of that name is left alone."""
    temporary = temporary_relation_kind(conn, table)
    if temporary is not None:
        raise SqmlError(
            f"a temporary {temporary} named {describe(table)} exists and would shadow the "
            "dataset table; choose another table name"
        )
    existing = main_relation(conn, table)
    if existing is None:
        return
    if existing != "table":
        raise SqmlError(
            f"{describe(table)} already exists as a {existing}; choose another table name"
        )
    if main_table_columns(conn, table) != columns:
        raise SqmlError(
            f"table {describe(table)} already exists with other columns; sqml_load_dataset only "
            "replaces a table it wrote itself: choose another table name or drop it first"
        )
