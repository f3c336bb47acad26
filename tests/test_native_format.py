"""The native model format as stored data: what is recorded per model, what the C loader
refuses (a damaged or hostile form is refused by name and served by nothing), fuzzing of
the loader, forms compiled on demand for models stored without one (a 0.3.0 database),
and its size against the skops blob."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sqlite_ml
from sqlite_ml.ml import native_format

from .helpers import SETOSA, Db, expected_mode, native_built, run_python

pytestmark = pytest.mark.skipif(not native_built(), reason="the native extension is not built")
native_only = pytest.mark.skipif(
    expected_mode() != "native", reason="this run does not use the native binding"
)
DATA = Path(__file__).resolve().parent / "data"


def native_row(db: Db, model_id: int) -> tuple[bytes, str, str, str | None]:
    blob, digest, serving, reason = db.conn.execute(
        "SELECT native_model, native_digest, serving, serving_reason FROM sqml_models WHERE id = ?",
        (model_id,),
    ).fetchone()
    return blob, digest, serving, reason


def iris_forest(iris: Db, trees: int) -> tuple[int, bytes]:
    """Experiment 'e': a forest of this many trees on iris; its model id and native form."""
    result = iris.train_with(
        "e", "classification", "random_forest", "dataset_iris", "target",
        {"hyperparams": {"n_estimators": trees}},
    )  # fmt: skip
    model_id = result["model_id"]
    return model_id, native_row(iris, model_id)[0]


def store_form(db: Db, model_id: int, blob: bytes) -> None:
    """What someone who can write the file can do: a new form with a matching digest."""
    db.conn.execute(
        "UPDATE sqml_models SET native_model = ?, native_digest = ? WHERE id = ?",
        (blob, hashlib.sha256(blob).hexdigest(), model_id),
    )
    db.conn.commit()


def test_each_model_records_its_path(iris: Db) -> None:
    forest = iris.train_with(
        "f", "classification", "random_forest", "dataset_iris", "target",
        {"hyperparams": {"n_estimators": 5}},
    )  # fmt: skip
    svc = iris.train("s", "classification", "svc", "dataset_iris", "target")
    blob, digest, serving, reason = native_row(iris, forest["model_id"])
    assert serving == "native" and reason is None
    assert blob[:8] == b"SQMLNATV" and struct.unpack("<I", blob[8:12]) == (1,)
    assert digest == hashlib.sha256(blob).hexdigest()
    blob, digest, serving, reason = native_row(iris, svc["model_id"])
    assert (blob, digest, serving) == (None, None, "python")
    assert reason == "SVC is not in the native format"


def test_the_loader_refuses_what_the_writer_never_writes() -> None:
    """Each check by name, on forms damaged where it matters."""
    from sklearn.tree import DecisionTreeClassifier

    from sqlite_ml import _native
    from sqlite_ml.ml.features import Feature, FeatureSchema
    from sqlite_ml.ml.pipelines import build_pipeline

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(scale=0.3, size=200) > 0.2).astype(float)
    schema = FeatureSchema([Feature(f"f{i}", "numeric") for i in range(3)], "y", "numeric")
    pipeline = build_pipeline(DecisionTreeClassifier(max_depth=5, random_state=0), schema, {})
    pipeline.fit(x, y)
    blob = native_format.compile_native(pipeline, schema)
    assert _native.validate_native(blob) is None
    tree = pipeline[-1].tree_
    left = np.asarray(tree.children_left)
    features = np.where(left == -1, -1, tree.feature).astype("<i4").tobytes()
    children = np.where(left == -1, np.cumsum(left == -1) - 1, left).astype("<u4").tobytes()
    assert tree.node_count > 9 and blob.count(features) == blob.count(children) == 1
    features_at, left_at = blob.index(features), blob.index(children)
    thresholds_at = features_at + 4 * tree.node_count

    def damaged(at: int, data: bytes) -> str | None:
        return _native.validate_native(blob[:at] + data + blob[at + len(data) :])

    # a child pointing back at the root: a cycle
    assert "children 0 and" in damaged(left_at, struct.pack("<I", 0))
    assert "is not one of the 3 inputs" in damaged(features_at, struct.pack("<i", 7))
    assert "threshold is not a finite number" in damaged(
        thresholds_at, struct.pack("<d", float("nan"))
    )
    assert "not a native model" in damaged(0, b"NOTAFORM")
    assert "version 9" in damaged(8, struct.pack("<I", 9))
    assert "ends inside" in _native.validate_native(blob[:-9])
    assert "after the end marker" in _native.validate_native(blob + b"\0")
    assert "class label 1 repeats" in damaged(
        blob.index(struct.pack("<dd", 0.0, 1.0)), struct.pack("<dd", 1.0, 1.0)
    )


@native_only
def test_a_damaged_form_is_refused_by_name_and_served_by_nothing(iris: Db) -> None:
    model_id, blob = iris_forest(iris, 3)
    # Bytes changed without their digest: refused as tampered.
    iris.conn.execute(
        "UPDATE sqml_models SET native_model = ? WHERE id = ?", (blob[:-4] + b"XXXX", model_id)
    )
    iris.conn.commit()
    with pytest.raises(sqlite3.OperationalError) as error:
        iris.predict("e", SETOSA)
    assert str(error.value) == (
        f"model {model_id}'s native form does not match the SHA-256 recorded with it "
        "(corrupted or tampered with); it is not served: retrain the experiment"
    )
    # A form rewritten with a matching digest: the structure is checked before any walk.
    data = bytearray(blob)
    data[-4:] = b"XXXX"
    store_form(iris, model_id, bytes(data))
    for sql in (
        "SELECT sqml_predict('e', '[5.1, 3.5, 1.4, 0.2]')",
        "SELECT sqml_predict('e', 5.1, 3.5, 1.4, 0.2)",
        "SELECT sqml_predict_batch('e', '[[5.1, 3.5, 1.4, 0.2]]')",
        "SELECT sqml_predict_proba('e', '[5.1, 3.5, 1.4, 0.2]')",
        "SELECT * FROM sqml_predict_table('e', 'dataset_iris')",
    ):
        with pytest.raises(sqlite3.OperationalError) as error:
            iris.conn.execute(sql).fetchall()
        assert str(error.value) == (
            f"model {model_id}'s native form is refused (the end marker is missing); it is "
            "not served: retrain the experiment"
        ), sql


@native_only
def test_a_form_beside_another_model_is_not_served_natively(iris: Db) -> None:
    """Forms record the skops blob they were compiled from: a form moved to another model's
    row (with its own digest, so its bytes check out) is not scored; the Python side loads
    (and checks) the model stored in the row and serves it."""
    from sqlite_ml import _native

    first = iris.train("one", "classification", "logistic_regression", "dataset_iris", "target")
    second = iris.train("two", "classification", "ridge", "dataset_iris", "target")
    expected = iris.predict("two", SETOSA)
    blob = native_row(iris, first["model_id"])[0]
    store_form(iris, second["model_id"], blob)
    python_calls = _native.native_counts()[1]
    fresh = sqlite3.connect(iris.path)
    sqlite_ml.register(fresh)
    row = "[5.1, 3.5, 1.4, 0.2]"
    assert fresh.execute("SELECT sqml_predict('two', ?)", (row,)).fetchone()[0] == expected
    assert _native.native_counts()[1] == python_calls + 1  # the ridge, by Python
    assert fresh.execute("SELECT sqml_predict('one', ?)", (row,)).fetchone()[0] == 0.0
    fresh.close()


FUZZ = """
import random, sys
import numpy as np
from sqlite_ml import _native
blobs = np.load(sys.argv[1], allow_pickle=False)
random.seed(int(sys.argv[2]))
accepted = refused = 0
for name in blobs.files:
    blob = bytes(blobs[name])
    width = int(blobs[name + "_width"]) if name + "_width" in blobs.files else None
    if width is None:
        continue
    rows = np.random.default_rng(0).normal(size=(4, width)) * 3
    for _ in range(int(sys.argv[3])):
        data = bytearray(blob)
        for _ in range(random.choice((1, 1, 2, 4))):
            at = random.randrange(len(data))
            data[at] = random.randrange(256) if random.random() < 0.7 else data[at] ^ 0x80
        if random.random() < 0.1:
            data = data[: random.randrange(len(data))]
        failed = _native.validate_native(bytes(data))
        if failed is None:
            accepted += 1
            try:
                _native.score_native(bytes(data), rows)  # must not crash or hang
            except ValueError as error:  # a changed width: these rows no longer fit
                assert "width" in str(error)
        else:
            assert failed, "an empty refusal"
            refused += 1
print(accepted, refused)
"""


@native_only
def test_a_forest_with_a_crafted_divisor_predicts_alike_row_by_row_and_in_blocks(iris: Db) -> None:
    """A forest's class decided before its last tree (csrc/model_score.c) must be the one
    the mean of every tree gives. A form whose mean divides by the smallest double makes
    every class's mean infinite, a tie that goes to the first class: one row at a time
    (which may stop early) and sqml_predict_table (blocks, every tree) must agree."""
    model_id, blob = iris_forest(iris, 16)
    mean = struct.pack("<dddd", 0.0, 0.0, 0.0, 16.0)  # three starting values, the divisor
    assert blob.count(mean) == 1
    at = blob.index(mean) + 24
    store_form(iris, model_id, blob[:at] + struct.pack("<d", 5e-324) + blob[at + 8 :])
    asked = "FROM dataset_iris ORDER BY rowid"
    columns = ", ".join(f'"{part} (cm)"' for part in ("sepal length", "sepal width",
                                                        "petal length", "petal width"))  # fmt: skip
    one = [r[0] for r in iris.rows(f"SELECT sqml_predict('e', {columns}) {asked}")]  # noqa: S608
    table = [
        r[0]
        for r in iris.rows(
            "SELECT p.prediction FROM dataset_iris AS t JOIN sqml_predict_table('e',"
            " 'dataset_iris') AS p ON p.row_id = t.rowid ORDER BY t.rowid"
        )
    ]
    assert one == table
    # what the mean gives: sums in tree order over the tiny divisor (infinite unless 0),
    # then the first largest
    pipeline, schema = iris.stored_model(model_id)
    records = [list(r)[:4] for r in iris.rows(f"SELECT * {asked}")]  # noqa: S608
    matrix = pipeline[:-1].transform(schema.encode_records(records, batch=True))
    sums = np.zeros((len(records), 3))
    for tree in pipeline[-1].estimators_:
        sums += tree.predict_proba(matrix.astype(np.float32))
    with np.errstate(over="ignore"):
        means = sums / 5e-324
    assert one == [float(c) for c in pipeline[-1].classes_[np.argmax(means, axis=1)]]
    assert len(set(one)) > 1 and any(np.isinf(means).sum(axis=1) > 1)  # ties among infinities


@pytest.mark.parametrize("seed", [1, 2])
def test_random_damage_is_refused_or_harmless(db: Db, python, tmp_path, seed) -> None:
    """Random byte changes in real forms of every family, in a child process: each is
    refused with a reason, or (a changed number) loads and scores without crashing."""
    db.load("iris")
    db.load("diabetes")
    blobs: dict[str, np.ndarray] = {}
    runs = [
        ("classification", "random_forest", "dataset_iris", {"n_estimators": 3}),
        ("classification", "logistic_regression", "dataset_iris", {}),
        ("classification", "ada_boost", "dataset_iris", {"n_estimators": 3}),
        ("regression", "hist_gradient_boosting", "dataset_diabetes", {"max_iter": 3}),
        ("classification", "xgboost", "dataset_iris", {"n_estimators": 3}),
        ("classification", "lightgbm", "dataset_iris", {"n_estimators": 3}),
        ("clustering", "kmeans", "dataset_iris", {"n_clusters": 3, "n_init": 1}),
    ]
    for kind, algorithm, table, hyperparams in runs:
        target = None if kind == "clustering" else "target"
        result = db.train_with(
            algorithm, kind, algorithm, table, target, {"hyperparams": hyperparams}
        )
        blob = native_row(db, result["model_id"])[0]
        blobs[algorithm] = np.frombuffer(blob, dtype=np.uint8)
        blobs[algorithm + "_width"] = np.array(4 if table == "dataset_iris" else 10)
    path = tmp_path / "blobs.npz"
    np.savez(path, **blobs)
    result = python(FUZZ, str(path), str(seed), "600")
    assert result.returncode == 0, result.stderr
    accepted, refused = map(int, result.stdout.split())
    assert refused > accepted > 0  # most damage is caught; changed numbers still load


ANSWERS = json.loads((DATA / "sqlite-ml-0.3.0.json").read_text(encoding="utf-8"))


def predict_every_experiment(conn: sqlite3.Connection) -> None:
    for name, entry in ANSWERS["experiments"].items():
        conn.execute(
            f"SELECT sqml_predict(?, {entry['columns']}) FROM {entry['table']}",  # noqa: S608
            (name,),
        ).fetchall()


def deployed_models(conn: sqlite3.Connection) -> set[int]:
    return {row[0] for row in conn.execute("SELECT model_id FROM sqml_deployments WHERE active")}


@native_only
def test_a_0_3_0_database_compiles_on_first_load_and_stores_it(tmp_path) -> None:
    """Models 0.3.0 stored without a native form: compiled when first loaded, stored when
    the database can be written, and from then on served natively without compiling."""
    path = tmp_path / "old.db"
    shutil.copyfile(DATA / "sqlite-ml-0.3.0.db", path)
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)  # migrates the schema: the native columns exist, empty
    assert (
        conn.execute("SELECT count(*) FROM sqml_models WHERE serving IS NOT NULL").fetchone()[0]
        == 0
    )
    predict_every_experiment(conn)
    conn.commit()
    recorded = dict(
        conn.execute("SELECT id, serving FROM sqml_models WHERE serving IS NOT NULL").fetchall()
    )
    assert set(recorded) == deployed_models(conn)
    assert recorded[1] == recorded[9] == recorded[10] == "native"  # linear, HGB, k-means
    conn.close()
    # a new process serves the stored forms: no Python call at all for native models
    code = f"""
import sqlite3, sqlite_ml, json
from sqlite_ml import _native
conn = sqlite3.connect({str(path)!r})
sqlite_ml.register(conn)
row = json.dumps([5.1, 3.5, 1.4, 0.2])
print(conn.execute("SELECT sqml_predict('iris', ?)", (row,)).fetchone()[0], _native.native_counts())
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "0.0"
    assert result.stdout.split(" ", 1)[1].strip() == "(1, 0)"


@native_only
def test_a_read_only_0_3_0_database_serves_natively_from_memory(tmp_path) -> None:
    """Read-only: nothing written, the form compiled once and kept in memory."""
    path = tmp_path / "old.db"
    shutil.copyfile(DATA / "sqlite-ml-0.3.0.db", path)
    before = path.read_bytes()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sqlite_ml.register(conn, create_schema=False)
    from sqlite_ml import _native

    start = _native.native_counts()
    for _ in range(20):
        assert conn.execute("SELECT sqml_predict('iris', 5.1, 3.5, 1.4, 0.2)").fetchone()[0] == 0.0
    native, python_calls = (a - b for a, b in zip(_native.native_counts(), start, strict=True))
    assert native == 20
    assert python_calls == 1  # the form compiled once, then kept
    conn.close()
    assert path.read_bytes() == before


def test_a_100_tree_forest_is_no_larger_natively_than_its_skops_blob(db: Db) -> None:
    db.load("diabetes")
    for kind, table in (("regression", "dataset_diabetes"),):
        result = db.train_with(
            "forest", kind, "random_forest", table, "target", {"hyperparams": {"n_estimators": 100}}
        )
        native_size, skops_size = db.conn.execute(
            "SELECT length(native_model), length(data) FROM sqml_models WHERE id = ?",
            (result["model_id"],),
        ).fetchone()
        assert native_size <= skops_size, (native_size, skops_size)


SHA_CHECK = r"""
import hashlib, random, sys
from sqlite_ml import _native
rng = random.Random(5)
sizes = [*range(0, 300), 4095, 4096, 4097, 65_536 + 55, 1_000_003]
for size in sizes:
    data = rng.randbytes(size)
    assert _native.sha256_hex(data) == hashlib.sha256(data).hexdigest(), size
print("ok")
"""


@pytest.mark.parametrize("portable", [False, True], ids=["this CPU's", "portable"])
def test_the_native_sha256_is_sha256_on_every_path(portable):
    # The SHA extensions where the CPU has them, else (and when forced) the portable code:
    # every length around the block and padding boundaries, and larger inputs.
    env = {k: v for k, v in os.environ.items() if k != "SQLITE_ML_PORTABLE_SHA256"}
    if portable:
        env["SQLITE_ML_PORTABLE_SHA256"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", SHA_CHECK], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
