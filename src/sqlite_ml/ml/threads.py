"""How many threads the numerical libraries (OpenMP in scikit-learn, XGBoost and
LightGBM; OpenBLAS in numpy and SciPy) may use around a fit or a prediction.

Their default, every core, hurts on small work and on a busy machine: threads that wait
on each other cost more than the work (measured on a busy 2-core machine: hist gradient
boosting fitted in 23.6 s by default against 6.0 s with one thread; a single-row
prediction took 100 ms against 10 ms). So the library chooses:

- one thread for small data (fewer than ``SMALL_FIT_CELLS`` cells to fit on, fewer than
  ``SMALL_PREDICT_ROWS`` rows to predict: a single row always);
- otherwise the physical cores this process may use, less the CPUs other work keeps
  busy at that moment (at least one), and no more than ``OMP_NUM_THREADS`` when the user
  set it. On a busy machine OpenMP threads spin waiting for each other while another
  process holds their CPU: hist gradient boosting on 50,000 rows x 20 took 36-49 s on
  two threads beside two busy processes, 5.2 s on one.

The ``threads`` option of ``sqml_train`` and the ``SQLITE_ML_THREADS`` environment
variable (a number, or ``auto``) override the choice. Limits are set with threadpoolctl
around each call and put back after it; an OpenMP limit holds for the calling thread
only, so concurrent connections each get their own.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import SqmlError, describe

ENVIRONMENT_VARIABLE = "SQLITE_ML_THREADS"
SMALL_FIT_CELLS = 200_000  # rows x encoded columns
SMALL_PREDICT_ROWS = 2_000


def _requested(value: object, where: str) -> int | None:
    """A thread count as an option or the environment gives it; None for 'auto'."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SqmlError(
            f"{where} must be a whole number of threads >= 1 or 'auto', got {describe(value)}"
        )
    return value


def environment_threads() -> int | None:
    return _requested(os.environ.get(ENVIRONMENT_VARIABLE), ENVIRONMENT_VARIABLE)


@functools.cache
def physical_cores() -> int:
    """The physical cores this process may run on (CPU affinity and cgroup quotas
    counted, as joblib counts them)."""
    import joblib

    return max(1, int(joblib.cpu_count(only_physical_cores=True)))


def _user_cap() -> int | None:
    """``OMP_NUM_THREADS`` as set by the user: the automatic choice never exceeds it."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0]))
    except ValueError:
        return None


def _allowed_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def busy_cpus(samples: int = 1) -> int:
    """CPUs that other work keeps busy now: the tasks ready to run on the machine
    (Linux's ``/proc/loadavg`` running count) less the thread asking, the median of
    ``samples`` readings 5 ms apart; 0 where the system does not say. In a container the
    count is the host's, so a busy host means one thread: never much slower than the
    other choice, while oversubscribed OpenMP threads can be ten times slower."""
    readings = []
    for sample in range(samples):
        if sample:
            time.sleep(0.005)
        try:
            with open("/proc/loadavg", encoding="ascii") as file:
                running = int(file.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        readings.append(max(0, running - 1))
    return sorted(readings)[len(readings) // 2]


def _automatic(small: bool, samples: int = 1) -> int:
    if small:
        return 1
    cap = _user_cap()
    cores = physical_cores() if cap is None else min(cap, physical_cores())
    if cores == 1:
        return 1
    return max(1, min(cores, _allowed_cpus() - busy_cpus(samples)))


def for_fit(rows: int, columns: int, option: int | None = None) -> int:
    """Threads for fitting on ``rows`` x ``columns`` (``option``: the run's ``threads``)."""
    chosen = option if option is not None else environment_threads()
    return chosen if chosen is not None else _automatic(rows * columns < SMALL_FIT_CELLS, 5)


def for_big_fit(option: int | None = None) -> int:
    """Threads for a fit on data too big to hold (streamed training)."""
    chosen = option if option is not None else environment_threads()
    return chosen if chosen is not None else _automatic(False, 5)


def for_prediction(rows: int) -> int:
    """Threads for predicting ``rows`` rows at once."""
    chosen = environment_threads()
    return chosen if chosen is not None else _automatic(rows < SMALL_PREDICT_ROWS)


def check_option(value: object) -> int | None:
    return _requested(value, "option threads")


class _Limits:
    """The thread pools of the libraries loaded in this process, found once (finding
    them costs milliseconds; setting a limit, a few microseconds)."""

    def __init__(self) -> None:
        from threadpoolctl import ThreadpoolController

        from . import catalogue  # noqa: F401 - loads XGBoost and LightGBM (and their OpenMP)

        libraries = ThreadpoolController().lib_controllers
        self.openmp = [lib for lib in libraries if lib.user_api == "openmp"]
        self.every = [lib for lib in libraries if lib.user_api in ("openmp", "blas")]

    @contextmanager
    def limited(self, threads: int, libraries: Sequence[Any]) -> Iterator[None]:
        previous = [lib.get_num_threads() for lib in libraries]
        changed = [
            (lib, before)
            for lib, before in zip(libraries, previous, strict=True)
            if before != threads
        ]
        for lib, _ in changed:
            lib.set_num_threads(threads)
        try:
            yield
        finally:
            for lib, before in changed:
                lib.set_num_threads(before)


@functools.cache
def _limits() -> _Limits:
    return _Limits()


@contextmanager
def fitting(threads: int) -> Iterator[None]:
    """OpenMP and BLAS limited to ``threads`` for a fit (BLAS limits are process-wide:
    a fit is the one place worth them)."""
    limits = _limits()
    with limits.limited(threads, limits.every):
        yield


@contextmanager
def predicting(rows: int) -> Iterator[None]:
    """OpenMP limited for a prediction of ``rows`` rows, in this thread only (BLAS is
    left alone: its limit would reach every thread of the process)."""
    limits = _limits()
    with limits.limited(for_prediction(rows), limits.openmp):
        yield
