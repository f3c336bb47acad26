"""Progress reports: listeners per thread (nesting), every fold of a search, and the
running run's ``sqml_runs.progress`` as another connection sees it."""

import json
import threading
import time

from sqlite_ml.ops import progress


def test_reports_reach_the_listener_only_while_listening():
    seen = []
    progress.report("before", 1, 2)
    with progress.listening(lambda *args: seen.append(args)):
        progress.report("fit", 1, 3)
    progress.report("after", 1, 2)
    assert seen == [("fit", 1, 3)]


def test_a_broken_listener_does_not_raise():
    def broken(*args):
        raise RuntimeError("boom")

    with progress.listening(broken):
        progress.report("fit")


def test_listeners_are_per_thread():
    seen = []
    with progress.listening(lambda *args: seen.append(args)):
        worker = threading.Thread(target=progress.report, args=("other", 1, 1))
        worker.start()
        worker.join()
    assert seen == []


def test_listeners_nest_and_the_innermost_hears_first():
    heard = []
    with progress.listening(lambda *args: heard.append(("outer", *args))):
        with progress.listening(lambda *args: heard.append(("inner", *args))):
            progress.report("fit", 1, 2)
        progress.report("fit", 2, 2)
    assert heard == [("inner", "fit", 1, 2), ("outer", "fit", 1, 2), ("outer", "fit", 2, 2)]


def test_a_search_reports_every_fold(iris):
    heard = []
    options = {"search": "grid", "search_params": {"n_neighbors": [3, 5]}, "search_args": {"cv": 3}}
    with progress.listening(lambda *args: heard.append(args)):
        iris.train_with("e", "classification", "knn", "dataset_iris", "target", options)
    searched = [(done, total) for stage, done, total in heard if stage == "search"]
    assert searched == [(n, 6) for n in range(7)]
    stages = [stage for stage, _, _ in heard]
    assert stages.index("load") < stages.index("search") < stages.index("fit")


def test_a_running_run_shows_its_progress_to_another_connection(iris, connect, monkeypatch):
    """Training pauses (in a progress listener) after its second fold; meanwhile another
    connection reads the run's progress column."""
    from sqlite_ml.ops import run_progress

    monkeypatch.setattr(run_progress, "INTERVAL", 0.0)
    iris.conn.close()  # training runs on a connection of its own thread
    reached, release = threading.Event(), threading.Event()
    outcome = {}

    def pause(stage, done, total):
        if stage == "search" and done == 2:
            reached.set()
            release.wait(60)

    def train():
        conn = connect(check_same_thread=False)  # the fixture closes it from this thread
        options = (
            '{"search": "grid", "search_params": {"n_neighbors": [3, 5]}, "search_args": {"cv": 2}}'
        )
        try:
            with progress.listening(pause):
                outcome["result"] = conn.execute(
                    "SELECT sqml_train('e', 'classification', 'knn', 'dataset_iris', 'target',"
                    " 0.25, 'shuffle', ?)",
                    (options,),
                ).fetchone()[0]
        except Exception as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    worker = threading.Thread(target=train)
    worker.start()
    try:
        assert reached.wait(120), outcome
        watcher = connect(register=False)
        status, text = watcher.execute(
            "SELECT status, progress FROM sqml_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        seen = json.loads(text)
        assert status == "pending"
        assert (seen["stage"], seen["done"], seen["total"]) == ("search", 2, 4)
        assert seen["updated_at"]
    finally:
        release.set()
        worker.join(120)
    assert "result" in outcome, outcome
    status, text = watcher.execute("SELECT status, progress FROM sqml_runs").fetchone()
    assert status == "success" and json.loads(text)["stage"] != "search"


def test_progress_never_stalls_training_on_a_locked_database(iris, connect):
    """Another connection holds the write lock: each progress write waits a moment at
    most, and after a few in a row the run writes no more progress (it goes on)."""
    from sqlite_ml.ops.run_progress import MAX_FAILURES, RunProgress

    other = connect(register=False, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    recorder = RunProgress(iris.conn, 1, interval=0.0)
    started = time.monotonic()
    for step in range(MAX_FAILURES + 2):
        recorder("fit", step, 10)
    assert recorder.gave_up and time.monotonic() - started < MAX_FAILURES * 1.0
    other.execute("ROLLBACK")
