"""Pretrained text-embedding models, without SQL: where a model named in a query comes
from (``sources``), the backends that run it (``static``, ``onnx_backend``,
``sentence_transformers_backend``) and what every backend gives (``base``: a float32,
L2-normalised vector per text, the model's name, version and the SHA-256 of its files).

Nothing is fetched from the network unless the user explicitly allows it
(``SQLITE_ML_ALLOW_DOWNLOADS=1``, and never under ``HF_HUB_OFFLINE=1``).
"""

from .base import Embedder
from .sources import DEFAULT_MODEL, builtin_names, load_embedder

__all__ = ["DEFAULT_MODEL", "Embedder", "builtin_names", "load_embedder"]
