"""Runs never lie: a run records its process, host and heartbeat; a run whose process was
killed is shown 'interrupted' by `sqml runs`, recorded so by the next writer, and the views
show a pending run whose heartbeat stopped as interrupted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from sqlite_ml.db.schema import HEARTBEAT_STALE_SECONDS
from sqlite_ml.faces.cli import cli

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kill -9 is POSIX")

# A training slow enough to be killed in the middle: many rows, an MLP with many epochs.
SLOW_TRAINER = r"""
import sqlite3, sys
import sqlite_ml
conn = sqlite3.connect(sys.argv[1])
sqlite_ml.register(conn)
conn.execute(
    "SELECT sqml_train('slow', 'regression', 'mlp', 'big', 'y', 0.25, 'shuffle', ?)",
    ('{"hyperparams": {"max_iter": 100000, "tol": 0, "n_iter_no_change": 100000,'
     ' "hidden_layer_sizes": [256, 256]}}',),
).fetchone()
"""


@pytest.fixture
def big(db):
    db.conn.execute("CREATE TABLE big (a REAL, b REAL, c REAL, y REAL)")
    db.conn.executemany(
        "INSERT INTO big VALUES (?, ?, ?, ?)",
        [(i % 7, i % 11, i % 13, (i % 7) * 2.0 + i % 3) for i in range(3000)],
    )
    db.conn.commit()
    return db


def wait_for_pending_run(db, seconds: float = 120) -> tuple[int, int, str, str | None]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = db.conn.execute(
            "SELECT id, pid, host, heartbeat_at FROM sqml_runs WHERE status = 'pending'"
        ).fetchone()
        if row is not None:
            return row
        time.sleep(0.2)
    raise AssertionError("the training never recorded its pending run")


def test_a_killed_training_is_shown_and_recorded_as_interrupted(big, tmp_path):
    db = big
    trainer = subprocess.Popen(
        [sys.executable, "-c", SLOW_TRAINER, str(db.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        run_id, pid, host, heartbeat = wait_for_pending_run(db)
        assert pid == trainer.pid
        assert host == socket.gethostname()
        assert heartbeat is not None  # a file database reached through Python: it beats
        # while it trains, every view and report says pending
        assert db.value("SELECT status FROM sqml_runs_overview WHERE run_id = ?", (run_id,)) == (
            "pending"
        )
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait(timeout=30)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
    assert trainer.returncode == -signal.SIGKILL

    # `sqml runs` shows it interrupted at once, without writing
    result = CliRunner().invoke(cli, ["runs", str(db.path), "slow", "--json"])
    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.output)
    assert shown["status"] == "interrupted"
    assert db.value("SELECT status FROM sqml_runs WHERE id = ?", (run_id,)) == "pending"

    # the next writer records it, with why
    db.train("other", "regression", "linear_regression", "big", "y")
    status, error, finished = db.conn.execute(
        "SELECT status, error, finished_at FROM sqml_runs WHERE id = ?", (run_id,)
    ).fetchone()
    assert status == "interrupted"
    assert f"pid {pid}" in error and "ended before it finished" in error
    assert finished is not None
    assert db.value("SELECT status FROM sqml_runs_overview WHERE run_id = ?", (run_id,)) == (
        "interrupted"
    )
    assert db.value("SELECT count(*) FROM sqml_leaderboard WHERE run_id = ?", (run_id,)) == 0


def test_the_views_show_a_run_whose_heartbeat_stopped_as_interrupted(iris):
    """A run of another host (whose process cannot be asked) that stopped beating."""
    db = iris
    db.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    old = time.strftime(
        "%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - HEARTBEAT_STALE_SECONDS - 60)
    )
    fresh = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    for heartbeat in (old, fresh, None):
        db.conn.execute(
            "INSERT INTO sqml_runs(status, algorithm, dataset, target, test_size,"
            " split_strategy, experiment_id, pid, host, heartbeat_at)"
            " VALUES ('pending', 'knn', 'dataset_iris', 'target', 0.25, 'shuffle', 1, 4242,"
            " 'elsewhere', ?)",
            (heartbeat,),
        )
    db.conn.commit()
    shown = db.rows("SELECT status FROM sqml_runs_overview ORDER BY run_id")
    assert shown == [("success",), ("interrupted",), ("pending",), ("pending",)]
    db.value("SELECT sqml_deploy('e', 'best_score')")  # a writer records the stale one
    stored = db.rows("SELECT status FROM sqml_runs ORDER BY id")
    assert stored == [("success",), ("interrupted",), ("pending",), ("pending",)]


def test_a_run_records_its_process(iris):
    db = iris
    result = db.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    pid, host, heartbeat = db.conn.execute(
        "SELECT pid, host, heartbeat_at FROM sqml_runs WHERE id = ?", (result["run_id"],)
    ).fetchone()
    assert (pid, host) == (os.getpid(), socket.gethostname())
    assert heartbeat is not None


def test_no_heartbeat_inside_the_callers_transaction(iris):
    """Inside the caller's own transaction the run row is invisible to other connections
    until it commits: no heartbeat is kept (heartbeat_at NULL), so no view can judge it
    stale."""
    db = iris
    db.conn.execute("BEGIN")
    result = db.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    db.conn.commit()
    assert db.value("SELECT heartbeat_at FROM sqml_runs WHERE id = ?", (result["run_id"],)) is None


def test_the_heartbeat_beats_while_the_run_trains(iris, monkeypatch):
    from sqlite_ml.ops import runs

    db = iris
    db.train("e", "classification", "logistic_regression", "dataset_iris", "target")
    db.conn.execute(
        "INSERT INTO sqml_runs(status, algorithm, dataset, target, test_size, split_strategy,"
        " experiment_id, heartbeat_at) VALUES ('pending', 'knn', 'd', 't', 0.25, 's', 1,"
        " '2000-01-01 00:00:00.000')"
    )
    db.conn.commit()
    run_id = db.value("SELECT max(id) FROM sqml_runs")
    monkeypatch.setattr(runs, "HEARTBEAT_SECONDS", 0.05)
    with runs.Heartbeat(runs.heartbeat_path(db.conn), run_id):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            beat = db.value("SELECT heartbeat_at FROM sqml_runs WHERE id = ?", (run_id,))
            if beat > "2000-01-01 00:00:00.000":
                break
            time.sleep(0.05)
    assert beat[:4] == time.strftime("%Y", time.gmtime())
    assert db.value("SELECT status FROM sqml_runs_overview WHERE run_id = ?", (run_id,)) == (
        "pending"
    )
