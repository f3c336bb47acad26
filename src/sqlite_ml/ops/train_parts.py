"""What a training run is made of, shared by every engine (in memory, streamed, Dask):
the validated request, the data prepared in memory, the pipeline, and the outcome to record."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from ..db.relations import Relation
from ..errors import SqmlError
from ..ml.catalogue import make_estimator
from ..ml.column_choice import left_out_by_values
from ..ml.features import FeatureSchema
from ..ml.labels import CLUSTER_LABELS, NUMERIC_LABELS, encode_labels, numbers_or_error
from ..ml.pipelines import build_pipeline
from ..ml.pretrained import load_embedder
from . import search
from .options import TrainOptions


@dataclass
class Engine:
    name: str  # 'memory', 'stream' or 'dask'
    details: dict[str, Any] = field(default_factory=dict)  # engine_details, as JSON
    scheduler: str | None = None
    workers: int | None = None
    search: search.FoldRunner | None = None  # a Dask search's fold runner

    def run_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"engine": self.name}
        if self.details:
            fields["engine_details"] = json.dumps(self.details, sort_keys=True)
        if self.scheduler is not None:
            fields["dask_scheduler"] = self.scheduler
            fields["dask_workers"] = self.workers
        return fields


@dataclass(frozen=True)
class TrainRequest:
    experiment_name: str
    prediction_type: str
    algorithm: str
    dataset: Relation
    target: str | None  # None: clustering without a target
    test_size: float
    split_strategy: str
    estimator_cls: type[Any]
    options: TrainOptions = TrainOptions()
    # Whether every row has a key (a table's rowid, or the key_column option): then the
    # split is decided by key hashes and sqml_test_rows can name the test rows.
    keyed: bool = False
    # Declared keys left out of the features: column -> the sentence the run records.
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def feature_columns(self) -> list[str]:
        if self.options.features is not None:
            return list(self.options.features)
        not_features = (self.target, self.options.key_column)
        return [
            column
            for column in self.dataset.columns
            if column not in not_features and column not in self.left_out
        ]

    @property
    def key_column(self) -> str | None:
        return self.options.key_column

    @property
    def chosen_columns(self) -> set[str]:
        """Columns the options name: kept whatever their values look like."""
        return set(self.options.features or ()) | set(self.options.preprocess)

    @property
    def encodings(self) -> dict[str, str | None]:
        return {name: spec.encode for name, spec in self.options.preprocess.items()}

    @property
    def embeddings(self) -> dict[str, str]:
        """Column -> the pretrained model that embeds its text (preprocess embed)."""
        return {n: spec.embed for n, spec in self.options.preprocess.items() if spec.embed}

    @property
    def order_by(self) -> str | None:
        return self.options.order_by if self.split_strategy == "last" else None


@dataclass
class PreparedData:
    matrix: np.ndarray
    labels: np.ndarray  # clustering: zeros, one per row
    schema: FeatureSchema
    digest: str
    # The raw feature values, kept only when a target encoding is fitted after the split.
    columns: list[Sequence[object]] | None = None
    # What was decided without being asked (columns left out, dates, truncated text),
    # one sentence each, for the run's warnings.
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """A fitted model and what was measured, ready to be recorded (any engine)."""

    pipeline: Pipeline
    schema: FeatureSchema
    values: dict[str, float]
    importances: dict[str, float] | None  # None: skipped (option importance false)
    # fit_time, score_time, importance_time (None when skipped), importance_budget
    timings: dict[str, float | None]
    rows: tuple[int, int, int]  # data, train, test
    digest: str
    searched: search.SearchResult | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    run_fields: dict[str, Any] = dataclasses.field(default_factory=dict)  # engine columns
    threads: int | None = None  # the thread count the fit ran on (ml/threads.py)
    # Held in memory (the in-memory engine): the test rows as read, their labels and keys
    # (None without keys), for the deployment's comparison; and the training summary.
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_keys: np.ndarray | None = None
    training_summary: str | None = None
    # Raw test rows the model's native form is checked on (None: made-up rows only).
    check_rows: Any = None


def pipeline_for(request: TrainRequest, seed: int, schema: FeatureSchema) -> Pipeline:
    model = make_estimator(request.estimator_cls, seed, request.options.hyperparams)
    steps = {name: (spec.impute, spec.scale) for name, spec in request.options.preprocess.items()}
    return build_pipeline(model, schema, steps)


def unchosen(request: TrainRequest, reasons: dict[str, str]) -> dict[str, str]:
    """The automatic decisions to leave columns out, less those the options overrule."""
    chosen = request.chosen_columns
    return {column: why for column, why in reasons.items() if column not in chosen}


def remaining_features(
    request: TrainRequest, features: list[str], reasons: dict[str, str]
) -> list[str]:
    """The features left once ``reasons`` took theirs out; at least one must remain."""
    if not features:
        raise SqmlError(
            f"dataset '{request.dataset.name}' has no usable feature: "
            + "; ".join([*request.left_out.values(), *reasons.values()])
        )
    return features


def require_two_rows(request: TrainRequest, rows: int) -> None:
    if rows < 2:
        raise SqmlError(
            f"dataset '{request.dataset.name}' has {rows} row(s) with a usable target "
            f"'{request.target}'; at least 2 are needed to train and test"
        )


def digest_of(matrix: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the encoded training data, the same whichever way it was read."""
    hasher = hashlib.sha256()
    for start in range(0, len(matrix), 65536):  # in slices: no full copy of the matrix
        hasher.update(np.ascontiguousarray(matrix[start : start + 65536]).data)
    if labels.dtype == object:
        hasher.update(json.dumps(labels.tolist()).encode())
    else:
        hasher.update(np.ascontiguousarray(labels, dtype=np.float64).data)
    return hasher.hexdigest()


def prepare_rows(request: TrainRequest, rows: list[tuple[object, ...]]) -> PreparedData:
    """Encode rows of Python values (the features, then the target when there is one)."""
    features, target = request.feature_columns, request.target
    columns: list[Sequence[object]] = list(zip(*rows, strict=True))
    if not columns:
        columns = [() for _ in range(len(features) + (target is not None))]
    del rows
    outputs = 1
    if target is None:
        labels, label_kind = np.zeros(len(columns[0])), CLUSTER_LABELS
        columns.append(())  # stands for the target below
    elif request.prediction_type == "classification":
        labels, label_kind = encode_labels(columns[-1])
        outputs = len(np.unique(labels))
    else:
        target_values = columns[-1]
        labels, label_kind = numbers_or_error(target, target_values), NUMERIC_LABELS
        keep = ~np.isnan(labels)
        if not keep.all():  # empty strings in a numeric target count as missing
            columns = [[v for v, k in zip(column, keep, strict=True) if k] for column in columns]
            labels = labels[keep]
    require_two_rows(request, len(labels))
    reasons = unchosen(
        request,
        {
            name: why
            for name, values in zip(features, columns, strict=False)
            if (why := left_out_by_values(name, values)) is not None
        },
    )
    if reasons:
        kept = [i for i, name in enumerate(features) if name not in reasons]
        features = remaining_features(request, [features[i] for i in kept], reasons)
        columns = [*(columns[i] for i in kept), columns[-1]]
    embedders = {column: load_embedder(model) for column, model in request.embeddings.items()}
    schema = FeatureSchema.infer(
        features, columns[:-1], target or "", label_kind, request.encodings, outputs, embedders
    )
    matrix = schema.encode_columns(columns[:-1], len(labels))
    infinite = np.isinf(matrix).any(axis=0)
    if infinite.any():
        column = schema.feature_at(int(np.argmax(infinite))).name
        raise SqmlError(
            f"column '{column}' holds an infinite value; replace it (or filter it out in a "
            "view) before training"
        )
    # Raw values are kept for target encoding, preprocess checks and the training summary
    # of categorical features (drift).
    categorical = any(feature.kind != "numeric" for feature in schema.features)
    keep_raw = schema.target_encoded or request.options.preprocess or categorical
    raw = columns[:-1] if keep_raw else None
    digest = digest_of(matrix, labels)
    return PreparedData(matrix, labels, schema, digest, raw, [*reasons.values()])
