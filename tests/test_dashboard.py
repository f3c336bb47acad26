"""The HTML pages' read models: the leaderboard, feature importances, the deployed
model on its run's test rows (confusion matrix, residuals, curves; sampled when large),
two runs compared, and their fallbacks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sklearn.metrics import r2_score

import sqlite_ml
from sqlite_ml.errors import SqmlError
from sqlite_ml.faces import charts
from sqlite_ml.faces import pages as dashboard
from sqlite_ml.ops import insights, run_insights

from .faces import make_trained_db


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_trained_db(tmp_path_factory.mktemp("dashboard") / "trained.db")


@pytest.fixture
def conn(trained: Path, tmp_path: Path) -> sqlite3.Connection:
    copy = tmp_path / "copy.db"
    copy.write_bytes(trained.read_bytes())
    connection = sqlite3.connect(copy)
    sqlite_ml.register(connection)
    yield connection
    connection.close()


def test_feature_importances_come_from_sqml_feature_importance(
    conn: sqlite3.Connection,
) -> None:
    (text,) = conn.execute("SELECT sqml_feature_importance('iris')").fetchone()
    stored = json.loads(text)
    pairs = insights.feature_importances(conn, "iris")
    assert pairs is not None and dict(pairs) == stored and len(pairs) == 4
    html = dashboard.details(conn, "iris")
    assert "Feature importances" in html and html.count('<rect class="bar') == 4
    # Feature names are user text: escaped in the chart.
    svg = charts.bar_chart([("sepal <b>width</b>", 0.6), ("petal length (cm)", -0.3)])
    assert svg.count('<rect class="bar') == 2
    assert "sepal &lt;b&gt;width&lt;/b&gt;" in svg and "<b>width" not in svg


def deployed_run(conn: sqlite3.Connection, experiment: str) -> tuple[int, int]:
    return conn.execute(
        "SELECT run_id, test_rows FROM sqml_runs_overview AS o JOIN sqml_runs AS r"
        " ON r.id = o.run_id WHERE o.experiment = ? AND o.deployed",
        (experiment,),
    ).fetchone()


def test_the_confusion_matrix_is_on_the_deployed_runs_test_rows(conn: sqlite3.Connection) -> None:
    found = run_insights.deployed_evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(found, run_insights.TestEvaluation)
    run_id, test_rows = deployed_run(conn, "iris")
    assert f"the {test_rows} test rows of run {run_id}" in found.source
    assert sum(map(sum, found.matrix)) == test_rows < 150
    accuracy = conn.execute(
        "SELECT m.value FROM sqml_metrics AS m JOIN sqml_models AS o ON o.id = m.model_id"
        " WHERE o.run_id = ? AND m.name = 'accuracy'",
        (run_id,),
    ).fetchone()[0]
    diagonal = sum(found.matrix[i][i] for i in range(len(found.matrix)))
    assert diagonal / test_rows == pytest.approx(accuracy)  # the stored number, recomputed
    aucs = {curve.label: curve.auc for curve in found.curves}
    assert set(aucs) == {"0", "1", "2"}
    html = dashboard.details(conn, "iris")
    assert html.count('class="cm-cell') == 9 and html.count('class="curve"') == 6


def test_residuals_are_on_the_test_rows_and_give_the_stored_r2(conn: sqlite3.Connection) -> None:
    found = run_insights.deployed_evaluation(conn, insights.experiment(conn, "diabetes"))
    assert isinstance(found, run_insights.TestEvaluation) and found.kind == "residuals"
    run_id, test_rows = deployed_run(conn, "diabetes")
    assert len(found.actual) == len(found.predicted) == test_rows
    r2 = conn.execute(
        "SELECT m.value FROM sqml_metrics AS m JOIN sqml_models AS o ON o.id = m.model_id"
        " WHERE o.run_id = ? AND m.name = 'r2'",
        (run_id,),
    ).fetchone()[0]
    assert r2_score(found.actual, found.predicted) == pytest.approx(r2, rel=1e-9)


def test_many_test_rows_are_sampled_and_the_page_says_so(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_insights, "EVALUATION_ROW_LIMIT", 10)
    found = run_insights.deployed_evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(found, run_insights.TestEvaluation)
    assert sum(map(sum, found.matrix)) == 10
    assert "a uniform random sample (seeded by the run) of 10 of the" in found.source
    again = run_insights.deployed_evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(again, run_insights.TestEvaluation) and again.matrix == found.matrix


def test_training_table_gone(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE dataset_iris")
    result = run_insights.deployed_evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(result, str) and "unknown dataset 'dataset_iris'" in result
    assert "its test rows cannot be shown" in dashboard.details(conn, "iris")


def test_two_runs_side_by_side_on_the_same_rows(conn: sqlite3.Connection) -> None:
    compared = run_insights.compare_runs(conn, 1, 2)
    assert compared.same_test_rows  # same table, split and seed
    assert isinstance(compared.on_first_rows, dict)
    stored_first = compared.first.run.metrics["accuracy"]
    assert compared.on_first_rows["accuracy"][0] == pytest.approx(stored_first)
    html = dashboard.comparison(conn, 1, 2)
    assert "Both runs were tested on the same rows" in html
    assert html.count('data-metric="accuracy"') == 2
    with pytest.raises(SqmlError, match="there is no run 99"):
        dashboard.comparison(conn, 1, 99)


def test_leaderboard_reads_the_view_and_survives_its_absence(
    conn: sqlite3.Connection,
) -> None:
    viewed = insights.leaderboard(conn)
    rows = conn.execute(
        "SELECT model_id, rank, score FROM sqml_leaderboard ORDER BY model_id"
    ).fetchall()
    assert sorted((e.model_id, e.rank, e.score) for e in viewed) == rows
    # A database whose view has another shape (or none): our own reading of the tables.
    conn.execute("DROP VIEW sqml_leaderboard")
    conn.execute("CREATE VIEW sqml_leaderboard AS SELECT 1 AS something_else")
    own = insights.leaderboard(conn)
    assert [(e.model_id, e.score, e.metrics) for e in own] == [
        (e.model_id, e.score, e.metrics) for e in viewed
    ]


def test_numbers_keep_their_decimals() -> None:
    from sqlite_ml.faces.charts import fmt

    assert fmt(1.0) == "1.0000"  # a perfect score reads like the others
    assert fmt(0.97368) == "0.9737" and fmt(0.0068, 3) == "0.007"
    assert fmt(150) == "150" and fmt(None) == "\u2013"
