"""The run panel of a detached run: state, elapsed time, last lines, exit code, Stop.

    r = app.run("node tally_results.js", detach=True)
    RunPanel(r)                  # or r.panel(); %dynorun --detach shows one

It follows the dyno's own log lines; once the dyno has ended it stops its threads and
tells the Run its exit code (so `r.exit_code` needs no further request).
"""
from __future__ import annotations

import collections
import html
import re
import threading
import time
from datetime import datetime

import ipywidgets as W

from ..platform.app import LIVE_STATES, Run
from ..platform.errors import PlatformError
from .base import Panel
from .logs import line_html

LAST_LINES = 10
_STATE = re.compile(r" heroku\[[^\]]+\]: State changed from \w+ to (?P<state>\w+)$")
_EXITED = re.compile(r" heroku\[[^\]]+\]: Process exited with status (?P<code>\d+)$")
_STOPPING = re.compile(r" heroku\[[^\]]+\]: (Stopping all processes|Cycling: stopping)")
_STARTED = re.compile(r" heroku\[[^\]]+\]: State changed from starting to up$")
_COLOURS = {"starting": "#b08800", "up": "#2ca02c", "stopping": "#d62728", "complete": "#555",
            "stopped": "#d62728", "crashed": "#d62728"}


class RunPanel(Panel):
    kind = "run"

    def __init__(self, run: Run) -> None:
        super().__init__(run.app)
        self.run = run
        self.state = run.record.get("state", "starting")
        self.exit_code: int | None = None
        self.started: float | None = None
        self.ended_at: float | None = None
        self._stop_seen = False
        self._ended = threading.Event()
        self.last = collections.deque(maxlen=LAST_LINES)
        self.title = W.HTML(f"<b>{html.escape(run.name)}</b> <code>{html.escape(run.record.get('command', ''))}"
                            f"</code> on ⬢ {html.escape(run.app.name)}")
        self.state_label = W.HTML()
        self.state_label.add_class("dyno-run-state")
        self.elapsed = W.HTML()
        self.exit_label = W.HTML()
        self.exit_label.add_class("dyno-run-exit")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger",
                                    layout=W.Layout(width="6em"))
        self.stop_button.add_class("dyno-stop")
        self.stop_button.on_click(self._stop_clicked)
        self.output = W.HTML()
        self.output.add_class("dyno-run-output")
        self.children = [W.HBox([self.title, self.state_label, self.elapsed, self.exit_label, self.stop_button],
                                layout=W.Layout(align_items="center", grid_gap="1em")), self.banner, self.output]
        self._render()
        self._spawn(self._work, "follow")
        self._spawn(self._tick, "clock")

    def _work(self) -> None:
        self._follow(lambda: self.app.tail(lines=100_000, dyno=self.run.name), self._on_lines,
                     until=self._ended.is_set)

    def _on_lines(self, lines: list[str]) -> None:
        for line in lines:
            if f" app[{self.run.name}]: " in line:
                self.last.append(line)
            elif _STOPPING.search(line):
                self._stop_seen = True
                self.state = "stopping"
            elif _EXITED.search(line):
                self.exit_code = int(_EXITED.search(line).group("code"))
                self.ended_at = _stamp(line)
            elif _STATE.search(line):
                new = _STATE.search(line).group("state")
                if _STARTED.search(line):
                    self.started = _stamp(line)
                if new == "complete" and self._stop_seen:
                    new = "stopped"
                self.state = new
                if new not in LIVE_STATES:
                    self.run._ended_with(self.exit_code)
                    self._ended.set()
        self._render()

    def _tick(self) -> None:
        """The elapsed-time clock: once a second while the dyno runs, then it ends."""
        while not self._stopping.wait(1.0) and not self._ended.is_set():
            if self.started is not None:
                self._render()

    def _wake(self) -> None:
        self._ended.set()

    def _stop_clicked(self, _button=None) -> None:
        try:
            self.app.stop(self.run.name)
        except PlatformError as exc:
            self._show_error(str(exc))

    def _render(self) -> None:
        with self._lock:
            if self.closed:
                return
            colour = _COLOURS.get(self.state, "#333")
            self.state_label.value = f'<span style="color:{colour};font-weight:600">{self.state}</span>'
            if self.started is not None:
                end = self.ended_at if self.ended_at is not None else time.time()
                self.elapsed.value = f"<small>{max(0.0, end - self.started):.0f} s</small>"
            self.exit_label.value = "" if self.exit_code is None else f"exit code <b>{self.exit_code}</b>"
            running = self.state in (*LIVE_STATES, "stopping")
            if self.stop_button.disabled == running:
                self.stop_button.disabled = not running
            body = "\n".join(line_html(line) for line in self.last)
            value = ('<pre style="margin:0;font-size:12px;line-height:1.3;white-space:pre-wrap">'
                     f"{body}</pre>") if body else ""
            if self.output.value != value:
                self.output.value = value


def _stamp(line: str) -> float | None:
    try:
        return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
    except ValueError:
        return None
