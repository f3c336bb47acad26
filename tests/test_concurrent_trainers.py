"""Concurrent trainers wait instead of failing: three processes training twenty times each
into the same and into their own experiments, in WAL and in rollback-journal mode, all
succeed (each writer takes the write lock first, so SQLite's busy timeout applies)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sqlite_ml

PROCESSES = 3
TRAININGS = 20

TRAINER = r"""
import json, sqlite3, sys, time
from pathlib import Path
import sqlite_ml
path, me, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
conn = sqlite3.connect(path)  # the default busy timeout (5 s)
sqlite_ml.register(conn)
while not go.exists():
    time.sleep(0.01)
failures = []
for i in range(count):
    experiment = "shared" if i % 2 == 0 else f"own-{me}"
    try:
        conn.execute(
            "SELECT sqml_train(?, 'classification', 'dummy', 'iris_rows', 'target')",
            (experiment,),
        ).fetchone()
    except sqlite3.Error as error:
        failures.append(str(error))
print(json.dumps(failures))
"""


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_three_processes_training_twenty_times_all_succeed(tmp_path: Path, journal: str):
    path = tmp_path / "concurrent.db"
    conn = sqlite3.connect(path)
    assert conn.execute(f"PRAGMA journal_mode = {journal}").fetchone()[0] == journal
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_load_dataset('iris')")
    conn.execute("CREATE TABLE iris_rows AS SELECT * FROM dataset_iris WHERE rowid % 3 = 0")
    conn.commit()
    conn.close()
    go = tmp_path / "go"
    trainers = [
        subprocess.Popen(
            [sys.executable, "-c", TRAINER, str(path), str(me), str(TRAININGS), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in range(PROCESSES)
    ]
    time.sleep(0.5)
    go.touch()  # all start together
    failures = []
    for trainer in trainers:
        stdout, stderr = trainer.communicate(timeout=600)
        assert trainer.returncode == 0, stderr
        failures += json.loads(stdout)
    assert failures == []
    conn = sqlite3.connect(path)
    statuses = dict(conn.execute("SELECT status, count(*) FROM sqml_runs GROUP BY status"))
    assert statuses == {"success": PROCESSES * TRAININGS}
    assert conn.execute("SELECT count(*) FROM sqml_models").fetchone()[0] == PROCESSES * TRAININGS
    conn.close()
