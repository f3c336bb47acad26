"""A database from someone else crashes nothing: every model of the hostile corpus
(tests/hostile.py) is refused with one clear SQL error naming the model, within seconds,
by sqml_predict, sqml_predict_batch and sqml_predict_table, in a child process per binding
so that a crash or a hang fails a test instead of killing the run."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import sqlite_ml

from . import hostile
from .helpers import native_built

CHILD = r"""
import json, sqlite3, sys, time
import sqlite_ml
conn = sqlite3.connect(sys.argv[1])
sqlite_ml.register(conn)
mode = sqlite_ml.binding_mode(conn)
probe = sys.argv[3]
calls = [
    ("predict", "SELECT sqml_predict(?, ?)", lambda name: (name, probe)),
    ("batch", "SELECT sqml_predict_batch(?, ?)", lambda name: (name, "[" + probe + "]")),
]
if mode == "native":
    calls.append((
        "table",
        "SELECT prediction FROM sqml_predict_table(?, 'dataset_iris') WHERE row_id = 1",
        lambda name: (name,),
    ))
for name in json.loads(sys.argv[2]):
    for call, sql, args in calls:
        print(json.dumps({"start": [name, call]}), flush=True)
        started = time.perf_counter()
        try:
            value = conn.execute(sql, args(name)).fetchone()[0]
            outcome = {"ok": value}
        except sqlite3.Error as error:
            outcome = {"error": str(error)}
        outcome.update(case=name, call=call, seconds=time.perf_counter() - started, mode=mode)
        print(json.dumps(outcome), flush=True)
"""

BINDINGS = ["native", "capi"] if native_built() else ["capi"]
PER_CALL_SECONDS = 10


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_load_dataset('iris')")
    models = hostile.build(conn)
    conn.close()
    return path, models


@pytest.fixture(scope="module", params=BINDINGS)
def outcomes(request: pytest.FixtureRequest, corpus) -> dict[tuple[str, str], dict[str, Any]]:
    """Every case's three calls in one child process per binding; a case the child never
    finished (it crashed or hung there) is recorded as such."""
    path, _ = corpus
    env = {**os.environ, "SQLITE_ML_BINDING": request.param}
    names = [case.name for case in hostile.CASES]
    budget = PER_CALL_SECONDS * 3 * len(names)
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), json.dumps(names), json.dumps(hostile.PROBE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        try:
            stdout, stderr = child.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            child.kill()
            stdout, stderr = child.communicate()
    results: dict[tuple[str, str], dict[str, Any]] = {}
    pending = None
    for line in stdout.splitlines():
        record = json.loads(line)
        if "start" in record:
            pending = tuple(record["start"])
        else:
            results[(record["case"], record["call"])] = record
            pending = None
    if pending is not None:
        how = (
            f"killed by signal {-child.returncode} ({signal.Signals(-child.returncode).name})"
            if child.returncode is not None and child.returncode < 0
            else f"still running after {time.monotonic() - started:.0f} s"
        )
        results[pending] = {"crashed": f"{how}; stderr: {stderr[-2000:]}"}
    results[("", "")] = {"mode": request.param, "returncode": child.returncode}
    return results


@pytest.mark.parametrize("case", hostile.CASES, ids=[case.name for case in hostile.CASES])
def test_hostile_model_gets_a_clear_error(corpus, outcomes, case):
    _, models = corpus
    model_id, before = models[case.name]
    mode = outcomes[("", "")]["mode"]
    calls = ["predict", "batch"] + (["table"] if mode == "native" else [])
    for call in calls:
        outcome = outcomes.get((case.name, call))
        assert outcome is not None, f"{case.name}/{call} never ran (an earlier case crashed)"
        assert "crashed" not in outcome, f"{case.name}/{call}: {outcome['crashed']}"
        assert outcome["seconds"] < PER_CALL_SECONDS, outcome
        if case.expected is None:  # harmless once checked: the untouched model's answer
            assert "ok" in outcome, outcome
            assert outcome["ok"] == (before if call != "batch" else json.dumps([before])), outcome
            continue
        assert "error" in outcome, outcome
        message = outcome["error"]
        assert not re.search(r": unexpected \w+", message), message  # a leaked exception
        assert f"model {model_id}" in message, message
        assert case.expected in message, message


def test_the_child_processes_ended_normally(outcomes):
    assert outcomes[("", "")]["returncode"] == 0


def test_every_algorithm_of_the_catalogue_has_its_structural_checks():
    """A new algorithm without checks could neither be stored nor loaded: this names it."""
    from sqlite_ml.ml import validation
    from sqlite_ml.ml.catalogue import all_estimator_classes

    boosted = ("xgboost", "lightgbm")  # checked against their parsed booster instead
    unchecked = [
        cls.__name__
        for cls in all_estimator_classes()
        if cls not in validation._CHECKS
        and not cls.__module__.startswith(boosted)
        and not cls.__name__.startswith("XGBoost")
    ]
    assert unchecked == []
