"""The formation: an app's process types scaled with `ps:scale`, kept running as `web.1`, `worker.1`...

Heroku's rules: a formation dyno that exits — with any status, 0 included — has crashed and is
restarted: at once the first time, then after a cool-off that doubles with each quick crash (up to
20 minutes; a dyno that stayed up for 10 minutes starts afresh). A dyno stopped by hand
(`ps:stop web.1`) or cycled comes straight back; one scaled away does not. A new release restarts
every dyno of the formation; the formation is brought back up when the manifold starts.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Callable

from .logplex import Logplex
from .store import Store
from .supervisor import ApiError, Dyno, Supervisor

Clock = Callable[[], float]


@dataclass
class Slot:
    """One named place in the formation (`web.2`): its crash history and any pending restart."""

    crashes: int = 0
    launched_at: float = 0.0
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """How long a crashed formation dyno waits before it is started again."""

    backoff: float = 60.0    # the cool-off after the second quick crash; doubled after each further one
    cap: float = 1200.0      # never more than 20 minutes
    stable: float = 600.0    # up this long before crashing: the crash counts as the first again

    def delay(self, crashes: int) -> float:
        """The wait before restarting after the `crashes`-th quick crash in a row."""
        return 0.0 if crashes <= 1 else min(self.cap, self.backoff * 2 ** (crashes - 2))

    def after_crash(self, slot: Slot, now: float) -> float:
        """Count a crash of the slot's dyno at `now`; the wait before it starts again."""
        if now - slot.launched_at >= self.stable:
            slot.crashes = 0
        slot.crashes += 1
        return self.delay(slot.crashes)


@dataclass
class Formation:
    store: Store
    logplex: Logplex
    supervisor: Supervisor
    policy: RestartPolicy
    clock: Clock = time.monotonic
    slots: dict[tuple[str, str], Slot] = field(default_factory=dict)
    closing: bool = False

    def __post_init__(self) -> None:
        self.supervisor.end_hooks.append(self._ended)

    # what should run ------------------------------------------------------------------------
    def wanted(self, app: dict) -> dict[str, dict]:
        """Dyno name -> its formation row, for every scaled process type the release still has."""
        types = self._process_types(app)
        return {f"{row['type']}.{n}": row for row in self.store.formation(app["id"]) if row["type"] in types
                for n in range(1, row["quantity"] + 1)}

    def _process_types(self, app: dict) -> dict[str, str]:
        release = self.store.current_release(app["id"])
        slug = self.store.slug(release["slug_id"]) if release and release["slug_id"] else None
        return json.loads(slug["process_types"]) if slug else {}

    def _running(self, app: dict) -> dict[str, Dyno]:
        return {d.name: d for d in list(self.supervisor.running.values())
                if d.formation and d.app_id == app["id"] and not d.finished}

    def web_backends(self, app_id: str) -> list[tuple[str, int]]:
        """(name, port) of the app's web dynos that are up: what the router sends requests to."""
        up = [(d.name, d.record["port"]) for d in list(self.supervisor.running.values())
              if d.formation and d.app_id == app_id and d.record["type"] == "web"
              and d.record["state"] == "up" and not d.stopping]
        return sorted(up, key=lambda backend: int(backend[0].rsplit(".", 1)[1]))  # web.2 before web.10

    def web_crashed(self, app_id: str) -> bool:
        return any(r["type"] == "web" and r["state"] == "crashed" for r in self.store.live_dynos(app_id))

    # keeping it so ------------------------------------------------------------------------------
    def start(self) -> None:
        """At the manifold's start: every app's formation, as scaled."""
        for app in self.store.apps():
            self.reconcile(app)

    def reconcile(self, app: dict) -> None:
        """Start what is missing, stop what was scaled away."""
        wanted, running = self.wanted(app), self._running(app)
        for name, dyno in running.items():
            if name not in wanted:
                self.supervisor.stop(dyno.record["id"])
        for (app_id, name), slot in list(self.slots.items()):
            if app_id == app["id"] and name not in wanted:
                self._forget(app_id, name)
        for name in wanted:
            slot = self.slots.get((app["id"], name))
            if name not in running and not (slot and slot.timer):
                self._launch(app, name)

    def restart(self, app: dict, names: list[str] | None = None, reason: str = "Restarting") -> None:
        """ps:restart, a new release: stop (SIGTERM) and start again each named dyno (default: all)."""
        for name, dyno in self._running(app).items():
            if names is None or name in names:
                self.logplex.platform(app["id"], name, reason)
                self.supervisor.stop(dyno.record["id"])
        for (app_id, name), slot in list(self.slots.items()):
            if app_id == app["id"] and slot.timer and (names is None or name in names):
                slot.timer.cancel()
                slot.timer, slot.crashes = None, 0
                self._launch(self.store.app(app_id), name)

    def released(self, app: dict) -> None:
        """A new release (deploy, config vars, add-ons): the formation runs it from now on."""
        self.restart(app)
        self.reconcile(app)

    def close(self) -> None:
        """The manifold is stopping: nothing is restarted any more."""
        self.closing = True
        for slot in self.slots.values():
            if slot.timer:
                slot.timer.cancel()

    # a dyno ended ---------------------------------------------------------------------------
    def _ended(self, dyno: Dyno) -> None:
        if not dyno.formation or self.closing:
            return
        app = self.store.app(dyno.app_id)
        if app is None or dyno.name not in self.wanted(app):
            self._forget(dyno.app_id, dyno.name)
            return
        slot = self.slots.setdefault((app["id"], dyno.name), Slot())
        if not dyno.crashed:
            slot.crashes = 0
            self._launch(app, dyno.name)
            return
        delay = self.policy.after_crash(slot, self.clock())
        if delay <= 0:
            self._launch(app, dyno.name, after_crash=True)
        else:
            slot.timer = asyncio.get_running_loop().call_later(delay, self._cooled_off, app["id"], dyno.name)

    def _cooled_off(self, app_id: str, name: str) -> None:
        slot = self.slots.get((app_id, name))
        app = self.store.app(app_id)
        if slot is None or app is None:
            return
        slot.timer = None
        if name in self.wanted(app):
            self._launch(app, name, after_crash=True)

    def _launch(self, app: dict, name: str, after_crash: bool = False) -> None:
        slot = self.slots.setdefault((app["id"], name), Slot())
        row = self.wanted(app)[name]
        self.store.retire_crashed(app["id"], name)  # ps shows the new one in its place
        if after_crash:
            self.logplex.platform(app["id"], name, "State changed from crashed to starting")
        body = {"command": self._process_types(app)[row["type"]], "type": row["type"], "size": row["size"],
                "attach": False, "time_to_live": self.supervisor.settings.cycle_interval}
        try:
            self.supervisor.create(app, body, name=name, formation=True)
        except ApiError as exc:
            self.logplex.platform(app["id"], name, f"Error starting process: {exc.message}")
            return
        slot.launched_at = self.clock()

    def _forget(self, app_id: str, name: str) -> None:
        slot = self.slots.pop((app_id, name), None)
        if slot is None:
            return
        if slot.timer:
            slot.timer.cancel()
        self.store.retire_crashed(app_id, name)
