"""Vector search: sqlite-vec loaded into the connection through its own SQLite library
(register(conn, vectors=True), ``sqml --vectors``, the plugins), vec0 tables and
vec_distance_cosine over sqml_embed's vectors, and the KNN recipe of docs/pretrained.md."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import sqlite_ml
from sqlite_ml.faces.cli import cli

from .helpers import without_packages
from .test_datasette_plugin import datasette_get
from .test_sqlite_utils_plugin import sqlite_utils_cli

DOCS = [
    "the striker scored a late goal in the football match",
    "the team celebrated winning the tournament final",
    "stocks fell sharply as investors sold shares",
    "the central bank raised interest rates again",
    "heavy rain and strong wind are expected tonight",
    "a chicken stew simmered slowly in the kitchen",
]


def fill(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
        CREATE VIRTUAL TABLE doc_vectors USING vec0(embedding float[256] distance_metric=cosine);
        CREATE TRIGGER docs_vectors AFTER INSERT ON docs BEGIN
            INSERT INTO doc_vectors(rowid, embedding)
            VALUES (new.id, sqml_embed('default', new.body));
        END;
        """
    )
    conn.executemany("INSERT INTO docs(body) VALUES (?)", [(text,) for text in DOCS])


def nearest(conn: sqlite3.Connection, query: str, k: int = 2) -> list[str]:
    rows = conn.execute(
        "SELECT docs.body FROM doc_vectors JOIN docs ON docs.id = doc_vectors.rowid"
        " WHERE embedding MATCH sqml_embed('default', ?) AND k = ? ORDER BY distance",
        (query, k),
    ).fetchall()
    return [row[0] for row in rows]


def test_knn_over_embedded_text(connect) -> None:  # noqa: ANN001
    conn = connect(register=False)
    sqlite_ml.register(conn, vectors=True)
    sqlite_ml.register(conn, vectors=True)  # idempotent
    fill(conn)
    assert set(nearest(conn, "who won the football game")) == set(DOCS[:2])
    assert set(nearest(conn, "money markets and shares")) == set(DOCS[2:4])
    # vec_distance_cosine agrees with the table's own distance
    distance, direct = conn.execute(
        "SELECT distance, vec_distance_cosine(embedding, sqml_embed('default', 'rain')) FROM"
        " doc_vectors WHERE embedding MATCH sqml_embed('default', 'rain') AND k = 1"
    ).fetchone()
    assert abs(distance - direct) < 1e-5


def test_without_the_flag_there_is_no_vec0(connect, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("SQLITE_ML_VECTORS", raising=False)
    conn = connect()
    with pytest.raises(sqlite3.OperationalError, match="no such function: vec_version"):
        conn.execute("SELECT vec_version()").fetchone()
    monkeypatch.setenv("SQLITE_ML_VECTORS", "1")
    other = connect()
    assert other.execute("SELECT vec_version()").fetchone()[0].startswith("v")


def test_the_cli_flag_loads_sqlite_vec(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("SQLITE_ML_VECTORS", raising=False)
    path = tmp_path / "v.db"
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn, vectors=True)
    fill(conn)
    conn.commit()
    conn.close()
    runner = CliRunner()
    query = (
        "SELECT rowid FROM doc_vectors WHERE embedding MATCH sqml_embed('default', 'storm')"
        " AND k = 1"
    )
    done = runner.invoke(cli, ["--vectors", "query", str(path), query, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == [{"rowid": 5}]
    plain = runner.invoke(cli, ["query", str(path), query])
    assert plain.exit_code == 1 and "no such module: vec0" in plain.output


def test_the_plugins_load_it_when_asked(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "p.db"
    sqlite3.connect(path).execute("CREATE TABLE t(x)").connection.close()
    monkeypatch.setenv("SQLITE_ML_VECTORS", "1")
    done = sqlite_utils_cli("query", path, "SELECT vec_version() AS v")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)[0]["v"].startswith("v")
    monkeypatch.delenv("SQLITE_ML_VECTORS")
    status, text = datasette_get(
        "/p.json?sql=select+vec_version()+as+v&_shape=array", path, vectors="true"
    )
    assert status == 200 and json.loads(text)[0]["v"].startswith("v"), text


def test_missing_sqlite_vec_names_the_extra(python, tmp_path: Path) -> None:  # noqa: ANN001
    code = (
        without_packages("sqlite_vec")
        + """
import sqlite3, sqlite_ml
try:
    sqlite_ml.register(sqlite3.connect(sys.argv[1]), vectors=True)
except sqlite_ml.SqmlError as error:
    print(error)
"""
    )
    done = python(code, str(tmp_path / "x.db"))
    assert "pip install 'sqlite-ml[vectors]'" in done.stdout, done.stderr
