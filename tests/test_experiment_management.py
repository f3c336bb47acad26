"""Managing experiments through SQL: delete one with everything it owns, rename one (the
deployed model keeps serving, under the new name, on every connection), tags and notes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from sqlite_ml.db.ownership import EXPERIMENT_ROWS

from .helpers import SETOSA, Db

KEYS = ("experiment_id", "run_id", "model_id")
GRID = {"search": "grid", "search_params": {"C": [0.5, 1.0]}, "search_args": {"cv": 2}}


def sqml_tables(db: Db) -> list[str]:
    return [
        row[0]
        for row in db.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name LIKE 'sqml\\_%' ESCAPE '\\'"
        )
    ]


def owned_ids(db: Db, experiment: str) -> dict[str, set[int]]:
    """The ids of an experiment, of its runs and of their models."""
    (experiment_id,) = db.rows("SELECT id FROM sqml_experiments WHERE name = ?", (experiment,))[0]
    runs = {
        r[0] for r in db.rows("SELECT id FROM sqml_runs WHERE experiment_id = ?", (experiment_id,))
    }
    models = {
        r[0]
        for r in db.rows(
            "SELECT m.id FROM sqml_models AS m JOIN sqml_runs AS r ON r.id = m.run_id"
            " WHERE r.experiment_id = ?",
            (experiment_id,),
        )
    }
    return {"experiment_id": {experiment_id}, "run_id": runs, "model_id": models}


def rows_referring_to(db: Db, ids: dict[str, set[int]]) -> dict[str, int]:
    """For every sqml_* table: how many of its rows point at one of ``ids`` (by any key
    column it has, or by its own id for the experiment and run and model tables)."""
    own_key = {
        "sqml_experiments": "experiment_id",
        "sqml_runs": "run_id",
        "sqml_models": "model_id",
    }
    found = {}
    for table in sqml_tables(db):
        columns = {row[1] for row in db.rows(f"PRAGMA table_info({table})")}
        conditions, values = [], []
        for key in KEYS:
            column = "id" if own_key.get(table) == key else key
            if column in columns and ids[key]:
                conditions.append(f"{column} IN ({', '.join('?' for _ in ids[key])})")
                values += sorted(ids[key])
        where = " OR ".join(conditions) or "0"
        found[table] = db.value(f"SELECT count(*) FROM {table} WHERE {where}", values)  # noqa: S608
    return found


def dump(db: Db) -> dict[str, list]:
    return {table: db.dump(table) for table in sqml_tables(db)}


@pytest.fixture
def two(iris):
    """Experiment 'iris' with everything an experiment can own (three models, a search,
    a failed run, manual deployments, a rollback, tags and notes) and 'other' beside it."""
    db = iris
    db.conn.execute("CREATE TABLE one_class AS SELECT * FROM dataset_iris WHERE target = 0")
    db.conn.commit()
    db.train("iris", "classification", "dummy", "dataset_iris", "target")
    db.train_with("iris", "classification", "logistic_regression", "dataset_iris", "target", GRID)
    with pytest.raises(sqlite3.OperationalError):
        db.train("iris", "classification", "logistic_regression", "one_class", "target")
    db.train("iris", "classification", "knn", "dataset_iris", "target")
    db.value("SELECT sqml_deploy('iris', 1)")
    db.value("SELECT sqml_deploy('iris', 'rollback')")
    db.value("SELECT sqml_tag('iris', 'owner', 'alice')")
    db.value("SELECT sqml_tag('iris', 'reviewed', 'yes', 2)")
    db.value("SELECT sqml_note('iris', 'first try')")
    db.value("SELECT sqml_note('iris', 'grid search', 2)")
    db.train("other", "classification", "logistic_regression", "dataset_iris", "target")
    db.value("SELECT sqml_tag('other', 'owner', 'bob')")
    return db


def test_delete_leaves_no_row_of_the_experiment_anywhere(two):
    db = two
    ids = owned_ids(db, "iris")
    before = rows_referring_to(db, ids)
    assert all(before[t] for t in ("sqml_runs", "sqml_models", "sqml_metrics", "sqml_deployments"))
    assert before["sqml_search_trials"] == 2 and before["sqml_tags"] == 2
    others_before = {t: [r for r in rows if r not in db.dump(t)] for t, rows in dump(db).items()}
    other_prediction = db.predict("other", SETOSA)

    result = json.loads(db.value("SELECT sqml_delete_experiment('iris')"))

    assert result["experiment_name"] == "iris"
    assert result["deleted"] == {t: n for t, n in before.items() if t in result["deleted"]}
    assert set(result["deleted"]) == {rows.table for rows in EXPERIMENT_ROWS}
    assert all(count == 0 for count in rows_referring_to(db, ids).values())
    assert db.value("SELECT count(*) FROM sqml_experiments WHERE name = 'iris'") == 0
    # the other experiment is untouched and keeps predicting
    assert {t: [r for r in rows if r not in db.dump(t)] for t, rows in dump(db).items()} == {
        t: [] for t in others_before
    }
    assert db.predict("other", SETOSA) == other_prediction
    assert db.value("SELECT count(*) FROM sqml_tags") == 1
    with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'iris'"):
        db.predict("iris", SETOSA)


def test_every_table_keyed_by_experiment_run_or_model_is_on_the_delete_list(db):
    listed = {(rows.table, rows.column) for rows in EXPERIMENT_ROWS}
    for table in sqml_tables(db):
        columns = {row[1] for row in db.rows(f"PRAGMA table_info({table})")}
        for key in set(KEYS) & columns:
            assert (table, key) in listed, f"{table}.{key} is missing from EXPERIMENT_ROWS"


def test_delete_works_under_foreign_keys_and_triggers_that_forbid_orphans(two, connect):
    db = Db(connect(), two.path)
    db.conn.execute("PRAGMA foreign_keys = ON")
    # What a store that can never hold orphans does: refuse to delete a parent first.
    for child, column, parent in [
        ("sqml_runs", "experiment_id", "sqml_experiments"),
        ("sqml_models", "run_id", "sqml_runs"),
        ("sqml_metrics", "model_id", "sqml_models"),
        ("sqml_search_trials", "run_id", "sqml_runs"),
        ("sqml_deployments", "model_id", "sqml_models"),
        ("sqml_tags", "run_id", "sqml_runs"),
    ]:
        db.conn.execute(
            f"CREATE TEMP TRIGGER no_orphan_{child}_{parent} BEFORE DELETE ON main.{parent}"  # noqa: S608
            f" WHEN EXISTS (SELECT 1 FROM {child} WHERE {column} = OLD.id)"
            f" BEGIN SELECT RAISE(ABORT, 'orphan in {child}'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="orphan in sqml_runs"):
        db.conn.execute("DELETE FROM sqml_experiments WHERE name = 'iris'")
    db.value("SELECT sqml_delete_experiment('iris')")
    assert db.value("SELECT count(*) FROM sqml_runs") == 1
    assert db.rows("PRAGMA foreign_key_check") == []


def test_delete_is_all_or_nothing(two):
    db = two
    before = dump(db)
    db.conn.execute(
        "CREATE TEMP TRIGGER stop BEFORE DELETE ON main.sqml_experiments"
        " BEGIN SELECT RAISE(ABORT, 'stopped by a trigger'); END"
    )
    with pytest.raises(sqlite3.OperationalError, match="stopped by a trigger"):
        db.value("SELECT sqml_delete_experiment('iris')")
    assert dump(db) == before
    assert db.predict("iris", SETOSA) == 0.0


def test_a_typo_in_the_first_training_is_undone_by_deleting(iris):
    iris.train("flowers", "regression", "ridge", "dataset_iris", "target")
    message = iris.train_error("flowers", "classification", "dummy", "dataset_iris", "target")
    assert "has prediction type 'regression'" in message
    iris.value("SELECT sqml_delete_experiment('flowers')")
    result = iris.train(
        "flowers", "classification", "logistic_regression", "dataset_iris", "target"
    )
    assert result["prediction_type"] == "classification" and result["deployed"]


def test_bad_arguments_and_views_are_refused(two):
    db = two
    with pytest.raises(
        sqlite3.OperationalError, match="unknown experiment 'irsi'; did you mean 'iris'"
    ):
        db.value("SELECT sqml_delete_experiment('irsi')")
    with pytest.raises(sqlite3.OperationalError, match="experiment name must be non-empty text"):
        db.value("SELECT sqml_rename_experiment('iris', '')")
    with pytest.raises(sqlite3.OperationalError, match="an experiment of that name exists"):
        db.value("SELECT sqml_rename_experiment('iris', 'other')")
    with pytest.raises(sqlite3.OperationalError, match="run 5 is not a run of experiment 'iris'"):
        db.value("SELECT sqml_tag('iris', 'k', 'v', 5)")
    with pytest.raises(sqlite3.OperationalError, match="tag key must be non-empty text"):
        db.value("SELECT sqml_tag('iris', NULL, 'v')")
    with pytest.raises(sqlite3.OperationalError, match="run_id must be an integer"):
        db.value("SELECT sqml_note('iris', 'x', 'two')")
    before = dump(db)
    for call in (
        "sqml_delete_experiment('iris')",
        "sqml_rename_experiment('iris', 'x')",
        "sqml_tag('iris', 'k', 'v')",
        "sqml_note('iris', 'n')",
    ):
        db.conn.execute(f"CREATE VIEW v AS SELECT {call} AS x")  # not TEMP: SQLite trusts those
        with pytest.raises(sqlite3.OperationalError, match="unsafe use of sqml_"):
            db.value("SELECT x FROM v")
        db.conn.execute("DROP VIEW v")
    assert dump(db) == before


def test_rename_keeps_the_model_serving_on_this_and_other_connections(two, connect):
    db = two
    other = Db(connect(), db.path)
    # Both connections have the deployed model cached under the old name.
    expected = db.predict("iris", SETOSA)
    assert other.predict("iris", SETOSA) == expected
    assert other.value("SELECT sqml_predict('iris', ?, ?, ?, ?)", SETOSA) == expected

    result = json.loads(db.value("SELECT sqml_rename_experiment('iris', 'flowers')"))
    assert result == {"experiment_name": "flowers", "previous_name": "iris"}

    for conn in (db, other):
        assert conn.predict("flowers", SETOSA) == expected
        assert conn.value("SELECT sqml_predict('flowers', ?, ?, ?, ?)", SETOSA) == expected
        with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'iris'"):
            conn.predict("iris", SETOSA)
        with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'iris'"):
            conn.value("SELECT sqml_predict('iris', ?, ?, ?, ?)", SETOSA)
    assert db.value("SELECT sqml_deploy('flowers', 'best_score')") is not None
    assert {r[0] for r in db.rows("SELECT experiment FROM sqml_leaderboard")} == {
        "flowers",
        "other",
    }
    assert json.loads(db.value("SELECT sqml_tag('flowers', 'owner', 'carol')"))["tags"] == {
        "owner": "carol"
    }
    # Renaming back inside a transaction that is rolled back leaves 'flowers'.
    db.conn.execute("BEGIN")
    db.value("SELECT sqml_rename_experiment('flowers', 'iris')")
    assert db.predict("iris", SETOSA) == expected
    db.conn.execute("ROLLBACK")
    assert db.predict("flowers", SETOSA) == expected
    with pytest.raises(sqlite3.OperationalError, match="unknown experiment 'iris'"):
        db.predict("iris", SETOSA)


def test_tags_and_notes_of_experiments_and_runs(two):
    db = two
    answer = json.loads(db.value("SELECT sqml_tag('iris', 'stage', 'draft')"))
    assert answer == {
        "experiment_name": "iris",
        "run_id": None,
        "tags": {"owner": "alice", "stage": "draft"},
    }
    answer = json.loads(db.value("SELECT sqml_tag('iris', 'stage', 2)"))  # overwritten
    assert answer["tags"]["stage"] == "2"
    answer = json.loads(db.value("SELECT sqml_tag('iris', 'owner', NULL)"))  # removed
    assert answer["tags"] == {"stage": "2"}
    run_tags = json.loads(db.value("SELECT sqml_tag('iris', 'size', 'small', 2)"))
    assert run_tags == {
        "experiment_name": "iris",
        "run_id": 2,
        "tags": {"reviewed": "yes", "size": "small"},
    }
    assert db.rows(
        "SELECT run_id, key, value FROM sqml_tags WHERE experiment_id = 1 ORDER BY run_id, key"
    ) == [(None, "stage", "2"), (2, "reviewed", "yes"), (2, "size", "small")]

    assert db.value("SELECT note FROM sqml_experiments WHERE name = 'iris'") == "first try"
    assert db.value("SELECT note FROM sqml_runs WHERE id = 2") == "grid search"
    answer = json.loads(db.value("SELECT sqml_note('iris', '')"))
    assert answer == {"experiment_name": "iris", "run_id": None, "note": None}
    assert db.value("SELECT note FROM sqml_experiments WHERE name = 'iris'") is None


def test_a_0_3_0_database_gets_tags_and_notes_and_deletes_cleanly(tmp_path, connect):
    path = tmp_path / "old.db"
    shutil.copyfile(Path(__file__).parent / "data" / "sqlite-ml-0.3.0.db", path)
    db = Db(connect(path), path)
    assert "sqml_tags" in sqml_tables(db)
    names = [row[0] for row in db.rows("SELECT name FROM sqml_experiments ORDER BY id")]
    victim, *others = names
    db.value("SELECT sqml_tag(?, 'from', '0.3.0')", (victim,))
    db.value("SELECT sqml_note(?, 'old', 1)", (victim,))
    ids = owned_ids(db, victim)
    before = {t: n for t, n in rows_referring_to(db, ids).items() if n}
    result = json.loads(db.value("SELECT sqml_delete_experiment(?)", (victim,)))
    assert {t: n for t, n in result["deleted"].items() if n} == before
    assert all(count == 0 for count in rows_referring_to(db, ids).values())
    assert [r[0] for r in db.rows("SELECT name FROM sqml_experiments ORDER BY id")] == others
