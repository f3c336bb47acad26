"""Domain: which path serves a model, natively (the C scorer, from the native form stored
beside the skops blob) or by Python, and why not natively.

Decided when the model is trained, and for a model stored without a decision (by
sqlite-ml 0.3.0) when it is first loaded: recorded in the database when it can be
written, and kept with the loaded model otherwise (a read-only database serves natively
all the same, compiling again in the next process).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from ..db import records as store
from ..db.transactions import savepoint
from ..ml.features import FeatureSchema
from ..ml.native_format import SERVED_NATIVE, ServingDecision, decide_checked

_log = logging.getLogger(__name__)


def decide_at_training(
    pipeline: Any, schema: FeatureSchema, blob: bytes, model_digest: str, sample: Any
) -> store.NativeForm:
    """The serving decision of a freshly trained pipeline (stored as ``blob``, whose
    SHA-256 is ``model_digest``), checked on test rows."""
    return as_record(decide_checked(pipeline, schema, model_digest, sample, model_size=len(blob)))


def as_record(decision: ServingDecision) -> store.NativeForm:
    return store.NativeForm(decision.blob, decision.digest, decision.serving, decision.reason)


def settle(
    conn: sqlite3.Connection,
    model_id: int,
    pipeline: Any,
    schema: FeatureSchema,
    model_digest: str,
    schema_text: str,
    model_size: int,
) -> ServingDecision:
    """The model's recorded decision, or (none recorded yet) one made now (for the schema
    text as stored) and recorded when the database can be written."""
    recorded = store.native_form(conn, model_id)
    if recorded.serving is not None:
        return ServingDecision(recorded.serving, recorded.blob, recorded.digest, recorded.reason)
    decision = decide_checked(
        pipeline, schema, model_digest, schema_text=schema_text, model_size=model_size
    )
    try:
        with savepoint(conn):
            store.record_native_form(
                conn, model_id, decision.blob, decision.digest, decision.serving, decision.reason
            )
    except sqlite3.Error as error:  # read-only, locked, an old schema: kept in memory
        _log.debug("model %s: serving decision not stored (%s)", model_id, error)
    return decision


def native_form_bytes(decision: ServingDecision) -> bytes | str:
    """What the C side asks for: the native form, or why Python serves the model."""
    if decision.serving == SERVED_NATIVE and decision.blob is not None:
        return decision.blob
    return decision.reason or "not in the native format"
