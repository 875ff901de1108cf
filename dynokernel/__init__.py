"""dynokernel: Heroku-style one-off dynos in Jupyter."""

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """`%load_ext dynokernel`: the %dynorun, %dynops, %dynologs and %dynostop magics."""
    from .magics import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload
    unload(ipython)
