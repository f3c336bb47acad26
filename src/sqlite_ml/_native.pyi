from collections.abc import Callable
from typing import Any

def api_ready() -> bool: ...
def libversion_address() -> int: ...
def libversion() -> str: ...
def create_function(
    handle: int,
    name: str,
    nargs: int,
    flags: int,
    call: Callable[..., Any],
    on_error: Callable[[BaseException], str],
    /,
) -> None: ...
def create_predict_table(
    handle: int,
    name: str,
    chunks: Callable[[Any, Any, bool], Any],
    on_error: Callable[[BaseException], str],
    /,
) -> None: ...

class Reader:
    columns: int
    done: bool
    def __init__(self, handle: int, sql: str, /) -> None: ...
    def fill(self, matrix: Any, ids: Any = ..., /) -> tuple[int, bool]: ...
    def rows(self, n: int, /) -> list[list[Any]]: ...
    def close(self) -> None: ...
