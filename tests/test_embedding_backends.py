"""The folder loaders on small models the tests build (tests/tiny_models.py), in the
layouts real models use: Model2Vec-style static folders, ONNX exports run with
onnxruntime and tokenizers, and sentence-transformers folders run with the library. Each
gives, through SQL, the numbers computed independently here."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from .helpers import Db, without_packages
from .tiny_models import OnnxModel, StaticModel, sentence_transformers_model

TEXTS = ["the team won the football match", "rain tonight", "an unseen zzzq word", ""]


def embedded(db: Db, model: str, texts: list[str]) -> np.ndarray:
    return np.stack(
        [
            np.frombuffer(db.value("SELECT sqml_embed(?, ?)", (model, text)), dtype="<f4")
            for text in texts
        ]
    )


def test_a_static_folder(db: Db, tmp_path: Path) -> None:
    model = StaticModel(tmp_path / "static", dimension=12)
    got = embedded(db, str(model.folder), TEXTS)
    assert got.shape == (4, 12)
    assert np.abs(got - model.expected(TEXTS)).max() < 1e-6
    assert db.rows("SELECT backend, dimension FROM sqml_pretrained") == [("static", 12)]


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_an_onnx_export(db: Db, tmp_path: Path, pooling: str) -> None:
    model = OnnxModel(tmp_path / "onnx", pooling=pooling)
    # a folder with an ONNX export (and modules.json) runs on onnxruntime, not PyTorch
    got = embedded(db, str(model.folder), TEXTS)
    assert np.abs(got - model.expected(TEXTS)).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    backend, files = db.rows("SELECT backend, files FROM sqml_pretrained")[0]
    assert backend == "onnx"
    assert set(json.loads(files)) == {"onnx/model.onnx", "tokenizer.json", "1_Pooling/config.json"}
    batch = json.loads(
        db.value("SELECT sqml_embed_batch(?, ?)", (f"onnx:{model.folder}", json.dumps(TEXTS)))
    )
    assert np.abs(np.array(batch) - got).max() < 1e-6


def test_an_onnx_folder_without_a_tokenizer_says_so(db: Db, tmp_path: Path) -> None:
    model = OnnxModel(tmp_path / "onnx")
    (model.folder / "tokenizer.json").unlink()
    with pytest.raises(sqlite3.OperationalError, match="has no tokenizer.json"):
        db.value("SELECT sqml_embed(?, 'x')", (str(model.folder),))


def test_a_sentence_transformers_folder(db: Db, tmp_path: Path) -> None:
    library = sentence_transformers_model(tmp_path / "st")
    name = f"sentence-transformers:{tmp_path / 'st'}"
    got = embedded(db, name, TEXTS[:3])
    expected = library.encode(TEXTS[:3], normalize_embeddings=True)
    assert np.abs(got - expected).max() < 1e-5
    # without an ONNX export, the folder alone is read as sentence-transformers too
    assert np.abs(embedded(db, str(tmp_path / "st"), TEXTS[:1]) - expected[:1]).max() < 1e-5
    assert db.value("SELECT dimension FROM sqml_pretrained WHERE name = ?", (name,)) == 16


def test_training_on_an_onnx_model(db: Db, tmp_path: Path) -> None:
    model = OnnxModel(tmp_path / "onnx", dimension=16)
    db.conn.execute("CREATE TABLE notes(note TEXT, label TEXT)")
    rows = [("the team won the football match", "sport"), ("stocks fell on the market", "money")]
    db.conn.executemany("INSERT INTO notes VALUES (?, ?)", rows * 10)
    options = json.dumps({"preprocess": {"note": {"embed": str(model.folder)}}})
    result = json.loads(
        db.value(
            "SELECT sqml_train('notes', 'classification', 'logistic_regression', 'notes',"
            " 'label', 0.25, 'stratified', ?)",
            (options,),
        )
    )
    assert result["score"] == 1.0
    predicted = db.value(
        "SELECT sqml_predict('notes', json_object('note', 'the team won the football match'))"
    )
    assert predicted == "sport"


def test_a_missing_runtime_names_its_extra(python, tmp_path: Path) -> None:  # noqa: ANN001
    model = OnnxModel(tmp_path / "onnx")
    code = (
        without_packages("onnxruntime")
        + """
import sqlite3, sqlite_ml
conn = sqlite3.connect(':memory:'); sqlite_ml.register(conn)
try:
    conn.execute("SELECT sqml_embed(?, 'x')", (sys.argv[1],)).fetchone()
except sqlite3.Error as error:
    print(error)
"""
    )
    done = python(code, str(model.folder))
    assert "needs the Python package 'onnxruntime'" in done.stdout, done.stderr
    assert "pip install 'sqlite-ml[onnx-embeddings]'" in done.stdout
