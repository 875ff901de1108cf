"""New releases, with Heroku's release phase.

A slug whose Procfile has a `release:` entry runs it in a `release.N` one-off dyno of the new
release before that release goes live: the release is `pending` meanwhile; if the command exits 0
it `succeeded`, becomes current and the formation restarts on it; otherwise it `failed`, and new
dynos and the formation stay on the previous release.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from .formation import Formation
from .logplex import Logplex
from .store import Store
from .supervisor import ApiError, Dyno, Supervisor


@dataclass
class ReleasePhase:
    """What a release command did: its dyno, exit code and output lines."""

    dyno: str
    exit_code: int | None
    output: list[str]


@dataclass
class Releaser:
    store: Store
    logplex: Logplex
    supervisor: Supervisor
    formation: Formation
    waiting: dict[str, asyncio.Future] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.supervisor.end_hooks.append(self._ended)

    async def release(self, app: dict, slug_id: str | None, description: str,
                      user: str) -> tuple[dict, ReleasePhase | None]:
        """Make the next release (running its release phase first, if it has one)."""
        slug = self.store.slug(slug_id) if slug_id else None
        command = json.loads(slug["process_types"]).get("release") if slug else None
        if not command:
            release = self.store.create_release(app["id"], slug_id, description, user)
            self.formation.released(app)
            return release, None
        release = self.store.create_release(app["id"], slug_id, description, user, status="pending")
        phase = await self._run(app, release, command)
        status = "succeeded" if phase.exit_code == 0 else "failed"
        self.store.set_release_status(release["id"], status)
        self.logplex.platform(app["id"], "api", f"Release v{release['version']} {status}: `{command}` exited with "
                              f"status {phase.exit_code}" + ("" if phase.exit_code == 0 else
                                                              "; the app stays on its previous release"), "app")
        if phase.exit_code == 0:
            self.formation.released(app)
        return self.store.release(app["id"], release["id"]), phase

    async def _run(self, app: dict, release: dict, command: str) -> ReleasePhase:
        try:
            dyno = self.supervisor.create(app, {"command": command, "type": "release", "attach": False},
                                          release=release)
        except ApiError as exc:
            return ReleasePhase("", None, [exc.message])
        done = self.waiting[dyno["id"]] = asyncio.get_running_loop().create_future()
        exit_code = await done
        rows = self.store.read_logs(app["id"], dyno=dyno["name"], source="app")
        return ReleasePhase(dyno["name"], exit_code, [row["message"] for row in rows])

    def _ended(self, dyno: Dyno) -> None:
        future = self.waiting.pop(dyno.record["id"], None)
        if future is not None and not future.done():
            future.set_result(dyno.exit_code)
