"""The store keeps itself whole: no sqml_* row is orphaned, no row changes parents or ids,
and no trigger or hand edit makes an experiment serve another experiment's model (or a
model whose run did not succeed) unnoticed."""

from __future__ import annotations

import sqlite3

import pytest

import sqlite_ml

from .helpers import SETOSA


@pytest.fixture
def two(iris):
    iris.train("a", "classification", "logistic_regression", "dataset_iris", "target")
    iris.train("b", "classification", "decision_tree", "dataset_iris", "target")
    return iris


def model_of(db, experiment: str) -> int:
    return db.active_model_id(experiment)


def experiment_id(db, name: str) -> int:
    return db.value("SELECT id FROM sqml_experiments WHERE name = ?", (name,))


@pytest.mark.parametrize(
    "statement, expected",
    [
        ("DELETE FROM sqml_experiments WHERE name = 'a'", "still has runs or deployments"),
        ("DELETE FROM sqml_runs WHERE id = 1", "still has models or search trials"),
        ("DELETE FROM sqml_models WHERE id = 1", "still has metrics or deployments"),
        ("UPDATE sqml_experiments SET id = 99 WHERE id = 1", "id never changes"),
        ("UPDATE sqml_runs SET experiment_id = 2 WHERE id = 1", "experiment never changes"),
        ("UPDATE sqml_models SET run_id = 2 WHERE id = 1", "run never changes"),
        ("UPDATE sqml_metrics SET model_id = 2 WHERE model_id = 1", "model never changes"),
        (
            "INSERT INTO sqml_runs(status, algorithm, dataset, target, test_size,"
            " split_strategy, experiment_id) VALUES ('success', 'x', 'd', 't', 0.25, 's', 77)",
            "names no experiment",
        ),
        ("INSERT INTO sqml_models(run_id, library, data) VALUES (77, 'x', x'00')", "names no run"),
        ("INSERT INTO sqml_metrics(model_id, name, value) VALUES (77, 'score', 1)", "no model"),
        (
            "INSERT INTO sqml_deployments(experiment_id, model_id, active) VALUES (1, 2, 1)",
            "model of its own experiment",
        ),
        ("UPDATE sqml_deployments SET model_id = 2 WHERE experiment_id = 1", "its own experiment"),
        (
            "UPDATE sqml_deployments SET experiment_id = 2 WHERE experiment_id = 1",
            "its own experiment",
        ),
    ],
)
def test_hand_edits_that_would_break_the_store_are_refused(two, statement, expected):
    db = two
    before = {table: db.dump(table) for table in ("sqml_experiments", "sqml_runs", "sqml_models")}
    with pytest.raises(sqlite3.IntegrityError, match=expected):
        db.conn.execute(statement)
    db.conn.rollback()
    assert {table: db.dump(table) for table in before} == before
    assert db.predict("a", SETOSA) == 0.0


def test_an_experiment_is_deleted_children_first(two):
    """What deleting an experiment takes (issue 16 does it in one savepoint)."""
    db = two
    a = experiment_id(db, "a")
    db.conn.execute("DELETE FROM sqml_deployments WHERE experiment_id = ?", (a,))
    db.conn.execute(
        "DELETE FROM sqml_metrics WHERE model_id IN (SELECT m.id FROM sqml_models AS m"
        " JOIN sqml_runs AS r ON r.id = m.run_id WHERE r.experiment_id = ?)",
        (a,),
    )
    db.conn.execute(
        "DELETE FROM sqml_models"
        " WHERE run_id IN (SELECT id FROM sqml_runs WHERE experiment_id = ?)",
        (a,),
    )
    db.conn.execute("DELETE FROM sqml_runs WHERE experiment_id = ?", (a,))
    db.conn.execute("DELETE FROM sqml_experiments WHERE id = ?", (a,))
    db.conn.commit()
    assert db.value("SELECT count(*) FROM sqml_experiments") == 1
    assert db.predict("b", SETOSA) == 0.0


def test_a_trigger_cannot_point_an_experiment_at_another_ones_model(two):
    db = two
    foreign = model_of(db, "b")
    db.conn.execute("CREATE TABLE target_model (id INTEGER)")
    db.conn.execute("INSERT INTO target_model VALUES (?)", (foreign,))
    db.conn.execute(
        "CREATE TRIGGER redirect AFTER INSERT ON sqml_deployments BEGIN"
        " UPDATE sqml_deployments SET model_id = (SELECT id FROM target_model)"
        " WHERE id = NEW.id; END"
    )
    db.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match="model of its own experiment"):
        db.value("SELECT sqml_deploy('a', 'most_recent')")
    assert db.predict("a", SETOSA) == 0.0


def test_the_lookup_refuses_what_dropped_triggers_let_through(two, connect):
    """Triggers dropped by hand: the next registration puts them back, and a deployment
    already edited is refused by the lookup itself, naming the model and what is wrong."""
    db = two
    names = [
        row[0]
        for row in db.rows(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'sqml%'"
        )
    ]
    for name in names:
        db.conn.execute(f"DROP TRIGGER {name}")
    foreign = model_of(db, "b")
    db.conn.execute("UPDATE sqml_deployments SET model_id = ? WHERE experiment_id = 1", (foreign,))
    db.conn.commit()
    other = connect()
    with pytest.raises(
        sqlite3.OperationalError, match=f"model {foreign}, which belongs to another"
    ):
        other.execute("SELECT sqml_predict('a', ?)", ("[5.1, 3.5, 1.4, 0.2]",)).fetchone()
    with pytest.raises(sqlite3.OperationalError, match="belongs to another"):
        other.execute("SELECT sqml_predict_batch('a', '[[5.1, 3.5, 1.4, 0.2]]')").fetchone()
    restored = [
        row[0]
        for row in other.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'sqml%'"
        )
    ]
    assert sorted(restored) == sorted(names)
    # a run that did not succeed cannot serve either
    db.conn.execute("UPDATE sqml_deployments SET model_id = 1 WHERE experiment_id = 1")
    db.conn.execute("UPDATE sqml_runs SET status = 'failed' WHERE id = 1")
    db.conn.commit()
    with pytest.raises(sqlite3.OperationalError, match="whose run has status 'failed'"):
        other.execute("SELECT sqml_predict('a', '[5.1, 3.5, 1.4, 0.2]')").fetchone()
    db.conn.execute("DELETE FROM sqml_metrics WHERE model_id = 1")
    db.conn.execute("DELETE FROM sqml_deployments WHERE model_id = 1 AND id > 1")
    db.conn.commit()


def test_a_deployment_of_a_missing_model_is_refused(two):
    db = two
    for (name,) in db.rows("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        db.conn.execute(f"DROP TRIGGER {name}")
    db.conn.execute("UPDATE sqml_deployments SET model_id = 999 WHERE experiment_id = 1")
    db.conn.commit()
    conn = sqlite3.connect(db.path)
    sqlite_ml.register(conn)
    with pytest.raises(sqlite3.OperationalError, match="model 999, which is missing"):
        conn.execute("SELECT sqml_predict('a', '[5.1, 3.5, 1.4, 0.2]')").fetchone()
    conn.close()
