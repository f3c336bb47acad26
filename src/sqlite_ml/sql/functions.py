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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import SqmlError
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


def delete_experiment(session: Session, experiment_name: Any) -> str:
    from ..ops import management

    return json.dumps(management.delete_experiment(session.conn, experiment_name))


def rename_experiment(session: Session, old_name: Any, new_name: Any) -> str:
    from ..ops import management

    return json.dumps(management.rename_experiment(session.conn, old_name, new_name))


def tag(session: Session, experiment_name: Any, key: Any, value: Any, run_id: Any = None) -> str:
    from ..ops import management

    return json.dumps(management.set_tag(session.conn, experiment_name, key, value, run_id))


def note(session: Session, experiment_name: Any, text: Any, run_id: Any = None) -> str:
    from ..ops import management

    return json.dumps(management.set_note(session.conn, experiment_name, text, run_id))


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


def predict_proba(session: Session, experiment_name: Any, *features: Any) -> str:
    from ..ops.evaluation import probabilities_json

    model = session.deployed.model_for(session.conn, experiment_name)
    if len(features) == 1:
        record = model.features_of(features[0])
    else:
        record = model.positional(features, "sqml_predict_proba")
    return probabilities_json(model, experiment_name, record)


def evaluate(session: Session, experiment_name: Any, dataset: Any, target: Any = None) -> str:
    from ..ops import evaluation

    conn = session.conn
    model = session.deployed.model_for(conn, experiment_name)
    return json.dumps(evaluation.evaluate(conn, model, experiment_name, dataset, target))


def drift(session: Session, experiment_name: Any, dataset: Any) -> str:
    from ..ops.drift import drift_report

    return json.dumps(drift_report(session.conn, experiment_name, dataset), allow_nan=False)


def explain(session: Session, experiment_name: Any, features: Any, top_k: Any = None) -> str:
    """``sqml_explain(experiment, features[, top_k])``: one row's explanation."""
    from ..ops.explain import explain_one

    model = session.deployed.model_for(session.conn, experiment_name)
    return json.dumps(explain_one(session.conn, model, experiment_name, features, top_k))


def explain_table(
    session: Session, experiment_name: Any, source: Any, top_k: Any = None
) -> Iterator[list[tuple[Any, ...]]]:
    """``sqml_explain_table(experiment, source[, top_k])``: a row per row and feature."""
    from ..ops.explain import explanation_rows

    conn = session.conn
    model = session.deployed.model_for(conn, experiment_name)
    return explanation_rows(conn, model, experiment_name, source, top_k)


CHUNK_ROWS = 4096  # rows per chunk a table-valued function hands to SQLite


def chunked(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(rows), CHUNK_ROWS):
        yield rows[start : start + CHUNK_ROWS]


def test_rows(session: Session, run_id: Any) -> Iterator[list[tuple[Any, ...]]]:
    """``sqml_test_rows(run_id)``: the key of every row the run was tested on."""
    from ..ops import held_out

    held = held_out.held_out_rows(session.conn, run_id)
    return chunked([(key,) for key in held_out.key_values(held.keys)])


def roc_curve(
    session: Session, experiment_name: Any, dataset: Any, target: Any = None
) -> Iterator[list[tuple[Any, ...]]]:
    """``sqml_roc_curve(experiment, dataset[, target])``: a point per class and threshold."""
    from ..ops import evaluation

    conn = session.conn
    model = session.deployed.model_for(conn, experiment_name)
    rows: list[tuple[Any, ...]] = []
    for curve in evaluation.roc_curves(conn, model, experiment_name, dataset, target):
        label = curve.label.item() if hasattr(curve.label, "item") else curve.label
        summary = (curve.auc, curve.average_precision, curve.brier, curve.calibration_error)
        points = zip(
            curve.threshold.tolist(),
            curve.fpr.tolist(),
            curve.tpr.tolist(),
            curve.precision.tolist(),
            curve.recall.tolist(),
            strict=True,
        )
        rows.extend((label, *point, *summary) for point in points)
    return chunked(rows)


def export_model(session: Session, experiment_or_model_id: Any, format: Any) -> bytes:
    from ..ops import export

    return export.export_model(session.conn, experiment_or_model_id, format)


def embed(session: Session, model: Any, text: Any) -> bytes | None:
    # Called for every row of a query: the connection's model is looked up inline.
    if text is None:
        return None
    embedder = session.pretrained.loaded.get(model) or _embedder(session, model)
    if type(text) is not str:
        from ..ops.pretrained import text_of

        text = text_of(text, "sqml_embed")
    return embedder.embed_one(text)


def _embedder(session: Session, model: Any) -> Any:
    conn = session.conn
    with plain_rows(conn):
        return session.pretrained.embedder(conn, model)


def embed_batch(session: Session, model: Any, texts: Any) -> str | None:
    from ..ops.pretrained import embed_batch as embed_texts

    if texts is None:
        return None
    return embed_texts(_embedder(session, model), texts)


def classify_text(session: Session, model: Any, text: Any, labels: Any) -> str | None:
    from ..ops.pretrained import classify_text as closest_label
    from ..ops.pretrained import text_of

    embedder = _embedder(session, model)
    names, vectors = session.pretrained.label_vectors(embedder, labels)
    text = text_of(text, "sqml_classify_text")
    if text is None:
        return None
    return closest_label(names, vectors, embedder.embed_one(text))


def embed_table(session: Session, model: Any, source: Any) -> Iterator[list[tuple[Any, ...]]]:
    """``sqml_embed_table(model, source)``: each source row's key, vector and text."""
    from ..db.readers import embedding_source
    from ..ops.pretrained import embedded_rows
    from ..sqlite.native import reader

    conn = session.conn
    embedder = session.pretrained.embedder(conn, model)
    rows = reader(conn, embedding_source(conn, source))
    if rows is None:  # csrc/rows.c runs this only where the native layer is loaded
        raise SqmlError("sqml_embed_table needs the native binding (table-valued)")
    return embedded_rows(embedder, rows)
