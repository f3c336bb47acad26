"""sqml_embed, sqml_embed_batch and sqml_classify_text through SQL with the built-in model
(WordLlama's, shipped in its wheel), where models come from, and what sqml_pretrained
records. Everything offline: the folder and cache tests use models built here."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import sqlite_ml
from sqlite_ml.ml.pretrained import sources

from .helpers import Db, expected_mode, without_packages
from .tiny_models import StaticModel

BUILTIN = "wordllama-l2-supercat"


def vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


def embed(db: Db, text: object, model: str = "default") -> bytes | None:
    return db.value("SELECT sqml_embed(?, ?)", (model, text))


def test_a_text_becomes_a_normalised_float32_blob_as_wordllama_computes_it(db: Db) -> None:
    import wordllama
    from wordllama import WordLlama

    texts = ["The cat sat on the mat.", "Stocks fell sharply", "Ünïcode ✓ 漢字", "x " * 200]
    blobs = [embed(db, text) for text in texts]
    assert all(isinstance(blob, bytes) and len(blob) == 256 * 4 for blob in blobs)
    got = np.stack([vector(blob) for blob in blobs])  # type: ignore[arg-type]
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    library = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    assert np.abs(got - library.embed(texts, norm=True)).max() < 1e-6
    # by its own name, the same vector
    assert embed(db, texts[0], BUILTIN) == blobs[0]


def test_null_in_null_out_and_text_with_nothing_to_embed_is_all_zeros(db: Db) -> None:
    assert embed(db, None) is None
    assert embed(db, "") == bytes(256 * 4)
    assert embed(db, 42) == embed(db, "42")  # numbers are embedded as their text


def test_bad_arguments_are_clear_errors(db: Db) -> None:
    with pytest.raises(sqlite3.OperationalError, match="sqml_embed embeds text, got a BLOB"):
        embed(db, b"\x00\x01")
    with pytest.raises(sqlite3.OperationalError, match="did you mean 'default'"):
        embed(db, "hello", "defualt")
    with pytest.raises(sqlite3.OperationalError, match="must be named by text"):
        embed(db, "hello", None)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="takes 2 arguments"):
        db.value("SELECT sqml_embed('default')")


def test_each_use_is_recorded_with_the_sha256_of_the_model_files(db: Db) -> None:
    embed(db, "hello")
    embed(db, "hello", BUILTIN)  # another name for the same model: one more use
    rows = db.rows(
        "SELECT name, backend, version, digest, files, dimension, source, uses FROM sqml_pretrained"
    )
    assert len(rows) == 1
    name, backend, version, digest, files, dimension, source, uses = rows[0]
    assert (name, backend, dimension, uses) == (BUILTIN, "wordllama", 256, 2)
    from importlib.metadata import version as installed

    assert version == installed("wordllama")
    files = json.loads(files)
    assert set(files) == {
        "weights/l2_supercat_256.safetensors",
        "tokenizers/l2_supercat_tokenizer_config.json",
    }
    for relative, sha in files.items():
        assert hashlib.sha256((Path(source) / relative).read_bytes()).hexdigest() == sha
    overall = hashlib.sha256(
        "".join(f"{path}\0{files[path]}\n" for path in sorted(files)).encode()
    ).hexdigest()
    assert digest == overall
    # the weights are never stored in the database
    assert db.value("SELECT max(length(files)) FROM sqml_pretrained") < 1000


def test_a_read_only_database_embeds_without_recording(db: Db, connect) -> None:  # noqa: ANN001
    db.conn.commit()
    uri = f"file:{db.path}?mode=ro"
    reader = connect(Path(uri), register=False, uri=True)
    sqlite_ml.register(reader, create_schema=False)
    blob = reader.execute("SELECT sqml_embed('default', 'hello')").fetchone()[0]
    assert len(blob) == 1024
    assert db.value("SELECT count(*) FROM sqml_pretrained") == 0


def test_a_trigger_keeps_vectors_in_step_with_their_text(db: Db) -> None:
    db.conn.executescript(
        """
        CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
        CREATE TABLE doc_vectors(id INTEGER PRIMARY KEY, embedding BLOB);
        CREATE TRIGGER docs_embed AFTER INSERT ON docs BEGIN
            INSERT INTO doc_vectors VALUES (new.id, sqml_embed('default', new.body));
        END;
        INSERT INTO docs(body) VALUES ('the team won the match'), ('rain tomorrow');
        """
    )
    stored = db.rows("SELECT embedding FROM doc_vectors ORDER BY id")
    assert [row[0] for row in stored] == [
        embed(db, "the team won the match"),
        embed(db, "rain tomorrow"),
    ]


def test_the_batch_form_gives_the_same_vectors_as_json(db: Db) -> None:
    texts = ["the team won", None, "rain tomorrow", ""]
    out = json.loads(db.value("SELECT sqml_embed_batch('default', ?)", (json.dumps(texts),)))
    assert out[1] is None and len(out) == 4
    for text, item in zip(texts, out, strict=True):
        if text is not None:
            assert np.array(item, dtype="<f4").tobytes() == embed(db, text)
    assert db.value("SELECT sqml_embed_batch('default', '[]')") == "[]"
    assert db.value("SELECT sqml_embed_batch('default', NULL)") is None
    # a column in one call, unpacked with json_each
    db.conn.execute("CREATE TABLE docs(body TEXT)")
    db.conn.executemany("INSERT INTO docs VALUES (?)", [("alpha",), ("beta",)])
    rows = db.rows(
        "SELECT key, value FROM json_each("
        "(SELECT sqml_embed_batch('default', json_group_array(body)) FROM docs))"
    )
    assert [np.array(json.loads(v), dtype="<f4").tobytes() for _, v in rows] == [
        embed(db, "alpha"),
        embed(db, "beta"),
    ]
    for bad, message in [
        ("[1, [2]]", "item 1 is \\[2\\], not a text or null"),
        ("{}", "takes a JSON array of texts"),
        ("[oops", "not valid JSON"),
    ]:
        with pytest.raises(sqlite3.OperationalError, match=message):
            db.value("SELECT sqml_embed_batch('default', ?)", (bad,))


def test_zero_shot_classification_by_similarity_to_label_descriptions(db: Db) -> None:
    labels = json.dumps(["sports", "finance", "weather"])
    cases = {
        "the striker scored a goal in the football match": "sports",
        "shares and stocks fell on the market": "finance",
        "heavy rain and a storm are expected": "weather",
    }
    for text, label in cases.items():
        assert db.value("SELECT sqml_classify_text('default', ?, ?)", (text, labels)) == label
    described = json.dumps(
        {"S": "sports, a football match", "F": "money, stocks and banks", "W": "rain and wind"}
    )
    assert db.value("SELECT sqml_classify_text('default', 'the bank', ?)", (described,)) == "F"
    assert db.value("SELECT sqml_classify_text('default', NULL, ?)", (labels,)) is None
    for bad, message in [
        ('["only"]', "at least two labels"),
        ("3", "JSON array of labels or a JSON object"),
        ('["a", "a"]', "a label repeats"),
        ('{"a": "", "b": "x"}', "non-empty texts"),
    ]:
        with pytest.raises(sqlite3.OperationalError, match=message):
            db.value("SELECT sqml_classify_text('default', 'x', ?)", (bad,))


def test_a_model_folder_and_the_local_hugging_face_cache(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = StaticModel(tmp_path / "folder")
    text = "the team won the match"
    expected = model.expected([text])[0]
    assert np.abs(vector(embed(db, text, str(model.folder))) - expected).max() < 1e-6  # type: ignore[arg-type]
    assert np.abs(vector(embed(db, text, f"static:{model.folder}")) - expected).max() < 1e-6  # type: ignore[arg-type]

    # the Hugging Face cache layout: models--owner--name/{refs/main, snapshots/REVISION}
    cache = tmp_path / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--tiny-static"
    cached = StaticModel(repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    blob = embed(db, text, "someone/tiny-static")
    assert np.abs(vector(blob) - cached.expected([text])[0]).max() < 1e-6  # type: ignore[arg-type]
    assert (
        db.value("SELECT version FROM sqml_pretrained WHERE name = 'someone/tiny-static'")
        == revision
    )


def test_models_are_downloaded_only_when_explicitly_allowed(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("SQLITE_ML_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    asked: list[str] = []

    def download(repo_id: str) -> None:  # stands for huggingface_hub: no network in tests
        asked.append(repo_id)
        folder = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
        StaticModel(folder / "snapshots" / "abcdef1")
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text("abcdef1")

    monkeypatch.setattr(sources, "_download", download)
    with pytest.raises(sqlite3.OperationalError, match="SQLITE_ML_ALLOW_DOWNLOADS=1") as error:
        embed(db, "x", "someone/elsewhere")
    assert "not in the local Hugging Face cache" in str(error.value) and asked == []
    monkeypatch.setenv("SQLITE_ML_ALLOW_DOWNLOADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sqlite3.OperationalError, match="HF_HUB_OFFLINE is set"):
        embed(db, "x", "someone/elsewhere")
    assert asked == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert len(embed(db, "x", "someone/elsewhere")) == 8 * 4  # type: ignore[arg-type]
    assert asked == ["someone/elsewhere"]


def test_a_folder_without_a_model_names_what_it_expects(db: Db, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(sqlite3.OperationalError, match="holds no model this version can run"):
        embed(db, "x", str(tmp_path / "empty"))
    with pytest.raises(sqlite3.OperationalError, match="has no model.safetensors"):
        embed(db, "x", f"static:{tmp_path / 'empty'}")


def test_a_missing_backend_names_its_extra(python, tmp_path: Path) -> None:  # noqa: ANN001
    code = (
        without_packages("wordllama")
        + """
import sqlite3, sqlite_ml
conn = sqlite3.connect(sys.argv[1]); sqlite_ml.register(conn)
try:
    conn.execute("SELECT sqml_embed('default', 'x')").fetchone()
except sqlite3.Error as error:
    print(error)
"""
    )
    done = python(code, str(tmp_path / "x.db"))
    assert "needs the Python package 'wordllama'" in done.stdout, done.stderr
    assert "pip install 'sqlite-ml[embeddings]'" in done.stdout


@pytest.mark.skipif(expected_mode() != "native", reason="table-valued: the native binding")
def test_the_table_valued_form_embeds_a_column_as_sqml_embed_does(db: Db) -> None:
    db.conn.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)")
    texts = ["the team won", None, "rain tomorrow", "", "Ünïcode ✓"]
    db.conn.executemany("INSERT INTO docs(body) VALUES (?)", [(text,) for text in texts])
    rows = db.rows(
        "SELECT row_id, embedding, text FROM sqml_embed_table('default', 'SELECT id, body "
        "FROM docs') ORDER BY row_id"
    )
    assert [(key, text) for key, _, text in rows] == list(enumerate(texts, 1))
    # byte for byte what sqml_embed gives, row by row
    assert [blob for _, blob, _ in rows] == [embed(db, text) for text in texts]
    # into a table, joined by key, without a Python call per row
    db.conn.execute(
        "CREATE TABLE vectors AS SELECT row_id AS id, embedding FROM "
        "sqml_embed_table('default', 'SELECT id, body FROM docs WHERE body IS NOT NULL')"
    )
    assert db.value("SELECT count(*) FROM vectors") == 4
    for source, message in [
        ("docs", "must be a SELECT of two columns"),
        ("SELECT body FROM docs", "it has 1 column"),
        ("SELECT body, id FROM docs", "the first column must be an integer key"),
        ("SELECT nope FROM docs", "not a single SELECT that runs"),
    ]:
        with pytest.raises(sqlite3.OperationalError, match=message):
            db.rows("SELECT * FROM sqml_embed_table('default', ?)", (source,))
    with pytest.raises(sqlite3.OperationalError, match="needs a model and a source"):
        db.rows("SELECT * FROM sqml_embed_table('default')")
