"""Objects by an integer key, held weakly: sessions by connection address or handle."""

from __future__ import annotations

import weakref
from typing import Generic, TypeVar

T = TypeVar("T")


class WeakRegistry(Generic[T]):
    """Objects by an integer key (a handle or an address), held weakly; an entry leaves
    when its object dies, unless a newer object took the key meanwhile."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[T]] = {}

    def put(self, key: int, value: T) -> None:
        refs = self._refs

        def forget(ref: weakref.ref[T]) -> None:
            if refs.get(key) is ref:
                del refs[key]

        refs[key] = weakref.ref(value, forget)

    def get(self, key: int) -> T | None:
        ref = self._refs.get(key)
        return ref() if ref is not None else None
