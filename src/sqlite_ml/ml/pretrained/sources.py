"""Where a model named in SQL comes from, and the process-wide cache of loaded models.

A name is, in this order:

- ``'default'`` or a built-in model's own name (``wordllama-l2-supercat``);
- ``BACKEND:PATH`` with BACKEND one of ``static``, ``onnx``, ``sentence-transformers``;
- the path of a local folder: a Model2Vec-style static model (config.json says
  ``model2vec``), else an ONNX export, else a sentence-transformers model (modules.json);
- a Hugging Face repository id (``owner/name``), found in the local Hugging Face cache
  (``HF_HUB_CACHE``, ``HF_HOME``, ``~/.cache/huggingface/hub``). It is downloaded only
  when ``SQLITE_ML_ALLOW_DOWNLOADS=1`` and ``HF_HUB_OFFLINE`` is not set.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from ...errors import SqmlError, choices, describe, shorten, unknown
from .base import Embedder
from .onnx_backend import load_onnx_directory, onnx_export
from .sentence_transformers_backend import load_sentence_transformers_directory
from .static import WORDLLAMA_NAME, load_static_directory, load_wordllama

DEFAULT_MODEL = "default"
BUILTIN: dict[str, Callable[[], Embedder]] = {WORDLLAMA_NAME: load_wordllama}
DirectoryLoader = Callable[[str, Path, "str | None"], Embedder]
BACKENDS: dict[str, DirectoryLoader] = {
    "static": load_static_directory,
    "onnx": load_onnx_directory,
    "sentence-transformers": load_sentence_transformers_directory,
}
ALLOW_DOWNLOADS = "SQLITE_ML_ALLOW_DOWNLOADS"
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_TRUE = ("1", "true", "yes", "on")

_cache: dict[str, Embedder] = {}
_lock = threading.RLock()  # "default" loads the built-in model by its own name


def builtin_names() -> list[str]:
    return [DEFAULT_MODEL, *BUILTIN]


def load_embedder(name: object) -> Embedder:
    """The model ``name`` names, loaded once per process (a ``SqmlError`` says what is
    wrong: an unknown name, a missing file, or the extra to install)."""
    if not isinstance(name, str) or not name.strip():
        raise SqmlError(
            f"an embedding model must be named by text ('default', a folder or a Hugging Face "
            f"id), got {describe(name)}"
        )
    found = _cache.get(name)
    if found is not None:
        return found
    with _lock:
        found = _cache.get(name)
        if found is None:
            found = _cache[name] = _load(name)
    return found


def forget_loaded_models() -> None:
    """Drop the cache (a test that rewrites a model folder; nothing else needs it)."""
    with _lock:
        _cache.clear()


def _load(name: str) -> Embedder:
    if name == DEFAULT_MODEL:
        return load_embedder(WORDLLAMA_NAME)
    if name in BUILTIN:
        return BUILTIN[name]()
    backend, _, rest = name.partition(":")
    if rest and backend in BACKENDS:
        root = _folder(rest)
        if root is None:
            raise SqmlError(f"embedding model {describe(name)}: {shorten(rest)} is not a folder")
        return BACKENDS[backend](name, root, None)
    path = _folder(name)
    if path is not None:
        return _load_directory(name, path, None)
    if _REPO_ID.fullmatch(name):
        root, revision = hugging_face_snapshot(name)
        return _load_directory(name, root, revision)
    raise unknown(
        "embedding model",
        name,
        builtin_names(),
        listing="built-in models",
        hint=f"; or the path of a model folder, BACKEND:FOLDER with BACKEND one of "
        f"{choices(BACKENDS)}, or a Hugging Face id such as 'owner/name'",
    )


def _folder(text: str) -> Path | None:
    """The folder a name points at, or None (also for a name no path can be: too long,
    with a NUL byte; a name comes from SQL, so from anyone)."""
    try:
        path = Path(text).expanduser()
        return path.resolve() if path.is_dir() else None
    except (OSError, ValueError, RuntimeError):
        return None


def detect_backend(root: Path) -> str | None:
    config = root / "config.json"
    if (root / "model.safetensors").is_file() and config.is_file():
        try:
            if json.loads(config.read_text(encoding="utf-8")).get("model_type") == "model2vec":
                return "static"
        except (OSError, ValueError, AttributeError):
            pass
    if onnx_export(root) is not None:
        return "onnx"
    if (root / "modules.json").is_file():
        return "sentence-transformers"
    return None


def _load_directory(name: str, root: Path, version: str | None) -> Embedder:
    backend = detect_backend(root)
    if backend is None:
        raise SqmlError(
            f"embedding model {describe(name)}: {root} holds no model this version can run: "
            "expected a Model2Vec folder (config.json, model.safetensors, tokenizer.json), an "
            "ONNX export (model.onnx or onnx/model.onnx with tokenizer.json) or a "
            "sentence-transformers folder (modules.json)"
        )
    return BACKENDS[backend](name, root, version)


def hugging_face_cache() -> Path:
    """The hub cache folder, as huggingface_hub resolves it."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def downloads_allowed() -> bool:
    """Only when the user asked for it, and never when Hugging Face is told to stay offline."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return False
    return os.environ.get(ALLOW_DOWNLOADS, "").strip().lower() in _TRUE


def hugging_face_snapshot(repo_id: str) -> tuple[Path, str]:
    """The cached snapshot of ``repo_id`` (its folder and revision); downloaded first only
    when downloads are allowed."""
    found = _cached_snapshot(repo_id)
    if found is not None:
        return found
    if not downloads_allowed():
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
        raise SqmlError(
            f"embedding model '{repo_id}' is not in the local Hugging Face cache "
            f"({hugging_face_cache()}) and sqlite-ml does not download models"
            + (" (HF_HUB_OFFLINE is set)" if offline else "")
            + f": download it yourself (huggingface-cli download {repo_id}), name a local "
            f"folder instead, or set {ALLOW_DOWNLOADS}=1 to let sqlite-ml download it"
        )
    _download(repo_id)
    found = _cached_snapshot(repo_id)
    if found is None:
        raise SqmlError(f"embedding model '{repo_id}': the download left no snapshot in the cache")
    return found


def _cached_snapshot(repo_id: str) -> tuple[Path, str] | None:
    folder = hugging_face_cache() / ("models--" + repo_id.replace("/", "--"))
    try:
        revision = (folder / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    snapshot = folder / "snapshots" / revision
    if not re.fullmatch(r"[0-9a-f]{6,64}", revision) or not snapshot.is_dir():
        return None
    return snapshot, revision


def _download(repo_id: str) -> None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise SqmlError(
            f"{ALLOW_DOWNLOADS}=1 asks to download '{repo_id}', which needs the package "
            "huggingface_hub: pip install huggingface_hub (or download the model yourself)"
        ) from None
    try:
        snapshot_download(repo_id, cache_dir=str(hugging_face_cache()))
    except Exception as error:  # noqa: BLE001 - network and hub errors of every kind
        raise SqmlError(f"downloading '{repo_id}' failed: {shorten(str(error), 200)}") from None
