"""Progress of long operations (training, search), for whoever watches: the CLI's bar, and
the running run's ``sqml_runs.progress`` column that other connections read.

The domain calls ``report(stage, done, total)``; nothing happens unless a listener is
installed with ``listening(callback)``. Listeners are per thread, so one connection's
training never draws another thread's bar, and they nest: every listener installed on
the thread hears each report, the innermost first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, int, int], None]  # (stage, done, total); total 0 when unknown

_local = threading.local()


def _listeners() -> list[Listener]:
    listeners: list[Listener] | None = getattr(_local, "listeners", None)
    if listeners is None:
        listeners = _local.listeners = []
    return listeners


def report(stage: str, done: int = 0, total: int = 0) -> None:
    """Tell the current thread's listeners, if any, that ``stage`` reached ``done`` of
    ``total``. A listener's own failure never breaks the operation it watches."""
    listeners = getattr(_local, "listeners", None)
    if not listeners:
        return
    for listener in reversed(listeners):
        try:
            listener(stage, done, total)
        except Exception:  # noqa: BLE001 - a broken progress bar must not fail a training run
            pass


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send this thread's progress reports to ``listener`` (too) for the duration of the
    block."""
    listeners = _listeners()
    listeners.append(listener)
    try:
        yield
    finally:
        position = len(listeners) - 1 - listeners[::-1].index(listener)  # this block's own
        del listeners[position]
