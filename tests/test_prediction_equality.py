"""Every algorithm of the catalogue predicts exactly what scikit-learn's own predict does.

Trained through SQL on a small table, then asked through every form a user has: a JSON
object (json_object), a JSON array (json_array), the positional form and a batch. Classes
must be identical; regression values equal to 1e-9 relative. New catalogue entries are
picked up automatically.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sqlite_ml.ml.catalogue import ALGORITHMS

# Column names that need quoting, in SQL and in JSON keys alike.
COLUMNS = ("a", "b c", 'wei"rd', "d", "e")
CASES = [
    (kind, algorithm, labels)
    for kind, algorithms in ALGORITHMS.items()
    for algorithm in algorithms
    for labels in (("binary", "three") if kind == "classification" else ("amount",))
]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def rows() -> list[list[object]]:
    """120 rows: floats of mixed scale, whole numbers, NULLs; three kinds of target."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(120, len(COLUMNS))) * [1.0, 10.0, 0.01, 1000.0, 1.0]
    score = (x / [1.0, 10.0, 0.01, 1000.0, 1.0]) @ [1.0, -1.5, 0.7, 0.3, -0.2]
    out = []
    for features, s in zip(x.tolist(), score.tolist(), strict=True):
        features[4] = round(features[4] * 3)  # an INTEGER column
        features = [None if rng.random() < 0.04 else value for value in features]
        binary = int(s + rng.normal(scale=0.5) > 0)
        three = 0 if s < -0.7 else (1 if s < 0.7 else 2)
        out.append([*features, binary, three, 3.0 * s + rng.normal(scale=0.3)])
    return out


@pytest.fixture
def table(db, rows):
    columns = ", ".join(quoted(name) for name in COLUMNS)
    db.conn.execute(f"CREATE TABLE points ({columns}, binary, three, amount)")
    db.conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    for target in ("binary", "three", "amount"):
        db.conn.execute(
            f"CREATE VIEW points_{target} AS SELECT {columns}, {target} FROM points"  # noqa: S608
        )
    db.conn.commit()
    return db


def column_list() -> str:
    return ", ".join(quoted(name) for name in COLUMNS)


def as_object() -> str:
    pairs = ", ".join(f"'{name.replace(chr(39), chr(39) * 2)}', {quoted(name)}" for name in COLUMNS)
    return f"json_object({pairs})"


@pytest.mark.parametrize(
    ("kind", "algorithm", "target"), CASES, ids=[f"{k}-{a}-{t}" for k, a, t in CASES]
)
def test_every_form_equals_scikit_learn(table, rows, kind, algorithm, target):
    db = table
    result = db.train("exp", kind, algorithm, f"points_{target}", target)
    features = [row[: len(COLUMNS)] for row in rows]
    expected = db.reference_batch(result["model_id"], features)
    # The train/test split copies rows; every row of the table is predicted here.
    forms = {
        "object": f"sqml_predict('exp', {as_object()})",
        "array": f"sqml_predict('exp', json_array({column_list()}))",
        "positional": f"sqml_predict('exp', {column_list()})",
    }
    got = {
        form: [row[0] for row in db.rows(f"SELECT {sql} FROM points ORDER BY rowid")]  # noqa: S608
        for form, sql in forms.items()
    }
    batch_sql = (
        f"SELECT sqml_predict_batch('exp', json_group_array({as_object()}))"  # noqa: S608
        " FROM (SELECT * FROM points ORDER BY rowid)"
    )
    got["batch"] = json.loads(db.value(batch_sql))
    got["python json"] = [db.predict("exp", dict(zip(COLUMNS, f, strict=True))) for f in features]
    for form, values in got.items():
        assert len(values) == len(expected), form
        for i, (value, reference) in enumerate(zip(values, expected, strict=True)):
            if kind == "classification":
                assert value == reference and isinstance(value, float), (form, i, features[i])
            else:
                assert value == pytest.approx(float(reference), rel=1e-9, abs=1e-12), (
                    form,
                    i,
                    features[i],
                )


def test_positional_form_checks_the_number_of_values(table):
    db = table
    db.train("exp", "regression", "ridge", "points_amount", "amount")
    with pytest.raises(Exception, match="got 3 feature values but the model expects 5") as error:
        db.value("SELECT sqml_predict('exp', 1, 2, 3)")
    assert "'a', 'b c', 'wei\"rd', 'd', 'e'" in str(error.value)
    # Values go through the same rules as JSON: NULL imputed, numeric text read, bad text refused.
    assert db.value("SELECT sqml_predict('exp', 1, NULL, '2.5', 3, 4)") == pytest.approx(
        db.predict("exp", [1, None, 2.5, 3, 4]), rel=1e-12
    )
    with pytest.raises(Exception, match="feature 'd' expects a number or null, got \"abc\""):
        db.value("SELECT sqml_predict('exp', 1, 2, 3, 'abc', 4)")
    # Two arguments keep their meaning: the second is JSON text.
    with pytest.raises(Exception, match="features must be JSON text"):
        db.value("SELECT sqml_predict('exp', 1.5)")


def test_positional_form_with_a_text_column(db):
    """A model with a one-hot encoded column takes one value per column, as JSON does."""
    db.conn.execute("CREATE TABLE shop (plan TEXT, visits REAL, spent REAL, churned)")
    plans = ["basic", "pro", "team"]
    rows = [
        (plans[i % 3], float(i % 11), float((i * 7) % 13), int(i % 3 == 0 or i % 11 > 8))
        for i in range(90)
    ]
    db.conn.executemany("INSERT INTO shop VALUES (?, ?, ?, ?)", rows)
    db.conn.commit()
    result = db.train("churn", "classification", "random_forest", "shop", "churned")
    records = [list(row[:3]) for row in rows] + [["unseen", 3.0, None], [None, None, 1.0]]
    expected = db.reference_batch(result["model_id"], records)
    for record, reference in zip(records, expected, strict=True):
        assert db.value("SELECT sqml_predict('churn', ?, ?, ?)", record) == reference
        assert db.predict("churn", record) == reference
