"""Dyno sizes: Heroku's names, and the memory and process limits they stand for."""
from __future__ import annotations

import os
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Size:
    name: str  # as Heroku shows it: Basic, Standard-2X
    memory_bytes: int
    max_pids: int


SIZES = {size.name.lower(): size for size in (
    Size("Eco", 512 * MB, 256),
    Size("Basic", 512 * MB, 256),
    Size("Standard-1X", 512 * MB, 256),
    Size("Standard-2X", 1024 * MB, 512),
    Size("Performance-M", 2560 * MB, 16384),
    Size("Performance-L", 14336 * MB, 32768),
)}
ALIASES = {"1x": "standard-1x", "2x": "standard-2x", "pm": "performance-m", "pl": "performance-l",
           "hobby": "basic", "free": "eco"}
DEFAULT_SIZE = "basic"


class SizeError(ValueError):
    """An unknown dyno size."""


def parse_size(value: str | None) -> Size:
    """The size named by `value` (case-insensitive), capped at this machine's memory."""
    key = (value or DEFAULT_SIZE).strip().lower()
    key = ALIASES.get(key, key)
    if key not in SIZES:
        names = ", ".join(size.name for size in SIZES.values())
        raise SizeError(f"Invalid dyno size {value!r}: must be one of {names}")
    size = SIZES[key]
    machine = _machine_memory()
    if machine and size.memory_bytes > machine // 2:
        size = Size(size.name, machine // 2, size.max_pids)
    return size


def _machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
