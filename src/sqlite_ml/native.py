"""Documented helpers of the native extension (kept at this path for users' code):
``extension_path()`` for the sqlite3 shell's ``.load``, and the fast ``reader``."""

from __future__ import annotations

from .sqlite.native import extension_path, reader

__all__ = ["extension_path", "reader"]
