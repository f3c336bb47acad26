"""Train in one process, predict in another; the model cache follows new deployments."""

from __future__ import annotations

import json

from sqlite_ml.ops import prediction

from .helpers import IRIS_FEATURES, SETOSA, VIRGINICA, Db, expected_mode

PREDICT = """
import json, sqlite3, sys
import sqlite_ml
conn = sqlite3.connect(sys.argv[1])
sqlite_ml.register(conn)
single = [conn.execute("SELECT sqml_predict('flowers', ?)", (json.dumps(f),)).fetchone()[0]
          for f in json.loads(sys.argv[2])]
batch = conn.execute("SELECT sqml_predict_batch('flowers', ?)", (sys.argv[2],)).fetchone()[0]
print(json.dumps({"single": single, "batch": json.loads(batch)}))
"""

TRAIN = """
import json, sqlite3, sys
import sqlite_ml
conn = sqlite3.connect(sys.argv[1])
sqlite_ml.register(conn)
print(conn.execute(
    "SELECT sqml_train('flowers', 'classification', 'logistic_regression', 'dataset_iris',"
    " 'target')").fetchone()[0])
"""


def a_flower_dummy_gets_wrong(dummy_class: float) -> tuple[list[float], float]:
    return (VIRGINICA, 2.0) if dummy_class == 0.0 else (SETOSA, 0.0)


def test_train_here_predict_in_another_process(iris, python):
    iris.train("flowers", "classification", "decision_tree", "dataset_iris", "target")
    samples = [
        list(row[:4]) for row in iris.rows("SELECT * FROM dataset_iris WHERE rowid % 10 = 1")
    ]
    here = [iris.predict("flowers", sample) for sample in samples]
    done = python(PREDICT, str(iris.path), json.dumps(samples))
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    assert there == {"single": here, "batch": here}


def test_a_deployment_made_by_another_process_is_noticed(iris, python):
    dummy = iris.train("flowers", "classification", "dummy", "dataset_iris", "target")
    dummy_class = iris.predict("flowers", SETOSA)
    flower, truth = a_flower_dummy_gets_wrong(dummy_class)
    assert iris.predict("flowers", flower) == dummy_class != truth

    done = python(TRAIN, str(iris.path))
    assert done.returncode == 0, done.stderr
    trained = json.loads(done.stdout)
    assert trained["deployed"] is True
    assert trained["model_id"] != dummy["model_id"]

    assert iris.predict("flowers", flower) == truth
    assert iris.predict_batch("flowers", [flower]) == [truth]


def test_a_deployment_made_by_another_connection_is_noticed(iris, connect):
    iris.train("flowers", "classification", "dummy", "dataset_iris", "target")
    dummy_class = iris.predict("flowers", SETOSA)
    flower, truth = a_flower_dummy_gets_wrong(dummy_class)

    other = Db(connect(), iris.path)
    assert other.predict("flowers", flower) == dummy_class
    result = other.train(
        "flowers", "classification", "logistic_regression", "dataset_iris", "target"
    )
    assert result["deployed"] is True
    assert other.predict("flowers", flower) == truth
    assert iris.predict("flowers", flower) == truth
    assert iris.predict("flowers", flower) == iris.reference(result["model_id"])(flower)


def test_models_are_deserialized_once_not_per_row(iris, connect):
    """Once per process at most: the native scorer reads its own form and never
    deserializes the skops blob of a natively served model at all."""
    iris.train("flowers", "classification", "logistic_regression", "dataset_iris", "target")
    prediction.MODELS._models.clear()
    loads = prediction.MODELS.loads
    once = 0 if expected_mode() == "native" else 1
    features = "json_array(" + ", ".join(f'"{name}"' for name in IRIS_FEATURES) + ")"
    query = f"SELECT sqml_predict('flowers', {features}) FROM dataset_iris"  # noqa: S608
    first = iris.rows(query)
    assert len(first) == 150
    assert prediction.MODELS.loads == loads + once
    assert iris.rows(query) == first
    other = Db(connect(), iris.path)
    assert other.rows(query) == first
    assert prediction.MODELS.loads == loads + once
    # a new model that is not deployed changes nothing, a better one is loaded once
    iris.train("flowers", "classification", "dummy", "dataset_iris", "target")
    assert iris.rows(query) == first
    assert prediction.MODELS.loads == loads + once
