"""Progress reports reach a listener only inside ``listening`` and only on its thread."""

import threading

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
