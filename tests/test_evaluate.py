"""sqml_evaluate: metrics of the deployed model on any table or view, through SQL."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from sklearn import metrics as skm

from .helpers import IRIS_FEATURES


def evaluate(db, *args):
    placeholders = ", ".join("?" for _ in args)
    return json.loads(db.value(f"SELECT sqml_evaluate({placeholders})", args))


def evaluate_error(db, *args):
    """The error text of a failing call; checks that nothing was written."""
    before_changes, before_counts, before_schema = db.conn.total_changes, db.counts(), db.schema()
    placeholders = ", ".join("?" for _ in args)
    with pytest.raises(sqlite3.OperationalError) as error:
        db.value(f"SELECT sqml_evaluate({placeholders})", args)
    assert db.conn.total_changes == before_changes
    assert db.counts() == before_counts and db.schema() == before_schema
    return str(error.value)


def expected_classification(db, experiment, records, truth):
    """Metrics and confusion matrix computed here with scikit-learn on its own predictions."""
    predicted = db.reference_batch(db.active_model_id(experiment), records)
    labels = sorted(set(truth) | {p.item() if hasattr(p, "item") else p for p in predicted})
    return {
        "accuracy": skm.accuracy_score(truth, predicted),
        "f1": skm.f1_score(truth, predicted, average="weighted", zero_division=0),
        "balanced_accuracy": skm.balanced_accuracy_score(truth, predicted),
        "confusion_matrix": {
            "labels": labels,
            "matrix": skm.confusion_matrix(truth, predicted, labels=labels).tolist(),
        },
    }


def assert_classification(got, expected, rows, skipped=0):
    assert got["rows"] == rows and got["skipped_rows"] == skipped
    assert got["score"] == got["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-15)
    assert got["f1"] == pytest.approx(expected["f1"], abs=1e-15)
    assert got["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"], abs=1e-15)
    assert got["confusion_matrix"] == expected["confusion_matrix"]
    assert {"precision", "recall"} <= set(got)


@pytest.fixture
def flowers(iris):
    iris.train("flowers", "classification", "logistic_regression", "dataset_iris", "target")
    return iris


def iris_rows(db, where=""):
    rows = db.rows(f"SELECT * FROM dataset_iris {where} ORDER BY rowid")  # noqa: S608
    return [list(row[:4]) for row in rows], [row[4] for row in rows]


def test_whole_table_with_the_training_target(flowers):
    got = evaluate(flowers, "flowers", "dataset_iris")
    records, truth = iris_rows(flowers)
    assert_classification(got, expected_classification(flowers, "flowers", records, truth), 150)
    assert got["experiment_name"] == "flowers" and got["target"] == "target"
    assert got["model_id"] == flowers.active_model_id("flowers")
    assert got["prediction_type"] == "classification" and got["dataset"] == "dataset_iris"
    assert got["confusion_matrix"]["labels"] == [0.0, 1.0, 2.0]
    assert sum(map(sum, got["confusion_matrix"]["matrix"])) == 150


def test_view_temp_table_and_attached_database(flowers, tmp_path):
    conn = flowers.conn
    conn.execute(
        'CREATE VIEW wide_petals AS SELECT * FROM dataset_iris WHERE "petal width (cm)" > 1'
    )
    conn.execute("CREATE TEMP TABLE sample AS SELECT * FROM dataset_iris WHERE rowid % 3 = 0")
    conn.execute("ATTACH DATABASE ? AS other", (str(tmp_path / "other.db"),))
    conn.execute("CREATE TABLE other.flowers AS SELECT * FROM dataset_iris WHERE rowid % 2 = 0")
    conn.commit()
    for dataset, where in (
        ("wide_petals", 'WHERE "petal width (cm)" > 1'),
        ("sample", "WHERE rowid % 3 = 0"),
        ("other.flowers", "WHERE rowid % 2 = 0"),
        ("OTHER.Flowers", "WHERE rowid % 2 = 0"),
    ):
        records, truth = iris_rows(flowers, where)
        expected = expected_classification(flowers, "flowers", records, truth)
        assert_classification(evaluate(flowers, "flowers", dataset), expected, len(truth))


def test_null_targets_are_skipped_and_another_target_column(flowers):
    conn = flowers.conn
    conn.execute("CREATE TABLE gaps AS SELECT *, target AS truth FROM dataset_iris")
    conn.execute("UPDATE gaps SET target = NULL WHERE rowid % 4 = 0")
    conn.execute("UPDATE gaps SET truth = NULL WHERE rowid % 5 = 0")
    conn.commit()
    records, truth = iris_rows(flowers, "WHERE rowid % 4 != 0")
    expected = expected_classification(flowers, "flowers", records, truth)
    assert_classification(evaluate(flowers, "flowers", "gaps"), expected, 113, skipped=37)
    records, truth = iris_rows(flowers, "WHERE rowid % 5 != 0")
    expected = expected_classification(flowers, "flowers", records, truth)
    got = evaluate(flowers, "flowers", "gaps", "TRUTH")
    assert_classification(got, expected, 120, skipped=30)
    assert got["target"] == "truth"
    assert evaluate(flowers, "flowers", "gaps", None)["target"] == "target"


def test_text_labels_unseen_categories_and_unseen_labels(db):
    conn = db.conn
    conn.execute("CREATE TABLE pets (weight REAL, colour TEXT, kind TEXT)")
    colours = ["black", "white", "ginger"]
    rows = [(4.0 + i % 5, colours[i % 3], "cat" if i % 2 else "dog") for i in range(40)]
    rows += [(30.0 + i, "brown", "horse") for i in range(10)]
    conn.executemany("INSERT INTO pets VALUES (?, ?, ?)", rows)
    conn.execute("CREATE TABLE visitors (kind TEXT, colour TEXT, weight TEXT)")  # other order
    visitors = [
        ("cat", "purple", "5"),  # a colour never seen in training
        ("dog", None, "4.5"),
        ("horse", "brown", "35"),
        ("llama", "white", "60"),  # a label the model does not know
        (None, "black", "5"),
        ("cat", "black", None),
        (3, "white", "6"),  # a number where labels are text: the label '3'
    ]
    conn.executemany("INSERT INTO visitors VALUES (?, ?, ?)", visitors)
    conn.commit()
    db.train("pets", "classification", "logistic_regression", "pets", "kind")
    kept = [v for v in visitors if v[0] is not None]
    records = [{"weight": w, "colour": c} for _, c, w in kept]
    truth = [str(k) for k, _, _ in kept]
    expected = expected_classification(db, "pets", records, truth)
    got = evaluate(db, "pets", "visitors")
    assert_classification(got, expected, 6, skipped=1)
    labels = got["confusion_matrix"]["labels"]
    assert "llama" in labels and "3" in labels and labels == sorted(labels)


def test_regression(small):
    small.train("sugar", "regression", "ridge", "diabetes_small", "target")
    got = evaluate(small, "sugar", "dataset_diabetes")
    rows = small.rows("SELECT * FROM dataset_diabetes ORDER BY rowid")
    records, truth = [list(r[:-1]) for r in rows], [r[-1] for r in rows]
    predicted = small.reference_batch(small.active_model_id("sugar"), records)
    assert got["rows"] == 442 and got["skipped_rows"] == 0
    assert got["r2"] == got["score"] == pytest.approx(skm.r2_score(truth, predicted), rel=1e-12)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(truth, predicted), rel=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, predicted)))
    assert got["max_error"] == pytest.approx(skm.max_error(truth, predicted), rel=1e-12)
    assert "confusion_matrix" not in got
    # empty or NaN text targets are missing, as in training; text numbers are numbers
    small.conn.execute("CREATE TABLE texts AS SELECT * FROM dataset_diabetes LIMIT 10")
    small.conn.execute("UPDATE texts SET target = '' WHERE rowid = 1")
    small.conn.execute("UPDATE texts SET target = 'NaN' WHERE rowid = 2")
    small.conn.execute("UPDATE texts SET target = NULL WHERE rowid = 3")
    small.conn.execute("UPDATE texts SET target = ' ' || CAST(target AS TEXT) WHERE rowid > 3")
    texts = evaluate(small, "sugar", "texts")
    assert texts["rows"] == 7 and texts["skipped_rows"] == 3
    numbers = [float(r[-1]) for r in rows[3:10]]
    predicted = small.reference_batch(small.active_model_id("sugar"), records[3:10])
    assert texts["mae"] == pytest.approx(skm.mean_absolute_error(numbers, predicted), rel=1e-12)
    message = evaluate_error(small, "sugar", "dataset_iris", "target")
    assert "lacks the model's feature column(s) 'age'" in message
    small.conn.execute("CREATE TABLE worded AS SELECT *, 'high' AS level FROM dataset_diabetes")
    message = evaluate_error(small, "sugar", "worded", "level")
    assert "target column 'level' holds 'high', but the model predicts numbers" in message
    # one row: r2 is undefined, and null says so
    small.conn.execute("CREATE TABLE one AS SELECT * FROM dataset_diabetes LIMIT 1")
    one = evaluate(small, "sugar", "one")
    assert one["rows"] == 1 and one["r2"] is None and one["mae"] >= 0


def test_hostile_names(db):
    table, target, feature = "we\"ird; tab'le ü 🌸", 'tar"get ñ', "select"
    quoted = '"' + table.replace('"', '""') + '"'
    qtarget = '"' + target.replace('"', '""') + '"'
    db.conn.execute(f'CREATE TABLE {quoted} ("{feature}" REAL, [x y] REAL, {qtarget} TEXT)')
    db.conn.executemany(
        f"INSERT INTO {quoted} VALUES (?, ?, ?)",  # noqa: S608
        [(i, i % 7, "big" if i > 20 else "small") for i in range(40)],
    )
    db.conn.execute(f"CREATE VIEW [v {table}] AS SELECT *, {qtarget} AS [tr'uth] FROM {quoted}")  # noqa: S608
    db.conn.commit()
    db.train("odd", "classification", "logistic_regression", table, target)
    got = evaluate(db, "odd", table)
    assert got["rows"] == 40 and got["target"] == target and got["dataset"] == table
    view = evaluate(db, "odd", f"v {table}", "tr'uth")
    assert view["confusion_matrix"] == got["confusion_matrix"]
    assert set(view["confusion_matrix"]["labels"]) == {"big", "small"}


def test_a_second_connection_and_a_view_calling_it(flowers, connect):
    expected = evaluate(flowers, "flowers", "dataset_iris")
    other = connect()
    assert (
        json.loads(other.execute("SELECT sqml_evaluate('flowers', 'dataset_iris')").fetchone()[0])
        == expected
    )
    # read-only, so allowed where sqml_train is not: inside a view
    other.execute(
        "CREATE VIEW report AS SELECT json_extract(sqml_evaluate('flowers', 'dataset_iris'),"
        " '$.accuracy') AS accuracy"
    )
    assert other.execute("SELECT accuracy FROM report").fetchone()[0] == expected["accuracy"]


def test_errors_are_clear_and_write_nothing(flowers):
    db = flowers
    db.conn.execute("CREATE TABLE empty AS SELECT * FROM dataset_iris WHERE 0")
    db.conn.execute("CREATE TABLE no_targets AS SELECT * FROM dataset_iris")
    db.conn.execute("UPDATE no_targets SET target = NULL")
    db.conn.execute('CREATE TABLE partial AS SELECT "sepal length (cm)", target FROM dataset_iris')
    db.conn.execute("CREATE TABLE words AS SELECT *, 'setosa' AS species FROM dataset_iris")
    db.conn.execute("CREATE TABLE blobs AS SELECT *, x'00ff' AS junk FROM dataset_iris")
    db.conn.commit()
    message = evaluate_error(db, "nope", "dataset_iris")
    assert "unknown experiment 'nope'" in message and "'flowers'" in message
    message = evaluate_error(db, "flowers", "no_such_table")
    assert "unknown dataset 'no_such_table'" in message and "'dataset_iris'" in message
    message = evaluate_error(db, "flowers", "dataset_iris", "species")
    assert "unknown target column 'species'" in message and "'target'" in message
    message = evaluate_error(db, "flowers", "partial")
    assert "lacks the model's feature column(s) 'sepal width (cm)'" in message
    for table, rows in (("empty", 0), ("no_targets", 150)):
        message = evaluate_error(db, "flowers", table)
        assert f"no rows with a target in 'target' ({rows} row(s)" in message
    message = evaluate_error(db, "flowers", "words", "species")
    assert "target column 'species' holds 'setosa', but the model predicts numbers" in message
    message = evaluate_error(db, "flowers", "blobs", "junk")
    assert "target column 'junk' holds BLOB values" in message
    message = evaluate_error(db, "flowers", "dataset_iris", IRIS_FEATURES[0])
    assert "is one of the model's features" in message
    assert "dataset must be the name of a table" in evaluate_error(db, "flowers", None)
    assert "dataset must be the name of a table" in evaluate_error(db, "flowers", b"\x01")
    assert "takes 2 to 3 arguments, got 1" in evaluate_error(db, "flowers")
    message = evaluate_error(db, "flowers", "dataset_iris", "target", 1)
    assert "usage: sqml_evaluate(experiment_name, dataset [, target])" in message


def test_wrong_feature_values_and_no_deployed_model(flowers):
    db = flowers
    db.conn.execute("CREATE TABLE bad AS SELECT * FROM dataset_iris")
    db.conn.execute("UPDATE bad SET \"sepal width (cm)\" = 'wide' WHERE rowid = 7")
    db.conn.execute("CREATE TABLE one_class (x REAL, label TEXT)")
    db.conn.executemany("INSERT INTO one_class VALUES (?, 'only')", [(i,) for i in range(10)])
    db.conn.commit()
    message = evaluate_error(db, "flowers", "bad")
    assert "cannot evaluate experiment 'flowers' on 'bad'" in message
    assert "feature 'sepal width (cm)' expects a number or null, got \"wide\"" in message
    db.conn.execute('UPDATE bad SET "sepal width (cm)" = 9e999 WHERE rowid = 7')
    db.conn.commit()
    message = evaluate_error(db, "flowers", "bad")
    assert "feature 'sepal width (cm)' expects a number or null, got Infinity" in message
    with pytest.raises(sqlite3.OperationalError):
        db.train("lonely", "classification", "logistic_regression", "one_class", "label")
    assert "has no deployed model yet" in evaluate_error(db, "lonely", "one_class")


def test_a_view_that_evaluates_itself_is_refused(flowers):
    columns = ", ".join(f'"{name}"' for name in IRIS_FEATURES)
    flowers.conn.execute(
        f"CREATE VIEW itself AS SELECT {columns},"  # noqa: S608
        " length(sqml_evaluate('flowers', 'itself')) % 3 AS target FROM dataset_iris"
    )
    flowers.conn.execute(
        f"CREATE VIEW other AS SELECT {columns}, target,"  # noqa: S608
        " sqml_evaluate('flowers', 'dataset_iris') AS report FROM dataset_iris"
    )
    flowers.conn.commit()
    message = evaluate_error(flowers, "flowers", "itself")
    assert "sqml_evaluate was called on 'itself' while reading it" in message
    assert len(message) < 400
    assert evaluate(flowers, "flowers", "other")["rows"] == 150
    report = flowers.value("SELECT report FROM other LIMIT 1")
    assert json.loads(report)["rows"] == 150
