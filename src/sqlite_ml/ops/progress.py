"""Progress of long operations (training, search), for faces that show it (the CLI's bar).

The domain calls ``report(stage, done, total)``; nothing is shown unless a face installs a
listener with ``listening(callback)``. Listeners are per thread, so one connection's training
never draws another thread's bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, int, int], None]  # (stage, done, total); total 0 when unknown

_local = threading.local()


def report(stage: str, done: int = 0, total: int = 0) -> None:
    """Tell the current thread's listener, if any, that ``stage`` reached ``done`` of ``total``.

    A listener's own failure never breaks the operation it watches."""
    listener: Listener | None = getattr(_local, "listener", None)
    if listener is None:
        return
    try:
        listener(stage, done, total)
    except Exception:  # noqa: BLE001 - a broken progress bar must not fail a training run
        pass


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send this thread's progress reports to ``listener`` for the duration of the block."""
    previous = getattr(_local, "listener", None)
    _local.listener = listener
    try:
        yield
    finally:
        _local.listener = previous
