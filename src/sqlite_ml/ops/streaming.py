"""Domain: streamed training, for tables larger than memory (docs/big-tables.md).

The rows are read in chunks (``db.streams``) and never held whole:

1. SQL scans decide the feature schema exactly as in-memory training would from all
   rows: which columns hold text that is not a number (categories), and each category's
   row count (GROUP BY), so one-hot, ordinal and the classes are the same as in memory.
2. A first pass encodes every chunk and splits it by a seeded hash of each row's key
   (``ml.splits.hash_unit``: rowid, or the ``key_column`` option), accumulating the
   preprocessing statistics of the train rows and the digest of the data; medians,
   quartiles and most frequent values take a few more exact passes when asked for.
3. The model learns from the train rows chunk by chunk: ``partial_fit`` (``epochs``
   passes), XGBoost's external memory (a data iterator, a cache on disk), or LightGBM's
   ``Sequence``.
4. A last pass predicts the test rows and accumulates the metrics (``ml.streamed_metrics``)
   and a bounded sample for permutation importance (and clustering scores).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.impute import SimpleImputer

from ..db import streams
from ..errors import SqmlError
from ..ml import metrics
from ..ml.boosted_streams import fit_lightgbm, fit_xgboost
from ..ml.catalogue import streaming_method
from ..ml.features import (
    NUMERIC,
    Feature,
    FeatureSchema,
    blob_feature,
    coded_feature,
    text_in_numeric_column,
)
from ..ml.labels import (
    CLUSTER_LABELS,
    NUMERIC_LABELS,
    TEXT_LABELS,
    check_numeric_labels,
    numbers_or_error,
)
from ..ml.splits import hash_unit
from ..ml.streamed_metrics import BottomK, ClassificationTally, RegressionTally
from ..ml.streamed_statistics import Moments, fitted_column_steps, fitted_standard_steps
from ..ml.values import as_number, category_of
from . import importance, progress
from .train_parts import Engine, Outcome, TrainRequest, pipeline_for

CLUSTER_SAMPLE_ROWS = 10_000  # test rows the clustering scores are computed on
_SAMPLE_SEED_OFFSET = 0x5A17  # the importance sample's hash differs from the split's


@dataclass
class Encoded:
    keys: np.ndarray
    matrix: np.ndarray
    labels: np.ndarray
    test: np.ndarray  # True: a test row


def streamed_schema(
    conn: sqlite3.Connection, request: TrainRequest, profile: streams.Profile
) -> FeatureSchema:
    """The schema ``FeatureSchema.infer`` would build from every row, from SQL scans."""
    features = []
    for name in request.feature_columns:
        if name in profile.blob_columns:
            raise blob_feature(name)
        encode = request.encodings.get(name)
        if encode in ("one_hot", "ordinal", "target"):
            features.append(coded_feature(name, encode, _category_counts(conn, request, name)))
            continue
        if name in profile.text_columns and not _all_numbers(conn, request, name):
            if encode == "none":
                raise text_in_numeric_column(name)
            features.append(coded_feature(name, "one_hot", _category_counts(conn, request, name)))
            continue
        features.append(Feature(name, NUMERIC))
    label_kind = CLUSTER_LABELS if request.target is None else NUMERIC_LABELS
    if request.prediction_type == "classification" and profile.target_has_text:
        label_kind = TEXT_LABELS
    return FeatureSchema(features, request.target or "", label_kind)


def _all_numbers(conn: sqlite3.Connection, request: TrainRequest, column: str) -> bool:
    for text in streams.distinct_text(conn, request.dataset, column, request.target):
        try:
            as_number(text)
        except ValueError:
            return False
    return True


def _category_counts(conn: sqlite3.Connection, request: TrainRequest, column: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for value, rows in streams.value_counts(conn, request.dataset, column, request.target):
        if isinstance(value, (bytes, bytearray, memoryview)):
            raise blob_feature(column)
        category = category_of(value)
        if category is not None:
            counts[category] += rows
    return counts


def _classes(conn: sqlite3.Connection, request: TrainRequest, label_kind: str) -> np.ndarray:
    """The sorted class labels, as the in-memory labels hold them."""
    assert request.target is not None
    values = [v for v, _ in streams.value_counts(conn, request.dataset, request.target, None)]
    if any(isinstance(v, (bytes, bytearray, memoryview)) for v in values):
        raise SqmlError("the target column holds BLOB values; class labels must be numbers or text")
    if label_kind == TEXT_LABELS:
        return np.unique(np.array([category_of(v) for v in values], dtype=object))
    classes = np.unique(np.array([float(v) for v in values], dtype=np.float64))  # type: ignore[arg-type]
    check_numeric_labels(classes)
    return classes


class RowStream:
    """Passes over the encoded rows with a target, each chunk split by its keys' hash."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        request: TrainRequest,
        schema: FeatureSchema,
        seed: int,
        rowid_range: tuple[int, int] | None = None,
    ):
        self.conn = conn
        self.rowid_range = rowid_range  # a Dask partition's rows
        self.request = request
        self.schema = schema
        self.seed = seed
        self.numeric = all(feature.kind == NUMERIC for feature in schema.features)
        self.required = [f.required for f in schema.features]
        self.rows = 0  # rows with a target, known after a first pass

    def chunks(self, stage: str) -> Iterator[Encoded]:
        request, big = self.request, self.request.options.big_data
        done = 0
        for chunk in streams.read_chunks(
            self.conn,
            request.dataset,
            request.feature_columns,
            request.target,
            big.key_column,
            big.chunk_rows,
            self.rowid_range,
        ):
            encoded = self._encode(chunk)
            done += len(chunk)
            progress.report(stage, done, self.rows)
            yield encoded

    def train(self, stage: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for part in self.chunks(stage):
            keep = ~part.test
            if keep.any():
                yield part.matrix[keep], part.labels[keep]

    def _encode(self, chunk: streams.Chunk) -> Encoded:
        width = len(self.request.feature_columns)
        target = self.request.target
        keys = chunk.keys
        if chunk.block is not None and self.numeric:
            matrix = chunk.block[:, :width]
            labels = chunk.block[:, width] if target is not None else np.zeros(len(chunk))
            if self.schema.label_kind == TEXT_LABELS:
                labels = np.array([category_of(v) for v in labels.tolist()], dtype=object)
        else:
            rows = chunk.rows if chunk.rows is not None else _python_rows(chunk.block)
            columns = list(zip(*rows, strict=True))
            matrix = self.schema.encode_columns(columns[:width], len(rows))
            labels = self._labels(columns[width] if target is not None else None, len(rows))
            if labels.dtype != object and self.request.prediction_type == "regression":
                keep = ~np.isnan(labels)  # text '' in a numeric target counts as missing
                if not keep.all():
                    keys, matrix, labels = keys[keep], matrix[keep], labels[keep]
        if self.request.prediction_type == "classification" and labels.dtype != object:
            check_numeric_labels(labels)
        self._check(matrix)
        test = hash_unit(keys, self.seed) < self.request.test_size
        return Encoded(keys, matrix, labels, test)

    def _labels(self, values: tuple[object, ...] | None, rows: int) -> np.ndarray:
        if values is None:
            return np.zeros(rows)
        if self.request.prediction_type == "regression":
            return numbers_or_error(str(self.request.target), values)
        if self.schema.label_kind == TEXT_LABELS:
            return np.array([category_of(v) for v in values], dtype=object)
        return np.array([float(v) for v in values], dtype=np.float64)  # type: ignore[arg-type]

    def _check(self, matrix: np.ndarray) -> None:
        infinite = np.isinf(matrix).any(axis=0)
        if infinite.any():
            column = self.schema.feature_at(int(np.argmax(infinite))).name
            raise SqmlError(
                f"column '{column}' holds an infinite value; replace it (or filter it out in "
                "a view) before training"
            )
        if any(self.required):
            start = 0
            for feature in self.schema.features:
                block = matrix[:, start : start + feature.width()]
                start += feature.width()
                if feature.required and np.isnan(block).any():
                    raise SqmlError(
                        f"column '{feature.name}' has missing values (NULL) and its preprocess "
                        "impute is 'error'; fill them, filter the rows out in a view, or "
                        "choose another impute"
                    )


def _python_rows(block: np.ndarray | None) -> list[tuple[object, ...]]:
    assert block is not None
    return [tuple(None if math.isnan(v) else v for v in row) for row in block.tolist()]


class Digest:
    """The SHA-256 of the encoded data, the same as in-memory training's ``_digest``:
    the matrix's bytes in read order, then the labels' (spooled to a temporary file)."""

    def __init__(self, text_labels: bool):
        self.hasher = hashlib.sha256()
        self.labels = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self.text = text_labels
        self.first = True

    def update(self, matrix: np.ndarray, labels: np.ndarray) -> None:
        self.hasher.update(np.ascontiguousarray(matrix).data)
        if self.text:
            for label in labels.tolist():
                self.labels.write((("[" if self.first else ", ") + json.dumps(label)).encode())
                self.first = False
        else:
            self.labels.write(np.ascontiguousarray(labels, dtype=np.float64).data)

    def finish(self) -> str:
        if self.text:
            self.labels.write(b"[]" if self.first else b"]")
        self.labels.seek(0)
        while block := self.labels.read(1 << 20):
            self.hasher.update(block)
        self.labels.close()
        return self.hasher.hexdigest()


@dataclass
class FirstPass:
    moments: Moments
    rows: int
    train_rows: int
    test_rows: int
    digest: str
    train_labels: np.ndarray | None  # LightGBM: every train row's label, in order


def first_pass(stream: RowStream, keep_labels: bool) -> FirstPass:
    moments = Moments(stream.schema.width)
    digest = Digest(stream.schema.label_kind == TEXT_LABELS)
    rows = train = 0
    labels: list[np.ndarray] = []
    for part in stream.chunks("read"):
        digest.update(part.matrix, part.labels)
        keep = ~part.test
        moments.update(part.matrix[keep])
        rows += len(part.labels)
        train += int(keep.sum())
        if keep_labels:
            labels.append(part.labels[keep])
    stream.rows = rows
    kept = np.concatenate(labels) if labels else None
    return FirstPass(moments, rows, train, rows - train, digest.finish(), kept)


def _fit_preprocessing(pipeline: Any, stream: RowStream, first: FirstPass) -> None:
    width = stream.schema.width
    impute = pipeline.named_steps["impute"]
    if isinstance(impute, SimpleImputer):
        imputer, scaler = fitted_standard_steps(first.moments, width)
    else:
        names: dict[int, str] = {}
        for feature in stream.schema.features:
            for _ in range(feature.width()):
                names[len(names)] = feature.name

        def columns_pass() -> Iterator[np.ndarray]:
            return (x for x, _ in stream.train("statistics"))

        imputer, scaler = fitted_column_steps(
            impute.strategies,
            pipeline.named_steps["scale"].strategies,
            first.moments,
            columns_pass,
            names,
        )
    pipeline.steps[0] = ("impute", imputer)
    pipeline.steps[1] = ("scale", scaler)


def class_codes(classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.searchsorted(classes, labels).astype(np.float32)


def _fit_model(
    pipeline: Any,
    stream: RowStream,
    first: FirstPass,
    classes: np.ndarray | None,
    epochs: int,
) -> dict[str, Any]:
    """Fit the model; returns what the run records about how (``engine_details``)."""
    request = stream.request
    model = pipeline.named_steps["model"]
    prepare = pipeline[:-1]
    method = streaming_method(request.prediction_type, request.algorithm)
    width = stream.schema.width
    if method == "xgboost":

        def xgboost_batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for x, y in stream.train("fit"):
                yield prepare.transform(x), (y if classes is None else class_codes(classes, y))

        facts = fit_xgboost(
            model,
            xgboost_batches,
            width,
            classes,
            first.train_rows,
            request.options.big_data.cache_dir,
        )
        return facts.details()
    if method == "lightgbm":
        assert first.train_labels is not None
        labels = first.train_labels
        if classes is not None:
            labels = class_codes(classes, labels)

        def lightgbm_batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for x, y in stream.train("fit"):
                yield prepare.transform(x), y

        fit_lightgbm(
            model,
            lightgbm_batches,
            width,
            first.train_rows,
            np.asarray(labels, dtype=np.float32),
            classes,
            request.options.big_data.chunk_rows,
        )
        return {}
    classifier = is_classifier(model)
    clustering = request.prediction_type == "clustering"
    for epoch in range(epochs):
        for x, y in stream.train(f"epoch {epoch + 1}/{epochs}"):
            transformed = prepare.transform(x)
            if classifier:
                model.partial_fit(transformed, y, classes=classes)
            elif clustering:
                model.partial_fit(transformed)
            else:
                model.partial_fit(transformed, y)
    if hasattr(model, "end_partial_fit"):
        model.end_partial_fit()
    return {}


@dataclass
class TestPass:
    values: dict[str, float]
    sample: BottomK
    cluster_rows: int | None = None


def test_pass(pipeline: Any, stream: RowStream, classes: np.ndarray | None, seed: int) -> TestPass:
    kind = stream.request.prediction_type
    tally: ClassificationTally | RegressionTally | None = None
    if kind == "classification":
        assert classes is not None
        tally = ClassificationTally(classes)
    elif kind == "regression":
        tally = RegressionTally()
    size = CLUSTER_SAMPLE_ROWS if kind == "clustering" else importance.MAX_ROWS
    sample = BottomK(size, seed + _SAMPLE_SEED_OFFSET)
    for part in stream.chunks("test"):
        test = part.test
        if not test.any():
            continue
        x, y = part.matrix[test], part.labels[test]
        sample.update(part.keys[test], x, y)
        if tally is not None:
            tally.update(y, pipeline.predict(x))
    if tally is not None:
        return TestPass(tally.metrics(), sample)
    rows = sample.matrix if sample.matrix is not None else np.empty((0, stream.schema.width))
    transformed = pipeline[:-1].transform(rows)
    values = metrics.clustering_metrics(transformed, pipeline[-1].predict(transformed))
    return TestPass(values, sample, len(rows))


def train_streamed(
    conn: sqlite3.Connection, request: TrainRequest, seed: int, engine: Engine
) -> Outcome:

    big = request.options.big_data
    streams.require_key(conn, request.dataset, big.key_column)
    profile = streams.profile(conn, request.dataset, request.feature_columns, request.target)
    schema = streamed_schema(conn, request, profile)
    required = [n for n, spec in request.options.preprocess.items() if spec.impute == "error"]
    if required:
        schema = schema.require(required)
    classes = None
    if request.prediction_type == "classification":
        classes = _classes(conn, request, schema.label_kind)
    stream = RowStream(conn, request, schema, seed)
    stream.rows = profile.rows
    method = streaming_method(request.prediction_type, request.algorithm)
    pipeline = pipeline_for(request, seed, schema)
    epochs = big.epochs or 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        first = first_pass(stream, keep_labels=method == "lightgbm")
        _require_split(request, first)
        _fit_preprocessing(pipeline, stream, first)
        progress.report("fit", 0, 1)
        fitted = _fit_model(pipeline, stream, first, classes, epochs)
        fit_time = time.perf_counter() - started
        started = time.perf_counter()
        tested = test_pass(pipeline, stream, classes, seed)
        score_time = time.perf_counter() - started
        x_sample, y_sample = tested.sample.matrix, tested.sample.labels
        assert x_sample is not None
        x_sample, y_sample = x_sample[: importance.MAX_ROWS], y_sample[: importance.MAX_ROWS]  # type: ignore[index]
        clustering = request.prediction_type == "clustering"
        bounded = importance.bounded(
            request, pipeline, schema, x_sample, None if clustering else y_sample, seed, fit_time
        )
    engine.details.update(
        {
            "chunk_rows": big.chunk_rows,
            "method": method,
            "rows_read_per_pass": first.rows,
            **fitted,
        }
    )
    if method == "partial_fit":
        engine.details["epochs"] = epochs
    if tested.cluster_rows is not None:
        engine.details["clustering_metrics_sample_rows"] = tested.cluster_rows
    return Outcome(
        pipeline=pipeline,
        schema=schema,
        values=tested.values,
        importances=bounded.values,
        timings={"fit_time": fit_time, "score_time": score_time, **bounded.timings},
        rows=(first.rows, first.train_rows, first.test_rows),
        digest=first.digest,
        warnings=sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        run_fields={
            **engine.run_fields(),
            "split_scheme": "hash",
            "key_column": big.key_column,
        },
    )


def _require_split(request: TrainRequest, first: FirstPass) -> None:
    if first.rows < 2:
        raise SqmlError(
            f"dataset '{request.dataset.name}' has {first.rows} row(s) with a usable target "
            f"'{request.target}'; at least 2 are needed to train and test"
        )
    if first.train_rows == 0 or first.test_rows == 0:
        raise SqmlError(
            f"the hashed split with test_size {request.test_size} put all {first.rows} rows on "
            "one side; use more rows or another test_size"
        )
