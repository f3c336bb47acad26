"""Our queries on a caller's connection: tuples and str, whatever factories it set."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def plain_rows(conn: sqlite3.Connection | Any) -> Iterator[None]:
    """Our queries expect tuples and str: the caller's row and text factories are set
    aside while they run and put back after, whatever happens."""
    row_factory, text_factory = conn.row_factory, conn.text_factory
    if row_factory is None and text_factory is str:
        yield
        return
    conn.row_factory, conn.text_factory = None, str
    try:
        yield
    finally:
        conn.row_factory, conn.text_factory = row_factory, text_factory
