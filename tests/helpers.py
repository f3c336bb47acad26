"""Helpers shared by the tests: constants, a small SQL wrapper, a subprocess runner."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlite_ml.ml import persistence
from sqlite_ml.ml.features import FeatureSchema


def native_built() -> bool:
    try:
        import sqlite_ml._native  # noqa: F401
    except ImportError:
        return False
    return True


def expected_mode() -> str:
    """The binding mode a plain register() gives in this test run: the one
    SQLITE_ML_BINDING forces (``make test`` runs the suite with ``capi`` too), else
    ``native`` when the extension is built, else the ctypes binder."""
    forced = os.environ.get("SQLITE_ML_BINDING", "").strip().lower()
    if forced:
        return {"ctypes": "capi"}.get(forced, forced)
    return "native" if native_built() else "capi"


SQML_TABLES = (
    "sqml_experiments",
    "sqml_runs",
    "sqml_models",
    "sqml_metrics",
    "sqml_deployments",
    "sqml_search_trials",
)

IRIS_FEATURES = (
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
)
# One flower of each class, as [features], class (iris rows 0, 50 and 100).
SETOSA = [5.1, 3.5, 1.4, 0.2]
VERSICOLOR = [7.0, 3.2, 4.7, 1.4]
VIRGINICA = [6.3, 3.3, 6.0, 2.5]


class Db:
    """A registered connection plus the few SQL calls the tests repeat."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    def value(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def rows(self, sql: str, params: Any = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def load(self, name: str, table: str | None = None) -> dict[str, Any]:
        if table is None:
            return json.loads(self.value("SELECT sqml_load_dataset(?)", (name,)))
        return json.loads(self.value("SELECT sqml_load_dataset(?, ?)", (name, table)))

    def train(
        self,
        experiment: str,
        prediction_type: str,
        algorithm: str,
        dataset: str,
        target: str,
        *extra: Any,
    ) -> dict[str, Any]:
        args = (experiment, prediction_type, algorithm, dataset, target, *extra)
        placeholders = ", ".join("?" for _ in args)
        return json.loads(self.value(f"SELECT sqml_train({placeholders})", args))

    def train_with(
        self,
        experiment: str,
        prediction_type: str,
        algorithm: str,
        dataset: str,
        target: str | None,
        options: dict[str, Any] | None = None,
        test_size: float = 0.25,
        split_strategy: str = "shuffle",
    ) -> dict[str, Any]:
        """sqml_train with all eight arguments, ``options`` given as a JSON object."""
        text = None if options is None else json.dumps(options)
        args = (experiment, prediction_type, algorithm, dataset, target, test_size)
        return self.train(*args, split_strategy, text)

    def train_error(self, *args: Any, **kwargs: Any) -> str:
        """The SQL error of a train_with call that must fail, checking it wrote nothing."""
        before = self.counts()
        try:
            self.train_with(*args, **kwargs)
        except sqlite3.OperationalError as error:
            assert self.counts() == before, "a refused sqml_train call wrote rows"
            return str(error)
        raise AssertionError("sqml_train succeeded but should have failed")

    def predict(self, experiment: str, features: Any) -> Any:
        return self.value("SELECT sqml_predict(?, ?)", (experiment, json.dumps(features)))

    def predict_batch(self, experiment: str, items: Any) -> list[Any]:
        text = self.value("SELECT sqml_predict_batch(?, ?)", (experiment, json.dumps(items)))
        return json.loads(text)

    def counts(self) -> dict[str, int]:
        return {
            table: self.value(f"SELECT count(*) FROM {table}")  # noqa: S608
            for table in SQML_TABLES
        }

    def schema(self) -> list[tuple[Any, ...]]:
        return self.rows("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")

    def dump(self, table: str) -> list[tuple[Any, ...]]:
        quoted = '"' + table.replace('"', '""') + '"'
        return self.rows(f"SELECT * FROM {quoted} ORDER BY rowid")  # noqa: S608

    def active_model_id(self, experiment: str) -> int | None:
        return self.value(
            "SELECT d.model_id FROM sqml_deployments AS d"
            " JOIN sqml_experiments AS e ON e.id = d.experiment_id"
            " WHERE e.name = ? AND d.active",
            (experiment,),
        )

    def stored_model(self, model_id: int) -> tuple[Any, FeatureSchema]:
        blob, schema_json = self.conn.execute(
            "SELECT data, feature_schema FROM sqml_models WHERE id = ?", (model_id,)
        ).fetchone()
        return persistence.loads(bytes(blob), model_id), FeatureSchema.from_json(schema_json)

    def reference(self, model_id: int) -> Callable[[Any], Any]:
        """scikit-learn's own predict with a stored model, for one feature record."""
        estimator, schema = self.stored_model(model_id)

        def predict(features: Any) -> Any:
            return estimator.predict(schema.encode_records([features]))[0]

        return predict

    def reference_batch(self, model_id: int, records: list[Any]) -> list[Any]:
        """scikit-learn's own predict with a stored model, for many records at once."""
        estimator, schema = self.stored_model(model_id)
        return list(estimator.predict(schema.encode_records(records, batch=True)))


def run_python(code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter (its own process, its own model cache)."""
    env = {k: v for k, v in os.environ.items() if k != "SQLITE_ML_BINDING"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


class Trap:
    """Unpickling this creates a directory: proof that the pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def trap_pickle(marker: Path) -> bytes:
    return pickle.dumps(Trap(marker))


def without_packages(*packages: str) -> str:
    """Code to put first in a run_python script: importing any of ``packages`` then fails
    as if it were not installed (a machine without an optional extra)."""
    return f"""
import importlib.abc, sys
class _Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {packages!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, _Missing())
"""


def run_sqlite3_shell(
    shell: str, path: Path, script: str, *options: str, extension: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """The sqlite3 shell on ``path``: ``.load extension``, then ``script``, in this
    environment without its SQLITE_ML_ variables (plus ``env``)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SQLITE_ML_")}
    environment.update(env)
    return subprocess.run(
        [shell, "-batch", *options, str(path)],
        input=f".load {extension}\n{script}",
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )
