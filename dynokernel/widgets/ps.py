"""The ps panel: the app's dynos, live, with a Stop button per running dyno.

    PsPanel("myapp")            # or %dynops

It refreshes when the app's log stream carries a `heroku[...]` state line (within
milliseconds of the change), keeps dynos that ended during its life (as stopped, complete
or crashed, with their exit code), and filters by type and state. Dynos are grouped as
`dyno ps` groups them: one-off processes first, then each process type of the formation,
then scheduler and release-phase runs.
"""
from __future__ import annotations

import html
import re
import time
from datetime import datetime, timezone

import ipywidgets as W

from ..platform.app import LIVE_STATES, App
from ..platform.errors import ApiError, PlatformError
from .base import Panel, cell, set_cell

_RELEVANT = re.compile(r" heroku\[(?P<dyno>[^\]]+)\]: (?P<what>State changed|Starting process|Process exited|"
                       r"Awaiting client|Stopping all processes|Cycling|Error R1[2-6])")
_STOPPING = re.compile(r" heroku\[(?P<dyno>[^\]]+)\]: (Stopping all processes|Cycling: stopping)")
COLUMNS = (("name", "7em"), ("type", "6em"), ("state", "7em"), ("since", "6em"), ("command", "22em"),
           ("size", "7em"), ("exit", "3em"))
KEEP_ENDED = 20
ONE_OFF_TYPES = ("scheduler", "release")  # one-off runs of the platform's own, listed after the formation
ALL = "all"
STATES = (ALL, "starting", "up", "stopping", "stopped", "complete", "crashed")


class PsPanel(Panel):
    kind = "ps"

    def __init__(self, app: App | str | None = None, *, types: list[str] | None = None) -> None:
        super().__init__(app)
        self.dynos: dict[str, dict] = {}  # name -> API record plus "shown_state"
        self._stop_seen: set[str] = set()
        self._rows: dict[str, _Row] = {}
        self._headers: dict[str, W.HTML] = {}
        self.updates = 0  # how many refreshes rendered (for tests and benchmarks)
        self.app_picker = W.Dropdown(options=self._app_names(), value=self.app.name, description="app",
                                     layout=W.Layout(width="16em"))
        self.type_filter = W.Dropdown(options=[ALL, *(types or [])], value=(types or [ALL])[0],
                                      description="type", layout=W.Layout(width="12em"))
        self.state_filter = W.Dropdown(options=STATES, value=ALL, description="state", layout=W.Layout(width="12em"))
        for control in (self.app_picker, self.type_filter, self.state_filter):
            control.style.description_width = "3em"
        self.app_picker.observe(self._app_changed, "value")
        self.type_filter.observe(lambda _: self._render(), "value")
        self.state_filter.observe(lambda _: self._render(), "value")
        header = W.HBox([cell(name, width, bold=True) for name, width in COLUMNS])
        header.add_class("dyno-ps-header")
        self.table = W.VBox()
        self.table.add_class("dyno-ps-table")
        self.empty = W.HTML(f"<i>No dynos on ⬢ {self.app.name}</i>")
        self.empty.add_class("dyno-ps-empty")
        self.children = [W.HBox([self.app_picker, self.type_filter, self.state_filter]), self.banner, header,
                         self.table, self.empty]
        self._spawn(self._work, "follow")

    def _app_names(self) -> list[str]:
        try:
            names = sorted(app["name"] for app in self.app.client.request("GET", "/apps"))
        except PlatformError:
            names = []
        return names if self.app.name in names else [self.app.name, *names]

    # following ---------------------------------------------------------------------
    def _work(self) -> None:
        self._follow(lambda: self.app.tail(lines=0, source="heroku"), self._on_lines, on_connect=self.refresh)

    def _on_lines(self, lines: list[str]) -> None:
        relevant = False
        for line in lines:
            match = _RELEVANT.search(line)
            if match:
                relevant = True
                if _STOPPING.search(line):
                    self._stop_seen.add(match.group("dyno"))
        if relevant:
            self.refresh()

    def refresh(self) -> None:
        """Read the app's dynos and render them (also the final state of dynos that just ended)."""
        app = self.app
        live = app.ps()
        with self._lock:
            if app is not self.app:
                return
            names = {d["name"] for d in live}
            for record in live:
                self.dynos[record["name"]] = {**record, "shown_state": self._shown(record)}
            ended = [name for name, d in self.dynos.items() if name not in names and d["shown_state"] in
                     (*LIVE_STATES, "stopping")]
        for name in ended:
            try:
                record = app.dyno(name)
            except ApiError:
                record = {**self.dynos[name], "state": "down"}
            with self._lock:
                self.dynos[name] = {**record, "shown_state": self._shown(record)}
        with self._lock:
            finished = [n for n, d in self.dynos.items() if d["shown_state"] not in (*LIVE_STATES, "stopping")]
            for name in finished[:-KEEP_ENDED]:
                del self.dynos[name]
            self._render()

    def _shown(self, record: dict) -> str:
        state, name = record["state"], record["name"]
        if state in LIVE_STATES:
            return "stopping" if name in self._stop_seen else state
        if state == "crashed":
            return "crashed"
        return "stopped" if name in self._stop_seen else "complete"

    # rendering ---------------------------------------------------------------------
    def _render(self) -> None:
        with self._lock:
            if self.closed:
                return
            types = sorted({d["type"] for d in self.dynos.values()} | set(self.type_filter.options) - {ALL})
            if list(self.type_filter.options) != [ALL, *types]:
                self.type_filter.options = [ALL, *types]
            wanted_type, wanted_state = self.type_filter.value, self.state_filter.value
            visible = [d for d in self.dynos.values()
                       if wanted_type in (ALL, d["type"]) and wanted_state in (ALL, d["shown_state"])]
            rows = []
            for group, members in _groups(visible):
                rows.append(self._header(group, members))
                for dyno in members:
                    row = self._rows.get(dyno["name"])
                    if row is None:
                        row = self._rows[dyno["name"]] = _Row(dyno["name"], self._stop_clicked)
                    row.update(dyno)
                    rows.append(row.box)
            for name in [n for n in self._rows if n not in self.dynos]:
                self._rows.pop(name).close()
            if list(self.table.children) != rows:
                self.table.children = rows
            self.empty.value = "" if self.dynos else f"<i>No dynos on ⬢ {self.app.name}</i>"
            self.updates += 1

    def _header(self, group: str, members: list[dict]) -> W.HTML:
        """`=== web (Basic): python3 web.py (2)`, as `dyno ps` heads a group."""
        header = self._headers.get(group)
        if header is None:
            header = self._headers[group] = W.HTML()
            header.add_class("dyno-ps-group")
        first = members[0]
        text = (f"{group}: one-off processes ({len(members)})" if group == "run" else
                f"{group} ({first.get('size') or 'Basic'}): {first['command']} ({len(members)})")
        value = f"<b>=== {html.escape(text)}</b>"
        if header.value != value:
            header.value = value
        return header

    def _stop_clicked(self, name: str) -> None:
        self._stop_seen.add(name)
        try:
            self.app.stop(name)
        except PlatformError as exc:
            self._show_error(str(exc))

    def _app_changed(self, change) -> None:
        with self._lock:
            twin = self.app.for_threads()
            twin.name, twin.directory = change["new"], None
            self.app = twin
            self.dynos.clear()
            self._stop_seen.clear()
            self._render()
        self._restart_tail()


class _Row:
    """One dyno's row; updated in place so an update sends only the changed cells."""

    def __init__(self, name: str, on_stop) -> None:
        self.name = name
        self.cells = {column: cell("", width, cls=f"dyno-{column}") for column, width in COLUMNS}
        self.button = W.Button(description="Stop", icon="stop", button_style="danger",
                               layout=W.Layout(width="6em"), tooltip=f"dyno ps:stop {name}")
        self.button.add_class("dyno-stop")
        self.button.on_click(lambda _: on_stop(name))
        self.box = W.HBox([*self.cells.values(), self.button])
        self.box.add_class("dyno-row")
        self.box.add_class("dyno-row-" + name.replace(".", "-"))

    def update(self, dyno: dict) -> None:
        state = dyno["shown_state"]
        values = {"name": dyno["name"], "type": dyno["type"], "state": state, "since": _since(dyno),
                  "command": dyno["command"], "size": dyno.get("size") or "Basic",
                  "exit": "" if dyno.get("exit_code") is None else str(dyno["exit_code"])}
        for column, value in values.items():
            set_cell(self.cells[column], value)
        running = state in LIVE_STATES
        if self.button.disabled == running:
            self.button.disabled = not running
        for cls in ("dyno-up", "dyno-ended"):
            if cls in self.box._dom_classes and cls != ("dyno-up" if running else "dyno-ended"):
                self.box.remove_class(cls)
        self.box.add_class("dyno-up" if running else "dyno-ended")

    def close(self) -> None:
        for widget in (*self.cells.values(), self.button, self.box):
            widget.close()


def _groups(dynos: list[dict]) -> list[tuple[str, list[dict]]]:
    """Dynos by type: one-off `run` first, the formation's types by name, then scheduler and release."""
    by_type: dict[str, list[dict]] = {}
    for dyno in dynos:
        by_type.setdefault(dyno["type"], []).append(dyno)
    order = sorted(by_type, key=lambda t: (0 if t == "run" else 2 if t in ONE_OFF_TYPES else 1, t))
    return [(t, sorted(by_type[t], key=_number)) for t in order]


def _number(dyno: dict) -> int:
    tail = dyno["name"].rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _since(dyno: dict) -> str:
    try:
        stamp = datetime.strptime(dyno["updated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (KeyError, ValueError):
        return ""
    return time.strftime("%H:%M:%S", time.localtime(stamp.timestamp()))
