"""The logs panel: a live tail with filters, search, pause, "load earlier" and download.

    LogsPanel("myapp", dyno="run.4", tail=True)     # or %dynologs -d run.4 --tail

The kernel keeps only the newest `limit` lines (bounded memory) and the browser shows them;
"Load earlier" raises the limit and reloads. Source and dyno filters are applied by the
manifold (a new log session), the text search in the kernel. Rendering is throttled to
`RENDER_INTERVAL`, so a chatty dyno costs a few comm messages a second, not one per line.
"""
from __future__ import annotations

import base64
import collections
import hashlib
import html
import re
import threading

import ipywidgets as W

from ..platform.app import App
from ..platform.errors import PlatformError
from .base import Panel

RENDER_INTERVAL = 0.1
PAGE = 500
FULL_LOG_LINES = 1_000_000
_LINE = re.compile(r"^(?P<ts>\S+) (?P<source>[a-z]+)\[(?P<dyno>[^\]]+)\]: (?P<message>.*)$")
_PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")
_FIXED = {"heroku": "#7b3fb5", "api": "#888888", "router": "#5f7f9f"}


def colour(source: str, dyno: str) -> str:
    """One colour per source: heroku, app[api], and one per process type of the app's dynos."""
    if source == "heroku":
        return _FIXED["heroku"]
    if dyno in _FIXED:
        return _FIXED[dyno]
    kind = dyno.split(".", 1)[0]
    return _PALETTE[int(hashlib.md5(kind.encode()).hexdigest(), 16) % len(_PALETTE)]


def line_html(line: str) -> str:
    match = _LINE.match(line)
    if not match:
        return html.escape(line)
    ts, source, dyno, message = match.group("ts", "source", "dyno", "message")
    return (f'<span style="color:#999">{html.escape(ts)}</span> '
            f'<span style="color:{colour(source, dyno)};font-weight:600">{source}[{html.escape(dyno)}]:</span> '
            f"{html.escape(message)}")


class LogsPanel(Panel):
    kind = "logs"

    def __init__(self, app: App | str | None = None, *, dyno: str | None = None, source: str | None = None,
                 lines: int = 100, tail: bool = True, limit: int = PAGE) -> None:
        super().__init__(app)
        self.limit = max(limit, lines)
        self.history = lines  # lines of history a (re)started tail begins with
        self.lines: collections.deque[str] = collections.deque(maxlen=self.limit)
        self.new_while_paused = 0
        self.renders = 0
        self._dirty = threading.Event()
        self.source = W.Dropdown(options=["all", "app", "heroku"], value=source or "all", description="source",
                                 layout=W.Layout(width="12em"))
        self.source.style.description_width = "4em"
        self.dyno = W.Text(value=dyno or "", placeholder="dyno or type, e.g. run.4", description="dyno",
                           continuous_update=False, layout=W.Layout(width="16em"))
        self.dyno.style.description_width = "3em"
        self.search = W.Text(placeholder="search", layout=W.Layout(width="12em"))
        self.pause = W.ToggleButton(value=not tail, description="Resume" if not tail else "Pause",
                                    icon="play" if not tail else "pause", layout=W.Layout(width="7em"))
        self.earlier = W.Button(description="Load earlier", icon="arrow-up", layout=W.Layout(width="9em"))
        self.download = W.Button(description="Download", icon="download", layout=W.Layout(width="8em"))
        self.link = W.HTML()
        self.status = W.HTML()
        self.view = W.HTML()
        for widget, cls in ((self.view, "dyno-logs"), (self.pause, "dyno-logs-pause"),
                            (self.earlier, "dyno-logs-earlier"), (self.download, "dyno-logs-download"),
                            (self.search, "dyno-logs-search"), (self.status, "dyno-logs-status")):
            widget.add_class(cls)
        self.source.observe(self._filters_changed, "value")
        self.dyno.observe(self._filters_changed, "value")
        self.search.observe(lambda _: self._dirty.set(), "value")
        self.pause.observe(self._pause_changed, "value")
        self.earlier.on_click(self._load_earlier)
        self.download.on_click(self._download)
        self.children = [W.HBox([self.source, self.dyno, self.search, self.pause]), self.banner,
                         W.HBox([self.earlier, self.download, self.status, self.link]), self.view]
        self._fresh = True
        self._spawn(self._work, "follow")
        self._spawn(self._render_loop, "render")

    # following ---------------------------------------------------------------------
    def _make_tail(self):
        with self._lock:
            self._fresh = True
            source = None if self.source.value == "all" else self.source.value
            return self.app.tail(lines=self.history, dyno=self.dyno.value.strip() or None, source=source)

    def _work(self) -> None:
        self._follow(self._make_tail, self._on_lines)

    def _on_lines(self, lines: list[str]) -> None:
        with self._lock:
            if self._fresh:  # the first batch of a new session: its history replaces what we had
                self._fresh = False
                self.lines.clear()
            self.lines.extend(lines)
            if self.pause.value:
                self.new_while_paused += len(lines)
        self._dirty.set()

    def _filters_changed(self, _change=None) -> None:
        with self._lock:
            self.lines.clear()
        self._dirty.set()
        self._restart_tail()

    # controls ----------------------------------------------------------------------
    def _pause_changed(self, change) -> None:
        paused = change["new"]
        self.pause.description, self.pause.icon = ("Resume", "play") if paused else ("Pause", "pause")
        if not paused:
            self.new_while_paused = 0
        self._dirty.set()

    def _load_earlier(self, _button=None) -> None:
        """Keep (and show) PAGE more lines: the session restarts with that much history."""
        with self._lock:
            self.limit += PAGE
            self.history = self.limit
            self.lines = collections.deque(self.lines, maxlen=self.limit)
        self._restart_tail()

    def _download(self, _button=None) -> None:
        """A link to the full log (with the current source/dyno filters) as a text file."""
        source = None if self.source.value == "all" else self.source.value
        try:
            text = "".join(line + "\n" for line in self.app.logs(lines=FULL_LOG_LINES, source=source,
                                                                  dyno=self.dyno.value.strip() or None))
        except PlatformError as exc:
            self._show_error(str(exc))
            return
        data = base64.b64encode(text.encode()).decode()
        name = f"{self.app.name}.log"
        self.link.value = (f'<a download="{html.escape(name)}" href="data:text/plain;charset=utf-8;base64,{data}">'
                           f"⬇ {html.escape(name)} ({text.count(chr(10))} lines)</a>")

    # rendering ---------------------------------------------------------------------
    def _wake(self) -> None:
        self._dirty.set()

    def _render_loop(self) -> None:
        while not self.closed:
            self._dirty.wait()
            if self.closed:
                return
            self._dirty.clear()
            self._render()
            self._stopping.wait(RENDER_INTERVAL)  # at most 1/RENDER_INTERVAL renders a second

    def _render(self) -> None:
        with self._lock:
            if self.closed:
                return
            needle = self.search.value.strip().lower()
            shown = [line for line in self.lines if needle in line.lower()] if needle else list(self.lines)
            if self.pause.value:
                self.status.value = f"<i>paused — {self.new_while_paused} new lines</i>"
                if self.renders:
                    return
            else:
                self.status.value = f"<small>{len(shown)} lines (newest {self.limit} kept)</small>"
            body = "\n".join(line_html(line) for line in shown) or "<i>No log lines yet</i>"
            # column-reverse keeps the scroll position at the newest line, with no JavaScript
            self.view.value = ('<div style="max-height:24em;overflow:auto;display:flex;flex-direction:column-reverse">'
                               '<pre style="margin:0;font-size:12px;line-height:1.3;white-space:pre-wrap">'
                               f"{body}</pre></div>")
            self.renders += 1
