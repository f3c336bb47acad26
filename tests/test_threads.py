"""Thread counts chosen inside the library, read from inside a fit and a prediction.

The suite limits every thread pool to one (conftest.py), which would hide whether the
library chooses: these tests run in a fresh interpreter without that limit, with
``OMP_NUM_THREADS`` and ``SQLITE_ML_THREADS`` as each case sets them, and read
threadpoolctl's view of OpenMP from inside hist gradient boosting's ``fit`` and
``_raw_predict``. They predict in the ``capi`` binding, where Python predicts every model:
the native binding scores hist gradient boosting in C, which calls no library and runs
no OpenMP thread (the last test checks that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sqlite_ml.ml import threads

from .helpers import native_built

PROBE = r"""
import json, sqlite3, sys
import threadpoolctl
from sklearn.ensemble import HistGradientBoostingRegressor
import sqlite_ml
from sqlite_ml.ml import threads

seen = {"fit": [], "predict": []}


def openmp_threads():
    return sorted({i["num_threads"] for i in threadpoolctl.threadpool_info()
                   if i["user_api"] == "openmp"})


def spy(name, original):
    def method(self, *args, **kwargs):
        seen[name].append(openmp_threads())
        return original(self, *args, **kwargs)
    return method


HistGradientBoostingRegressor.fit = spy("fit", HistGradientBoostingRegressor.fit)
HistGradientBoostingRegressor._raw_predict = spy(
    "predict", HistGradientBoostingRegressor._raw_predict)
if sys.argv[2] in ("big", "busy"):  # as if the data were large
    threads.SMALL_FIT_CELLS = threads.SMALL_PREDICT_ROWS = 0
# As if the machine were idle (the suite itself may be busy), or every CPU taken.
threads.busy_cpus = lambda samples=1: 64 if sys.argv[2] == "busy" else 0
conn = sqlite3.connect(":memory:")
sqlite_ml.register(conn)
conn.execute("SELECT sqml_load_dataset('diabetes')").fetchone()
try:
    answer = json.loads(conn.execute(
        "SELECT sqml_train('d', 'regression', 'hist_gradient_boosting', 'dataset_diabetes',"
        " 'target', 0.25, 'shuffle', ?)", (sys.argv[1],)).fetchone()[0])
except sqlite3.Error:
    print(json.dumps({"error": sqlite_ml.last_error(conn)}))
    raise SystemExit
fitted = seen["fit"]
seen["predict"].clear()
conn.execute("SELECT sqml_predict('d', json_array(0, 0, 0, 0, 0, 0, 0, 0, 0, 0))").fetchone()
print(json.dumps({
    "fit": fitted, "predict": seen["predict"], "answer": answer["threads"],
    "outside": openmp_threads(), "cores": threads.physical_cores(),
}))
"""

FAST = {"hyperparams": {"max_iter": 5}}


def probe(
    env: dict[str, str], options: dict | None = None, size: str = "small", binding: str = "capi"
) -> dict:
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in ("OMP_NUM_THREADS", "SQLITE_ML_THREADS", "SQLITE_ML_BINDING")
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps({**FAST, **(options or {})}), size],
        env={**clean, "SQLITE_ML_BINDING": binding, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_small_work_runs_on_one_thread_whatever_the_libraries_would_use() -> None:
    # Unset, OpenMP would use every CPU; with OMP_NUM_THREADS=4 it would use 4 even on a
    # single-CPU machine: inside the library, both are one thread for small data.
    unset = probe({})
    assert unset["outside"] == [os.cpu_count()]
    assert set(map(tuple, unset["fit"])) == {(1,)} and unset["answer"] == 1
    assert unset["predict"] == [[1]]
    four = probe({"OMP_NUM_THREADS": "4"})
    assert four["outside"] == [4]
    assert set(map(tuple, four["fit"])) == {(1,)} and four["predict"] == [[1]]


def test_large_work_uses_the_physical_cores_and_no_more_than_omp_num_threads() -> None:
    big = probe({}, size="big")
    cores = big["cores"]
    assert set(map(tuple, big["fit"])) == {(cores,)} and big["answer"] == cores
    assert big["predict"] == [[cores]]
    capped = probe({"OMP_NUM_THREADS": "1"}, size="big")
    assert set(map(tuple, capped["fit"])) == {(1,)} and capped["predict"] == [[1]]


def test_large_work_on_a_machine_whose_cpus_are_busy_runs_on_one_thread() -> None:
    busy = probe({}, size="busy")
    assert set(map(tuple, busy["fit"])) == {(1,)} and busy["answer"] == 1
    assert busy["predict"] == [[1]]


def test_busy_cpus_reads_the_running_tasks_of_this_machine() -> None:
    # This test's own thread is running and not counted; the count is never negative.
    assert 0 <= threads.busy_cpus() < 10_000
    assert 0 <= threads.busy_cpus(3) < 10_000


def test_the_environment_variable_and_the_option_override() -> None:
    env = probe({"SQLITE_ML_THREADS": "3"})
    assert set(map(tuple, env["fit"])) == {(3,)} and env["predict"] == [[3]]
    option = probe({"SQLITE_ML_THREADS": "3"}, {"threads": 2})
    assert set(map(tuple, option["fit"])) == {(2,)} and option["answer"] == 2
    assert option["predict"] == [[3]]  # prediction follows the environment
    automatic = probe({"SQLITE_ML_THREADS": "auto"})
    assert automatic["answer"] == 1


def test_bad_thread_counts_are_refused(iris) -> None:
    message = iris.train_error(
        "e", "classification", "dummy", "dataset_iris", "target", {"threads": 0}
    )
    assert "option threads must be a whole number of threads >= 1 or 'auto', got 0" in message
    refused = probe({"SQLITE_ML_THREADS": "many"})
    assert (
        "SQLITE_ML_THREADS must be a whole number of threads >= 1 or 'auto', got 'many'"
        in (refused["error"])
    )


@pytest.mark.skipif(not native_built(), reason="the native extension is not built")
def test_the_native_scorer_calls_no_library_to_predict() -> None:
    """In the native binding the model is scored in C: the library's predict is never
    called, so there is no thread count to choose (training is the same)."""
    native = probe({}, binding="native")
    assert set(map(tuple, native["fit"])) == {(1,)} and native["answer"] == 1
    assert native["predict"] == []


@pytest.mark.parametrize(("rows", "expected"), [(1, 1), (threads.SMALL_PREDICT_ROWS - 1, 1)])
def test_prediction_choice(monkeypatch, rows: int, expected: int) -> None:
    monkeypatch.setattr(threads, "busy_cpus", lambda samples=1: 0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SQLITE_ML_THREADS", raising=False)
    assert threads.for_prediction(rows) == expected
    assert threads.for_prediction(threads.SMALL_PREDICT_ROWS) == threads.physical_cores()
