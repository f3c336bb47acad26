"""The HTML pages' use of ``sqml_leaderboard``, ``sqml_evaluate`` and
``sqml_feature_importance``, and their fallbacks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import sqlite_ml
from sqlite_ml.faces import charts
from sqlite_ml.faces import pages as dashboard
from sqlite_ml.ops import insights

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


def test_confusion_matrix_comes_from_sqml_evaluate(conn: sqlite3.Connection) -> None:
    found = insights.evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(found, insights.Evaluation) and found.source.startswith("sqml_evaluate")
    (text,) = conn.execute("SELECT sqml_evaluate('iris', 'dataset_iris')").fetchone()
    confusion = json.loads(text)["confusion_matrix"]
    assert found.matrix == confusion["matrix"] and sum(map(sum, found.matrix)) == 150
    html = dashboard.details(conn, "iris")
    assert html.count('class="cm-cell') == 9


def test_training_table_gone(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE dataset_iris")
    result = insights.evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(result, str) and "unknown dataset 'dataset_iris'" in result
    assert "cannot evaluate on the training table" in dashboard.details(conn, "iris")


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
