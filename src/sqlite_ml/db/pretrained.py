"""Records of ``sqml_pretrained``: which pretrained embedding models were used in this
database (name, backend, version, the SHA-256 of each file and over all of them), never
the models' weights."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from .transactions import now, savepoint


def record_use(
    conn: sqlite3.Connection,
    *,
    name: str,
    backend: str,
    version: str | None,
    digest: str,
    files: Mapping[str, str],
    dimension: int,
    source: str,
) -> None:
    """One more use of a model: a new row for a new (name, digest), else ``uses`` + 1.
    Called from inside any query (see ``savepoint``'s ``lock_first``)."""
    stamp = now()
    with savepoint(conn, lock_first=False):
        conn.execute(
            "INSERT INTO sqml_pretrained(created_at, updated_at, name, backend, version, digest,"
            " files, dimension, source, uses, last_used_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
            " ON CONFLICT(name, digest) DO UPDATE SET uses = uses + 1,"
            " last_used_at = excluded.last_used_at, updated_at = excluded.updated_at,"
            " version = excluded.version, source = excluded.source",
            (
                stamp,
                stamp,
                name,
                backend,
                version,
                digest,
                json.dumps(dict(sorted(files.items()))),
                dimension,
                source,
                stamp,
            ),
        )
