"""IPython magics for one-off dynos; `%load_ext dynokernel` loads them.

Also usable from configuration: `c.InteractiveShellApp.extensions = ["dynokernel"]`.
"""
from __future__ import annotations

from .core import DynoError, DynoExitError, DynoMagics

__all__ = ["DynoMagics", "DynoError", "DynoExitError", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(DynoMagics)


def unload_ipython_extension(ipython) -> None:
    from ..widgets.base import close_all
    close_all()
