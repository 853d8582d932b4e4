"""Types of the C row packer (``_rowpack.c``)."""

from collections.abc import Callable, Sequence
from typing import Any

FIELDS: int
VERSION: int

class Packer:
    count: int
    broken: int
    size: int
    def __init__(self, context_type: type, trace_type: type, offset: float, listener: str,
                 worker: int, chunk: int, on_full: Callable[[], None],
                 trace_of: Callable[[Any], Any], max_size: int = ...) -> None: ...
    def record(self, ctx: Any, /) -> None: ...
    def cut(self) -> tuple[bytes, int]: ...

def unpack(data: bytes, /) -> list[tuple[Any, ...]]: ...

COLUMNS: int

def finish(chunks: list[bytes], now: float, names: dict[str, str] | None = None, /,
           ) -> tuple[list[Any], list[tuple[int, Any, Any]]]:
    ...

def log_counts(values: Sequence[float], min_ms: float, inv_min: float, inv_log_gamma: float,
               max_index: int, target: dict[int, int], /) -> None: ...
def le_counts(values: Sequence[float], bounds: Sequence[float], acc: list[float],
              first: int, /) -> None: ...
def columns_body(columns: Sequence[Sequence[Any]], names_json: bytes,
                 dumps: Callable[[Any], bytes], /) -> tuple[bytes, list[list[Any] | None]]:
    ...
def id_range(ids: Sequence[str], /) -> tuple[str, str] | None: ...
