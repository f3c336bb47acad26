"""Our own reading of XGBoost and LightGBM models (ml/boosters.py): the parsed description
predicts exactly what the libraries predict, and a damaged booster is refused by name."""

from __future__ import annotations

import math
import random
import struct
import warnings
from collections.abc import Callable

import lightgbm
import numpy as np
import pytest
import xgboost

from sqlite_ml.ml import boosters
from sqlite_ml.ml.boosters import BoosterError

# Float32 tolerance: XGBoost sums its leaves in float32.
TOLERANCE = {"rtol": 1e-5, "atol": 2e-6}


def model_inputs(db, model_id: int, records: list) -> tuple[object, np.ndarray]:
    """A stored pipeline's model step and the matrix it sees for ``records``."""
    pipeline, schema = db.stored_model(model_id)
    matrix = pipeline[:-1].transform(schema.encode_records(records, batch=True))
    return pipeline, np.asarray(matrix, dtype=np.float64)


def assert_same_predictions(pipeline, matrix: np.ndarray) -> boosters.Ensemble:
    """The reference predictor over the parsed model against the library's own answers."""
    model = pipeline[-1]
    ensemble = boosters.describe_estimator(model)
    if hasattr(model, "predict_proba") and ensemble.n_classes >= 2:
        expected = model.predict_proba(matrix)
        np.testing.assert_allclose(boosters.predict_proba(ensemble, matrix), expected, **TOLERANCE)
        classes = np.asarray(model.classes_)[boosters.predict_class_index(ensemble, matrix)]
        assert classes.tolist() == np.asarray(model.predict(matrix)).tolist()
    else:
        expected = model.predict(matrix)
        got = boosters.predict_output(ensemble, matrix)[:, 0]
        np.testing.assert_allclose(got, expected, **TOLERANCE)
    return ensemble


def iris_rows(db) -> list[list[float]]:
    return [list(row[:4]) for row in db.rows("SELECT * FROM dataset_iris")]


CASES = {
    "binary": ("classification", "iris_two"),
    "multiclass": ("classification", "dataset_iris"),
    "regression": ("regression", "dataset_iris"),
}


@pytest.fixture
def iris_two(iris):
    iris.conn.execute("CREATE TABLE iris_two AS SELECT * FROM dataset_iris WHERE target > 0")
    iris.conn.commit()
    return iris


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    "hyperparams",
    [{}, {"variant": "second"}],
    ids=["default", "variant"],
)
def test_reference_predictor_equals_the_library_through_sqml_train(
    iris_two, algorithm, case, hyperparams
):
    kind, table = CASES[case]
    variants = {
        # XGBoost dart (weights on trees) with parallel trees (forests);
        # LightGBM's random-forest mode (averaged output) and dart.
        "xgboost": {"booster": "dart", "num_parallel_tree": 2, "subsample": 0.8},
        "lightgbm": {"boosting_type": "rf", "subsample": 0.7, "subsample_freq": 1},
    }
    chosen = {"n_estimators": 12}
    if hyperparams:
        chosen.update(variants[algorithm])
    target = "petal width (cm)" if kind == "regression" else "target"
    options = {"hyperparams": chosen, "random_state": 3}
    if kind == "regression":
        options["features"] = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)"]
    result = iris_two.train_with("boost", kind, algorithm, table, target, options)
    records = iris_rows(iris_two)
    if kind == "regression":
        records = [row[:3] for row in records]
    pipeline, matrix = model_inputs(iris_two, result["model_id"], records)
    ensemble = assert_same_predictions(pipeline, matrix)
    expected_outputs = {"binary": 1, "multiclass": 3, "regression": 1}[case]
    assert ensemble.n_outputs == expected_outputs
    assert ensemble.library == algorithm
    if hyperparams and algorithm == "lightgbm":
        assert ensemble.average_output
    if hyperparams and algorithm == "xgboost":
        assert ensemble.extra["booster"] == "dart" and ensemble.extra["num_parallel_tree"] == 2


def test_lightgbm_on_categorical_text_columns_with_nulls(db):
    """Text categories one-hot encoded by our feature schema, NULLs in text and numbers."""
    rng = random.Random(7)
    db.conn.execute("CREATE TABLE shop (colour TEXT, size REAL, region TEXT, spend REAL)")
    rows = []
    for _ in range(240):
        colour = rng.choice(["red", "green", "blue", None])
        region = rng.choice(["north", "south", None])
        size = None if rng.random() < 0.15 else rng.uniform(0, 10)
        spend = (size or 5) * (3 if colour == "red" else 1) + (4 if region == "north" else 0)
        rows.append((colour, size, region, spend + rng.gauss(0, 0.5)))
    db.conn.executemany("INSERT INTO shop VALUES (?, ?, ?, ?)", rows)
    db.conn.execute(
        "CREATE TABLE shop_class AS SELECT colour, size, region,"
        " CASE WHEN spend > 12 THEN 'high' WHEN spend > 6 THEN 'mid' ELSE 'low' END AS band"
        " FROM shop"
    )
    db.conn.commit()
    options = {"hyperparams": {"n_estimators": 15, "min_child_samples": 5}, "random_state": 1}
    records = [list(row[:3]) for row in rows] + [["purple", None, None], [None, None, "east"]]
    for kind, table, target in (
        ("regression", "shop", "spend"),
        ("classification", "shop_class", "band"),
    ):
        result = db.train_with(f"shop_{kind}", kind, "lightgbm", table, target, options)
        pipeline, matrix = model_inputs(db, result["model_id"], records)
        assert matrix.shape[1] > 3  # one-hot columns
        assert_same_predictions(pipeline, matrix)
        # and what sqml_predict answers is the reference's class or value
        ensemble = boosters.describe_estimator(pipeline[-1])
        answer = db.predict(f"shop_{kind}", {"colour": "red", "size": None, "region": None})
        _, one = model_inputs(db, result["model_id"], [["red", None, None]])
        if kind == "regression":
            assert answer == pytest.approx(boosters.predict_output(ensemble, one)[0, 0])
        else:
            index = boosters.predict_class_index(ensemble, one)[0]
            assert answer == pipeline[-1].classes_[index]


def lightgbm_with_categories(**params):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 3))
    x[:, 2] = rng.integers(0, 40, 600)
    x[rng.random(600) < 0.1, 2] = np.nan
    x[rng.random(600) < 0.1, 0] = np.nan
    y = ((x[:, 2] % 7 < 3) ^ (np.nan_to_num(x[:, 0]) > 0.3)).astype(int)
    model = lightgbm.LGBMClassifier(
        n_estimators=12,
        num_leaves=8,
        min_child_samples=5,
        min_data_per_group=5,
        cat_smooth=1,
        max_cat_to_onehot=2,
        verbose=-1,
        **params,
    ).fit(x, y, categorical_feature=[2])
    return model, x


def test_lightgbm_categorical_splits_and_missing_values():
    """Categorical bitsets (our catalogue never makes them, the parser still reads them):
    NaN, negative, fractional, huge and unseen categories, and NaN in numeric splits."""
    model, x = lightgbm_with_categories()
    text = model.booster_.model_to_string()
    ensemble = boosters.parse_lightgbm(text)
    assert any((tree.category_set >= 0).any() for tree in ensemble.trees)
    probes = x.copy()
    probes[:8, 2] = [np.nan, -1, -0.5, 2.7, 39.9, 1e6, 3e9, 64]
    probes[8:12, 0] = [0.0, -0.0, 1e-36, np.nan]
    np.testing.assert_allclose(
        boosters.predict_proba(ensemble, probes), model.predict_proba(probes), **TOLERANCE
    )


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_lightgbm_missing_types(zero_as_missing):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3))
    x[rng.random(400) < 0.2, 1] = 0.0
    x[rng.random(400) < 0.2, 1] = np.nan
    y = np.nan_to_num(x[:, 1], nan=3.0) + x[:, 0]
    model = lightgbm.LGBMRegressor(
        n_estimators=10, num_leaves=6, verbose=-1, zero_as_missing=zero_as_missing
    ).fit(x, y)
    ensemble = boosters.parse_lightgbm(model.booster_.model_to_string())
    used = {int(m) for tree in ensemble.trees for m in tree.missing[tree.feature >= 0]}
    assert (boosters.MISSING_ZERO in used) == zero_as_missing
    probes = np.vstack([x, [[0.0, 1e-36, 0.0], [np.nan, np.nan, np.nan], [0, -1e-35, 0]]])
    np.testing.assert_allclose(
        boosters.predict_output(ensemble, probes)[:, 0], model.predict(probes), **TOLERANCE
    )


@pytest.mark.parametrize(
    "objective",
    ["binary:logistic", "reg:logistic", "count:poisson", "reg:gamma", "binary:hinge"],
)
def test_xgboost_objectives_base_score_and_missing_values(objective):
    """base_score is stored as a probability (or mean) and mapped through the link's
    inverse on load; NaN goes the default way."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 3))
    x[rng.random(300) < 0.2, 0] = np.nan
    y = (np.nan_to_num(x[:, 0], nan=1.0) + x[:, 1] > 0.4).astype(float)
    if objective in ("count:poisson", "reg:gamma"):
        y = y + 0.5
    model = xgboost.XGBRegressor(n_estimators=6, objective=objective).fit(x, y)
    ensemble = boosters.parse_xgboost(bytes(model.get_booster().__getstate__()["handle"]))
    got = boosters.predict_output(ensemble, x)[:, 0]
    np.testing.assert_allclose(got, model.predict(x), **TOLERANCE)
    margin = model.predict(x, output_margin=True)
    np.testing.assert_allclose(boosters.predict_margin(ensemble, x)[:, 0], margin, **TOLERANCE)


def test_xgboost_pruned_trees_and_best_iteration():
    """Exact trees pruned by gamma keep deleted nodes, which the description drops; a
    recorded best iteration limits the trees a prediction uses, as the wrapper does."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 3))
    y = x[:, 0] * 3 + rng.normal(size=300)
    model = xgboost.XGBRegressor(n_estimators=5, tree_method="exact", gamma=20).fit(x, y)
    raw = bytes(model.get_booster().__getstate__()["handle"])
    ensemble = boosters.parse_xgboost(raw)
    np.testing.assert_allclose(
        boosters.predict_output(ensemble, x)[:, 0], model.predict(x), **TOLERANCE
    )
    model.get_booster().set_attr(best_iteration="2")
    limited = boosters.parse_xgboost(bytes(model.get_booster().__getstate__()["handle"]))
    assert limited.iterations_used == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(
            boosters.predict_output(limited, x)[:, 0], model.predict(x), **TOLERANCE
        )


def test_every_child_comes_after_its_parent_and_every_node_has_one_parent():
    model, _ = lightgbm_with_categories()
    ensemble = boosters.parse_lightgbm(model.booster_.model_to_string())
    for tree in ensemble.trees:
        inner = np.flatnonzero(tree.feature >= 0)
        assert (tree.left[inner] > inner).all() and (tree.right[inner] > inner).all()
        children = np.concatenate([tree.left[inner], tree.right[inner]])
        assert sorted(children.tolist()) == list(range(1, tree.n_nodes))
        assert not tree.value.flags.writeable


# ------------------------------------------------------------------ refusals


@pytest.fixture(scope="module")
def xgb_raw() -> bytes:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(100, 3))
    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(x, (x[:, 0] > 0).astype(int))
    return bytes(model.get_booster().__getstate__()["handle"])


@pytest.fixture(scope="module")
def lgb_text() -> str:
    rng = np.random.default_rng(10)
    x = rng.normal(size=(200, 3))
    model = lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1)
    return model.fit(x, (x[:, 0] > 0).astype(int)).booster_.model_to_string()


def replace_typed(raw: bytes, key: str, index: int, value: float | int, tree: int = 0) -> bytes:
    """``raw`` with item ``index`` of typed array ``key`` of tree ``tree`` replaced."""
    name = key.encode()
    start = 0
    for _ in range(tree + 1):
        start = raw.index(b"L" + struct.pack(">q", len(name)) + name, start) + 1
    header = start + 8 + len(name)
    assert raw[header : header + 1] == b"["
    kind = chr(raw[header + 2])
    fmt = {"l": ">i", "d": ">f", "U": ">B", "L": ">q"}[kind]
    offset = header + 5 + 8 + index * struct.calcsize(fmt)
    return raw[:offset] + struct.pack(fmt, value) + raw[offset + struct.calcsize(fmt) :]


XGB_EDITS = {
    "feature out of range": (lambda r: replace_typed(r, "split_indices", 0, 10**8), "feature"),
    "child far away": (lambda r: replace_typed(r, "left_children", 0, 10**9), "out of range"),
    "negative child": (lambda r: replace_typed(r, "right_children", 0, -5), "out of range"),
    "root points at itself": (lambda r: replace_typed(r, "left_children", 0, 0), "after its"),
    "NaN threshold": (lambda r: replace_typed(r, "split_conditions", 0, math.nan), "finite"),
    "parent out of range": (lambda r: replace_typed(r, "parents", 1, 10**6), "parent"),
    "categorical split": (lambda r: replace_typed(r, "split_type", 0, 1), "categorical"),
    "truncated": (lambda r: r[: len(r) // 2], "malformed"),
    "trailing bytes": (lambda r: r + b"Z", "after the document"),
    "JSON text": (lambda r: b'{"Model": {}}', "JSON text"),
    "huge length": (
        lambda r: r.replace(
            b"L" + struct.pack(">q", 6) + b"Config", b"L" + struct.pack(">q", 2**62) + b"Config", 1
        ),
        "length",
    ),
}


@pytest.mark.parametrize("case", list(XGB_EDITS))
def test_damaged_xgboost_models_are_refused_by_name(xgb_raw, case):
    edit, expected = XGB_EDITS[case]
    with pytest.raises(BoosterError, match=expected):
        boosters.parse_xgboost(edit(xgb_raw))


def test_gblinear_and_unknown_objectives_are_refused():
    x = np.random.default_rng(11).normal(size=(50, 2))
    linear = xgboost.XGBRegressor(n_estimators=2, booster="gblinear").fit(x, x[:, 0])
    with pytest.raises(BoosterError, match="gblinear"):
        boosters.parse_xgboost(bytes(linear.get_booster().__getstate__()["handle"]))
    ranked = xgboost.XGBRegressor(n_estimators=2, objective="survival:cox").fit(x, np.abs(x[:, 0]))
    with pytest.raises(BoosterError, match="survival:cox"):
        boosters.parse_xgboost(bytes(ranked.get_booster().__getstate__()["handle"]))


def with_tree_sizes(text: str) -> str:
    """Model text with ``tree_sizes`` rewritten to its blocks' real sizes, as an attacker
    editing a tree would do."""
    head, _, rest = text.partition("\n\nTree=0\n")
    body, _, tail = ("Tree=0\n" + rest).partition("end of trees\n")
    blocks = ["Tree=" + block for block in body.split("Tree=")[1:]]
    sizes = " ".join(str(len(block)) for block in blocks)
    head = "\n".join(
        f"tree_sizes={sizes}" if line.startswith("tree_sizes=") else line
        for line in head.split("\n")
    )
    return head + "\n\n" + body + "end of trees\n" + tail


def first_value(key: str, value: str) -> Callable[[str], str]:
    """An edit setting the first value of ``key`` in the first tree."""

    def edit(text: str) -> str:
        start = text.index("\n" + key + "=") + len(key) + 2
        end = min(text.index(" ", start), text.index("\n", start))
        return with_tree_sizes(text[:start] + value + text[end:])

    return edit


LGB_EDITS = {
    "feature out of range": (first_value("split_feature", "99999"), "feature"),
    "child cycle": (first_value("left_child", "0"), "child"),
    "child far away": (first_value("right_child", "77"), "child"),
    "negative leaf far away": (first_value("right_child", "-900"), "child"),
    "NaN threshold": (first_value("threshold", "nan"), "non-number"),
    "infinite leaf": (first_value("leaf_value", "1e999"), "finite"),
    "unknown decision type": (first_value("decision_type", "64"), "decision_type"),
    "wrong tree size": (lambda t: t.replace("tree_sizes=", "tree_sizes=1", 1), "tree_sizes"),
    "control character": (lambda t: t.replace("version=v4", "version=v4\x00", 1), "control"),
    "linear tree": (
        lambda t: with_tree_sizes(t.replace("is_linear=0", "is_linear=1", 1)),
        "linear",
    ),
    "unknown objective": (
        lambda t: t.replace("objective=binary sigmoid:1", "objective=lambdarank", 1),
        "objective",
    ),
    "leaf count": (
        lambda t: with_tree_sizes(t.replace("num_leaves=4", "num_leaves=5", 1)),
        "values",
    ),
    "repeated line": (
        lambda t: with_tree_sizes(t.replace("num_cat=0", "num_cat=0\nnum_cat=0", 1)),
        "twice",
    ),
    "huge feature count": (
        lambda t: t.replace("max_feature_idx=2", "max_feature_idx=2000000000", 1),
        "max_feature_idx",
    ),
}


@pytest.mark.parametrize("case", list(LGB_EDITS))
def test_damaged_lightgbm_models_are_refused_by_name(lgb_text, case):
    edit, expected = LGB_EDITS[case]
    assert boosters.parse_lightgbm(with_tree_sizes(lgb_text)).n_features == 3
    with pytest.raises(BoosterError, match=expected):
        boosters.parse_lightgbm(edit(lgb_text))


def test_random_damage_is_refused_or_still_a_checked_model(xgb_raw, lgb_text):
    """Scrambled bytes: the parser either refuses them (BoosterError) or returns a model
    whose every tree passed the checks; nothing else escapes."""
    rng = random.Random(12)
    outcomes = {"refused": 0, "accepted": 0}
    for _ in range(150):
        data = bytearray(xgb_raw)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            ensemble = boosters.parse_xgboost(bytes(data))
        except BoosterError:
            outcomes["refused"] += 1
            continue
        outcomes["accepted"] += 1
        boosters.predict_output(ensemble, np.zeros((2, ensemble.n_features)))
    for _ in range(150):
        text = list(lgb_text)
        for _ in range(rng.randint(1, 4)):
            text[rng.randrange(len(text))] = rng.choice("0123456789-= .\nabe")
        try:
            ensemble = boosters.parse_lightgbm("".join(text))
        except BoosterError:
            outcomes["refused"] += 1
            continue
        outcomes["accepted"] += 1
        boosters.predict_output(ensemble, np.zeros((2, ensemble.n_features)))
    assert outcomes["refused"] > 100
