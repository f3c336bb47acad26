"""The HTML pages' use of functions and views that other parts of sqlite-ml may provide
(``sqml_leaderboard``, ``sqml_evaluate``, ``sqml_feature_importance``), and their
fallbacks when absent."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import sqlite_ml
from sqlite_ml import dashboard, insights

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


def test_feature_importances_from_the_function_when_present(conn: sqlite3.Connection) -> None:
    assert insights.feature_importances(conn, "iris") is None  # no such function here
    assert "Feature importances" not in dashboard.details(conn, "iris")
    shapes = {
        "iris": {"petal width (cm)": 0.6, "sepal <b>width</b>": -0.1, "petal length (cm)": 0.3},
        "diabetes": [{"feature": "bmi", "importance": 0.4}, {"feature": "bp", "importance": 0.2}],
    }
    conn.create_function("sqml_feature_importance", 1, lambda name: json.dumps(shapes[name]))
    assert insights.feature_importances(conn, "iris") == [
        ("petal width (cm)", 0.6),
        ("petal length (cm)", 0.3),
        ("sepal <b>width</b>", -0.1),
    ]
    html = dashboard.details(conn, "iris")
    assert "Feature importances" in html and html.count('<rect class="bar') == 3
    assert "sepal &lt;b&gt;width&lt;/b&gt;" in html and "<b>width" not in html
    assert dashboard.details(conn, "diabetes").count('<rect class="bar') == 2


def test_confusion_matrix_from_sqml_evaluate_when_present(conn: sqlite3.Connection) -> None:
    own = insights.evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(own, insights.Evaluation) and own.source.startswith("recomputed")
    calls = []

    def evaluate(name: str, dataset: str, target: str) -> str:
        calls.append((name, dataset, target))
        return json.dumps({"confusion_matrix": {"labels": [0, 1], "matrix": [[7, 1], [2, 9]]}})

    conn.create_function("sqml_evaluate", 3, evaluate)
    found = insights.evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(found, insights.Evaluation)
    assert calls == [("iris", "dataset_iris", "target")]
    assert found.labels == ["0", "1"] and found.matrix == [[7, 1], [2, 9]]
    assert found.source.startswith("sqml_evaluate")
    html = dashboard.details(conn, "iris")
    assert html.count('class="cm-cell') == 4 and 'data-count="9"' in html


def test_training_table_gone(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE dataset_iris")
    result = insights.evaluation(conn, insights.experiment(conn, "iris"))
    assert isinstance(result, str) and "unknown dataset 'dataset_iris'" in result
    assert "cannot evaluate on the training table" in dashboard.details(conn, "iris")


def test_leaderboard_view_is_used_when_present(conn: sqlite3.Connection) -> None:
    own = insights.leaderboard(conn)
    conn.execute(
        """CREATE VIEW sqml_leaderboard AS
           SELECT e.name AS experiment, m.id AS model_id, r.id AS run_id, r.algorithm,
                  'from the view' AS metric, 0.5 AS score, '{}' AS metrics, '{}' AS hyperparams,
                  0 AS deployed, m.created_at, 7 AS rank
             FROM sqml_models AS m JOIN sqml_runs AS r ON r.id = m.run_id
             JOIN sqml_experiments AS e ON e.id = r.experiment_id"""
    )
    viewed = insights.leaderboard(conn)
    assert sorted(e.model_id for e in viewed) == sorted(e.model_id for e in own)
    assert {(e.metric, e.score, e.rank) for e in viewed} == {("from the view", 0.5, 7)}
    # Metrics are still read from sqml_metrics (full precision).
    assert {e.model_id: e.metrics for e in viewed} == {e.model_id: e.metrics for e in own}

    conn.execute("DROP VIEW sqml_leaderboard")
    conn.execute("CREATE VIEW sqml_leaderboard AS SELECT 1 AS something_else")
    assert insights.leaderboard(conn) == own  # another shape: our own reading


def test_numbers_keep_their_decimals() -> None:
    from sqlite_ml.charts import fmt

    assert fmt(1.0) == "1.0000"  # a perfect score reads like the others
    assert fmt(0.97368) == "0.9737" and fmt(0.0068, 3) == "0.007"
    assert fmt(150) == "150" and fmt(None) == "\u2013"
