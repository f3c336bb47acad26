"""What every embedding backend gives: a float32, L2-normalised vector per text (the
little-endian layout sqlite-vec reads), and the identity of the model that made it."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SqmlError

# Texts per backend call in embed_many: large enough to amortize a call, small enough that
# a padded batch of long texts stays a few MB.
BATCH_SIZE = 64
VECTOR_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class ModelIdentity:
    """Who made a vector: recorded in ``sqml_pretrained`` and in a feature schema."""

    name: str  # the canonical name ('default' resolves to the built-in model's own name)
    backend: str  # 'wordllama', 'static', 'onnx' or 'sentence-transformers'
    version: str | None  # a package version, a Hugging Face snapshot revision, or None
    source: str  # where the files were read from
    files: dict[str, str]  # relative path -> SHA-256 of its bytes
    dimension: int

    @property
    def digest(self) -> str:
        """SHA-256 over the model's files (their relative paths and digests, sorted)."""
        hasher = hashlib.sha256()
        for path in sorted(self.files):
            hasher.update(f"{path}\0{self.files[path]}\n".encode())
        return hasher.hexdigest()


class Embedder:
    """A loaded model. Subclasses implement ``_embed_batch`` (raw vectors of a few texts)
    and may override ``embed_one`` with a faster path for a single text."""

    identity: ModelIdentity

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def dimension(self) -> int:
        return self.identity.dimension

    @property
    def digest(self) -> str:
        return self.identity.digest

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_many(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32, each row of norm 1 (all zeros for a text that
        gives the model nothing to embed, such as '')."""
        out = np.empty((len(texts), self.dimension), dtype=VECTOR_DTYPE)
        for start in range(0, len(texts), BATCH_SIZE):
            chunk = list(texts[start : start + BATCH_SIZE])
            out[start : start + len(chunk)] = self._embed_batch(chunk)
        return normalise_rows(out)

    def embed_one(self, text: str) -> bytes:
        """One text's vector as the BLOB SQL gets."""
        return self.embed_many([text])[0].tobytes()


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to norm 1, in place where possible; rows of zeros stay zeros."""
    matrix = np.ascontiguousarray(matrix, dtype=VECTOR_DTYPE)
    norms = np.sqrt(np.square(matrix, dtype=np.float64).sum(axis=1))  # as vector_norm()
    norms[norms == 0] = 1.0
    matrix /= norms[:, None].astype(VECTOR_DTYPE)
    if not np.isfinite(matrix).all():
        raise SqmlError("the embedding model produced a non-finite number (NaN or infinity)")
    return matrix


def vector_norm(vector: np.ndarray) -> float:
    """A float32 vector's length, summed in float64 the way normalise_rows sums each row,
    so that one text gives the very same bytes alone or in a batch."""
    return math.sqrt(float(np.square(vector, dtype=np.float64).sum()))


def file_digests(root: Path, relative_paths: Sequence[str]) -> dict[str, str]:
    """SHA-256 of each file, read in 1 MB blocks."""
    digests = {}
    for relative in relative_paths:
        hasher = hashlib.sha256()
        with open(root / relative, "rb") as handle:
            while block := handle.read(1 << 20):
                hasher.update(block)
        digests[relative] = hasher.hexdigest()
    return digests


def missing_extra(package: str, extra: str, what: str) -> SqmlError:
    """The error for a backend whose library is not installed."""
    return SqmlError(
        f"{what} needs the Python package '{package}', which is not installed; "
        f"install it with: pip install 'sqlite-ml[{extra}]'"
    )
