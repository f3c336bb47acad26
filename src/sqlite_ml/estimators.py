"""Estimators of our own: thin adapters that let a library's model live in a pipeline and
in a skops archive (see ``persistence.ALLOWED_TYPES``).

* ``XGBoostClassifier``: XGBoost wants class labels 0..k-1; this one takes any labels
  (text or numbers) and gives them back in predictions.
* ``BirchClusters``: skops refuses ``sklearn.cluster.Birch`` (its CF-tree links itself);
  this one fits a Birch and keeps only what prediction needs, as plain arrays, and predicts
  with Birch's own rule (nearest subcluster centre, then that subcluster's label).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import Birch
from sklearn.metrics import pairwise_distances_argmin
from sklearn.preprocessing import LabelEncoder


class XGBoostClassifier(xgboost.XGBClassifier):
    """``xgboost.XGBClassifier`` for any class labels (encoded for fitting, decoded after)."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> XGBoostClassifier:
        self.__dict__.pop("labels_", None)  # a refit starts from XGBoost's own classes
        encoder = LabelEncoder().fit(y)
        super().fit(X, encoder.transform(y), **kwargs)
        self.labels_ = encoder.classes_
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = self.__dict__.get("labels_")
        return np.arange(self.n_classes_) if labels is None else labels

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        codes = np.asarray(super().predict(X, **kwargs)).astype(np.intp)
        return np.asarray(self.labels_)[codes]


class BirchClusters(ClusterMixin, BaseEstimator):
    """Birch clustering whose fitted state is plain arrays (so skops can store it)."""

    _parameter_constraints = {
        name: Birch._parameter_constraints[name]
        for name in ("threshold", "branching_factor", "n_clusters")
    }

    def __init__(self, threshold: float = 0.5, branching_factor: int = 50, n_clusters: Any = 3):
        self.threshold = threshold
        self.branching_factor = branching_factor
        self.n_clusters = n_clusters

    def fit(self, X: Any, y: Any = None) -> BirchClusters:
        birch = Birch(
            threshold=self.threshold,
            branching_factor=self.branching_factor,
            n_clusters=self.n_clusters,
        ).fit(X)
        self._keep(birch)
        self.labels_ = np.asarray(birch.labels_)
        return self

    def partial_fit(self, X: Any, y: Any = None) -> BirchClusters:
        """Grow the CF-tree by one chunk (streamed training); ``end_partial_fit`` then
        clusters the subclusters and keeps plain arrays only."""
        birch = self.__dict__.get("_growing")
        if birch is None:
            birch = Birch(
                threshold=self.threshold, branching_factor=self.branching_factor, n_clusters=None
            )
            self._growing = birch
        birch.partial_fit(X)
        return self

    def end_partial_fit(self) -> BirchClusters:
        birch = self.__dict__.pop("_growing")
        birch.set_params(n_clusters=self.n_clusters)
        birch.partial_fit()  # the global clustering step alone
        self._keep(birch)
        self.labels_ = np.empty(0, dtype=np.int64)  # the training rows were never all held
        return self

    def _keep(self, birch: Birch) -> None:
        self.subcluster_centers_ = np.asarray(birch.subcluster_centers_, dtype=np.float64)
        self.subcluster_labels_ = np.asarray(birch.subcluster_labels_)
        self.subcluster_norms_ = np.einsum(
            "ij,ij->i", self.subcluster_centers_, self.subcluster_centers_
        )
        self.n_features_in_ = birch.n_features_in_

    def predict(self, X: Any) -> np.ndarray:
        nearest = pairwise_distances_argmin(
            np.asarray(X, dtype=np.float64),
            self.subcluster_centers_,
            metric_kwargs={"Y_norm_squared": self.subcluster_norms_},
        )
        return self.subcluster_labels_[nearest]
