"""Domain: pretrained embedding models from SQL. A connection loads a model by name once
(the process shares loaded models), records the use in ``sqml_pretrained``, and embeds
text for ``sqml_embed``, ``sqml_embed_batch`` and ``sqml_classify_text``.

Recording is provenance, not an answer: where the database cannot take the row (opened
read-only, no sqlite-ml tables yet, locked by another writer) the use is simply not
recorded, and the embedding is the same.
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..db import pretrained as records
from ..errors import SqmlError, describe, shorten
from ..ml.pretrained import Embedder, load_embedder

_MAX_LABEL_SETS = 64  # label sets embedded per connection (zero-shot classification)


def record_use(conn: sqlite3.Connection, embedder: Embedder, *, required: bool = False) -> None:
    """A row (or one more use) in ``sqml_pretrained``; ``required``: failures are errors
    (training, which writes anyway)."""
    identity = embedder.identity
    try:
        records.record_use(
            conn,
            name=identity.name,
            backend=identity.backend,
            version=identity.version,
            digest=identity.digest,
            files=identity.files,
            dimension=identity.dimension,
            source=identity.source,
        )
    except sqlite3.Error:
        if required:
            raise


class PretrainedModels:
    """One connection's models, by the name its queries use."""

    def __init__(self) -> None:
        self.loaded: dict[str, Embedder] = {}
        self._labels: OrderedDict[tuple[str, str], tuple[list[str], np.ndarray]] = OrderedDict()

    def embedder(self, conn: sqlite3.Connection, name: object) -> Embedder:
        found = self.loaded.get(name)  # type: ignore[call-overload]
        if found is None:
            found = load_embedder(name)
            record_use(conn, found)
            self.loaded[str(name)] = found
        return found

    def label_vectors(self, embedder: Embedder, labels_json: object) -> tuple[list[str], Any]:
        """The labels of a zero-shot classification and their descriptions' vectors."""
        if not isinstance(labels_json, str):
            raise SqmlError(_LABELS_USAGE + f", got {describe(labels_json)}")
        key = (embedder.digest, labels_json)
        found = self._labels.get(key)
        if found is not None:
            self._labels.move_to_end(key)
            return found
        labels, descriptions = parse_labels(labels_json)
        found = (labels, embedder.embed_many(descriptions))
        self._labels[key] = found
        while len(self._labels) > _MAX_LABEL_SETS:
            self._labels.popitem(last=False)
        return found


def text_of(value: object, function: str) -> str | None:
    """A SQL value as the text to embed: NULL stays NULL, numbers are their text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise SqmlError(f"{function} embeds text, got {describe(value)}")


def embed_batch(embedder: Embedder, texts_json: object) -> str:
    """A JSON array of texts (or nulls) -> a JSON array of vectors (arrays of numbers)."""
    if not isinstance(texts_json, str):
        raise SqmlError(f"sqml_embed_batch takes a JSON array of texts, got {describe(texts_json)}")
    try:
        items = json.loads(texts_json)
    except (ValueError, RecursionError):
        raise SqmlError(
            f"sqml_embed_batch: texts is not valid JSON: {shorten(texts_json)}"
        ) from None
    if not isinstance(items, list):
        raise SqmlError(f"sqml_embed_batch takes a JSON array of texts, got {shorten(texts_json)}")
    texts = []
    for index, item in enumerate(items):
        if isinstance(item, (dict, list)) or isinstance(item, bool):
            raise SqmlError(
                f"sqml_embed_batch: item {index} is {shorten(json.dumps(item))}, not a text or null"
            )
        texts.append(text_of(item, "sqml_embed_batch"))
    present = [i for i, text in enumerate(texts) if text is not None]
    vectors = embedder.embed_many([text for text in texts if text is not None]).tolist()
    out: list[Any] = [None] * len(texts)
    for position, vector in zip(present, vectors, strict=True):
        out[position] = vector
    return json.dumps(out)


_LABELS_USAGE = (
    "sqml_classify_text takes its labels as a JSON array of labels or a JSON object "
    "{label: description}"
)


def parse_labels(labels_json: str) -> tuple[list[str], list[str]]:
    """(labels, the text embedded for each): a label is its own description in an array."""
    try:
        parsed = json.loads(labels_json)
    except (ValueError, RecursionError):
        raise SqmlError(f"{_LABELS_USAGE}; not valid JSON: {shorten(labels_json)}") from None
    if isinstance(parsed, list):
        pairs = [(item, item) for item in parsed]
    elif isinstance(parsed, dict):
        pairs = list(parsed.items())
    else:
        raise SqmlError(f"{_LABELS_USAGE}, got {shorten(labels_json)}")
    if len(pairs) < 2:
        raise SqmlError(f"{_LABELS_USAGE} with at least two labels, got {shorten(labels_json)}")
    for label, description in pairs:
        if not isinstance(label, str) or not isinstance(description, str) or not description:
            raise SqmlError(
                f"{_LABELS_USAGE} whose labels and descriptions are non-empty texts, got "
                f"{shorten(json.dumps(label))}: {shorten(json.dumps(description))}"
            )
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise SqmlError(f"sqml_classify_text: a label repeats in {shorten(labels_json)}")
    return labels, [description for _, description in pairs]


def classify_text(labels: list[str], label_vectors: Any, vector: bytes) -> str:
    """The label whose description is most similar (cosine) to the text; the first on a tie."""
    similarities = label_vectors @ np.frombuffer(vector, dtype="<f4")
    return labels[int(np.argmax(similarities))]


# Rows per chunk of sqml_embed_table: many model batches per Python round trip.
EMBED_CHUNK_ROWS = 4096


def embedded_rows(embedder: Embedder, reader: Any) -> Iterator[list[tuple[Any, ...]]]:
    """``sqml_embed_table``'s rows, (key, vector BLOB or None, text or None), a chunk at a
    time from the (key, text) rows ``reader`` gives, each chunk's texts embedded in
    batches (no Python call per row)."""
    row_number = 0
    try:
        while not reader.done:
            rows = reader.rows(EMBED_CHUNK_ROWS)
            if not rows:
                continue
            texts: list[str | None] = []
            for index, (key, value) in enumerate(rows):
                if isinstance(key, bool) or not isinstance(key, int):
                    raise SqmlError(
                        f"sqml_embed_table: source row {row_number + index + 1} has the key "
                        f"{describe(key)}; the first column must be an integer key"
                    )
                texts.append(text_of(value, "sqml_embed_table"))
            row_number += len(rows)
            given = [text for text in texts if text is not None]
            vectors = iter(embedder.embed_many(given)) if given else iter(())
            yield [
                (key, None if text is None else next(vectors).tobytes(), text)
                for (key, _), text in zip(rows, texts, strict=True)
            ]
    finally:
        reader.close()
