"""Dates and identifiers: ISO-8601 TEXT dates become date parts (identically in training
and prediction), row identifiers and constant columns stay out of the features, and
every such decision is recorded in ``sqml_runs.warnings`` and shown by the faces."""

from __future__ import annotations

import datetime
import json
import random
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from sqlite_ml.faces import pages
from sqlite_ml.faces.cli import cli
from sqlite_ml.ml import dates
from sqlite_ml.ml.features import MAX_CATEGORIES

from .helpers import Db, expected_mode

STORES = ("north", "south", "east")


def sales_rows(count: int = 240) -> list[tuple[object, ...]]:
    """Daily sales: the amount depends on the weekday, the month and the store."""
    rng = random.Random(7)
    start = datetime.date(2023, 1, 1)
    rows = []
    for i in range(count):
        day = start + datetime.timedelta(days=i)
        store = STORES[i % 3]
        amount = 100 + 40 * (day.weekday() >= 5) + 3 * day.month + 10 * (i % 3)
        rows.append((day.isoformat(), store, f"receipt-{rng.getrandbits(40):x}", amount))
    return rows


@pytest.fixture
def sales(db: Db) -> Db:
    db.conn.execute(
        "CREATE TABLE sales (id INTEGER PRIMARY KEY, day TEXT, store TEXT, receipt TEXT,"
        " currency TEXT, amount REAL)"
    )
    db.conn.executemany(
        "INSERT INTO sales(day, store, receipt, currency, amount) VALUES (?, ?, ?, 'EUR', ?)",
        sales_rows(),
    )
    db.conn.commit()
    return db


def run_record(db: Db, run_id: int) -> tuple[list[str], dict[str, str], list[str]]:
    names, types, warnings = db.rows(
        "SELECT feature_names, feature_types, warnings FROM sqml_runs WHERE id = ?", (run_id,)
    )[0]
    return json.loads(names), json.loads(types), json.loads(warnings)


def parts_by_hand(value: str | None, with_hour: bool = False) -> list[float]:
    if value is None:
        return [np.nan] * (7 if with_hour else 6)
    moment = datetime.datetime.fromisoformat(value)
    day = moment.date()
    values = [
        day.year,
        day.month,
        day.day,
        day.weekday(),
        day.timetuple().tm_yday,
        day.toordinal(),
    ]
    return [float(v) for v in values + ([moment.hour] if with_hour else [])]


def test_id_and_date_columns(sales: Db) -> None:
    db = sales
    result = db.train("sales", "regression", "decision_tree", "sales", "amount")
    names, types, warnings = run_record(db, result["run_id"])
    assert names == ["day", "store"]  # no id, no receipt number, no constant currency
    assert types == {"day": "date", "store": "categorical"}
    assert result["warnings"] == warnings
    assert warnings[:3] == [
        "column 'id' left out: it is the table's INTEGER PRIMARY KEY, which identifies rows;"
        " name it in option features to use it",
        "column 'receipt' left out: a distinct text value on every row, like an identifier;"
        " name it in option features to use it",
        "column 'currency' left out: it holds the single value 'EUR' on every row with a"
        " target; name it in option features to use it",
    ]
    assert warnings[3] == (
        "column 'day' holds ISO-8601 dates: used as year, month, day, day_of_week,"
        " day_of_year, ordinal (preprocess encode 'one_hot' keeps it a category)"
    )
    schema = json.loads(
        db.value("SELECT feature_schema FROM sqml_models WHERE id = ?", (result["model_id"],))
    )
    assert schema["features"][0] == {
        "name": "day",
        "kind": "date",
        "categories": [],
        "parts": list(dates.DATE_PARTS),
    }
    # A weekend day is told from a weekday by the tree: the parts reach the model.
    saturday = db.predict("sales", {"day": "2023-06-10", "store": "north"})
    tuesday = db.predict("sales", {"day": "2023-06-13", "store": "north"})
    assert saturday - tuesday == pytest.approx(40, abs=5)


def test_prediction_encodes_dates_as_training_did(sales: Db) -> None:
    db = sales
    result = db.train("sales", "regression", "ridge", "sales", "amount")
    estimator, _ = db.stored_model(result["model_id"])
    days = ["2023-02-28", "2024-02-29", "2023-12-31", None]
    categories = json.loads(
        db.value("SELECT feature_schema FROM sqml_models WHERE id = ?", (result["model_id"],))
    )["features"][1]["categories"]
    one_hot = [float(category == "north") for category in categories]
    for day in days:
        by_hand = np.array([parts_by_hand(day) + one_hot])
        expected = float(estimator.predict(by_hand)[0])
        record = {"day": day, "store": "north"}
        assert db.predict("sales", record) == pytest.approx(expected, rel=1e-12)
        assert db.value("SELECT sqml_predict('sales', ?, 'north')", (day,)) == pytest.approx(
            expected, rel=1e-12
        )
        assert db.predict_batch("sales", [record])[0] == pytest.approx(expected, rel=1e-12)
    # Every row of the training table, as training encoded it (the test split's metrics).
    evaluated = json.loads(db.value("SELECT sqml_evaluate('sales', 'sales')"))
    assert evaluated["rows"] == 240 and evaluated["r2"] > 0.5
    if expected_mode() == "native":
        table = db.rows("SELECT row_id, prediction FROM sqml_predict_table('sales', 'sales')")
        first = db.rows("SELECT day, store FROM sales WHERE id = ?", (table[0][0],))[0]
        assert table[0][1] == db.value("SELECT sqml_predict('sales', ?, ?)", first)


def test_sqlite_datetimes_bring_the_hour(db: Db) -> None:
    db.conn.execute("CREATE TABLE visits (at TEXT, visitors REAL)")
    db.conn.executemany(
        "INSERT INTO visits VALUES (datetime('2024-01-01', ? || ' hours'), ?)",
        [(str(h), 10.0 + (h % 24 >= 12) * 30) for h in range(0, 24 * 20, 5)],
    )
    db.conn.execute(
        "CREATE VIEW visits_t AS SELECT strftime('%Y-%m-%dT%H:%M:%fZ', at) AS at, visitors"
        " FROM visits"
    )
    db.conn.commit()
    for table in ("visits", "visits_t"):
        result = db.train(table, "regression", "decision_tree", table, "visitors")
        schema = json.loads(
            db.value("SELECT feature_schema FROM sqml_models WHERE id = ?", (result["model_id"],))
        )
        assert schema["features"][0]["parts"] == [*dates.DATE_PARTS, "hour"]
        assert db.predict(table, {"at": "2024-03-01 15:30:00"}) == 40.0
        assert db.predict(table, {"at": "2024-03-01T03:00Z"}) == 10.0


def test_options_keep_full_control(sales: Db) -> None:
    db = sales
    forced = db.train_with(
        "in", "regression", "ridge", "sales", "amount", {"features": ["id", "day", "currency"]}
    )
    names, types, warnings = run_record(db, forced["run_id"])
    assert names == ["id", "day", "currency"] and types["id"] == "numeric"
    assert not any("left out" in w for w in warnings)

    category = db.train_with(
        "cat",
        "regression",
        "ridge",
        "sales",
        "amount",
        {"preprocess": {"day": {"encode": "one_hot"}}},
    )
    _, types, warnings = run_record(db, category["run_id"])
    assert types["day"] == "categorical"
    assert any(f"one-hot encoded over the {MAX_CATEGORIES} most frequent" in w for w in warnings)
    # preprocess names a column: it is kept whatever it looks like
    kept = db.train_with(
        "kept", "regression", "ridge", "sales", "amount", {"preprocess": {"id": {"scale": "none"}}}
    )
    assert "id" in run_record(db, kept["run_id"])[0]

    as_date = {"day": {"encode": "date"}}
    dated = db.train_with("d", "regression", "ridge", "sales", "amount", {"preprocess": as_date})
    assert run_record(db, dated["run_id"])[1]["day"] == "date"
    db.conn.execute("UPDATE sales SET day = 'soon' WHERE id = 7")
    db.conn.commit()
    automatic = db.train("auto", "regression", "ridge", "sales", "amount")
    names, _, warnings = run_record(db, automatic["run_id"])
    assert "day" not in names  # a distinct value on every row, and not every one a date
    assert (
        "column 'day' left out: a distinct value on every row, dates but for 'soon'; fix or"
        " filter out that value to use it as dates"
    ) in warnings
    db.conn.execute("UPDATE sales SET day = '2023-01-01' WHERE id BETWEEN 8 AND 20")
    db.conn.commit()
    repeated = db.train("repeated", "regression", "ridge", "sales", "amount")
    _, types, warnings = run_record(db, repeated["run_id"])
    assert types["day"] == "categorical"
    assert "column 'day' holds ISO-8601 dates but for 'soon': used as text categories" in (
        " ".join(warnings)
    )
    with pytest.raises(sqlite3.OperationalError) as error:  # a failed run: values decide
        db.train_with("date", "regression", "ridge", "sales", "amount", {"preprocess": as_date})
    message = str(error.value)
    assert "column 'day' has preprocess encode 'date' but holds 'soon'" in message


def test_bad_dates_in_prediction_are_named(sales: Db) -> None:
    db = sales
    db.train("sales", "regression", "ridge", "sales", "amount")
    for bad in ("tomorrow", "2023-02-30", "2023-13-01", 20230105):
        with pytest.raises(
            sqlite3.OperationalError, match="feature 'day' expects an ISO-8601 date"
        ):
            db.predict("sales", {"day": bad, "store": "north"})


def test_identifiers_in_views_and_integers_named_like_ids(db: Db) -> None:
    db.conn.execute("CREATE TABLE people (PassengerId INTEGER, name TEXT, year INTEGER, age REAL)")
    db.conn.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?)",
        [(i + 1, f"Person {i}", 1990 + i, 20 + (i % 9) * 3.5) for i in range(30)],
    )
    db.conn.execute("CREATE VIEW people_v AS SELECT * FROM people")
    db.conn.commit()
    result = db.train("people", "regression", "ridge", "people_v", "age")
    names, _, warnings = run_record(db, result["run_id"])
    assert names == ["year"]  # distinct every row too, but not named like an id
    assert any(
        "column 'PassengerId' left out: its name and a distinct whole number" in w for w in warnings
    )
    assert any("column 'name' left out: a distinct text value" in w for w in warnings)


def test_no_usable_feature_left(db: Db) -> None:
    db.conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT UNIQUE, flat REAL, y REAL)")
    db.conn.executemany(
        "INSERT INTO t(code, flat, y) VALUES (?, 1.0, ?)", [(f"c{i}", i % 2) for i in range(30)]
    )
    db.conn.commit()
    with pytest.raises(sqlite3.OperationalError) as error:
        db.train("t", "regression", "ridge", "t", "y")
    message = str(error.value)
    assert "dataset 't' has no usable feature: column 'id' left out" in message
    assert "column 'code' left out: it is declared UNIQUE" in message
    assert "column 'flat' left out: it holds the single value 1" in message


def test_the_faces_show_the_decisions(sales: Db, tmp_path) -> None:
    db = sales
    runner = CliRunner()
    trained = runner.invoke(
        cli,
        ["train", str(db.path), "sales", "-t", "regression", "-a", "ridge", "-d", "sales"]
        + ["-y", "amount", "--no-progress"],
    )
    assert trained.exit_code == 0, trained.output
    assert "warnings (also in sqml_runs.warnings):" in trained.output
    assert "  - column 'id' left out: it is the table's INTEGER PRIMARY KEY" in trained.output
    listed = runner.invoke(cli, ["runs", str(db.path), "sales"])
    assert "run 1 warnings:" in listed.output and "column 'receipt' left out" in listed.output
    records = json.loads(runner.invoke(cli, ["runs", str(db.path), "sales", "--json"]).output)
    assert records[0]["warnings"][0].startswith("column 'id' left out")
    html = pages.report(db.conn, "sales")
    assert "4 warning(s)" in html and "column &#x27;day&#x27; holds ISO-8601 dates" in html


def test_damaged_date_parts_are_refused(sales: Db) -> None:
    db = sales
    result = db.train("sales", "regression", "ridge", "sales", "amount")
    db.conn.execute(
        "UPDATE sqml_models SET feature_schema"
        " = replace(feature_schema, '\"ordinal\"', '\"epoch\"') WHERE id = ?",
        (result["model_id"],),
    )
    db.conn.commit()
    other = Db(sqlite3.connect(db.path), db.path)
    import sqlite_ml

    sqlite_ml.register(other.conn)
    try:
        with pytest.raises(sqlite3.OperationalError, match="malformed date parts"):
            other.predict("sales", {"day": "2023-06-10", "store": "north"})
    finally:
        other.conn.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", (datetime.date(2024, 3, 5), None)),
        (" 2024-03-05 17:45:09.123 ", (datetime.date(2024, 3, 5), 17)),
        ("2024-03-05T23:59:59+02:00", (datetime.date(2024, 3, 5), 23)),
        ("2024-03-05T00:00Z", (datetime.date(2024, 3, 5), 0)),
        ("2024-3-5", None),
        ("2023-02-29", None),
        ("2024-03-05 24:00", None),
        ("05/03/2024", None),
    ],
)
def test_iso_dates(text: str, expected: object) -> None:
    assert dates.parse(text) == expected


def test_drift_compares_dates_as_days(sales: Db) -> None:
    db = sales
    db.train("sales", "regression", "ridge", "sales", "amount")
    summary = json.loads(db.value("SELECT training_summary FROM sqml_models"))
    assert summary["features"]["day"]["kind"] == "date"
    same = json.loads(db.value("SELECT sqml_drift('sales', 'sales')"))
    assert same["day"]["test"] == "ks" and not same["day"]["drift"]
    db.conn.execute("CREATE VIEW next_year AS SELECT date(day, '+1 year') AS day, store FROM sales")
    later = json.loads(db.value("SELECT sqml_drift('sales', 'next_year')"))
    assert later["day"]["drift"] and later["day"]["statistic"] > 0.9
    assert not later["store"]["drift"]
