"""The SQL surface: one thin function per ``sqml_*`` SQL function.

Each checks its SQL arguments, calls the domain (``ops``) and turns the answer into an SQL
value (REAL, TEXT, JSON text) or raises ``SqmlError`` with a message for the user. The
domain is imported when a function first runs, so registering the functions on a
connection loads no machine-learning library.
"""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..sqlite.rows import plain_rows
from .session import Session

if TYPE_CHECKING:
    from ..ops.prediction import LoadedModel


def version(session: Session) -> str:
    return __version__


def python_version(session: Session) -> str:
    return sys.version


def sklearn_version(session: Session) -> str:
    import sklearn

    return str(sklearn.__version__)


def load_dataset(session: Session, name: Any, table: Any = None) -> str:
    from ..ops import datasets

    return json.dumps(datasets.load_dataset(session.conn, name, table))


def train(
    session: Session,
    experiment_name: Any,
    prediction_type: Any,
    algorithm: Any,
    dataset: Any,
    target: Any,
    test_size: Any = 0.25,
    split_strategy: Any = "shuffle",
    options: Any = None,
) -> str:
    from ..ops import training

    conn = session.conn
    request = training.validate(
        conn,
        experiment_name,
        prediction_type,
        algorithm,
        dataset,
        target,
        test_size,
        split_strategy,
        options,
    )
    return json.dumps(training.train(conn, request))


def deploy(session: Session, experiment_name: Any, strategy: Any) -> str:
    from ..ops import deployment

    return json.dumps(deployment.deploy(session.conn, experiment_name, strategy))


def feature_importance(session: Session, experiment_name: Any) -> str:
    from ..ops import importance

    return importance.feature_importance(session.conn, experiment_name)


def _deployed_model(session: Session, experiment_name: Any) -> LoadedModel:
    model = session.deployed.current(experiment_name)
    if model is None:
        conn = session.conn
        with plain_rows(conn):
            model = session.deployed.model_for(conn, experiment_name)
    return model


def predict(session: Session, experiment_name: Any, *features: Any) -> Any:
    # Called for every row of a query: the cached model is looked up inline.
    model = session.deployed.current(experiment_name) or _deployed_model(session, experiment_name)
    if len(features) == 1:
        return model.predict_text(features[0])
    return model.predict_values(features)


def predict_batch(session: Session, experiment_name: Any, features: Any) -> str:
    from ..ops.prediction import gc_paused_for, parse_features, predict_many

    model = _deployed_model(session, experiment_name)
    predictions = model.predict_batch_text(features)
    if predictions is None:
        with gc_paused_for(features):
            predictions = predict_many(model, parse_features(features, "batch features"))
    try:
        return json.dumps(predictions, allow_nan=False)
    except ValueError:  # JSON has no NaN or infinity: such a prediction is written as null
        return json.dumps([_finite_or_none(p) for p in predictions])


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def predict_proba(session: Session, experiment_name: Any, features: Any) -> str:
    from ..ops.evaluation import probabilities_json
    from ..ops.prediction import parse_features

    model = session.deployed.model_for(session.conn, experiment_name)
    return probabilities_json(model, experiment_name, parse_features(features))


def evaluate(session: Session, experiment_name: Any, dataset: Any, target: Any = None) -> str:
    from ..ops import evaluation

    conn = session.conn
    model = session.deployed.model_for(conn, experiment_name)
    return json.dumps(evaluation.evaluate(conn, model, experiment_name, dataset, target))


def export_model(session: Session, experiment_or_model_id: Any, format: Any) -> bytes:
    from ..ops import export

    return export.export_model(session.conn, experiment_or_model_id, format)
