"""sqml_export_model(..., 'onnx'): every covered algorithm exported through SQL, loaded in
ONNX Runtime and compared with sqml_predict / sqml_predict_proba on every row of its
table plus rows with NULLs and unseen categories (fed the way a host would, built here
independently of the library's own check); the encodings and per-column steps; which
rows the check uses; the errors; the CLI command."""

from __future__ import annotations

import json
import math
import shutil
import socket
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner

import sqlite_ml
from sqlite_ml.faces.cli import cli
from sqlite_ml.ml import onnx_export
from sqlite_ml.ml.splits import hash_unit
from sqlite_ml.ops import export

from .helpers import Db

FAST = {"n_estimators": 5}
HYPERPARAMS: dict[str, dict[str, Any]] = {
    "random_forest": FAST,
    "extra_trees": FAST,
    "gradient_boosting": FAST,
    "ada_boost": FAST,
    "bagging": FAST,
    "xgboost": FAST,
    "lightgbm": {**FAST, "min_child_samples": 5},
    "mlp": {"max_iter": 50},
    "hist_gradient_boosting": {"max_iter": 10},
}
FLOWER_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width", "colour"]
SUGAR_FEATURES = ["age", "bmi", "bp", "s1", "s5", "region"]


@pytest.fixture
def tables(db: Db) -> Db:
    """flowers: iris with text labels, NULL widths and a text colour with NULLs;
    sugar: 120 diabetes rows with a text region; both with TEXT columns to one-hot."""
    db.load("iris")
    db.load("diabetes")
    db.conn.executescript(
        """
        CREATE TABLE flowers AS SELECT
            "sepal length (cm)" AS sepal_length,
            CASE WHEN rowid % 7 = 0 THEN NULL ELSE "sepal width (cm)" END AS sepal_width,
            "petal length (cm)" AS petal_length, "petal width (cm)" AS petal_width,
            CASE rowid % 4 WHEN 0 THEN 'red' WHEN 1 THEN 'green' WHEN 2 THEN 'blue' END
                AS colour,
            CASE CAST(target AS INTEGER) WHEN 0 THEN 'setosa' WHEN 1 THEN 'versicolor'
                ELSE 'virginica' END AS species,
            target AS code
        FROM dataset_iris;
        CREATE TABLE sugar AS SELECT age, bmi, bp, s1, s5,
            CASE rowid % 3 WHEN 0 THEN 'north' WHEN 1 THEN 'south' END AS region, target
        FROM dataset_diabetes LIMIT 120;
        """
    )
    db.conn.commit()
    return db


def exported(db: Db, experiment_or_id: Any) -> bytes:
    data = db.value("SELECT sqml_export_model(?, 'onnx')", (experiment_or_id,))
    assert isinstance(data, bytes)
    return data


def session(data: bytes) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


def metadata(data: bytes) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load_from_string(data).metadata_props}


def feed(data: bytes, rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Rows as a host feeds them: each column an [N, 1] array, numbers as double (NULL as
    NaN), text as text (NULL as the input's documented null text)."""
    inputs = json.loads(metadata(data)["sqlite_ml.inputs"])
    arrays = {}
    for item in inputs:
        values = [row[item["name"]] for row in rows]
        if item["type"] == "double":
            column = [math.nan if v is None else float(v) for v in values]
            arrays[item["name"]] = np.array(column, dtype=np.float64).reshape(-1, 1)
        else:
            column = [item["null"] if v is None else str(v) for v in values]
            arrays[item["name"]] = np.array(column, dtype=object).reshape(-1, 1)
    return arrays


def table_rows(db: Db, table: str, features: list[str]) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(f'[{name}]' for name in features)} FROM {table}"  # noqa: S608
    rows = [dict(zip(features, row, strict=True)) for row in db.rows(sql)]
    extra = []
    for name in features:  # each column NULL once, each text column unseen once
        extra.append({**rows[1], name: None})
        if isinstance(rows[1][name], str) or name in ("colour", "region"):
            extra.append({**rows[2], name: "never seen"})
    return rows + extra


def compare_with_sql(
    db: Db, experiment: str, data: bytes, rows: list[dict[str, Any]], kind: str
) -> dict[str, float]:
    """The graph's outputs against sqml_predict_batch and sqml_predict_proba, row by row."""
    got = dict(
        zip(
            [o.name for o in session(data).get_outputs()],
            session(data).run(None, feed(data, rows)),
            strict=True,
        )
    )
    expected = db.predict_batch(experiment, rows)
    measured: dict[str, float] = {}
    if kind == "regression":
        difference = np.abs(np.asarray(got["prediction"], dtype=np.float64) - expected)
        scale = max(1.0, float(np.max(np.abs(expected))))
        measured["prediction"] = float(difference.max())
        assert difference.max() <= export.REGRESSION_TOLERANCE * scale
    else:
        assert list(got["prediction"]) == expected  # text as text, REAL as double, ids
    if "probabilities" in got:
        classes = json.loads(metadata(data)["sqlite_ml.classes"])
        sql = [
            json.loads(db.value("SELECT sqml_predict_proba(?, ?)", (experiment, json.dumps(row))))
            for row in rows
        ]
        keys = list(sql[0])
        assert len(keys) == len(classes)
        wanted = np.array([[p[k] for k in keys] for p in sql])
        measured["probabilities"] = float(np.abs(got["probabilities"] - wanted).max())
        assert measured["probabilities"] <= export.PROBABILITY_TOLERANCE
    return measured


def train_flowers(db: Db, experiment: str, algorithm: str, **options: Any) -> dict[str, Any]:
    """A classifier of species on the flowers table's five feature columns."""
    chosen = {"features": FLOWER_FEATURES, **options}
    return db.train_with(experiment, "classification", algorithm, "flowers", "species", chosen)


COVERED = [(kind, name) for kind, names in onnx_export.COVERED.items() for name in names]


@pytest.mark.parametrize(("kind", "algorithm"), COVERED, ids=[f"{k}-{a}" for k, a in COVERED])
def test_every_covered_algorithm_exports_and_matches_sql(
    tables: Db, kind: str, algorithm: str
) -> None:
    options: dict[str, Any] = {"hyperparams": HYPERPARAMS.get(algorithm, {})}
    if kind == "classification":
        table, target, features = "flowers", "species", FLOWER_FEATURES
    elif kind == "regression":
        table, target, features = "sugar", "target", SUGAR_FEATURES
    else:
        table, target, features = "flowers", None, FLOWER_FEATURES
    options["features"] = features
    tables.train_with("e", kind, algorithm, table, target, options)
    data = exported(tables, "e")
    compare_with_sql(tables, "e", data, table_rows(tables, table, features), kind)
    check = json.loads(metadata(data)["sqlite_ml.check"])
    assert check["source"].startswith("the ") and "test rows of run 1" in check["source"]


CLASSIFIERS = list(onnx_export.COVERED["classification"])


@pytest.mark.parametrize("algorithm", CLASSIFIERS)
def test_every_covered_classifier_on_two_numeric_classes(tables: Db, algorithm: str) -> None:
    """Binary models (their own link in every converter) with numeric labels (REAL)."""
    tables.conn.execute("CREATE TABLE two AS SELECT *, code = 2 AS is_virginica FROM flowers")
    options = {"features": FLOWER_FEATURES, "hyperparams": HYPERPARAMS.get(algorithm, {})}
    tables.train_with("e", "classification", algorithm, "two", "is_virginica", options)
    data = exported(tables, "e")
    rows = table_rows(tables, "two", FLOWER_FEATURES)
    compare_with_sql(tables, "e", data, rows, "classification")
    assert session(data).get_outputs()[0].type == "tensor(double)"


def test_graph_inputs_and_outputs_are_the_users_columns(tables: Db) -> None:
    train_flowers(tables, "e", "logistic_regression")
    data = exported(tables, "e")
    model = session(data)
    inputs = {i.name: (i.type, i.shape) for i in model.get_inputs()}
    assert inputs == {
        "sepal_length": ("tensor(double)", [None, 1]),
        "sepal_width": ("tensor(double)", [None, 1]),
        "petal_length": ("tensor(double)", [None, 1]),
        "petal_width": ("tensor(double)", [None, 1]),
        "colour": ("tensor(string)", [None, 1]),
    }
    outputs = {o.name: o.type for o in model.get_outputs()}
    assert outputs == {"prediction": "tensor(string)", "probabilities": "tensor(float)"}
    described = {i["name"]: i for i in json.loads(metadata(data)["sqlite_ml.inputs"])}
    assert described["colour"]["encoding"] == "one_hot"
    assert sorted(described["colour"]["categories"]) == ["blue", "green", "red"]
    assert described["colour"]["null"] == ""
    assert json.loads(metadata(data)["sqlite_ml.classes"]) == ["setosa", "versicolor", "virginica"]


def test_numeric_labels_are_doubles_and_probability_order_is_the_models(tables: Db) -> None:
    tables.train_with(
        "e",
        "classification",
        "random_forest",
        "flowers",
        "code",
        {"features": FLOWER_FEATURES, "hyperparams": FAST},
    )
    data = exported(tables, "e")
    out = session(data).run(None, feed(data, table_rows(tables, "flowers", FLOWER_FEATURES)[:5]))
    assert out[0].dtype == np.float64
    assert json.loads(metadata(data)["sqlite_ml.classes"]) == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "preprocess",
    [
        {"colour": {"encode": "ordinal"}, "sepal_width": {"impute": "median", "scale": "robust"}},
        {"colour": {"encode": "target"}, "petal_width": {"impute": "zero", "scale": "min_max"}},
        {"colour": {"encode": "one_hot", "impute": "error"}, "sepal_length": {"scale": "none"}},
        {
            "petal_length": {"encode": "one_hot", "scale": "max_abs"},
            "colour": {"impute": "most_frequent"},
        },
    ],
    ids=["ordinal-median-robust", "target-zero-minmax", "onehot-required-none", "numeric-onehot"],
)
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_encodings_and_column_steps(tables: Db, preprocess: dict[str, Any], kind: str) -> None:
    if "impute" in preprocess.get("colour", {}) and preprocess["colour"]["impute"] == "error":
        tables.conn.execute("UPDATE flowers SET colour = 'grey' WHERE colour IS NULL")
        tables.conn.commit()
    target = "species" if kind == "classification" else "petal_width"
    features = [f for f in FLOWER_FEATURES if f != target]
    preprocess = {k: v for k, v in preprocess.items() if k in features}
    algorithm = "logistic_regression" if kind == "classification" else "ridge"
    tables.train_with(
        "e", kind, algorithm, "flowers", target, {"features": features, "preprocess": preprocess}
    )
    data = exported(tables, "e")
    rows = table_rows(tables, "flowers", features)
    if preprocess.get("colour", {}).get("impute") == "error":  # sqml_predict refuses NULL there
        rows = [r for r in rows if r["colour"] is not None]
    compare_with_sql(tables, "e", data, rows, kind)


def test_target_encoding_with_one_column_per_class(tables: Db) -> None:
    train_flowers(tables, "e", "decision_tree", preprocess={"colour": {"encode": "target"}})
    data = exported(tables, "e")
    compare_with_sql(
        tables, "e", data, table_rows(tables, "flowers", FLOWER_FEATURES), "classification"
    )


def test_null_text_when_the_empty_string_is_a_category(tables: Db) -> None:
    tables.conn.execute("UPDATE flowers SET colour = '' WHERE colour = 'blue'")
    tables.conn.commit()
    train_flowers(tables, "e", "logistic_regression")
    data = exported(tables, "e")
    colour = [i for i in json.loads(metadata(data)["sqlite_ml.inputs"]) if i["name"] == "colour"]
    assert colour[0]["null"] not in ("", "red", "green")
    compare_with_sql(
        tables, "e", data, table_rows(tables, "flowers", FLOWER_FEATURES), "classification"
    )


def test_svc_with_probabilities_and_without(tables: Db) -> None:
    train_flowers(tables, "with", "svc", hyperparams={"probability": True})
    train_flowers(tables, "without", "svc")
    rows = table_rows(tables, "flowers", FLOWER_FEATURES)
    with_probabilities = exported(tables, "with")
    assert [o.name for o in session(with_probabilities).get_outputs()] == [
        "prediction",
        "probabilities",
    ]
    compare_with_sql(tables, "with", with_probabilities, rows, "classification")
    without = exported(tables, "without")  # decision scores are not probabilities: no output
    assert [o.name for o in session(without).get_outputs()] == ["prediction"]


# --- which model, and the errors ---------------------------------------------------------


def test_deployed_model_or_a_model_id(tables: Db) -> None:
    first = tables.train_with("e", "classification", "logistic_regression", "flowers", "species")
    second = tables.train_with("e", "classification", "decision_tree", "flowers", "species")
    tables.value("SELECT sqml_deploy('e', ?)", (first["model_id"],))
    assert metadata(exported(tables, "e"))["sqlite_ml.model_id"] == str(first["model_id"])
    for given in (second["model_id"], str(second["model_id"]), float(second["model_id"])):
        assert metadata(exported(tables, given))["sqlite_ml.algorithm"] == "decision_tree"
    assert exported(tables, "e") == exported(tables, first["model_id"])  # deterministic bytes


def test_an_experiment_named_like_a_number_is_found_by_name(tables: Db) -> None:
    tables.train_with("1234", "classification", "decision_tree", "flowers", "species")
    assert metadata(exported(tables, "1234"))["sqlite_ml.experiment"] == "1234"


def sql_error(db: Db, *args: Any) -> str:
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value(f"SELECT sqml_export_model({', '.join('?' for _ in args)})", args)
    return str(error.value)


def test_errors_name_the_bad_value(tables: Db) -> None:
    tables.train_with("flowers", "classification", "decision_tree", "flowers", "species")
    assert "did you mean 'flowers'" in sql_error(tables, "flower", "onnx")
    assert "model 99 does not exist; model ids in this database: 1" in sql_error(tables, 99, "onnx")
    assert "unknown export format 'pmml'; available: 'onnx'" in sql_error(tables, "flowers", "pmml")
    assert "an experiment name or a model id" in sql_error(tables, None, "onnx")
    assert "takes 2 arguments" in sql_error(tables, "flowers")


def test_experiment_without_a_deployed_model(tables: Db) -> None:
    tables.train_with("e", "classification", "decision_tree", "flowers", "species")
    tables.conn.execute("UPDATE sqml_deployments SET active = FALSE")
    tables.conn.commit()
    assert "has no deployed model yet" in sql_error(tables, "e", "onnx")


@pytest.mark.parametrize(
    ("kind", "algorithm"),
    [
        ("classification", "dummy"),
        ("regression", "dummy"),
        ("clustering", "birch"),
    ],
)
def test_uncovered_algorithms_are_refused_with_the_covered_list(
    tables: Db, kind: str, algorithm: str
) -> None:
    target = {"classification": "species", "regression": "petal_width", "clustering": None}[kind]
    tables.train_with("e", kind, algorithm, "flowers", target)
    message = sql_error(tables, "e", "onnx")
    assert f"algorithm '{algorithm}') cannot be exported to ONNX" in message
    assert "'logistic_regression'" in message and "'kmeans'" in message


def test_missing_extra_is_named(tables: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    tables.train_with("e", "classification", "decision_tree", "flowers", "species")
    monkeypatch.setattr(onnx_export, "_installed", lambda name: name != "skl2onnx")
    message = sql_error(tables, "e", "onnx")
    assert "needs the optional extra 'onnx' ('skl2onnx' not installed)" in message
    assert "pip install 'sqlite-ml[onnx]'" in message


def test_a_graph_that_disagrees_is_an_error_not_an_export(
    tables: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables.train_with("e", "regression", "ridge", "sugar", "target")
    real = onnx_export._impute_and_scale

    def off_by_a_little(pipeline: Any) -> Any:
        fill, centre, divisor = real(pipeline)
        return fill, centre + 1e-3, divisor  # a slightly wrong scaler

    monkeypatch.setattr(onnx_export, "_impute_and_scale", off_by_a_little)
    message = sql_error(tables, "e", "onnx")
    assert "does not reproduce the model" in message and "it was not exported" in message


def test_callable_from_a_view(tables: Db) -> None:
    tables.train_with("e", "classification", "decision_tree", "flowers", "species")
    tables.conn.execute("CREATE VIEW onnx_models AS SELECT sqml_export_model('e', 'onnx') AS data")
    assert tables.value("SELECT typeof(data) FROM onnx_models") == "blob"


# --- the rows the check uses --------------------------------------------------------------


def record(db: Db, model_id: int) -> Any:
    from sqlite_ml.db import records

    return records.model_run(db.conn, model_id)


@pytest.mark.parametrize(
    ("split", "options"),
    [("shuffle", {}), ("stratified", {}), ("last", {"order_by": "sepal_length"})],
)
def test_check_uses_the_runs_own_test_rows(tables: Db, split: str, options: dict[str, Any]) -> None:
    """Recomputing accuracy on the recomputed test rows gives the stored accuracy."""
    trained = tables.train_with(
        "e",
        "classification",
        "decision_tree",
        "flowers",
        "species",
        {"features": FLOWER_FEATURES, **options},
        0.3,
        split,
    )
    stored = record(tables, trained["model_id"])
    from sqlite_ml.db.relations import find_relation
    from sqlite_ml.ops.export import _load, _test_rows

    pipeline, schema = _load(tables.conn, stored)
    rows = _test_rows(
        tables.conn, stored, schema, find_relation(tables.conn, "flowers"), FLOWER_FEATURES
    )
    assert rows is not None and len(rows.rows) == trained["test_rows"]
    truth = [
        tables.value(
            "SELECT species FROM flowers WHERE sepal_length IS ? AND sepal_width IS ? AND "
            "petal_length IS ? AND petal_width IS ? AND colour IS ?",
            tuple(row),
        )
        for row in rows.rows
    ]
    predicted = pipeline.predict(schema.encode_records(rows.rows))
    accuracy = float(np.mean(np.asarray(predicted) == np.asarray(truth)))
    assert accuracy == pytest.approx(trained["metrics"]["accuracy"])


def test_changed_dataset_falls_back_to_a_seeded_sample(tables: Db) -> None:
    tables.train_with("e", "classification", "decision_tree", "flowers", "species")
    tables.conn.execute("DELETE FROM flowers WHERE rowid % 10 = 0")
    tables.conn.commit()
    check = json.loads(metadata(exported(tables, "e"))["sqlite_ml.check"])
    assert (
        "a seeded sample" in check["source"] and "135 current rows of 'flowers'" in check["source"]
    )
    assert "no longer holds exactly the rows run 1 trained on" in check["source"]


def test_dropped_dataset_is_an_error_naming_it(tables: Db) -> None:
    tables.train_with("e", "classification", "decision_tree", "flowers", "species")
    tables.conn.execute("DROP TABLE flowers")
    tables.conn.commit()
    message = sql_error(tables, "e", "onnx")
    assert "its run's dataset 'flowers'" in message and "recreate it" in message


def test_hashed_split_runs_are_checked_on_their_hashed_test_rows(tables: Db) -> None:
    """Issue 14's hashed splits (sqml_runs.split_scheme = 'hash'): the test rows are those
    whose key hashes below test_size (simulated on a run's record here)."""
    trained = tables.train_with("e", "regression", "ridge", "sugar", "target", {}, 0.3)
    columns = [row[1] for row in tables.rows("PRAGMA table_info(sqml_runs)")]
    for column in ("split_scheme", "key_column"):
        if column not in columns:
            tables.conn.execute(f"ALTER TABLE sqml_runs ADD COLUMN {column} TEXT")
    tables.conn.execute("UPDATE sqml_runs SET split_scheme = 'hash'")
    tables.conn.commit()
    seed = tables.value("SELECT seed FROM sqml_runs WHERE id = ?", (trained["run_id"],))
    rowids = [row[0] for row in tables.rows("SELECT rowid FROM sugar ORDER BY rowid")]
    expected = int((hash_unit(np.array(rowids), seed) < 0.3).sum())
    check = json.loads(metadata(exported(tables, "e"))["sqlite_ml.check"])
    assert f"the {expected} test rows of run 1" in check["source"]
    assert "hashed split of row keys" in check["source"]


# --- what the bytes are --------------------------------------------------------------------


def test_bytes_are_only_a_graph_of_standard_operators(tables: Db) -> None:
    tables.train_with("e", "classification", "knn", "flowers", "species")  # a Scan subgraph
    model = onnx.load_from_string(exported(tables, "e"))
    onnx.checker.check_model(model, full_check=True)
    nodes = onnx_export._all_nodes(model.graph)
    assert {node.domain for node in nodes} <= {"", "ai.onnx.ml"}
    assert not model.functions and not model.training_info
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    refused = onnx.helper.make_node("Evil", ["x"], ["y"], domain="com.example")
    model.graph.node.append(refused)
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    with pytest.raises(Exception, match="more than a graph of standard operators"):
        onnx_export.refuse_foreign_content(model)


def test_export_needs_no_network(tables: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    tables.train_with("e", "classification", "xgboost", "flowers", "species", {"hyperparams": FAST})

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the export opened a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert exported(tables, "e")


# --- the sqml export command ---------------------------------------------------------------


def test_cli_writes_the_model_file(tables: Db, tmp_path: Path) -> None:
    train_flowers(tables, "flowers", "logistic_regression")
    target = tmp_path / "model.onnx"
    result = CliRunner().invoke(cli, ["export", str(tables.path), "flowers", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {target} ({target.stat().st_size} bytes)\n"
    data = target.read_bytes()
    assert data == exported(tables, "flowers")
    compare_with_sql(
        tables,
        "flowers",
        data,
        table_rows(tables, "flowers", FLOWER_FEATURES)[:20],
        "classification",
    )


def test_cli_errors(tables: Db, tmp_path: Path) -> None:
    tables.train_with("flowers", "classification", "dummy", "flowers", "species")
    target = tmp_path / "model.onnx"
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(tables.path), "flower", "-o", str(target)])
    assert result.exit_code == 1 and "did you mean 'flowers'" in result.output
    result = runner.invoke(cli, ["export", str(tables.path), "flowers", "-o", str(target)])
    assert result.exit_code == 1 and "cannot be exported to ONNX" in result.output
    result = runner.invoke(cli, ["export", str(tables.path), "flowers"])
    assert result.exit_code == 2 and "Missing option '--output'" in result.output
    assert not target.exists()


def test_only_a_tie_in_the_models_own_probabilities_excuses_another_class() -> None:
    classes = ["a", "b", "c"]
    tied = np.array([[0.4, 0.4, 0.2], [0.2, 0.3, 0.5]])
    report: dict[str, Any] = {}
    assert export._compare_labels(["b", "c"], ["a", "c"], tied, classes, report) is None
    assert report == {"differing_predictions": 0, "tied_predictions": 1}
    clear = np.array([[0.41, 0.39, 0.2]])
    message = export._compare_labels(["b"], ["a"], clear, classes, {})
    assert message == "1 predictions differ (first: the model predicts 'a', the graph 'b')"
    assert export._compare_labels(["b"], ["a"], None, [], {}) is not None  # no probabilities
    # the model's class is not its top probability (SVC's Platt scaling): no excuse either
    platt = np.array([[0.3, 0.3, 0.4]])
    assert export._compare_labels(["b"], ["a"], platt, classes, {}) is not None


def test_models_of_a_0_3_0_database_export(tmp_path: Path) -> None:
    """A database written by sqlite-ml 0.3.0 (tests/data): its models export as they are,
    checked on their runs' recomputed test rows (an XGBoost model on TEXT columns here)."""
    path = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "data" / "sqlite-ml-0.3.0.db", path)
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    db = Db(conn, path)
    model_id = db.value(
        "SELECT m.id FROM sqml_models m JOIN sqml_runs r ON r.id = m.run_id"
        " WHERE r.algorithm = 'xgboost'"
    )
    check = json.loads(metadata(exported(db, model_id))["sqlite_ml.check"])
    assert "test rows of run" in check["source"] and check["differing_predictions"] == 0
    conn.close()
