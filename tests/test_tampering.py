"""A tampered or foreign model blob is refused with an SQL error saying to retrain."""

from __future__ import annotations

import collections
import json
import os
import sqlite3

import pytest
import skops.io
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from sqlite_ml.ops import prediction

from .helpers import SETOSA, trap_pickle

PREDICT_EVERYWHERE = """
import json, sqlite3, sys
import sqlite_ml
conn = sqlite3.connect(sys.argv[1])
sqlite_ml.register(conn)
out = {}
for name in json.loads(sys.argv[2]):
    try:
        row = conn.execute("SELECT sqml_predict(?, ?)", (name, sys.argv[3])).fetchone()
        out[name] = ["ok", row[0]]
    except sqlite3.OperationalError as error:
        out[name] = ["error", str(error)]
print(json.dumps(out))
"""


def flip(blob: bytes, start: int, length: int = 32) -> bytes:
    data = bytearray(blob)
    for i in range(start, min(start + length, len(data))):
        data[i] ^= 0xFF
    return bytes(data)


def tampered_blobs(original: bytes, marker) -> dict[str, tuple[bytes, str]]:
    """name -> (blob to store, text the error must contain)."""
    middle = len(original) // 2
    return {
        "flip_header": (flip(original, 0), "retrain"),
        "flip_middle": (flip(original, middle, 64), "retrain"),
        "flip_tail": (flip(original, len(original) - 40, 40), "retrain"),
        "truncated": (original[: len(original) // 3], "not a skops model archive"),
        "empty": (b"", "not a skops model archive"),
        "counter": (
            skops.io.dumps(collections.Counter(a=1)),
            "allow-list (collections.Counter)",
        ),
        "function_transformer": (
            skops.io.dumps(Pipeline([("f", FunctionTransformer(func=os.system))])),
            "system",
        ),
        "pickle": (trap_pickle(marker), "pickle"),
    }


@pytest.fixture
def tampered(iris, tmp_path):
    """One experiment per kind of tampering, each with its deployed model's data replaced."""
    db = iris
    marker = tmp_path / "code-ran"
    result = db.train("template", "classification", "logistic_regression", "dataset_iris", "target")
    original = bytes(db.value("SELECT data FROM sqml_models WHERE id = ?", (result["model_id"],)))
    blobs = tampered_blobs(original, marker)
    for name, (blob, _expected) in blobs.items():
        trained = db.train(name, "classification", "dummy", "dataset_iris", "target")
        db.conn.execute("UPDATE sqml_models SET data = ? WHERE id = ?", (blob, trained["model_id"]))
    db.conn.commit()
    prediction.MODELS._models.clear()
    db.marker = marker
    db.expected = {name: expected for name, (_blob, expected) in blobs.items()}
    return db


def test_tampered_models_are_refused_in_a_new_process(tampered, python):
    names = list(tampered.expected)
    done = python(PREDICT_EVERYWHERE, str(tampered.path), json.dumps(names), json.dumps(SETOSA))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for name in names:
        status, message = results[name]
        assert status == "error", (name, message)
        assert "retrain" in message, (name, message)
        assert tampered.expected[name] in message, (name, message)
    assert not tampered.marker.exists()
    # the untouched model of the same database still works in that process
    done = python(PREDICT_EVERYWHERE, str(tampered.path), '["template"]', json.dumps(SETOSA))
    assert json.loads(done.stdout) == {"template": ["ok", 0.0]}


@pytest.mark.parametrize(
    "name",
    [
        "flip_header",
        "flip_middle",
        "flip_tail",
        "truncated",
        "empty",
        "counter",
        "function_transformer",
        "pickle",
    ],
)
def test_tampered_models_are_refused_in_process(tampered, name):
    with pytest.raises(sqlite3.OperationalError, match="retrain") as error:
        tampered.predict(name, SETOSA)
    assert tampered.expected[name] in str(error.value)
    with pytest.raises(sqlite3.OperationalError, match="retrain"):
        tampered.predict_batch(name, [SETOSA])
    assert not tampered.marker.exists()
    assert tampered.predict("template", SETOSA) == 0.0


def test_refusal_names_the_model(tampered):
    model_id = tampered.active_model_id("pickle")
    with pytest.raises(sqlite3.OperationalError, match=f"model {model_id} is stored as a Python"):
        tampered.predict("pickle", SETOSA)


def test_blob_stored_as_text_is_refused(iris):
    result = iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    iris.conn.execute(
        "UPDATE sqml_models SET data = 'not a model' WHERE id = ?", (result["model_id"],)
    )
    iris.conn.commit()
    prediction.MODELS._models.clear()
    with pytest.raises(sqlite3.OperationalError, match="not a skops model archive.*retrain"):
        iris.predict("e", SETOSA)
