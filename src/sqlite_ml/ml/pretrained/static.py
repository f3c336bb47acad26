"""Static embeddings: a vector per token, averaged over a text's tokens (WordLlama,
Model2Vec). Needs only ``tokenizers`` and ``safetensors``; one text costs a tokenizer call
and a small sum, so ``sqml_embed`` on a single text is as fast per text as a batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SqmlError
from .base import (
    VECTOR_DTYPE,
    Embedder,
    ModelIdentity,
    file_digests,
    missing_extra,
    vector_norm,
)

# Model2Vec's layout: these files in a directory (config.json names model_type model2vec).
STATIC_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def load_tokenizer(path: Path, what: str) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise missing_extra("tokenizers", "embeddings", what) from None
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # noqa: BLE001 - the Rust library raises its own types
        raise SqmlError(f"{what}: cannot read the tokenizer {path}: {error}") from None


def load_tensor(path: Path, keys: tuple[str, ...], what: str) -> np.ndarray:
    """The first of ``keys`` found in a safetensors file, as a 2-D float32 array."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise missing_extra("safetensors", "embeddings", what) from None
    try:
        with safe_open(str(path), framework="np") as tensors:
            available = list(tensors.keys())
            key = next((k for k in keys if k in available), None)
            if key is None:
                raise SqmlError(
                    f"{what}: {path} holds no tensor named {' or '.join(keys)} "
                    f"(it has: {', '.join(available[:10]) or 'none'})"
                )
            matrix = tensors.get_tensor(key)
    except SqmlError:
        raise
    except Exception as error:  # noqa: BLE001 - the library raises its own types
        raise SqmlError(f"{what}: cannot read the weights {path}: {error}") from None
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise SqmlError(f"{what}: the tensor in {path} is not a (tokens, dimension) matrix")
    return np.ascontiguousarray(matrix, dtype=VECTOR_DTYPE)


class StaticEmbedder(Embedder):
    """The mean of a text's token vectors, scaled to norm 1 (as WordLlama's
    ``embed(..., norm=True)`` and Model2Vec with ``normalize`` compute it)."""

    def __init__(
        self, identity: ModelIdentity, matrix: np.ndarray, tokenizer: Any, skip_id: int | None
    ):
        self.identity = identity
        self._matrix = matrix
        # encode_batch_fast (tokenizers >= 0.20) skips the character offsets: about half
        # the cost of encode() for one short text.
        self._encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        self._skip_id = skip_id  # Model2Vec leaves the unknown token out
        # A tokenizer whose vocabulary is larger than the matrix: ids are clamped into it,
        # as WordLlama does.
        self._clamp = tokenizer.get_vocab_size(with_added_tokens=True) > matrix.shape[0]
        self._zeros = bytes(4 * matrix.shape[1])

    def _ids(self, ids: list[int]) -> Any:
        if self._skip_id is not None:
            ids = [i for i in ids if i != self._skip_id]
        if self._clamp:
            return np.minimum(np.asarray(ids, dtype=np.int64), self._matrix.shape[0] - 1)
        return ids

    def embed_one(self, text: str) -> bytes:
        ids = self._ids(self._encode_batch((text,), add_special_tokens=False)[0].ids)
        if len(ids) == 0:
            return self._zeros
        # The mean and the sum point the same way: only the direction is kept.
        vector = np.add.reduce(self._matrix.take(ids, axis=0), axis=0)
        norm = vector_norm(vector)
        if norm > 0:
            vector /= np.float32(norm)
        return vector.tobytes()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._matrix.shape[1]), dtype=VECTOR_DTYPE)
        for row, encoding in enumerate(self._encode_batch(texts, add_special_tokens=False)):
            ids = self._ids(encoding.ids)
            if len(ids):
                out[row] = np.add.reduce(self._matrix.take(ids, axis=0), axis=0)
        return out


def load_static_directory(name: str, root: Path, version: str | None) -> StaticEmbedder:
    """A Model2Vec-style directory: model.safetensors (tensor 'embeddings'), tokenizer.json
    and config.json."""
    what = f"embedding model '{name}'"
    for relative in STATIC_FILES:
        if not (root / relative).is_file():
            raise SqmlError(f"{what}: {root} has no {relative}")
    matrix = load_tensor(root / "model.safetensors", ("embeddings", "embedding.weight"), what)
    tokenizer = load_tokenizer(root / "tokenizer.json", what)
    skip_id = _unknown_token_id(root / "tokenizer.json", tokenizer)
    identity = ModelIdentity(
        name, "static", version, str(root), file_digests(root, STATIC_FILES), matrix.shape[1]
    )
    return StaticEmbedder(identity, matrix, tokenizer, skip_id)


def _unknown_token_id(path: Path, tokenizer: Any) -> int | None:
    try:
        unknown = json.loads(path.read_text(encoding="utf-8"))["model"].get("unk_token")
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return tokenizer.token_to_id(unknown) if isinstance(unknown, str) else None


# The built-in model: WordLlama's default, shipped inside its wheel. Its files are read
# from the installed package folder directly; WordLlama's own loader is not used because it
# falls back to downloading from the network and configures the root logger on import.
WORDLLAMA_NAME = "wordllama-l2-supercat"
_WORDLLAMA_FILES = (
    "weights/l2_supercat_256.safetensors",
    "tokenizers/l2_supercat_tokenizer_config.json",
)


def wordllama_folder() -> tuple[Path, str]:
    """The installed wordllama package folder and its version, without importing it."""
    from importlib import metadata, util

    what = f"the built-in embedding model '{WORDLLAMA_NAME}'"
    try:
        spec = util.find_spec("wordllama")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise missing_extra("wordllama", "embeddings", what)
    folder = Path(next(iter(spec.submodule_search_locations)))
    for relative in _WORDLLAMA_FILES:
        if not (folder / relative).is_file():
            raise SqmlError(
                f"{what}: the wordllama package at {folder} has no {relative}; "
                "reinstall it with: pip install --force-reinstall 'sqlite-ml[embeddings]'"
            )
    return folder, metadata.version("wordllama")


def load_wordllama() -> StaticEmbedder:
    folder, version = wordllama_folder()
    what = f"the built-in embedding model '{WORDLLAMA_NAME}'"
    matrix = load_tensor(folder / _WORDLLAMA_FILES[0], ("embedding.weight",), what)
    tokenizer = load_tokenizer(folder / _WORDLLAMA_FILES[1], what)
    identity = ModelIdentity(
        WORDLLAMA_NAME,
        "wordllama",
        version,
        str(folder),
        file_digests(folder, _WORDLLAMA_FILES),
        matrix.shape[1],
    )
    return StaticEmbedder(identity, matrix, tokenizer, None)
