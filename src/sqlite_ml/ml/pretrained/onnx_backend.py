"""A Hugging Face sentence-embedding model exported to ONNX, run with ``onnxruntime`` and
``tokenizers`` (no PyTorch): ``model.onnx`` (or ``onnx/model.onnx``, where
sentence-transformers puts its export) with ``tokenizer.json`` beside the export or in
the model's folder, and the pooling sentence-transformers configured
(``1_Pooling/config.json``: mean, CLS or max over tokens; mean when absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SqmlError
from .base import Embedder, ModelIdentity, file_digests, missing_extra
from .static import load_tokenizer

ONNX_EXPORTS = ("model.onnx", "onnx/model.onnx")
_POOLING_CONFIG = "1_Pooling/config.json"
_LENGTH_CONFIGS = ("sentence_bert_config.json", "tokenizer_config.json")
_DEFAULT_MAX_TOKENS = 512
_POOLINGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
_POOLINGS["pooling_mode_max_tokens"] = "max"


def onnx_export(root: Path) -> str | None:
    return next((relative for relative in ONNX_EXPORTS if (root / relative).is_file()), None)


def _json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SqmlError(f"{what}: cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise SqmlError(f"{what}: {path} is not a JSON object")
    return data


def _pooling(root: Path, what: str) -> str:
    path = root / _POOLING_CONFIG
    if not path.is_file():
        return "mean"
    config = _json(path, what)
    chosen = [pooling for key, pooling in _POOLINGS.items() if config.get(key)]
    if len(chosen) != 1:
        modes = [key for key, value in config.items() if key.startswith("pooling_mode") and value]
        raise SqmlError(
            f"{what}: {path} asks for pooling {modes or 'none'}; supported: exactly one of "
            "mean tokens, CLS token, max tokens"
        )
    return chosen[0]


def _max_tokens(root: Path, what: str) -> int:
    for relative in _LENGTH_CONFIGS:
        if (root / relative).is_file():
            config = _json(root / relative, what)
            for key in ("max_seq_length", "model_max_length"):
                value = config.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 20:
                    return value
    return _DEFAULT_MAX_TOKENS


class OnnxEmbedder(Embedder):
    def __init__(self, name: str, root: Path, version: str | None):
        what = f"embedding model '{name}'"
        try:
            import onnxruntime
        except ImportError:
            raise missing_extra("onnxruntime", "onnx-embeddings", what) from None
        export = onnx_export(root)
        if export is None:
            raise SqmlError(f"{what}: {root} has no {' or '.join(ONNX_EXPORTS)}")
        tokenizer_file = next(
            (
                relative
                for relative in (str(Path(export).parent / "tokenizer.json"), "tokenizer.json")
                if (root / relative).is_file()
            ),
            None,
        )
        if tokenizer_file is None:
            raise SqmlError(f"{what}: {root} has no tokenizer.json (the Hugging Face layout)")
        self._pooling = _pooling(root, what)
        tokenizer = load_tokenizer(root / tokenizer_file, what)
        tokenizer.enable_truncation(_max_tokens(root, what))
        pad_id, pad_token = _padding(tokenizer)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings on stderr for each load
        try:
            session = onnxruntime.InferenceSession(
                str(root / export), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise SqmlError(f"{what}: onnxruntime cannot load {root / export}: {error}") from None
        self._session = session
        self._inputs = {item.name: item.type for item in session.get_inputs()}
        if "input_ids" not in self._inputs:
            raise SqmlError(
                f"{what}: the ONNX graph has no input 'input_ids' (it has: "
                f"{', '.join(self._inputs)}); export it from a Hugging Face text model"
            )
        outputs = [item.name for item in session.get_outputs()]
        # A sentence-transformers export may give the pooled vector itself.
        self._output = "sentence_embedding" if "sentence_embedding" in outputs else outputs[0]
        files = [export, tokenizer_file]
        files += [f for f in (_POOLING_CONFIG, *_LENGTH_CONFIGS) if (root / f).is_file()]
        files += _external_data(root, export)
        probe = self._embed_batch(["a"])
        self.identity = ModelIdentity(
            name, "onnx", version, str(root), file_digests(root, files), int(probe.shape[1])
        )

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        given = {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {}
        for name, kind in self._inputs.items():
            if name not in given:
                raise SqmlError(
                    f"the ONNX graph asks for an input '{name}' this loader cannot give"
                )
            feeds[name] = given[name].astype(np.int32) if kind == "tensor(int32)" else given[name]
        output = np.asarray(self._session.run([self._output], feeds)[0], dtype=np.float32)
        if output.ndim == 2:
            return output
        if output.ndim != 3 or output.shape[:2] != ids.shape:
            raise SqmlError(
                f"the ONNX graph's output '{self._output}' has shape {output.shape}; expected "
                "(texts, tokens, dimension) or (texts, dimension)"
            )
        if self._pooling == "cls":
            return output[:, 0, :]
        weights = mask[:, :, None].astype(np.float32)
        if self._pooling == "max":
            return np.where(weights > 0, output, -np.inf).max(axis=1)
        return (output * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def _padding(tokenizer: Any) -> tuple[int, str]:
    padding = tokenizer.padding
    if padding:
        return int(padding["pad_id"]), str(padding["pad_token"])
    for token in ("[PAD]", "<pad>"):
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found), token
    return 0, "[PAD]"


def _external_data(root: Path, export: str) -> list[str]:
    """Weights an export keeps beside the graph (``model.onnx_data`` and the like)."""
    folder = (root / export).parent
    found = []
    for path in sorted(folder.iterdir()):
        if (
            path.is_file()
            and path.name.startswith(Path(export).name)
            and path.name != Path(export).name
        ):
            found.append(str(path.relative_to(root)))
    return found


def load_onnx_directory(name: str, root: Path, version: str | None) -> Embedder:
    return OnnxEmbedder(name, root, version)
