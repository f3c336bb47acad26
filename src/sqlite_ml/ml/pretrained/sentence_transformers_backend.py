"""A sentence-transformers model folder run with the sentence-transformers library
(PyTorch, CPU): the heaviest backend, for models without an ONNX export. Loaded from local
files only, never with remote code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SqmlError
from .base import VECTOR_DTYPE, Embedder, ModelIdentity, file_digests, missing_extra

EXTRA = "sentence-transformers"


def model_files(root: Path) -> list[str]:
    """Every file of the folder but other runtimes' exports and hidden files."""
    skipped = {"onnx", "openvino", ".git", ".cache"}
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not (set(path.relative_to(root).parts) & skipped)
    )


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, name: str, root: Path, version: str | None):
        what = f"embedding model '{name}'"
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise missing_extra("sentence-transformers", EXTRA, what) from None
        try:
            self._model: Any = SentenceTransformer(
                str(root), device="cpu", local_files_only=True, trust_remote_code=False
            )
        except Exception as error:  # noqa: BLE001 - the library raises many types
            raise SqmlError(f"{what}: sentence-transformers cannot load {root}: {error}") from None
        model = self._model
        dimension = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dimension = dimension()
        if not isinstance(dimension, int) or dimension < 1:
            dimension = int(self._embed_batch(["a"]).shape[1])
        files = model_files(root)
        self.identity = ModelIdentity(
            name, EXTRA, version, str(root), file_digests(root, files), dimension
        )

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=VECTOR_DTYPE)


def load_sentence_transformers_directory(name: str, root: Path, version: str | None) -> Embedder:
    return SentenceTransformerEmbedder(name, root, version)
