"""Feature schema: how a user's columns become the numeric matrix a model sees.

Built once from the training rows and stored with the model, it is what every prediction
is checked against. Numeric columns (including text that all parses as numbers, as CSV
imports leave it) pass through with NULL as NaN, which the model pipeline imputes. TEXT
columns are one-hot encoded over their most frequent categories; a category unseen in
training, or NULL, encodes as all zeros.

A run's ``preprocess`` option can choose per column: ``one_hot`` (also for a numeric
column of codes), ``ordinal`` (the category's position in sorted order; unseen or NULL
is missing, then imputed), ``target`` (the mean target per category, from the training
split only: one column for regression, one per class for classification), ``none``
(numbers only), and ``impute: error`` (a NULL is refused in training and prediction).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from .. import jsontext
from ..errors import SqmlError, describe, shorten
from ..names import ascii_lower
from .labels import LABEL_KINDS, NUMERIC_LABELS
from .values import as_number, category_of, number_or_nan

NUMERIC = "numeric"
CATEGORICAL = "categorical"  # one-hot
ORDINAL = "ordinal"
TARGET_ENCODED = "target"
FEATURE_KINDS = (NUMERIC, CATEGORICAL, ORDINAL, TARGET_ENCODED)
MAX_CATEGORIES = 100


@dataclass
class Feature:
    name: str
    kind: str
    categories: list[str] = field(default_factory=list)
    # Target encoding: one row of ``outputs`` numbers per category (empty until fitted).
    values: list[list[float]] = field(default_factory=list)
    outputs: int = 1
    required: bool = False  # preprocess impute 'error': NULL is refused

    def width(self) -> int:
        if self.kind == CATEGORICAL:
            return len(self.categories)
        return self.outputs if self.kind == TARGET_ENCODED else 1


def infer_feature(
    name: str, values: Sequence[object], encode: str | None = None, outputs: int = 1
) -> Feature:
    """Decide how to use one column from its training values (``encode``: the run's
    preprocess choice for it; None decides from the values)."""
    if encode in (CATEGORICAL, "one_hot", ORDINAL, TARGET_ENCODED):
        _refuse_blobs(name, values)
        counts = Counter(c for c in map(category_of, values) if c is not None)
        return coded_feature(name, encode, counts, outputs)
    feature = _infer_automatic(name, values)
    if encode == "none" and feature.kind != NUMERIC:
        raise text_in_numeric_column(name)
    return feature


def coded_feature(name: str, encode: str, counts: Mapping[str, int], outputs: int = 1) -> Feature:
    """A feature encoded from its categories' row counts (``encode``: one_hot, ordinal or
    target): one-hot keeps the ``MAX_CATEGORIES`` most frequent (ties by name), the
    others every category in sorted order. Streamed training counts them in SQL."""
    if encode == ORDINAL:
        return Feature(name, ORDINAL, sorted(counts))
    if encode == TARGET_ENCODED:
        return Feature(name, TARGET_ENCODED, sorted(counts), outputs=outputs)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return Feature(name, CATEGORICAL, [c for c, _ in ranked[:MAX_CATEGORIES]])


def text_in_numeric_column(name: str) -> SqmlError:
    return SqmlError(
        f"column {describe(name)} holds text that is not a number, but its preprocess "
        "encode is 'none'; choose 'one_hot', 'ordinal' or 'target'"
    )


def blob_feature(name: str) -> SqmlError:
    return SqmlError(
        f"column {describe(name)} holds BLOB values, which cannot be used as a feature; "
        "train on a view that leaves it out or converts it"
    )


def _refuse_blobs(name: str, values: Sequence[object]) -> None:
    if any(isinstance(value, (bytes, bytearray, memoryview)) for value in values):
        raise blob_feature(name)


def _infer_automatic(name: str, values: Sequence[object]) -> Feature:
    _refuse_blobs(name, values)
    has_text = any(isinstance(value, str) for value in values)
    if has_text:
        try:
            for value in values:
                as_number(value)
        except ValueError:
            counts = Counter(c for c in map(category_of, values) if c is not None)
            return coded_feature(name, CATEGORICAL, counts)
    return Feature(name, NUMERIC)


class FeatureSchema:
    """The model's inputs, plus what its target looked like (``label_kind``: numeric or text)."""

    def __init__(
        self, features: Sequence[Feature], target: str = "", label_kind: str = NUMERIC_LABELS
    ):
        self.target = target
        self.label_kind = label_kind
        self.features = list(features)
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

    @classmethod
    def infer(
        cls,
        names: Sequence[str],
        columns: Sequence[Sequence[object]],
        target: str,
        label_kind: str,
        encodings: Mapping[str, str | None] | None = None,
        outputs: int = 1,
    ) -> FeatureSchema:
        encodings = encodings or {}
        features = [
            infer_feature(name, values, encodings.get(name), outputs)
            for name, values in zip(names, columns, strict=True)
        ]
        return cls(features, target, label_kind)

    @property
    def target_encoded(self) -> bool:
        return TARGET_ENCODED in self._kinds

    def require(self, names: Iterable[str]) -> FeatureSchema:
        """The same schema with NULL refused in ``names`` (preprocess impute 'error')."""
        wanted = set(names)
        features = [
            Feature(f.name, f.kind, f.categories, f.values, f.outputs, f.name in wanted)
            for f in self.features
        ]
        return FeatureSchema(features, self.target, self.label_kind)

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
            features.append(
                Feature(
                    feature.name,
                    feature.kind,
                    feature.categories,
                    encoded,
                    feature.outputs,
                    feature.required,
                )
            )
        return FeatureSchema(features, self.target, self.label_kind)

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
            else:
                for row, value in enumerate(values):
                    self._encode_coded(position, value, matrix[row], start)
        return matrix

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

    def encode_records(self, records: Iterable[Any], batch: bool = False) -> np.ndarray:
        """Prediction input (JSON objects keyed by column, or arrays in column order)."""
        records = list(records)
        if self._all_numeric and records:
            matrix = self._encode_numeric_records(records, batch)
            if matrix is not None:
                return matrix
        rows = [
            self._encode_record(record, f" (item {i})" if batch else "")
            for i, record in enumerate(records)
        ]
        if not rows:
            return np.zeros((0, self.width), dtype=np.float64)
        return np.asarray(rows, dtype=np.float64)

    def _encode_record(self, record: Any, where: str) -> list[float]:
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
            else:
                if isinstance(value, (dict, list)):
                    raise SqmlError(
                        f"feature '{self.names[slot]}'{where} expects a text category or "
                        f"null, got {shorten(json.dumps(value))}"
                    )
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
            raise SqmlError(
                f"features{where} lack {_quoted(missing)}; the model expects {_quoted(self.names)}"
            )
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
    if feature.required:
        item["required"] = True
    return item


def _feature_from_json(item: dict[str, Any], kind: str, categories: list[str]) -> Feature:
    name = item["name"]
    required = item.get("required", False)
    if not isinstance(required, bool):
        raise ValueError(f"feature '{name}' has a malformed 'required' flag")
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


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)
