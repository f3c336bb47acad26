"""Real tables without preprocessing: NULLs, TEXT columns, CSV-style numbers, text labels."""

from __future__ import annotations

import json
import sqlite3

import pytest

CITIES = ("Paris", "Lyon", "Nice")


@pytest.fixture
def customers(db):
    """60 rows: age (INTEGER, some NULL), income (numbers as TEXT, '' = missing),
    city (TEXT), bought ('yes'/'no', some NULL). bought is 'yes' exactly when age >= 40."""
    db.conn.execute("CREATE TABLE customers (age INTEGER, income TEXT, city TEXT, bought TEXT)")
    rows = []
    for i in range(60):
        age = 20 + i
        rows.append(
            (
                None if i % 7 == 3 else age,
                "" if i % 5 == 2 else f"{1000 + 37 * i}.5",
                CITIES[i % 3],
                None if i % 11 == 4 else ("yes" if age >= 40 else "no"),
            )
        )
    db.conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", rows)
    db.conn.commit()
    db.labelled = sum(1 for row in rows if row[3] is not None)
    return db


def test_messy_table_trains_without_preprocessing(customers):
    db = customers
    before = db.dump("customers")
    result = db.train("buyers", "classification", "decision_tree", "customers", "bought")
    assert result["train_rows"] + result["test_rows"] == db.labelled < 60
    run = db.rows(
        "SELECT data_rows, train_rows, test_rows, feature_names, feature_types"
        " FROM sqml_runs WHERE id = ?",
        (result["run_id"],),
    )[0]
    assert run[0] == db.labelled
    assert run[1] + run[2] == db.labelled
    assert json.loads(run[3]) == ["age", "income", "city"]
    assert json.loads(run[4]) == {"age": "numeric", "income": "numeric", "city": "categorical"}
    assert db.dump("customers") == before


def test_text_labels_round_trip_as_text(customers):
    db = customers
    db.train("buyers", "classification", "logistic_regression", "customers", "bought")
    old = db.predict("buyers", {"age": 75, "income": "3000", "city": "Paris"})
    young = db.predict("buyers", [21, 1500.5, "Lyon"])
    assert old == "yes"
    assert young == "no"
    assert db.value(
        "SELECT typeof(sqml_predict('buyers', json_object('age', 70, 'income', 10,"
        " 'city', 'Nice')))"
    ) == ("text")


def test_unseen_category_and_nulls_are_accepted_at_prediction(customers):
    db = customers
    # A fixed seed: whether a NULL income (imputed with the mean, the income of a 50-year-old)
    # tips a young customer to "yes" depends on the split.
    db.train_with(
        "buyers", "classification", "logistic_regression", "customers", "bought",
        {"random_state": 7},
    )  # fmt: skip
    assert db.predict("buyers", {"age": 75, "income": 2000, "city": "Atlantis"}) == "yes"
    assert db.predict("buyers", {"age": 22, "income": "1050", "city": None}) == "no"
    assert db.predict("buyers", {"age": None, "income": "", "city": "Paris"}) in ("yes", "no")
    assert db.predict("buyers", [None, None, None]) in ("yes", "no")
    assert db.predict("buyers", {"age": "81", "income": " 2000.5 ", "city": 7}) == "yes"


def test_unicode_class_labels_come_back_exactly(db):
    db.conn.execute("CREATE TABLE penguins (bill REAL, flipper REAL, species TEXT)")
    species = {"Adélie": (38.0, 190.0), "Gentoo": (47.0, 217.0), "Chinstrap": (49.0, 196.0)}
    rows = [
        (bill + (i % 5) * 0.3, flipper + (i % 4), name)
        for name, (bill, flipper) in species.items()
        for i in range(15)
    ]
    db.conn.executemany("INSERT INTO penguins VALUES (?, ?, ?)", rows)
    db.conn.commit()
    db.train("penguins", "classification", "knn", "penguins", "species")
    for name, (bill, flipper) in species.items():
        assert db.predict("penguins", {"bill": bill + 0.5, "flipper": flipper + 1}) == name
    assert db.predict_batch("penguins", [[38.5, 191.0], [47.5, 218.0]]) == ["Adélie", "Gentoo"]


def test_numeric_labels_come_back_as_real(db):
    db.conn.execute("CREATE TABLE t (x REAL, flag INTEGER)")
    db.conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, int(i >= 10)) for i in range(20)])
    db.conn.commit()
    db.train("flags", "classification", "logistic_regression", "t", "flag")
    assert db.value("SELECT sqml_predict('flags', '[19]')") == 1.0
    assert db.value("SELECT typeof(sqml_predict('flags', '[19]'))") == "real"
    assert db.value("SELECT typeof(sqml_predict('flags', '[0]'))") == "real"
    assert db.predict_batch("flags", [[0], [19]]) == [0.0, 1.0]


def test_numbers_stored_as_text_work_for_regression(db):
    """Like a CSV import: every value TEXT, '' for missing, in features and target."""
    db.conn.execute("CREATE TABLE csv (x TEXT, noise TEXT, y TEXT)")
    rows = [
        (str(i), "" if i % 4 == 0 else str(i % 3), "" if i % 9 == 5 else str(3 * i + 2))
        for i in range(40)
    ]
    db.conn.executemany("INSERT INTO csv VALUES (?, ?, ?)", rows)
    db.conn.commit()
    result = db.train("csv", "regression", "linear_regression", "csv", "y")
    assert result["train_rows"] + result["test_rows"] == sum(1 for r in rows if r[2] != "")
    assert result["score"] > 0.99
    types = db.value("SELECT feature_types FROM sqml_runs WHERE id = ?", (result["run_id"],))
    assert json.loads(types) == {"x": "numeric", "noise": "numeric"}
    assert db.predict("csv", {"x": "10", "noise": ""}) == pytest.approx(32, abs=0.5)
    assert db.predict("csv", [10, None]) == pytest.approx(32, abs=0.5)


def test_numeric_column_with_nulls_is_imputed(db):
    db.conn.execute("CREATE TABLE t (a REAL, b REAL, y REAL)")
    rows = [(None if i % 3 == 0 else float(i), float(i % 2), 2.0 * i) for i in range(30)]
    db.conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    db.conn.commit()
    result = db.train("nulls", "regression", "ridge", "t", "y")
    assert result["train_rows"] + result["test_rows"] == 30
    assert isinstance(db.predict("nulls", [None, None]), float)


def test_json_keys_match_columns_ignoring_ascii_case(customers):
    db = customers
    db.train("buyers", "classification", "logistic_regression", "customers", "bought")
    assert db.predict("buyers", {"AGE": 75, "Income": "3000", "city": "Paris"}) == "yes"
    with pytest.raises(sqlite3.OperationalError, match="lack 'age'"):
        db.predict("buyers", {"AGE": 75, "Age": 70, "income": 1, "city": "Paris"})


def test_infinite_values_are_refused(db):
    db.conn.execute("CREATE TABLE t (x REAL, y REAL)")
    # (200 rows: the split draws each row's side, and 20 rows once left a single test row,
    # whose score is not a number, which training refuses)
    rows = [(float(i), 2.0 * i) for i in range(200)] + [(float("inf"), 1.0)]
    db.conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
    db.conn.commit()
    with pytest.raises(
        sqlite3.OperationalError, match=r"training run 1 failed: column 'x' holds an infinite"
    ):
        db.train("inf", "regression", "linear_regression", "t", "y")
    assert db.value("SELECT status FROM sqml_runs WHERE id = 1") == "failed"
    db.conn.execute("DELETE FROM t WHERE x > 1e308")
    db.conn.commit()
    db.train("inf", "regression", "linear_regression", "t", "y")
    for bad in ("inf", "-Infinity", 1e999):
        with pytest.raises(sqlite3.OperationalError, match="feature 'x' expects a number or null"):
            db.predict("inf", {"x": bad})
    # 'NaN' text is how some tools write a missing number: imputed, as in training.
    assert db.predict("inf", {"x": "NaN"}) == db.predict("inf", {"x": None})


def test_numeric_and_text_reads_agree(db):
    """All-numeric tables are read by numpy, others through Python values: same rules."""
    db.conn.execute("CREATE TABLE fast (a REAL, b REAL, label)")
    db.conn.execute("CREATE TABLE slow (a REAL, b TEXT, label)")
    rows = [(float(i % 7), float(i % 5), i % 2) for i in range(60)]
    rows[3] = (None, 1.0, 1)
    rows[4] = (2.0, 3.0, None)  # no target: left out
    db.conn.executemany("INSERT INTO fast VALUES (?, ?, ?)", rows)
    # The same numbers, but b stored as text (as a CSV import leaves it), with 'NaN' for one.
    slow_rows = [(a, "NaN" if i == 5 else str(b), label) for i, (a, b, label) in enumerate(rows)]
    db.conn.executemany("INSERT INTO slow VALUES (?, ?, ?)", slow_rows)
    db.conn.execute("UPDATE fast SET b = NULL WHERE rowid = 6")
    db.conn.commit()
    # One experiment, so both runs use the same seed and split.
    fast = db.train("e", "classification", "logistic_regression", "fast", "label")
    slow = db.train("e", "classification", "logistic_regression", "slow", "label")
    assert fast["train_rows"] + fast["test_rows"] == slow["train_rows"] + slow["test_rows"] == 59
    assert fast["metrics"] == slow["metrics"]
    digests = db.rows("SELECT data_digest, feature_types FROM sqml_runs ORDER BY id")
    assert digests[0] == digests[1]  # same encoded data, same numeric schema
    fast_model, slow_model = db.reference(fast["model_id"]), db.reference(slow["model_id"])
    for row in ([1.0, 2.0], [None, "4"], ["NaN", 1.0]):
        assert fast_model(row) == slow_model(row)


def test_numeric_text_labels_stay_text(db):
    """Class labels '0'/'1' stored as TEXT come back as TEXT, as they were stored."""
    db.conn.execute("CREATE TABLE t (x REAL, label TEXT)")
    db.conn.executemany(
        "INSERT INTO t VALUES (?, ?)", [(float(i), "1" if i > 10 else "0") for i in range(24)]
    )
    db.conn.commit()
    db.train("t", "classification", "logistic_regression", "t", "label")
    assert db.predict("t", [20.0]) == "1"
    assert db.predict("t", [0.0]) == "0"
