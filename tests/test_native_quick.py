"""The C quick path for linear rows (``_native.LinearQuick``) answers exactly as the
Python one it replaces: the same value, or the same "unsure" (None), for every input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from sqlite_ml.ml import predictors
from sqlite_ml.ml.labels import NUMERIC_LABELS as NUMERIC
from sqlite_ml.ml.labels import TEXT_LABELS
from sqlite_ml.ml.predictors import compile_predictor, compile_row_predictor

pytest.importorskip("sqlite_ml._native")

from sklearn.preprocessing import StandardScaler  # noqa: E402


def _pipeline(model):
    return Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", model)])


def _quick_pair(pipeline, label_kind, monkeypatch):
    exact = compile_predictor(pipeline)
    _, native = compile_row_predictor(pipeline, exact, label_kind)
    monkeypatch.setattr(predictors, "NATIVE_QUICK", False)
    _, python = compile_row_predictor(pipeline, exact, label_kind)
    monkeypatch.setattr(predictors, "NATIVE_QUICK", True)
    assert type(native).__name__ == "LinearQuick"
    assert python is not None and type(python).__name__ == "function"
    return exact, native, python


def _inputs(rng, x, width):
    """Rows as SQL would pass them (floats, integers, NULL, text, a blob, a huge integer),
    NaN and infinities, and a row of zeros."""
    rows = [list(row) for row in x[:60].tolist()]
    rows += [[int(v * 10) for v in row] for row in x[60:80].tolist()]
    odd = [None, "abc", b"\x00", 10**400, float("nan"), float("inf"), -float("inf")]
    for value in odd:
        row = x[rng.integers(len(x))].tolist()
        row[rng.integers(width)] = value
        rows.append(row)
    rows.append([0.0] * width)
    rows.append([1e300] * width)
    return rows


@pytest.mark.parametrize("case", ["binary", "three", "regression"])
def test_native_quick_answers_as_the_python_quick_path(case, monkeypatch):
    rng = np.random.default_rng(3)
    width = 5
    x = rng.normal(size=(300, width)) * [1, 10, 0.1, 5, 1]
    score = x @ np.array([1.0, -0.2, 3.0, 0.1, 0.0])
    if case == "regression":
        pipeline, kind = _pipeline(LinearRegression()), NUMERIC
        y = score * 3 + 1
    else:
        pipeline, kind = _pipeline(LogisticRegression()), TEXT_LABELS
        y = np.where(score > 0, "yes", "no")
        if case == "three":
            y = np.where(score > 1, "high", np.where(score < -1, "low", "mid"))
    pipeline.fit(x, y)
    exact, native, python = _quick_pair(pipeline, kind, monkeypatch)
    rows = _inputs(rng, x, width)
    answered = 0
    for row in rows:
        expected = python(row)
        got = native(row)
        assert got == expected or (got != got and expected != expected), row
        if got is not None:
            answered += 1
            reference = exact(np.array([row], dtype=np.float64))[0]
            if kind == NUMERIC:
                assert got == pytest.approx(float(reference), rel=1e-9)
            else:
                assert got == str(reference)
    assert answered >= 60
    # A row of the wrong length (callers check it first) is refused, never truncated.
    assert native([1.0] * (width - 1)) is None
    assert native([1.0] * (width + 1)) is None


def test_native_quick_reads_json_text_as_sqlite_writes_it(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 3))
    pipeline = _pipeline(LinearRegression()).fit(x, x @ [1.0, 2.0, -1.0] + 0.5)
    _, native, python = _quick_pair(pipeline, NUMERIC, monkeypatch)
    keys = ('"a"', '"b c"', '"d"')
    row = [0.25, -1.5e-3, 3.0]
    assert native.text('{"a":0.25,"b c":-0.0015,"d":3.0}', keys) == python(row)
    assert native.text("[0.25,-1.5e-3,3]", keys) == python(row)
    refused = [
        '{"a":0.25,"d":3.0,"b c":-0.0015}',  # another order
        '{"a":0.25, "b c":-0.0015, "d":3.0}',  # spaces: the Python reader's case
        '{"a":0.25,"b c":null,"d":3.0}',
        '{"a":0.25,"b c":"1","d":3.0}',
        '{"a":0.25,"b c":1e5-3,"d":3.0}',  # not a number float() reads
        "[0.25,-0.0015]",
        "[0.25,-0.0015,3.0,4.0]",
        "[0.25,-0.0015,3.0] ",
        "",
        "{}",
        json.dumps({"a": 1}),
    ]
    for text in refused:
        assert native.text(text, keys) is None, text


def test_native_quick_batch_reads_arrays_of_rows(monkeypatch):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 2))
    pipeline = _pipeline(LogisticRegression()).fit(x, np.where(x[:, 0] > x[:, 1], "a", "b"))
    _, native, python = _quick_pair(pipeline, TEXT_LABELS, monkeypatch)
    keys = ('"p"', '"q"')
    rows = x[:20].tolist()
    text = "[" + ",".join(f'{{"p":{p!r},"q":{q!r}}}' for p, q in rows) + "]"
    assert native.batch(text, keys) == [python(row) for row in rows]
    assert native.batch("[[1.5,2],[3,-4e-2]]", keys) == [python([1.5, 2]), python([3, -0.04])]
    for refused in ("[]", "[[1,2],]", "[[1,2]", "[[1,2],[1,null]]", "[[1,2]] ", "{}", "[1,2]"):
        assert native.batch(refused, keys) is None, refused
