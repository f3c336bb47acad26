"""sqml_predict_table(experiment, source): bulk predictions as a table-valued function."""

from __future__ import annotations

import json
import sqlite3

import pytest

from sqlite_ml.ops import table_prediction as bulk

from .helpers import IRIS_FEATURES, Db, expected_mode

pytestmark = pytest.mark.skipif(
    expected_mode() != "native", reason="this run does not use the native binding"
)

FEATURE_LIST = ", ".join(f'"{name}"' for name in IRIS_FEATURES)


@pytest.fixture
def trained(iris: Db) -> Db:
    iris.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    return iris


def one_by_one(db: Db, sql_rows: str) -> list[float]:
    """sqml_predict per row, the reference for the bulk path."""
    sql = f"SELECT sqml_predict('e', json_array({FEATURE_LIST})) FROM {sql_rows}"  # noqa: S608
    return [row[0] for row in db.rows(sql)]


def test_joins_back_on_rowid(trained):
    db = trained
    rows = db.rows(
        "SELECT t.rowid, t.target, p.prediction, p.probabilities FROM dataset_iris AS t"
        " JOIN sqml_predict_table('e', 'dataset_iris') AS p ON p.row_id = t.rowid"
        " ORDER BY t.rowid"
    )
    assert len(rows) == 150
    assert [row[2] for row in rows] == one_by_one(db, "dataset_iris ORDER BY rowid")
    assert sum(target == prediction for _, target, prediction, _ in rows) > 130
    probabilities = json.loads(rows[0][3])
    # Keys as every probability function writes a numeric label: the text of the REAL.
    assert set(probabilities) == {"0.0", "1.0", "2.0"}
    assert abs(sum(probabilities.values()) - 1) < 1e-9
    assert max(probabilities, key=probabilities.get) == "0.0"


def test_row_ids_are_rowids_even_when_sparse(trained):
    db = trained
    db.conn.execute("DELETE FROM dataset_iris WHERE rowid % 3 = 0")
    db.conn.commit()
    ids = [row[0] for row in db.rows("SELECT row_id FROM sqml_predict_table('e', 'dataset_iris')")]
    assert ids == [row[0] for row in db.rows("SELECT rowid FROM dataset_iris ORDER BY rowid")]


def test_view_and_select_sources_have_no_row_id_without_a_key(trained):
    """A view's rows have no rowid: row_id is NULL (a row number would invite joining on
    it), and the key column, when named, gives it."""
    db = trained
    db.conn.execute("CREATE VIEW virginica AS SELECT * FROM dataset_iris WHERE target = 2")
    from_view = db.rows("SELECT row_id, prediction FROM sqml_predict_table('e', 'virginica')")
    select = "SELECT * FROM dataset_iris WHERE target = 2 -- trailing comment"
    from_select = db.rows("SELECT row_id, prediction FROM sqml_predict_table('e', ?)", (select,))
    assert [row[0] for row in from_view] == [None] * 50
    assert from_view == from_select
    db.conn.execute(
        "CREATE VIEW virginica_ids AS SELECT rowid AS id, * FROM dataset_iris WHERE target = 2"
    )
    keyed = db.rows("SELECT row_id FROM sqml_predict_table('e', 'virginica_ids', 'id')")
    assert [row[0] for row in keyed] == list(range(101, 151))
    assert [row[1] for row in from_view] == one_by_one(db, "virginica")
    with_cte = db.rows(
        "SELECT count(*) FROM sqml_predict_table('e', "
        "'WITH x AS (SELECT * FROM dataset_iris LIMIT 7) SELECT * FROM x')"
    )
    assert with_cte == [(7,)]


def test_chunks_and_missing_values(trained, monkeypatch):
    """Several chunks, NULL cells (imputed as in training) and numeric text."""
    db = trained
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 16)
    db.conn.execute('UPDATE dataset_iris SET "sepal width (cm)" = NULL WHERE rowid % 7 = 0')
    db.conn.execute("UPDATE dataset_iris SET \"petal width (cm)\" = '1.5' WHERE rowid = 40")
    db.conn.commit()
    rows = db.rows("SELECT row_id, prediction FROM sqml_predict_table('e', 'dataset_iris')")
    assert [row[0] for row in rows] == list(range(1, 151))
    assert [row[1] for row in rows] == one_by_one(db, "dataset_iris ORDER BY rowid")


def test_regression_has_no_probabilities(iris):
    db = iris
    db.load("diabetes")
    db.train("r", "regression", "linear_regression", "dataset_diabetes", "target")
    rows = db.rows(
        "SELECT prediction, probabilities FROM sqml_predict_table('r', 'dataset_diabetes')"
    )
    assert len(rows) == 442
    assert all(isinstance(p, float) and probabilities is None for p, probabilities in rows)


def test_text_labels_and_categorical_features(db):
    db.conn.execute("CREATE TABLE pets (size REAL, colour TEXT, kind TEXT)")
    rows = [
        (1.0 + i % 5, "black" if i % 2 else "white", "cat" if i % 2 else "dog") for i in range(40)
    ]
    db.conn.executemany("INSERT INTO pets VALUES (?, ?, ?)", rows)
    db.conn.commit()
    db.train("pets", "classification", "logistic_regression", "pets", "kind")
    got = db.rows(
        "SELECT t.colour, p.prediction, p.probabilities FROM pets AS t"
        " JOIN sqml_predict_table('pets', 'pets') AS p ON p.row_id = t.rowid"
    )
    assert {(colour, prediction) for colour, prediction, _ in got} == {
        ("black", "cat"),
        ("white", "dog"),
    }
    assert set(json.loads(got[0][2])) == {"cat", "dog"}


def test_hostile_names(db):
    table, column = 'we"ird; DROP TABLE x; --', "col ]\"'"
    quoted_table = '"' + table.replace('"', '""') + '"'
    quoted_column = '"' + column.replace('"', '""') + '"'
    db.conn.execute(f"CREATE TABLE {quoted_table} ({quoted_column} REAL, y REAL)")
    db.conn.executemany(
        f"INSERT INTO {quoted_table} VALUES (?, ?)",  # noqa: S608
        [(float(i), float(i % 2)) for i in range(20)],
    )
    db.conn.commit()
    db.train("w", "classification", "logistic_regression", table, "y")
    rows = db.rows("SELECT row_id, prediction FROM sqml_predict_table('w', ?)", (table,))
    assert len(rows) == 20


def error_of(db: Db, experiment: object, source: object) -> str:
    with pytest.raises(sqlite3.OperationalError) as error:
        db.rows("SELECT * FROM sqml_predict_table(?, ?)", (experiment, source))
    return str(error.value)


def test_errors_are_sql_errors_with_our_messages(trained):
    db = trained
    before = db.schema()
    assert error_of(db, "nope", "dataset_iris").startswith("unknown experiment 'nope'")
    assert error_of(db, "e", "nope").startswith("sqml_predict_table source: unknown dataset 'nope'")
    assert error_of(db, "e", None).startswith(
        "sqml_predict_table source must be a table or view name or a SELECT statement, got NULL"
    )
    message = error_of(db, "e", "SELECT 1; DROP TABLE dataset_iris")
    assert message.startswith("sqml_predict_table source is not a single SELECT that runs")
    message = error_of(db, "e", "SELECT 1 AS a")
    assert message.startswith("sqml_predict_table source the SELECT lacks the model's column(s)")
    assert "'sepal length (cm)'" in message
    with pytest.raises(sqlite3.OperationalError, match="needs an experiment and a source"):
        db.rows("SELECT * FROM sqml_predict_table('e')")
    db.conn.execute("UPDATE dataset_iris SET \"petal width (cm)\" = 'tall' WHERE rowid = 33")
    assert error_of(db, "e", "dataset_iris") == (
        "sqml_predict_table: source row with rowid 33: feature 'petal width (cm)' expects a "
        'number or null, got "tall"'
    )
    db.conn.rollback()
    assert db.value("SELECT count(*) FROM dataset_iris") == 150
    assert db.schema() == before


def test_infinity_is_refused(trained):
    db = trained
    db.conn.execute('UPDATE dataset_iris SET "sepal length (cm)" = 1e999 WHERE rowid = 5')
    message = error_of(db, "e", "SELECT * FROM dataset_iris")
    assert message.startswith("sqml_predict_table: source row 5: feature 'sepal length (cm)'")
    db.conn.rollback()


def test_probabilities_are_computed_only_when_read(iris, monkeypatch):
    """For a model Python serves (k-nearest neighbours) probabilities cost a
    predict_proba per chunk: only queries that read them pay it."""
    iris.train("e", "classification", "knn", "dataset_iris", "target")
    calls = []
    original = bulk._probability_formatter

    def counting(model):
        calls.append(model)
        return original(model)

    monkeypatch.setattr(bulk, "_probability_formatter", counting)
    iris.rows("SELECT row_id, prediction FROM sqml_predict_table('e', 'dataset_iris')")
    assert calls == []
    iris.rows("SELECT probabilities FROM sqml_predict_table('e', 'dataset_iris')")
    assert len(calls) == 1


def test_create_table_from_predictions_and_without_rowid_sources(trained):
    db = trained
    db.conn.execute(
        "CREATE TABLE scored AS SELECT row_id, prediction"
        " FROM sqml_predict_table('e', 'dataset_iris')"
    )
    db.conn.commit()
    assert db.value("SELECT count(*) FROM scored") == 150
    columns = ", ".join(f'"{name}" REAL' for name in IRIS_FEATURES)
    db.conn.execute(f"CREATE TABLE keyed (k INTEGER PRIMARY KEY, {columns}) WITHOUT ROWID")
    db.conn.execute(f"INSERT INTO keyed SELECT rowid * 10, {FEATURE_LIST} FROM dataset_iris")  # noqa: S608
    # A WITHOUT ROWID table has no rowid: row_id is its key column when named, else NULL.
    rows = db.rows("SELECT row_id FROM sqml_predict_table('e', 'keyed')")
    assert [row[0] for row in rows] == [None] * 150
    rows = db.rows("SELECT row_id FROM sqml_predict_table('e', 'keyed', 'k')")
    assert [row[0] for row in rows] == list(range(10, 1510, 10))


def test_views_and_triggers_cannot_use_it(trained):
    """A SELECT source runs as a statement of its own, where the writers' DIRECTONLY flag
    cannot tell that a database's view asked for it: so the table function itself is
    refused inside views and triggers."""
    db = trained
    db.conn.execute(
        "CREATE VIEW sneaky AS SELECT * FROM sqml_predict_table('e', 'SELECT * FROM "
        "dataset_iris WHERE sqml_load_dataset(''wine'', ''planted'') IS NOT NULL')"
    )
    db.conn.commit()
    before = db.schema()
    with pytest.raises(sqlite3.OperationalError, match='unsafe use of virtual table "sqml_pre'):
        db.rows("SELECT * FROM sneaky")
    assert db.schema() == before


# -- the row reader (csrc/table.c): features handed to one internal function per row ------


def test_sorted_sources_pair_each_prediction_with_its_own_row(iris):
    """A source whose ORDER BY SQLite moves into the scan evaluates every row before the
    first is returned; the scan notices and reads columns instead. Every prediction must
    still belong to its row, for row-at-a-time (linear) and block (tree) models."""
    db = iris
    db.conn.execute("ALTER TABLE dataset_iris ADD COLUMN id INTEGER")
    db.conn.execute("UPDATE dataset_iris SET id = 1000 - rowid")
    db.conn.execute(
        'CREATE VIEW by_width AS SELECT * FROM dataset_iris ORDER BY "sepal width (cm)" DESC, id'
    )
    db.conn.commit()
    db.train("lin", "classification", "logistic_regression", "dataset_iris", "target")
    db.train("tree", "classification", "random_forest", "dataset_iris", "target")
    listed = f"json_array({FEATURE_LIST})"
    for experiment in ("lin", "tree"):
        expected = dict(
            db.rows(f"SELECT id, sqml_predict('{experiment}', {listed}) FROM dataset_iris")  # noqa: S608
        )
        for source in (
            "by_width",
            "SELECT * FROM dataset_iris ORDER BY id DESC",
            'SELECT * FROM dataset_iris ORDER BY "petal length (cm)" LIMIT 40',
            # text that closes the scan's parenthesis: an ORDER BY on the scan itself
            "SELECT * FROM dataset_iris) ORDER BY (id % 7",
        ):
            rows = db.rows(
                "SELECT row_id, prediction, probabilities FROM sqml_predict_table(?, ?, 'id')",
                (experiment, source),
            )
            assert len(rows) == (40 if "LIMIT" in source else 150)
            assert {key: prediction for key, prediction, _ in rows} == {
                key: expected[key] for key, _, _ in rows
            }, (experiment, source)
            ordered = [row[0] for row in db.rows(f"SELECT id FROM ({source})")]  # noqa: S608
            assert [row[0] for row in rows] == ordered


def test_the_internal_row_reader_cannot_be_called_from_sql(trained):
    with pytest.raises(sqlite3.OperationalError, match="internal to sqml_predict_table"):
        trained.value("SELECT _sqml_read_row(1, 2, 3)")
    with pytest.raises(sqlite3.OperationalError, match="internal to sqml_predict_table"):
        trained.value("SELECT _sqml_read_row(NULL)")


def test_a_near_tie_in_a_table_scan_is_decided_by_the_library(db):
    """A row halfway between two k-means centres is a near tie: the scorer hands its values
    to the Python side, whose answer is the library's own."""
    import numpy as np

    from sqlite_ml import _native

    db.conn.execute("CREATE TABLE points (x REAL)")
    values = [i / 10 for i in range(20)] + [9 + i / 10 for i in range(20)]
    db.conn.executemany("INSERT INTO points VALUES (?)", [(v,) for v in values])
    db.conn.commit()
    result = db.train_with(
        "k", "clustering", "kmeans", "points", None, {"hyperparams": {"n_clusters": 2, "n_init": 2}}
    )
    pipeline, schema = db.stored_model(result["model_id"])
    # the raw value whose preprocessed form lies halfway between the two centres
    low, high = sorted(float(c[0]) for c in pipeline[-1].cluster_centers_)

    def moved(value: float) -> float:
        return float(pipeline[:-1].transform(schema.encode_records([[value]], batch=True))[0, 0])

    below, above = 0.0, 11.0  # bisection down to adjacent floats
    while np.nextafter(below, above) < above:
        middle = (below + above) / 2
        if moved(middle) < (low + high) / 2:
            below = middle
        else:
            above = middle
    halfway = above
    asked = [1.0, halfway, 9.5]
    db.conn.execute("CREATE TABLE asked (x REAL)")
    db.conn.executemany("INSERT INTO asked VALUES (?)", [(v,) for v in asked])
    db.conn.commit()
    before = _native.native_counts()
    got = [row[0] for row in db.rows("SELECT prediction FROM sqml_predict_table('k', 'asked')")]
    after = _native.native_counts()
    expected = pipeline.predict(schema.encode_records([[v] for v in asked], batch=True))
    assert got == [int(v) for v in expected]
    assert after[1] > before[1], "the near tie was not handed to the Python side"


def test_numbers_read_straight_keep_every_refusal(db):
    """The row reader's numeric shortcut (csrc/scoring.c sqml_encode_numbers) leaves every
    value it does not take as is to the general path: a NULL the model may not impute,
    an infinity and a text are refused with the row named, a number as text is read."""
    db.conn.execute("CREATE TABLE t (a REAL, b REAL, y REAL)")
    db.conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", [(i / 7, (i * 3) % 11, i * 0.5 + 1) for i in range(60)]
    )
    db.conn.commit()
    db.train_with("e", "regression", "ridge", "t", "y", {"preprocess": {"a": {"impute": "error"}}})
    reference = db.rows("SELECT sqml_predict('e', a, b) FROM t ORDER BY rowid")
    got = db.rows("SELECT prediction FROM sqml_predict_table('e', 't') ORDER BY row_id")
    assert got == reference
    db.conn.execute("CREATE TABLE asked (id INTEGER PRIMARY KEY, a, b)")
    cases = {
        1: ((None, 1.0), "rowid 1: feature .a. is null"),
        2: ((1e308 * 10, 1.0), "rowid 2: feature .a. expects a number or null, got Infinity"),
        3: ((1.0, "many"), "rowid 3: feature .b. expects a number"),
    }
    for key, ((a, b), message) in cases.items():
        db.conn.execute("DELETE FROM asked")
        db.conn.execute("INSERT INTO asked VALUES (?, ?, ?)", (key, a, b))
        with pytest.raises(sqlite3.OperationalError, match=message):
            db.rows("SELECT * FROM sqml_predict_table('e', 'asked')")
    db.conn.execute("DELETE FROM asked")
    db.conn.execute("INSERT INTO asked VALUES (4, ' 2.5', 3)")
    assert db.value("SELECT prediction FROM sqml_predict_table('e', 'asked')") == pytest.approx(
        db.value("SELECT sqml_predict('e', 2.5, 3)")
    )
