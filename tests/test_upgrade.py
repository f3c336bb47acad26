"""A database written by sqlite-ml 0.3.0 (``tests/data/sqlite-ml-0.3.0.db``, made by
``tests/data/make_db_0_3_0.py`` before the modules moved into subpackages) opens and
answers exactly as 0.3.0 did: its skops blobs name 0.3.0's dotted paths, and nothing of
it is migrated or rewritten."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import sqlite_ml

from .helpers import expected_mode

DATA = Path(__file__).resolve().parent / "data"
ANSWERS = json.loads((DATA / "sqlite-ml-0.3.0.json").read_text(encoding="utf-8"))


@pytest.fixture
def old(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "old.db"
    shutil.copyfile(DATA / "sqlite-ml-0.3.0.db", path)
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    yield conn
    conn.close()


def same(ours: Any, theirs: Any) -> bool:
    """Equal, and of the same SQL type. Numbers to the last bits of rounding: 0.3.0
    predicted linear models with the imputer and scaler folded into the weights; the
    native scorer takes scikit-learn's own steps (impute, scale, then the dot product), so
    a regression can differ from 0.3.0's in the last bit or two (classes never do)."""
    if isinstance(theirs, float) and isinstance(ours, float):
        return ours == pytest.approx(theirs, rel=1e-12, abs=0) or (
            math.isnan(ours) and math.isnan(theirs)
        )
    return bool(ours == theirs) and type(ours) is type(theirs)


@pytest.mark.parametrize("experiment", sorted(ANSWERS["experiments"]))
def test_every_model_predicts_as_0_3_0_did(old: sqlite3.Connection, experiment: str) -> None:
    entry = ANSWERS["experiments"][experiment]
    rows = old.execute(
        f"SELECT rowid, sqml_predict(?, {entry['columns']}) FROM {entry['table']} "  # noqa: S608
        "ORDER BY rowid",
        (experiment,),
    ).fetchall()
    expected = [tuple(pair) for pair in entry["predictions"]]
    assert len(rows) == len(expected) > 0
    wrong = [(g, w) for g, w in zip(rows, expected, strict=True) if not same(g[1], w[1])]
    assert not wrong, wrong[:5]
    for features, probabilities in entry.get("probabilities", []):
        (text,) = old.execute("SELECT sqml_predict_proba(?, ?)", (experiment, features)).fetchone()
        ours, theirs = json.loads(text), json.loads(probabilities)
        assert list(ours) == list(theirs)  # the same keys, in the same order
        # Equal to rounding: runs trained with preprocess now take the folded-weights
        # path that 0.3.0 kept for the default pipeline only (same formulas). XGBoost's
        # are served natively now, from the same float32 margins, with the logistic
        # function in float64 where XGBoost takes it in float32: equal within float32.
        rel, tolerance = (1e-6, 1e-7) if experiment == "churn xgb" else (1e-12, 1e-15)
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, rel=rel, abs=tolerance)


def test_the_deployed_model_and_the_other_answers_are_unchanged(old: sqlite3.Connection) -> None:
    assert (
        old.execute("SELECT sqml_feature_importance('churn')").fetchone()[0]
        == (ANSWERS["feature_importance"])
    )
    evaluated = json.loads(
        old.execute("SELECT sqml_evaluate('diabetes', 'dataset_diabetes')").fetchone()[0]
    )
    assert evaluated == json.loads(ANSWERS["evaluate"])
    board = old.execute(
        "SELECT experiment, model_id, metric, score, rank FROM sqml_leaderboard"
    ).fetchall()
    assert [list(row) for row in board] == ANSWERS["leaderboard"]
    assert ANSWERS["experiments"]["iris"]["model_id"] == 1  # the rollback went back to 1


def test_no_model_run_or_metric_of_the_old_database_changes(tmp_path: Path) -> None:
    """Opening it may migrate the schema (add columns, tables, views); no row that 0.3.0
    wrote changes."""
    path = tmp_path / "old.db"
    shutil.copyfile(DATA / "sqlite-ml-0.3.0.db", path)
    tables = [
        "sqml_experiments",
        "sqml_runs",
        "sqml_models",
        "sqml_metrics",
        "sqml_deployments",
        "sqml_search_trials",
    ]

    original = sqlite3.connect(DATA / "sqlite-ml-0.3.0.db")
    columns = {t: [r[1] for r in original.execute(f"PRAGMA table_info({t})")] for t in tables}

    def rows(conn: sqlite3.Connection) -> dict[str, list[Any]]:
        return {
            table: conn.execute(
                f"SELECT {', '.join(columns[table])} FROM {table} ORDER BY id"  # noqa: S608
            ).fetchall()
            for table in tables
        }

    before = rows(original)
    original.close()
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_predict('iris', '[5.1, 3.5, 1.4, 0.2]')").fetchone()
    conn.commit()
    assert rows(conn) == before
    # the upgrade adds version 3's table of pretrained models, empty
    assert conn.execute("SELECT count(*) FROM sqml_pretrained").fetchone() == (0,)
    conn.close()


def test_table_predictions_match_and_training_goes_on(old: sqlite3.Connection) -> None:
    if expected_mode() == "native":
        entry = ANSWERS["experiments"]["churn lgbm"]
        rows = old.execute(
            "SELECT row_id, prediction FROM sqml_predict_table('churn lgbm', 'customers')"
            " ORDER BY row_id"
        ).fetchall()
        assert [list(row) for row in rows] == entry["predictions"]
    result = json.loads(
        old.execute(
            "SELECT sqml_train('iris', 'classification', 'decision_tree', 'dataset_iris', 'target')"
        ).fetchone()[0]
    )
    assert result["run_id"] == 11 and result["model_id"] == 11
    assert old.execute("SELECT sqml_predict('iris', '[5.1, 3.5, 1.4, 0.2]')").fetchone()[0] == 0.0
