"""Dask: a real scheduler and two worker processes on 127.0.0.1 (LocalCluster with
processes), searches and XGBoost/LightGBM training sent to them through sqml_train, and
proof from the records that the tasks ran in the workers' processes."""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("distributed")

from sqlite_ml.faces.cli import cli  # noqa: E402

SEARCH = {
    "search": "grid",
    "search_params": {"C": [0.1, 1, 10, 100]},
    "search_args": {"cv": 3},
    "random_state": 5,
}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as local:
        with distributed.Client(local) as client:
            pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        yield local.scheduler_address, pids


def recorded_pids(text):
    return {int(pid) for pid in re.findall(r"\(pid (\d+)\)", text)}


def test_a_search_runs_its_folds_on_the_workers_and_scores_as_in_process(iris, cluster):
    address, worker_pids = cluster
    on_cluster = iris.train_with(
        "s",
        "classification",
        "logistic_regression",
        "dataset_iris",
        "target",
        {**SEARCH, "dask": address},
    )
    here = iris.train_with(
        "h", "classification", "logistic_regression", "dataset_iris", "target", SEARCH
    )
    assert on_cluster["engine"] == "dask" and on_cluster["best_params"] == here["best_params"]
    trials = iris.rows(
        "SELECT run_id, candidate, mean_score, std_score, rank, workers FROM sqml_search_trials"
        " ORDER BY run_id, candidate"
    )
    remote = [t for t in trials if t[0] == on_cluster["run_id"]]
    local = [t for t in trials if t[0] == here["run_id"]]
    assert [t[1:5] for t in remote] == [t[1:5] for t in local]  # the same scores exactly
    assert all(t[5] is None for t in local)
    ran = set().union(*(recorded_pids(t[5]) for t in remote))
    assert ran and ran <= worker_pids  # every fold ran in a worker process, none here
    engine, details, scheduler, workers = iris.rows(
        "SELECT engine, engine_details, dask_scheduler, dask_workers FROM sqml_runs WHERE id = ?",
        (on_cluster["run_id"],),
    )[0]
    assert (engine, scheduler, workers) == ("dask", address, 2)
    details = json.loads(details)
    assert details["tasks"] == 12 and sum(details["tasks_by_worker"].values()) == 12


def test_search_progress_reports_each_candidate(iris, cluster):
    from sqlite_ml.ops import progress

    seen = []
    with progress.listening(lambda stage, done, total: seen.append((stage, done, total))):
        iris.train_with(
            "p",
            "classification",
            "logistic_regression",
            "dataset_iris",
            "target",
            {**SEARCH, "dask": cluster[0]},
        )
    assert [s for s in seen if s[0] == "search"] == [("search", n, 4) for n in range(5)]


def test_xgboost_trains_over_partitions_the_workers_read(db, cluster):
    address, worker_pids = cluster
    db.load("iris")
    db.conn.execute(
        "CREATE TABLE mixed AS SELECT * FROM dataset_iris ORDER BY (rowid * 7919) % 151"
    )
    db.conn.commit()  # the workers open the file themselves
    result = db.train_with("x", "classification", "xgboost", "mixed", "target", {"dask": address})
    assert result["engine"] == "dask" and result["metrics"]["accuracy"] > 0.8
    details = json.loads(db.value("SELECT engine_details FROM sqml_runs"))
    held = details["partitions_by_worker"]
    assert sum(held.values()) == details["partitions"] >= 4
    assert recorded_pids(" ".join(held)) <= worker_pids
    assert db.value("SELECT split_scheme FROM sqml_runs") == "hash"
    assert db.predict("x", [5.1, 3.5, 1.4, 0.2]) == 0.0


def test_lightgbm_regression_trains_on_the_cluster(db, cluster):
    db.load("diabetes")
    db.conn.commit()
    result = db.train_with(
        "l", "regression", "lightgbm", "dataset_diabetes", "target", {"dask": cluster[0]}
    )
    assert result["engine"] == "dask" and result["metrics"]["r2"] > 0
    assert db.value("SELECT dask_workers FROM sqml_runs") == 2


def test_lightgbm_classes_missing_on_a_worker_are_a_clear_error(cluster):
    """LightGBM's Dask classifier fails with a reset socket when a worker lacks a class:
    the check before it names the worker instead. Blocks placed on chosen workers."""
    import dask.array as da
    import numpy as np

    from sqlite_ml.errors import SqmlError
    from sqlite_ml.ops.dask_engine import _require_classes_on_every_worker

    with distributed.Client(cluster[0]) as client:
        first, second = sorted(client.scheduler_info()["workers"])
        placed = [
            client.scatter(np.array([0.0, 1.0, 2.0]), workers=[first]),
            client.scatter(np.array([0.0, 1.0]), workers=[second]),
        ]
        y = da.concatenate([da.from_delayed(f, shape=(np.nan,), dtype=float) for f in placed])
        y = client.persist(y)
        distributed.wait(y)
        with pytest.raises(SqmlError, match=f"needs rows of all 3 classes.*{second}"):
            _require_classes_on_every_worker(client, y, 3)
        _require_classes_on_every_worker(client, y, 2)  # every worker has both of 2


def test_the_environment_variable_names_the_scheduler(iris, cluster, monkeypatch):
    monkeypatch.setenv("SQLITE_ML_DASK_SCHEDULER", cluster[0])
    result = iris.train_with(
        "e", "classification", "logistic_regression", "dataset_iris", "target", SEARCH
    )
    assert result["engine"] == "dask"
    # Without anything to send, the variable is not used (an option would be refused).
    plain = iris.train_with("f", "classification", "svc", "dataset_iris", "target")
    assert "engine" not in plain


def test_an_unreachable_scheduler_fails_the_run_quickly_and_clearly(iris):
    started = time.monotonic()
    error = None
    try:
        iris.train_with(
            "u",
            "classification",
            "logistic_regression",
            "dataset_iris",
            "target",
            {**SEARCH, "dask": "tcp://127.0.0.1:9", "dask_timeout": 2},
        )
    except Exception as caught:  # noqa: BLE001
        error = str(caught)
    assert error is not None and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in error
    assert time.monotonic() - started < 30
    assert iris.value("SELECT status FROM sqml_runs") == "failed"


def test_a_scheduler_without_workers_is_an_error_not_a_hang(iris):
    with distributed.LocalCluster(
        n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None
    ) as empty:
        with pytest.raises(Exception, match="has no worker after 2 s"):
            iris.train_with(
                "w",
                "classification",
                "logistic_regression",
                "dataset_iris",
                "target",
                {**SEARCH, "dask": empty.scheduler_address, "dask_timeout": 2},
            )


def test_dask_options_are_checked_before_anything_is_written(iris):
    error = iris.train_error(
        "n", "classification", "svc", "dataset_iris", "target", {"dask": "tcp://127.0.0.1:9"}
    )
    assert "has nothing to send" in error
    error = iris.train_error("n", "classification", "svc", "dataset_iris", "target", {"dask": 3})
    assert "option dask must be a scheduler address" in error
    error = iris.train_error(
        "n", "classification", "svc", "dataset_iris", "target", {"dask_timeout": 1}
    )
    assert "dask_timeout needs option dask" in error


def test_a_missing_extra_is_named(iris, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(Exception, match=r"pip install 'sqlite-ml\[dask\]'"):
        iris.train_with(
            "x",
            "classification",
            "logistic_regression",
            "dataset_iris",
            "target",
            {**SEARCH, "dask": "tcp://127.0.0.1:9"},
        )


def test_the_cli_sends_a_search_to_the_cluster(db_path, iris, cluster):
    iris.conn.commit()
    options = json.dumps({**SEARCH, "dask": cluster[0]})
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(db_path),
            "c",
            "-t",
            "classification",
            "-a",
            "logistic_regression",
            "-d",
            "dataset_iris",
            "-y",
            "target",
            "--options",
            options,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "search" in result.stderr
    assert iris.value("SELECT engine FROM sqml_runs") == "dask"
