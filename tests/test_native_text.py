"""Numbers and text as the native scorer reads and writes them, against Python's own: a
JSON number's float (``float()``), a float's text (``repr``, as json.dumps writes it),
labels as JSON strings (``json.dumps``, ensure_ascii), so a natively served model answers
with the same text the Python side gives."""

from __future__ import annotations

import json
import random
import sqlite3
import struct

import pytest

from .helpers import Db, expected_mode, native_built

pytestmark = pytest.mark.skipif(not native_built(), reason="the native extension is not built")


def doubles(count: int) -> list[float]:
    rng = random.Random(11)
    values = [0.0, -0.0, 1.0, 0.1, 1 / 3, 1e16, 1e15, 1e-5, 1e-4, 5e-324, 1.7976931348623157e308]
    values += [2.0**-30, 2.0**60, 9.999999999999999e22, 1e23, 2.2250738585072014e-308]
    for _ in range(count):
        values.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
        values.append(rng.uniform(-1e6, 1e6))
        values.append(2.0 ** rng.randint(-1074, 1023))  # powers of two: uneven rounding gaps
    return [v for v in values if v == v and abs(v) != float("inf")]


def test_floats_are_written_as_repr_writes_them() -> None:
    from sqlite_ml import _native

    wrong = [x for x in doubles(20000) if _native.repr_double(x) != repr(x)]
    assert wrong == []


def test_json_numbers_are_read_as_float_reads_them() -> None:
    from sqlite_ml import _native

    conn = sqlite3.connect(":memory:")
    wrong = []
    for x in doubles(5000):
        sqlite_text = conn.execute("SELECT json_array(?)", (x,)).fetchone()[0][1:-1]
        for text in (repr(x), sqlite_text, f"{x:.3e}", f"{x:.25g}"):
            if _native.json_number(text) != float(text):
                wrong.append(text)
    assert wrong == []


@pytest.mark.skipif(expected_mode() != "native", reason="this run does not use the native binding")
def test_text_labels_and_probabilities_read_as_json_dumps_writes_them(db: Db) -> None:
    labels = ["plain", "é", "日本", 'quo"te', "back\\slash", "tab\there", "😀", "ctrl\x01"]
    db.conn.execute("CREATE TABLE words (x REAL, label TEXT)")
    db.conn.executemany(
        "INSERT INTO words VALUES (?, ?)",
        [(float(i % 8) + (i % 3) / 10, labels[i % 8]) for i in range(160)],
    )
    db.conn.commit()
    db.train_with("w", "classification", "decision_tree", "words", "label", test_size=0.1)
    rows = [[float(i)] for i in range(8)]
    batch = db.value("SELECT sqml_predict_batch('w', ?)", (json.dumps(rows),))
    predictions = [db.predict("w", row) for row in rows]
    assert batch == json.dumps(predictions)
    proba = db.value("SELECT sqml_predict_proba('w', '[3.0]')")
    parsed = json.loads(proba)
    assert proba == "{" + ", ".join(f"{json.dumps(k)}: {v!r}" for k, v in parsed.items()) + "}"
