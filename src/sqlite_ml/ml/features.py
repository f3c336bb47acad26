"""Feature schema: how a user's columns become the numeric matrix a model sees.

Built once from the training rows and stored with the model, it is what every prediction
is checked against. Numeric columns (including text that all parses as numbers, as CSV
imports leave it) pass through with NULL as NaN, which the model pipeline imputes. TEXT
columns are one-hot encoded over their most frequent categories; a category unseen in
training, or NULL, encodes as all zeros. TEXT columns that hold ISO-8601 dates (every
value) become their date parts (``dates.py``: year, month, day, day of week, day of year,
ordinal day, and the hour when the column has times).

A run's ``preprocess`` option can choose per column: ``one_hot`` (also for a numeric
column of codes), ``ordinal`` (the category's position in sorted order; unseen or NULL
is missing, then imputed), ``target`` (the mean target per category, from the training
split only: one column for regression, one per class for classification), ``none``
(numbers only), ``date`` (date parts; a value that is not a date is refused), and
``impute: error`` (a NULL is refused in training and prediction).

``FeatureSchema.infer`` also says, in ``notes``, what it decided on its own (dates read
as dates, text cut to its most frequent categories): the run records them.

Text becomes numbers through a pretrained embedding model (preprocess ``embed``): the
schema records the model's name, the SHA-256 over its files and its dimension, never its
weights, and a model loaded for prediction must match that digest. A column of BLOBs of
float32 values (what ``sqml_embed`` and sqlite-vec store) is used as its vector directly,
all of one dimension; a NULL text or vector is missing (imputed like a NULL number).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import jsontext
from ..errors import SqmlError, closest, describe, shorten, unknown
from ..names import ascii_lower
from . import dates
from .labels import LABEL_KINDS, NUMERIC_LABELS
from .values import as_number, category_of, number_or_nan

if TYPE_CHECKING:
    from .pretrained import Embedder

NUMERIC = "numeric"
CATEGORICAL = "categorical"  # one-hot
ORDINAL = "ordinal"
TARGET_ENCODED = "target"
EMBEDDING = "embedding"  # text through a pretrained model
VECTOR = "vector"  # float32 BLOBs
DATE = "date"
FEATURE_KINDS = (NUMERIC, CATEGORICAL, ORDINAL, TARGET_ENCODED, EMBEDDING, VECTOR, DATE)
MAX_CATEGORIES = 100
MAX_DIMENSION = 1 << 16
_BLOB = (bytes, bytearray, memoryview)


@dataclass
class Feature:
    name: str
    kind: str
    categories: list[str] = field(default_factory=list)
    # Target encoding: one row of ``outputs`` numbers per category (empty until fitted).
    values: list[list[float]] = field(default_factory=list)
    outputs: int = 1
    required: bool = False  # preprocess impute 'error': NULL is refused
    # Embeddings: the model's name and SHA-256 digest; embeddings and vectors: the width.
    model: str = ""
    digest: str = ""
    dimension: int = 0
    parts: list[str] = field(default_factory=list)  # a date's parts (dates.PARTS)

    def width(self) -> int:
        if self.kind == CATEGORICAL:
            return len(self.categories)
        if self.kind in (EMBEDDING, VECTOR):
            return self.dimension
        if self.kind == DATE:
            return len(self.parts)
        return self.outputs if self.kind == TARGET_ENCODED else 1


def infer_feature(
    name: str,
    values: Sequence[object],
    encode: str | None = None,
    outputs: int = 1,
    embedder: Embedder | None = None,
    notes: list[str] | None = None,
) -> Feature:
    """Decide how to use one column from its training values (``encode``: the run's
    preprocess choice for it; None decides from the values; ``embedder``: the pretrained
    model its text goes through). What it decided on its own is added to ``notes``."""
    notes = [] if notes is None else notes
    if embedder is not None:
        _refuse_blobs(name, values, "embedded as text")
        return Feature(
            name,
            EMBEDDING,
            model=embedder.name,
            digest=embedder.digest,
            dimension=embedder.dimension,
        )
    if encode in (CATEGORICAL, "one_hot", ORDINAL, TARGET_ENCODED):
        _refuse_blobs(name, values, f"encoded '{encode}'")
        counts = Counter(c for c in map(category_of, values) if c is not None)
        return coded_feature(name, encode, counts, outputs, notes)
    if encode == DATE:
        _refuse_blobs(name, values, "read as dates")
        return _forced_date(name, values)
    feature = _infer_automatic(name, values, notes)
    if encode == "none" and feature.kind not in (NUMERIC, VECTOR):
        raise text_in_numeric_column(name)
    return feature


def coded_feature(
    name: str,
    encode: str,
    counts: Mapping[str, int],
    outputs: int = 1,
    notes: list[str] | None = None,
) -> Feature:
    """A feature encoded from its categories' row counts (``encode``: one_hot, ordinal or
    target): one-hot keeps the ``MAX_CATEGORIES`` most frequent (ties by name, and a note
    in ``notes`` says so when there are more), the others every category in sorted order.
    Streamed training counts them in SQL."""
    if encode == ORDINAL:
        return Feature(name, ORDINAL, sorted(counts))
    if encode == TARGET_ENCODED:
        return Feature(name, TARGET_ENCODED, sorted(counts), outputs=outputs)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) > MAX_CATEGORIES and notes is not None:
        notes.append(
            f"column '{name}' has {len(ranked)} distinct values: one-hot encoded over the "
            f"{MAX_CATEGORIES} most frequent (the others encode as none of them); leave it "
            "out with option features, or use preprocess encode 'target' or 'ordinal'"
        )
    return Feature(name, CATEGORICAL, [c for c, _ in ranked[:MAX_CATEGORIES]])


def _forced_date(name: str, values: Sequence[object]) -> Feature:
    """Preprocess encode 'date': every value must be an ISO-8601 date (or NULL)."""
    for value in values:
        if value is not None and value != "" and dates.parse(value) is None:
            raise SqmlError(
                f"column {describe(name)} has preprocess encode 'date' but holds "
                f"{describe(value)}, which is not an ISO-8601 date ({dates.FORMAT})"
            )
    parts = dates.parts_for(list(values)) or dates.DATE_PARTS
    return Feature(name, DATE, parts=list(parts))


def text_in_numeric_column(name: str) -> SqmlError:
    return SqmlError(
        f"column {describe(name)} holds text that is not a number, but its preprocess "
        "encode is 'none'; choose 'one_hot', 'ordinal', 'target' or 'date'"
    )


def blob_feature(name: str) -> SqmlError:
    """Streamed training's refusal of a BLOB column (in memory, float32 BLOBs are vectors)."""
    return SqmlError(
        f"column {describe(name)} holds BLOB values, which streamed training cannot use as "
        "a feature (trained in memory, a column of float32 BLOBs is used as vectors); "
        "train on a view that leaves it out, or in memory"
    )


def _refuse_blobs(name: str, values: Sequence[object], use: str) -> None:
    if any(isinstance(value, _BLOB) for value in values):
        raise SqmlError(
            f"column {describe(name)} holds BLOB values, which cannot be {use}; without a "
            "preprocess choice, a column of float32 BLOBs is used as vectors"
        )


def _infer_vector(name: str, values: Sequence[object]) -> Feature:
    """A column of BLOBs: float32 vectors, all of one dimension (NULL: missing)."""
    other = next((v for v in values if v is not None and not isinstance(v, _BLOB)), None)
    if other is not None:
        raise SqmlError(
            f"column {describe(name)} mixes BLOB values with {describe(other)}; a vector "
            "column holds float32 BLOBs (or NULL) only"
        )
    sizes = sorted({len(value) for value in values if isinstance(value, _BLOB)})
    if len(sizes) != 1 or sizes[0] % 4 or not 0 < sizes[0] // 4 <= MAX_DIMENSION:
        raise SqmlError(
            f"column {describe(name)} holds BLOBs of {', '.join(map(str, sizes))} bytes; a "
            "vector column holds float32 vectors (4 bytes a number) of one dimension, "
            f"at most {MAX_DIMENSION}"
        )
    feature = Feature(name, VECTOR, dimension=sizes[0] // 4)
    for value in values:
        vector_of(feature, value, "")  # every vector finite, or the error now
    return feature


def vector_of(feature: Feature, value: object, where: str) -> np.ndarray:
    """A vector feature's value as float64 (NaN where missing): a float32 little-endian
    BLOB, or (in JSON input) an array of numbers or its JSON text."""
    dimension = feature.dimension
    if value is None:
        return np.full(dimension, np.nan)
    if isinstance(value, _BLOB):
        data = bytes(value)
        if len(data) != 4 * dimension:
            raise SqmlError(
                f"feature '{feature.name}'{where} is a BLOB of {len(data)} bytes, but the "
                f"model expects {dimension} float32 values ({4 * dimension} bytes)"
            )
        vector = np.frombuffer(data, dtype="<f4").astype(np.float64)
    else:
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if not isinstance(value, list) or len(value) != dimension:
            raise SqmlError(
                f"feature '{feature.name}'{where} expects a vector of {dimension} float32 "
                f"values (a BLOB, or a JSON array), got {shorten(json.dumps(value, default=repr))}"
            )
        try:
            vector = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise SqmlError(
                f"feature '{feature.name}'{where} holds a vector with a value that is not a "
                f"number: {shorten(json.dumps(value))}"
            ) from None
    if not np.isfinite(vector).all():
        raise SqmlError(
            f"feature '{feature.name}'{where} holds a vector with a NaN or infinite value"
        )
    return vector


def _infer_automatic(name: str, values: Sequence[object], notes: list[str]) -> Feature:
    if any(isinstance(value, _BLOB) for value in values):
        return _infer_vector(name, values)
    has_text = any(isinstance(value, str) for value in values)
    if has_text:
        try:
            for value in values:
                as_number(value)
        except ValueError:
            parts = dates.parts_for(list(values))
            if parts is not None:
                notes.append(
                    f"column '{name}' holds ISO-8601 dates: used as {', '.join(parts)} "
                    "(preprocess encode 'one_hot' keeps it a category)"
                )
                return Feature(name, DATE, parts=list(parts))
            stranger = dates.mostly_dates(list(values))
            if stranger is not None:
                notes.append(
                    f"column '{name}' holds ISO-8601 dates but for {shorten(repr(stranger), 40)}"
                    ": used as text categories; fix or filter out that value to use it as dates"
                )
            counts = Counter(c for c in map(category_of, values) if c is not None)
            return coded_feature(name, CATEGORICAL, counts, notes=notes)
    return Feature(name, NUMERIC)


class FeatureSchema:
    """The model's inputs, plus what its target looked like (``label_kind``: numeric or text)."""

    def __init__(
        self,
        features: Sequence[Feature],
        target: str = "",
        label_kind: str = NUMERIC_LABELS,
        embedders: Mapping[str, Embedder] | None = None,
    ):
        self.target = target
        self.label_kind = label_kind
        self.features = list(features)
        self.notes: list[str] = []  # what ``infer`` decided on its own (not stored)
        self.names = [feature.name for feature in self.features]
        self._offsets: list[int] = []
        offset = 0
        for feature in self.features:
            self._offsets.append(offset)
            offset += feature.width()
        self.width = offset
        self._numeric = [feature.kind == NUMERIC for feature in self.features]
        self._all_numeric = all(self._numeric)
        self._kinds = [feature.kind for feature in self.features]
        self._required = [feature.required for feature in self.features]
        self._category_index = [
            {category: i for i, category in enumerate(feature.categories)}
            for feature in self.features
        ]
        self.plain_numbers = all(
            feature.kind in (NUMERIC, CATEGORICAL, ORDINAL, TARGET_ENCODED)
            for feature in self.features
        )
        self.single_vector = len(self.features) == 1 and self._kinds[0] == VECTOR
        # The loaded models of the embedding features, by feature name (see bind_embedders).
        self.embedders: dict[str, Embedder] = dict(embedders or {})

    @classmethod
    def infer(
        cls,
        names: Sequence[str],
        columns: Sequence[Sequence[object]],
        target: str,
        label_kind: str,
        encodings: Mapping[str, str | None] | None = None,
        outputs: int = 1,
        embedders: Mapping[str, Embedder] | None = None,
    ) -> FeatureSchema:
        encodings = encodings or {}
        embedders = embedders or {}
        notes: list[str] = []
        features = [
            infer_feature(name, values, encodings.get(name), outputs, embedders.get(name), notes)
            for name, values in zip(names, columns, strict=True)
        ]
        schema = cls(features, target, label_kind, embedders)
        schema.notes = notes
        return schema

    def bind_embedders(self, load: Callable[[Feature], Embedder]) -> None:
        """Load the model of every embedding feature (``load`` gives it for a feature and
        words a missing one), refusing one whose files are not those the model was
        trained with: its vectors would differ, and so would every prediction."""
        for feature in self.features:
            if feature.kind != EMBEDDING:
                continue
            embedder = load(feature)
            if embedder.digest != feature.digest or embedder.dimension != feature.dimension:
                raise SqmlError(
                    f"feature '{feature.name}' was embedded in training by '{feature.model}' "
                    f"with files of SHA-256 {feature.digest[:16]}... ({feature.dimension} "
                    f"dimensions), but '{feature.model}' here has {embedder.digest[:16]}... "
                    f"({embedder.dimension} dimensions); its vectors would differ: install "
                    "the model the experiment was trained with, or retrain it"
                )
            self.embedders[feature.name] = embedder

    @property
    def target_encoded(self) -> bool:
        return TARGET_ENCODED in self._kinds

    def require(self, names: Iterable[str]) -> FeatureSchema:
        """The same schema with NULL refused in ``names`` (preprocess impute 'error')."""
        wanted = set(names)
        features = [dataclasses.replace(f, required=f.name in wanted) for f in self.features]
        schema = FeatureSchema(features, self.target, self.label_kind, self.embedders)
        schema.notes = self.notes
        return schema

    def fit_target_encoding(
        self, columns: Sequence[Sequence[object]], targets: np.ndarray, smoothing: float = 1.0
    ) -> FeatureSchema:
        """Target-encoded features fitted on training rows (``columns``, ``targets`` of
        one number per output each): a category's mean target, pulled towards the overall
        mean by ``smoothing`` rows' worth of weight."""
        prior = targets.mean(axis=0)
        features = []
        for feature, values in zip(self.features, columns, strict=True):
            if feature.kind != TARGET_ENCODED:
                features.append(feature)
                continue
            sums = {c: np.zeros(targets.shape[1]) for c in feature.categories}
            counts = dict.fromkeys(feature.categories, 0)
            for value, target in zip(values, targets, strict=True):
                category = category_of(value)
                if category in sums:
                    sums[category] += target
                    counts[category] += 1
            encoded = [
                [float(v) for v in (sums[c] + smoothing * prior) / (counts[c] + smoothing)]
                for c in feature.categories
            ]
            features.append(dataclasses.replace(feature, values=encoded))
        schema = FeatureSchema(features, self.target, self.label_kind, self.embedders)
        schema.notes = self.notes
        return schema

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "target": self.target,
                "label_kind": self.label_kind,
                "features": [_feature_json(f) for f in self.features],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        """Read a stored schema; ValueError says what is wrong with a damaged one."""
        data = jsontext.loads(text)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not a version 1 feature schema object")
        if not isinstance(data.get("features"), list) or not data["features"]:
            raise ValueError("'features' is not a non-empty list")
        features = []
        for item in data["features"]:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError(f"a feature has no text name: {shorten(json.dumps(item))}")
            kind = item.get("kind")
            categories = item.get("categories", [])
            if kind not in FEATURE_KINDS:
                raise ValueError(f"feature '{item['name']}' has unknown kind {kind!r}")
            if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
                raise ValueError(f"feature '{item['name']}' has malformed categories")
            if len(set(categories)) != len(categories):
                raise ValueError(f"feature '{item['name']}' lists a category twice")
            features.append(_feature_from_json(item, kind, list(categories)))
        names = [feature.name for feature in features]
        if len(set(names)) != len(names):
            raise ValueError("feature names repeat")
        label_kind = data.get("label_kind", NUMERIC_LABELS)
        if label_kind not in LABEL_KINDS:
            raise ValueError(f"unknown label kind {label_kind!r}")
        return cls(features, str(data.get("target", "")), label_kind)

    def feature_at(self, column: int) -> Feature:
        """The feature that a column of the encoded matrix comes from."""
        position = int(np.searchsorted(self._offsets, column, side="right")) - 1
        return self.features[position]

    def types(self) -> dict[str, str]:
        return {feature.name: feature.kind for feature in self.features}

    def encode_columns(self, columns: Sequence[Sequence[object]], n_rows: int) -> np.ndarray:
        """Training rows, given column by column, as a float matrix."""
        matrix = np.zeros((n_rows, self.width), dtype=np.float64)
        for position, (feature, values) in enumerate(zip(self.features, columns, strict=True)):
            start = self._offsets[position]
            if feature.kind == NUMERIC:
                matrix[:, start] = [number_or_nan(v) for v in values]
            elif feature.kind == CATEGORICAL:
                index = self._category_index[position]
                for row, value in enumerate(values):
                    hit = index.get(category_of(value))  # type: ignore[arg-type]
                    if hit is not None:
                        matrix[row, start + hit] = 1.0
            elif feature.kind == EMBEDDING:
                block = self._embed_texts(feature, list(values))
                matrix[:, start : start + feature.width()] = block
            elif feature.kind == VECTOR:
                for row, value in enumerate(values):
                    matrix[row, start : start + feature.width()] = vector_of(feature, value, "")
            elif feature.kind == DATE:
                for row, value in enumerate(values):
                    matrix[row, start : start + feature.width()] = self._date(position, value, "")
            else:
                for row, value in enumerate(values):
                    self._encode_coded(position, value, matrix[row], start)
        return matrix

    def _embedder(self, feature: Feature) -> Embedder:
        embedder = self.embedders.get(feature.name)
        if embedder is None:  # a schema read back without bind_embedders(): a bug of ours
            raise SqmlError(f"feature '{feature.name}' has no embedding model loaded")
        return embedder

    def _embed_texts(self, feature: Feature, values: list[object], where: str = "") -> np.ndarray:
        """Each value's vector (float64; NaN for NULL), the texts embedded in one batch."""
        block = np.full((len(values), feature.dimension), np.nan)
        texts = [self._text(feature, value, where) for value in values]
        present = [row for row, text in enumerate(texts) if text is not None]
        if present:
            given = [text for text in texts if text is not None]
            vectors = self._embedder(feature).embed_many(given)
            block[present] = vectors
        return block

    @staticmethod
    def _text(feature: Feature, value: object, where: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        shown = shorten(json.dumps(value)) if isinstance(value, (dict, list)) else describe(value)
        raise SqmlError(f"feature '{feature.name}'{where} is embedded as text, got {shown}")

    def _encode_coded(self, slot: int, value: object, out: Any, start: int) -> None:
        """Ordinal and target encodings of one value into ``out[start:]`` (NaN: missing).
        A target-encoded feature not fitted yet holds the category's position instead."""
        hit = self._category_index[slot].get(category_of(value))  # type: ignore[arg-type]
        feature = self.features[slot]
        if feature.kind == ORDINAL or not feature.values:
            out[start] = math.nan if hit is None else float(hit)
            for i in range(1, feature.width()):
                out[start + i] = math.nan
            return
        row = feature.values[hit] if hit is not None else [math.nan] * feature.outputs
        for i, number in enumerate(row):
            out[start + i] = number

    def _date(self, slot: int, value: object, where: str) -> list[float]:
        """A date feature's parts for one value (NaN each when missing)."""
        parts = dates.encode(value, self.features[slot].parts)
        if parts is None:
            raise SqmlError(
                f"feature '{self.names[slot]}'{where} expects an ISO-8601 date ({dates.FORMAT}) "
                f"or null, got {shorten(json.dumps(value, default=repr))}"
            )
        return parts

    def encode_records(self, records: Iterable[Any], batch: bool = False) -> np.ndarray:
        """Prediction input (JSON objects keyed by column, or arrays in column order)."""
        records = list(records)
        if self._all_numeric and records:
            matrix = self._encode_numeric_records(records, batch)
            if matrix is not None:
                return matrix
        embedded = self._embed_in_batches(records)
        rows = [
            self._encode_record(record, f" (item {i})" if batch else "", embedded)
            for i, record in enumerate(records)
        ]
        if not rows:
            return np.zeros((0, self.width), dtype=np.float64)
        return np.asarray(rows, dtype=np.float64)

    def _embed_in_batches(self, records: list[Any]) -> dict[tuple[int, str], list[float]]:
        """The vectors of the texts of embedding features in records given as arrays in
        column order (table prediction, evaluation), embedded a batch at a time: a model
        call per text would cost heavy models (ONNX, PyTorch) several times more. The
        per-record encoder uses them and embeds anything else itself."""
        found: dict[tuple[int, str], list[float]] = {}
        width = len(self.names)
        for slot, kind in enumerate(self._kinds):
            if kind != EMBEDDING:
                continue
            texts = list(
                dict.fromkeys(
                    record[slot]
                    for record in records
                    if type(record) is list and len(record) == width and type(record[slot]) is str
                )
            )
            if texts:
                vectors = self._embedder(self.features[slot]).embed_many(texts).tolist()
                found.update(((slot, t), v) for t, v in zip(texts, vectors, strict=True))
        return found

    def _encode_record(
        self,
        record: Any,
        where: str,
        embedded: Mapping[tuple[int, str], list[float]] | None = None,
    ) -> list[float]:
        if isinstance(record, Mapping):
            try:
                values: Sequence[Any] = [record[name] for name in self.names]
            except KeyError:
                values = self._values_by_name(record, where)
        elif isinstance(record, list):
            if len(record) != len(self.names):
                raise SqmlError(
                    f"features{where} is an array of {len(record)} values but the "
                    f"model expects {len(self.names)}, in this order: {_quoted(self.names)}"
                )
            values = record
        else:
            raise SqmlError(
                f"features{where} must be a JSON object keyed by column name or a "
                f"JSON array in training-column order, got {shorten(json.dumps(record))}"
            )
        encoded = [0.0] * self.width
        offsets = self._offsets
        for slot, value in enumerate(values):
            if value is None and self._required[slot]:
                raise SqmlError(
                    f"feature '{self.names[slot]}'{where} is null, but the model was trained "
                    "with preprocess impute 'error' for it: give it a value"
                )
            if self._numeric[slot]:
                kind = type(value)
                if kind is float and value - value == 0:  # finite
                    encoded[offsets[slot]] = value
                elif value is None:
                    encoded[offsets[slot]] = math.nan
                else:
                    encoded[offsets[slot]] = self._number(slot, value, where)
            elif self._kinds[slot] in (EMBEDDING, VECTOR):
                feature, start = self.features[slot], offsets[slot]
                known = embedded.get((slot, value)) if embedded and type(value) is str else None
                if known is not None:  # embedded with the rest of the batch
                    numbers = known
                elif feature.kind == VECTOR:
                    numbers = vector_of(feature, value, where).tolist()
                else:
                    numbers = self._embed_texts(feature, [value], where)[0].tolist()
                encoded[start : start + feature.dimension] = numbers
            else:
                if isinstance(value, (dict, list)):
                    raise SqmlError(
                        f"feature '{self.names[slot]}'{where} expects a text category or "
                        f"null, got {shorten(json.dumps(value))}"
                    )
                if self._kinds[slot] == DATE:
                    start = offsets[slot]
                    parts = self._date(slot, value, where)
                    encoded[start : start + len(parts)] = parts
                    continue
                if self._kinds[slot] != CATEGORICAL:
                    self._encode_coded(slot, value, encoded, offsets[slot])
                    continue
                hit = self._category_index[slot].get(category_of(value))  # type: ignore[arg-type]
                if hit is not None:
                    encoded[offsets[slot] + hit] = 1.0
        return encoded

    def _encode_numeric_records(self, records: list[Any], batch: bool) -> np.ndarray | None:
        """All-numeric models: let numpy convert the whole batch at once. Rows with a
        missing value, and any batch numpy cannot take as it is, go through the per-record
        encoder, which applies every rule (and words every error) the same way."""
        names, width = self.names, len(self.names)
        if width > 1 and type(records[0]) is dict:
            try:  # the common batch, objects from json_object(): one C call per record
                return self._numeric_matrix(list(map(itemgetter(*names), records)), records, batch)
            except (KeyError, TypeError, IndexError):
                pass  # a record of another shape: the loop below sorts it out
        rows: list[Any] = []
        for record in records:
            kind = type(record)
            if kind is dict:
                try:
                    rows.append([record[name] for name in names])
                except KeyError:
                    return None
            elif kind is list and len(record) == width:
                rows.append(record)
            else:
                return None
        return self._numeric_matrix(rows, records, batch)

    def _numeric_matrix(
        self, rows: list[Any], records: list[Any], batch: bool
    ) -> np.ndarray | None:
        try:
            matrix = np.array(rows, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return None
        if matrix.shape != (len(records), self.width) or np.isinf(matrix).any():
            return None
        for i in np.flatnonzero(np.isnan(matrix).any(axis=1)):
            matrix[i] = self._encode_record(records[i], f" (item {i})" if batch else "")
        return matrix

    def encode_record(self, record: Any) -> list[float]:
        """One prediction input as a row of floats (NaN where a value is missing)."""
        return self._encode_record(record, "")

    def _values_by_name(self, record: Mapping[str, Any], where: str) -> list[Any]:
        missing = [name for name in self.names if name not in record]
        record = _fold_case(record, missing)
        missing = [name for name in self.names if name not in record]
        if missing:
            lacking = f"features{where} lack {_quoted(missing)}"
            misspelled = _misspelled_key(record, self.names, missing)
            if misspelled is not None:
                raise unknown(
                    "feature",
                    misspelled,
                    self.names,
                    listing="the model expects",
                    hint=f" ({lacking})",
                ) from None
            raise SqmlError(f"{lacking}; the model expects {_quoted(self.names)}")
        return [record[name] for name in self.names]

    def _number(self, slot: int, value: Any, where: str) -> float:
        """A numeric feature that is not a plain finite float: int, numeric text, or bad."""
        try:
            number = as_number(value)
        except (ValueError, TypeError, OverflowError):
            number = math.inf
        if number is None:
            return math.nan
        if not math.isfinite(number):
            raise SqmlError(
                f"feature '{self.names[slot]}'{where} expects a number or null, got {_shown(value)}"
            )
        return number


def _shown(value: Any) -> str:
    """A value for a message: as JSON when it came from JSON, else as SQL shows it (a
    BLOB passed as a feature value has no JSON form)."""
    try:
        return shorten(json.dumps(value))
    except (TypeError, ValueError):
        return describe(value)


def _feature_json(feature: Feature) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": feature.name,
        "kind": feature.kind,
        "categories": feature.categories,
    }
    if feature.kind == TARGET_ENCODED:
        item["values"] = feature.values
        item["outputs"] = feature.outputs
    if feature.kind == EMBEDDING:
        item["model"] = feature.model
        item["digest"] = feature.digest
    if feature.kind in (EMBEDDING, VECTOR):
        item["dimension"] = feature.dimension
    if feature.kind == DATE:
        item["parts"] = feature.parts
    if feature.required:
        item["required"] = True
    return item


def _feature_from_json(item: dict[str, Any], kind: str, categories: list[str]) -> Feature:
    name = item["name"]
    required = item.get("required", False)
    if not isinstance(required, bool):
        raise ValueError(f"feature '{name}' has a malformed 'required' flag")
    if kind in (EMBEDDING, VECTOR):
        return _vector_feature_from_json(item, kind, required)
    if kind == DATE:
        parts = item.get("parts")
        if (
            not isinstance(parts, list)
            or not parts
            or not all(part in dates.PARTS for part in parts)
            or len(set(parts)) != len(parts)
        ):
            raise ValueError(f"feature '{name}' has malformed date parts")
        return Feature(name, kind, [], required=required, parts=list(parts))
    if kind != TARGET_ENCODED:
        return Feature(name, kind, categories, required=required)
    outputs, values = item.get("outputs"), item.get("values")
    if (
        isinstance(outputs, bool)
        or not isinstance(outputs, int)
        or outputs < 1
        or not isinstance(values, list)
        or len(values) != len(categories)
        or not all(
            isinstance(row, list)
            and len(row) == outputs
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
            for row in values
        )
    ):
        raise ValueError(f"feature '{name}' has malformed target encoding values")
    return Feature(
        name, kind, categories, [list(map(float, row)) for row in values], outputs, required
    )


def _vector_feature_from_json(item: dict[str, Any], kind: str, required: bool) -> Feature:
    name, dimension = item["name"], item.get("dimension")
    if (
        isinstance(dimension, bool)
        or not isinstance(dimension, int)
        or not 0 < dimension <= MAX_DIMENSION
    ):
        raise ValueError(f"feature '{name}' has a malformed dimension")
    if kind == VECTOR:
        return Feature(name, kind, required=required, dimension=dimension)
    model, digest = item.get("model"), item.get("digest")
    if not isinstance(model, str) or not model or not isinstance(digest, str):
        raise ValueError(f"feature '{name}' names no embedding model")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"feature '{name}' has a malformed model digest")
    return Feature(name, kind, required=required, model=model, digest=digest, dimension=dimension)


def _fold_case(record: Mapping[str, Any], missing: Sequence[str]) -> Mapping[str, Any]:
    """Column names in SQLite ignore ASCII case, so JSON keys may too (when unambiguous)."""
    by_folded: dict[str, list[str]] = {}
    for key in record:
        by_folded.setdefault(ascii_lower(key), []).append(key)
    found = dict(record)
    for name in missing:
        keys = by_folded.get(ascii_lower(name), [])
        if len(keys) == 1:
            found[name] = record[keys[0]]
    return found


def _misspelled_key(
    record: Mapping[str, Any], names: Sequence[str], missing: Sequence[str]
) -> str | None:
    """A key of ``record`` that is no feature of the model but close to a missing one
    (``'klass'`` for ``'class'``): the likely cause of the missing value."""
    known = set(names)
    for key in record:
        if isinstance(key, str) and key not in known and closest(key, missing) is not None:
            return key
    return None


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)
