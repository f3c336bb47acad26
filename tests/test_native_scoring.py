# ruff: noqa: S608 - a test building its own fixed queries over its own tables
"""The native scorer answers exactly what the libraries' own predict answers.

Every algorithm the native format covers is trained through SQL on two datasets (numbers
with NULLs and mixed scales; text categories, one-hot, ordinal and target encoded, with
NULLs), then asked for rows of its training table and rows it never saw (unseen
categories, NULLs, numbers given as text) in every form: ``sqml_predict`` with a JSON
object, a JSON array and values one by one, ``sqml_predict_batch``, ``sqml_predict_proba``
and ``sqml_predict_table`` (its predictions and probabilities). Classes and cluster ids
must be identical; numbers equal to 1e-9 relative for scikit-learn's models and within
float32 for XGBoost and LightGBM. The native counters prove no row went to Python.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sqlite_ml.ml.catalogue import ALGORITHMS

from .helpers import Db, expected_mode

pytestmark = pytest.mark.skipif(
    expected_mode() != "native", reason="this run does not use the native binding"
)

NUMBERS = ("a", "b c", "d", "e")
SHOP = ("plan", "city", "segment", "visits", "spent")
SMALL = {"n_estimators": 8}
HYPERPARAMS = {
    "random_forest": {**SMALL, "max_depth": 6},
    "extra_trees": {**SMALL, "max_depth": 6},
    "bagging": SMALL,
    "ada_boost": SMALL,
    "gradient_boosting": {**SMALL, "max_depth": 3},
    "hist_gradient_boosting": {"max_iter": 10},
    "xgboost": {**SMALL, "max_depth": 3},
    "lightgbm": {**SMALL, "num_leaves": 8, "min_child_samples": 5},
    "decision_tree": {"max_depth": 8},
    "kmeans": {"n_clusters": 4, "n_init": 2},
    "mini_batch_kmeans": {"n_clusters": 4, "n_init": 2},
}
# The catalogue's algorithms that Python serves (every other one must be native).
PYTHON_SERVED = {
    "dummy",
    "knn",
    "mlp",
    "svc",
    "svr",
    "birch",
    "gaussian_mixture",
    "gaussian_nb",
    "multinomial_nb",
}
CLASSIFIERS = [a for a in ALGORITHMS["classification"] if a not in PYTHON_SERVED]
REGRESSORS = [a for a in ALGORITHMS["regression"] if a not in PYTHON_SERVED]
CLUSTERINGS = [a for a in ALGORITHMS["clustering"] if a not in PYTHON_SERVED]
BOOSTERS = ("xgboost", "lightgbm")
# (prediction type, dataset, target)
TARGETS = {
    "classification": [("numbers", "binary"), ("shop", "tier")],
    "regression": [("numbers", "amount"), ("shop", "revenue")],
    "clustering": [("numbers", None)],
}
CASES = [
    (kind, algorithm, dataset, target)
    for kind, algorithms in (
        ("classification", CLASSIFIERS),
        ("regression", REGRESSORS),
        ("clustering", CLUSTERINGS),
    )
    for algorithm in algorithms
    for dataset, target in TARGETS[kind]
]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def numbers_rows(rng: np.random.Generator, count: int) -> list[list[object]]:
    """Floats of mixed scale (rounded so that json_object's 15 digits keep them), whole
    numbers, NULLs; a binary and a three-class target and an amount."""
    x = rng.normal(size=(count, 4)) * [1.0, 10.0, 1000.0, 3.0]
    score = (x / [1.0, 10.0, 1000.0, 3.0]) @ [1.0, -1.5, 0.7, 0.3]
    rows = []
    for features, s in zip(x.tolist(), score.tolist(), strict=True):
        features = [round(v, 6) for v in features]
        features[3] = round(features[3])  # a column of whole numbers
        features = [None if rng.random() < 0.05 else v for v in features]
        binary = int(s + rng.normal(scale=0.5) > 0)
        rows.append([*features, binary, round(3.0 * s + rng.normal(scale=0.3), 6)])
    return rows


def shop_rows(rng: np.random.Generator, count: int) -> list[list[object]]:
    """Text categories (with NULLs) and numbers; a text class and a revenue."""
    plans, cities, segments = ["basic", "pro", "team"], ["Oslo", "Lyon", "Pune", "Quito"], "ABCD"
    rows = []
    for _ in range(count):
        plan = plans[int(rng.integers(3))] if rng.random() > 0.05 else None
        city = cities[int(rng.integers(4))] if rng.random() > 0.05 else None
        segment = segments[int(rng.integers(4))]
        visits = round(float(rng.gamma(2.0, 3.0)), 3) if rng.random() > 0.05 else None
        spent = round(float(rng.normal(50, 20)), 2)
        level = (plans.index(plan) if plan else 1) + (visits or 4) / 4 + "ABCD".index(segment) / 2
        tier = ("bronze", "silver", "gold")[min(2, int(level + rng.normal(scale=0.6)) // 2)]
        revenue = round(spent * (1 + (plans.index(plan) if plan else 0)) + 3 * (visits or 0), 4)
        rows.append([plan, city, segment, visits, spent, tier, revenue])
    return rows


@pytest.fixture(scope="module")
def data() -> dict[str, list[list[object]]]:
    rng = np.random.default_rng(7)
    return {"numbers": numbers_rows(rng, 140), "shop": shop_rows(rng, 140)}


def unseen_rows(dataset: str) -> list[list[object]]:
    """Rows no model saw: unseen categories, NULLs everywhere, numbers as text."""
    if dataset == "numbers":
        return [[None, None, None, None], [0.0, 0.0, 0.0, 0], ["1.5", " 2 ", "-30", "4"]]
    return [
        ["enterprise", "Paris", "Z", 2.0, 10.0],
        [None, None, None, None, None],
        ["pro", "Oslo", "B", "7.5", "48"],
        ["team", "Pune", "A", 1e-3, -5.0],
    ]


@pytest.fixture
def tables(db: Db, data) -> Db:
    for name, columns, targets in (
        ("numbers", NUMBERS, ("binary", "amount")),
        ("shop", SHOP, ("tier", "revenue")),
    ):
        listed = ", ".join(quoted(c) for c in (*columns, *targets))
        db.conn.execute(f"CREATE TABLE {name} ({listed})")
        marks = ", ".join("?" for _ in (*columns, *targets))
        db.conn.executemany(f"INSERT INTO {name} VALUES ({marks})", data[name])  # noqa: S608
        # What is predicted: every training row, then rows never seen.
        features = ", ".join(quoted(c) for c in columns)
        db.conn.execute(f"CREATE TABLE {name}_asked ({features})")
        rows = [row[: len(columns)] for row in data[name]] + unseen_rows(name)
        marks = ", ".join("?" for _ in columns)
        db.conn.executemany(f"INSERT INTO {name}_asked VALUES ({marks})", rows)  # noqa: S608
        for target in targets:
            db.conn.execute(
                f"CREATE VIEW {name}_{target} AS SELECT {features}, {target} FROM {name}"  # noqa: S608
            )
        db.conn.execute(f"CREATE VIEW {name}_none AS SELECT {features} FROM {name}")  # noqa: S608
    db.conn.commit()
    return db


def options(dataset: str, algorithm: str, kind: str) -> dict[str, object]:
    chosen: dict[str, object] = {"hyperparams": HYPERPARAMS.get(algorithm, {})}
    if dataset == "shop":
        preprocess = {"city": {"encode": "ordinal"}, "spent": {"scale": "robust"}}
        if kind != "clustering":
            preprocess["segment"] = {"encode": "target"}
        chosen["preprocess"] = preprocess
    return chosen


def counts() -> tuple[int, int]:
    from sqlite_ml import _native

    return _native.native_counts()


def unsure_rows(db: Db, model_id: int, matrix: np.ndarray) -> int:
    """How many rows the C scorer itself flags as too close to call (a linear score or a
    centroid distance within its rounding bound, or a regression value near zero against
    1e-9 relative): the one case where a natively served model hands a row to the Python
    side, on purpose, so that the answer is scikit-learn's own."""
    from sqlite_ml import _native

    blob = db.value("SELECT native_model FROM sqml_models WHERE id = ?", (model_id,))
    scored = _native.score_native(bytes(blob), np.ascontiguousarray(matrix, dtype=np.float64))
    assert isinstance(scored, tuple)
    return sum(scored[1])


def json_object(columns: tuple[str, ...]) -> str:
    pairs = ", ".join(f"'{c}', {quoted(c)}" for c in columns)
    return f"json_object({pairs})"


def close(kind: str, algorithm: str) -> dict[str, float]:
    if algorithm in BOOSTERS:
        return {"rel": 1e-5, "abs": 2e-6}  # XGBoost sums in float32
    return {"rel": 1e-9, "abs": 1e-15 if kind == "classification" else 0.0}


@pytest.mark.parametrize(
    ("kind", "algorithm", "dataset", "target"),
    CASES,
    ids=[f"{k}-{a}-{d}" for k, a, d, _ in CASES],
)
def test_every_form_equals_the_library(tables, kind, algorithm, dataset, target):
    assert_every_form_equals_the_library(
        tables, kind, algorithm, dataset, target, options(dataset, algorithm, kind)
    )


# Trees the fast walks (csrc/model_score.c) take in groups of 8: 13 trees make a full group
# and one padded with a repeated tree; deep unlimited trees, float64 (LightGBM) and float32
# comparisons. Some rows have NULLs (NaN for the boosters, which take the general walk), so
# blocks of rows mix both walks.
FAST_WALK_CASES = [
    ("random_forest", {"n_estimators": 13}),
    ("extra_trees", {"n_estimators": 13}),
    ("xgboost", {"n_estimators": 13, "max_depth": 5}),
    ("lightgbm", {"n_estimators": 13, "num_leaves": 12, "min_child_samples": 3}),
    ("hist_gradient_boosting", {"max_iter": 13}),
]


@pytest.mark.parametrize(
    ("algorithm", "hyperparams"),
    FAST_WALK_CASES,
    ids=[f"{a}-{i}" for i, (a, _) in enumerate(FAST_WALK_CASES)],
)
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_grouped_tree_walks_equal_the_library(tables, kind, algorithm, hyperparams):
    target = "binary" if kind == "classification" else "amount"
    assert_every_form_equals_the_library(
        tables, kind, algorithm, "numbers", target, {"hyperparams": hyperparams}
    )


def assert_every_form_equals_the_library(
    db: Db, kind: str, algorithm: str, dataset: str, target: str | None, chosen: dict
) -> None:
    columns = NUMBERS if dataset == "numbers" else SHOP
    source = f"{dataset}_{target or 'none'}"
    result = db.train_with("e", kind, algorithm, source, target, chosen)
    model_id = result["model_id"]
    serving = db.rows("SELECT serving, serving_reason FROM sqml_models WHERE id = ?", (model_id,))
    assert serving == [("native", None)]

    records = [list(row) for row in db.rows(f"SELECT * FROM {dataset}_asked ORDER BY rowid")]  # noqa: S608
    pipeline, schema = db.stored_model(model_id)
    matrix = schema.encode_records(records, batch=True)
    expected = list(pipeline.predict(matrix))
    with_probabilities = kind == "classification" and hasattr(pipeline, "predict_proba")
    if with_probabilities:
        expected_probabilities = pipeline.predict_proba(matrix)

    before = counts()
    listed = ", ".join(quoted(c) for c in columns)
    asked = f"FROM {dataset}_asked ORDER BY rowid"
    forms = {
        "object": f"SELECT sqml_predict('e', {json_object(columns)}) {asked}",
        "array": f"SELECT sqml_predict('e', json_array({listed})) {asked}",
        "positional": f"SELECT sqml_predict('e', {listed}) {asked}",
        "table": f"SELECT p.prediction FROM {dataset}_asked AS t JOIN"
        f" sqml_predict_table('e', '{dataset}_asked') AS p ON p.row_id = t.rowid ORDER BY t.rowid",
    }
    got = {form: [row[0] for row in db.rows(sql)] for form, sql in forms.items()}
    batch = f"SELECT sqml_predict_batch('e', json_group_array({json_object(columns)})) FROM"
    got["batch"] = json.loads(db.value(f"{batch} (SELECT * {asked})"))
    probabilities = {}
    if with_probabilities:
        probabilities["proba"] = [
            json.loads(row[0])
            for row in db.rows(f"SELECT sqml_predict_proba('e', {json_object(columns)}) {asked}")
        ]
        probabilities["positional"] = [
            json.loads(row[0])
            for row in db.rows(f"SELECT sqml_predict_proba('e', {listed}) {asked}")
        ]
        probabilities["table"] = [
            json.loads(row[0])
            for row in db.rows(
                f"SELECT probabilities FROM sqml_predict_table('e', '{dataset}_asked')"
            )
        ]
    after = counts()
    # Each too-close row goes to Python once per form that scores it row by row (object,
    # array, positional, table), and a batch holding one goes whole; nothing else does.
    unsure = unsure_rows(db, model_id, matrix)
    # (probabilities are never too close to call: they are numbers, not a choice)
    handed = len(forms) * unsure + (1 if unsure else 0)
    assert after[1] - before[1] == handed, f"{after[1] - before[1]} calls handed to Python"
    whole_batch = 0 if unsure else len(records)
    assert (
        after[0] - before[0]
        >= (len(records) - unsure) * (len(forms) + len(probabilities)) + whole_batch
    )

    for form, values in got.items():
        assert len(values) == len(expected), form
        for i, (value, reference) in enumerate(zip(values, expected, strict=True)):
            where = (form, i, records[i])
            if kind == "clustering":
                assert value == int(reference) and isinstance(value, int), where
            elif kind == "classification":
                assert value == (str(reference) if isinstance(value, str) else float(reference))
            else:
                assert value == pytest.approx(float(reference), **close(kind, algorithm)), where
    for form, rows in probabilities.items():
        for i, (row, reference) in enumerate(zip(rows, expected_probabilities, strict=True)):
            assert list(row.values()) == pytest.approx(list(reference), **close(kind, algorithm)), (
                form,
                i,
            )
            assert len(row) == len(reference)


# Feature kinds the native format does not cover (issues 13 and 16): (experiment, the
# feature and how it is given, the words of its serving_reason).
PYTHON_FEATURES = [
    ("dated", "day", {}, "feature 'day' is a date read as date parts (kind 'date')"),
    (
        "embedded",
        "note",
        {"preprocess": {"note": {"embed": "default"}}},
        "feature 'note' is text embedded by a pretrained model (kind 'embedding')",
    ),
    ("vectors", "vec", {}, "feature 'vec' is a vector (float32 BLOB) (kind 'vector')"),
]


@pytest.fixture
def mixed(db: Db) -> Db:
    """Rows with a date, a short text, its vector and a number; a class from them."""
    rng = np.random.default_rng(3)
    words = ["rain on the coast", "shares fell", "the team won", "a lemon cake"]
    rows = []
    for i in range(120):
        x = float(rng.normal())
        note = words[i % 4]
        vector = np.asarray(rng.normal(size=4), dtype="<f4")
        day = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
        label = "hi" if x + (i % 12) / 6 + float(vector[0]) > 1.2 else "lo"
        rows.append((day, note, vector.tobytes(), x, label))
    db.conn.execute("CREATE TABLE mixed (day TEXT, note TEXT, vec BLOB, x REAL, label TEXT)")
    db.conn.executemany("INSERT INTO mixed VALUES (?, ?, ?, ?, ?)", rows)
    db.conn.commit()
    return db


@pytest.mark.parametrize(("experiment", "feature", "extra", "reason"), PYTHON_FEATURES)
def test_dates_embedded_text_and_vectors_are_served_by_python(
    mixed, experiment, feature, extra, reason
):
    """The native format covers none of these kinds: a model with one is served by
    Python, says so in serving_reason, and every form answers what the library's own
    predict answers (an algorithm the format otherwise covers, so that only the feature
    decides)."""
    from sqlite_ml.ml.pretrained import load_embedder

    db = mixed
    chosen = {"features": [feature, "x"], "hyperparams": {"n_estimators": 8}, **extra}
    result = db.train_with(experiment, "classification", "random_forest", "mixed", "label", chosen)
    model_id = result["model_id"]
    ((serving, why),) = db.rows(
        "SELECT serving, serving_reason FROM sqml_models WHERE id = ?", (model_id,)
    )
    assert (serving, why) == (
        "python",
        f"{reason}, which the native format does not cover",
    )
    run_id = result["run_id"]
    names = json.loads(db.value("SELECT feature_names FROM sqml_runs WHERE id = ?", (run_id,)))
    assert names == [feature, "x"]

    pipeline, schema = db.stored_model(model_id)
    schema.bind_embedders(lambda f: load_embedder(f.model))
    records = [list(row) for row in db.rows(f"SELECT {feature}, x FROM mixed ORDER BY rowid")]
    expected = [str(label) for label in pipeline.predict(schema.encode_records(records, True))]
    expected_probabilities = pipeline.predict_proba(schema.encode_records(records, True))

    before = counts()
    forms = {
        "positional": f"SELECT sqml_predict('{experiment}', {feature}, x) FROM mixed"
        " ORDER BY rowid",
        "table": f"SELECT p.prediction FROM mixed AS t JOIN sqml_predict_table('{experiment}',"
        " 'mixed') AS p ON p.row_id = t.rowid ORDER BY t.rowid",
    }
    if feature != "vec":  # JSON holds no BLOB
        forms["object"] = (
            f"SELECT sqml_predict('{experiment}', json_object('{feature}', {feature}, 'x', x))"
            " FROM mixed ORDER BY rowid"
        )
    got = {form: [row[0] for row in db.rows(sql)] for form, sql in forms.items()}
    probabilities = [
        json.loads(row[0])
        for row in db.rows(
            f"SELECT probabilities FROM sqml_predict_table('{experiment}', 'mixed') ORDER BY row_id"
        )
    ]
    after = counts()
    assert after[0] == before[0], "a row was scored natively"
    assert after[1] > before[1]
    for form, values in got.items():
        assert values == expected, form
    for row, reference in zip(probabilities, expected_probabilities, strict=True):
        assert list(row.values()) == pytest.approx(list(reference), rel=1e-12)


def test_a_one_feature_model_takes_its_value_alone_natively(db):
    """sqml_predict and sqml_predict_proba of a one-feature model take a number or NULL
    alone, as the Python side does (issue 16), scored natively."""
    db.conn.execute("CREATE TABLE t (x REAL, y INTEGER)")
    db.conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, int(i >= 20)) for i in range(40)])
    db.conn.commit()
    model_id = db.train("one", "classification", "logistic_regression", "t", "y")["model_id"]
    pipeline, schema = db.stored_model(model_id)
    asked = [[35.0], [2], [None]]
    matrix = schema.encode_records(asked, batch=True)
    before = counts()
    got = [db.value("SELECT sqml_predict('one', ?)", tuple(row)) for row in asked]
    proba = [
        json.loads(db.value("SELECT sqml_predict_proba('one', ?)", tuple(row))) for row in asked
    ]
    unsure = unsure_rows(db, model_id, matrix)
    assert counts()[1] - before[1] == unsure, "a row was handed to the Python side"
    assert got == [float(v) for v in pipeline.predict(matrix)]
    for row, reference in zip(proba, pipeline.predict_proba(matrix), strict=True):
        assert list(row.values()) == pytest.approx(list(reference), rel=1e-9, abs=1e-15)


def test_json_rows_reuse_a_scratch_safely_whatever_their_size_or_nesting(db):
    """A connection keeps the scratch its JSON rows are read with between calls (csrc/
    deployed.c): rows read after a huge one (an escaped text of 120 KB, numbers of 30
    digits that go through strtod), and a call nested in another's arguments, still
    answer what the values one by one answer."""
    rng = np.random.default_rng(5)
    rows = [(float(a), float(b), int(a + b > 1)) for a, b in rng.random(size=(200, 2))]
    db.conn.execute("CREATE TABLE t (a REAL, b REAL, y INTEGER)")
    db.conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    db.conn.commit()
    db.train_with("e", "classification", "random_forest", "t", "y", {"hyperparams": SMALL})
    before = counts()
    huge = json.dumps({"a": 0.25, "note": "x\n" * 60_000, "b": 0.75})
    long_digits = '{"a": 0.123456789012345678901234567890, "b": 1.00000000000000000000000000001}'
    asked = [huge, long_digits, *(json.dumps({"a": a, "b": b}) for a, b, _ in rows[:50]), huge]
    got = [db.value("SELECT sqml_predict('e', ?)", (text,)) for text in asked]
    one_by_one = [
        db.value("SELECT sqml_predict('e', ?, ?)", (row["a"], row["b"]))
        for row in map(json.loads, asked)
    ]
    assert got == one_by_one
    nested = db.value(
        "SELECT sqml_predict('e', json_object('a', sqml_predict('e', json_object('a', 0.9,"
        " 'b', 0.8)), 'b', sqml_predict('e', '{\"a\": 0.1, \"b\": 0.05}')))"
    )
    inner = (
        db.value("SELECT sqml_predict('e', 0.9, 0.8)"),
        db.value("SELECT sqml_predict('e', 0.1, 0.05)"),
    )
    assert nested == db.value("SELECT sqml_predict('e', ?, ?)", inner)
    assert counts()[1] == before[1], "a row was handed to the Python side"


@pytest.mark.parametrize("classes", [2, 3])
def test_a_forest_stops_early_only_when_no_tree_left_can_change_its_class(db, classes):
    """A forest's sqml_predict stops walking once the leading class stays ahead whatever
    the remaining trees add (csrc/model_score.c, early_class). Labels drawn at random make
    close votes, exact ties (an even number of trees voting half and half, which
    scikit-learn gives to the first class) and clear ones: every row's class must be the
    library's, in every form; a bound that let a tree too few count would differ."""
    rng = np.random.default_rng(11)
    columns = [f"x{i}" for i in range(4)]
    db.conn.execute(f"CREATE TABLE noise ({', '.join(columns)}, label TEXT)")
    rows = [
        [*(float(v) for v in rng.normal(size=4)), "abc"[int(rng.integers(classes))]]
        for _ in range(160)
    ]
    db.conn.executemany("INSERT INTO noise VALUES (?, ?, ?, ?, ?)", rows)
    db.conn.execute(f"CREATE TABLE asked ({', '.join(columns)})")
    asked = [[float(v) for v in rng.normal(size=4)] for _ in range(240)]
    db.conn.executemany("INSERT INTO asked VALUES (?, ?, ?, ?)", [*asked, *(r[:4] for r in rows)])
    db.conn.commit()
    chosen = {"hyperparams": {"n_estimators": 24, "random_state": 3}}
    result = db.train_with("votes", "classification", "random_forest", "noise", "label", chosen)
    model_id = result["model_id"]
    assert db.value("SELECT serving FROM sqml_models WHERE id = ?", (model_id,)) == "native"
    pipeline, schema = db.stored_model(model_id)
    records = [list(r) for r in db.rows("SELECT * FROM asked ORDER BY rowid")]
    matrix = schema.encode_records(records, batch=True)
    expected = [str(v) for v in pipeline.predict(matrix)]
    # The data has both kinds of rows: votes decided before the last group of 8 trees
    # (24 trees: after 16, a lead over what 8 more trees can add) and votes that are not.
    votes = np.array([tree.predict_proba(matrix) for tree in pipeline[-1].estimators_])
    leads = np.sort(votes[:16].sum(axis=0), axis=1)
    decided = (leads[:, -1] - leads[:, -2]) > 8
    assert 0 < decided.sum() < len(records)
    totals = np.sort(votes.sum(axis=0), axis=1)
    assert (totals[:, -1] == totals[:, -2]).any()  # exact ties
    object_ = json_object(tuple(columns))
    for sql in (
        "SELECT sqml_predict('votes', x0, x1, x2, x3) FROM asked ORDER BY rowid",
        f"SELECT sqml_predict('votes', {object_}) FROM asked ORDER BY rowid",
    ):
        assert [row[0] for row in db.rows(sql)] == expected, sql
