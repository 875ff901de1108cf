"""Live panels for Jupyter (ipywidgets 8): the app's dynos, its logs, and a detached run.

    from dynokernel.widgets import PsPanel, LogsPanel, RunPanel
    PsPanel("myapp"); LogsPanel("myapp", dyno="run.4"); RunPanel(app.run("rake x", detach=True))

Panels follow the manifold's log stream in background threads, which end when the panel is
closed or the cell that made it runs again.
"""
from __future__ import annotations

__all__ = ["PsPanel", "LogsPanel", "RunPanel", "close_all"]


def __getattr__(name: str):
    if name == "PsPanel":
        from .ps import PsPanel
        return PsPanel
    if name == "LogsPanel":
        from .logs import LogsPanel
        return LogsPanel
    if name == "RunPanel":
        from .run import RunPanel
        return RunPanel
    if name == "close_all":
        from .base import close_all
        return close_all
    raise AttributeError(name)
