"""`App` and `Run`: what users, the CLI, the kernels and the magics script with.

    app = App()                                  # -a, $DYNO_APP, or the linked directory
    run = app.run("rake db:migrate", attach=False)
    run.wait(timeout=60); run.exit_code          # also for detached runs
    for line in app.logs(dyno=run.name): print(line)
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from ..paths import HomeFiles, dyno_home
from . import links
from .client import Client
from .errors import ApiError, PlatformError
from .exitstatus import HEROKU_SUFFIX
from .logstream import stream_lines

_EXITED = re.compile(r"heroku\[(?P<dyno>[^\]]+)\]: Process exited with status (?P<code>\d+)$")
_ENDED = re.compile(r"heroku\[(?P<dyno>[^\]]+)\]: State changed from \w+ to (complete|crashed)$")


class App:
    """An app on the manifold (or Heroku), resolved like the CLI resolves it."""

    def __init__(self, name: str | None = None, *, cwd: Path | str | None = None, client: Client | None = None,
                 create: bool = False) -> None:
        self.client = client or Client()
        self.files = HomeFiles(dyno_home())
        self.cwd = Path(cwd or os.getcwd())
        self.name, self.directory = self._resolve(name, create)

    def _resolve(self, name: str | None, create: bool) -> tuple[str, Path | None]:
        name = name or os.environ.get("DYNO_APP") or None
        if name:
            return name, links.linked_dir(self.files, name)
        found = links.linked_app(self.files, self.cwd)
        if found:
            return found
        if not create:
            raise PlatformError("No app specified. Use -a APP, set DYNO_APP, or run `dyno apps:create` "
                                "in the app's directory.")
        name = links.app_name_for(self.cwd)
        self.create(name, self.cwd, exist_ok=True)
        return name, self.cwd

    def create(self, name: str, directory: Path, exist_ok: bool = False) -> dict:
        try:
            record = self.client.request("POST", "/apps", {"name": name})
        except ApiError as exc:
            if not (exist_ok and "taken" in exc.message):
                raise
            record = self.client.app(name)
        links.link(self.files, directory, name)
        return record

    @property
    def path(self) -> str:
        return f"/apps/{quote(self.name)}"

    def info(self) -> dict:
        return self.client.app(self.name)

    # releases -----------------------------------------------------------------
    def deploy(self, directory: Path | None = None) -> dict:
        """Build a slug from the app's directory and release it."""
        source = Path(directory or self.directory or self.cwd).resolve()
        return self.client.request("POST", f"{self.path}/builds", {"source_blob": {"url": source.as_uri()}})

    def ensure_release(self) -> dict | None:
        """Deploy first if the app has no release yet; returns the build if one was made."""
        if self.info().get("released_at"):
            return None
        if self.directory is None:
            raise PlatformError(f"{self.name} has no release and no linked directory to deploy from.")
        return self.deploy()

    def releases(self) -> list[dict]:
        return self.client.request("GET", f"{self.path}/releases")

    def config(self) -> dict[str, str]:
        return self.client.request("GET", f"{self.path}/config-vars")

    def set_config(self, changes: dict[str, str | None]) -> dict[str, str]:
        return self.client.request("PATCH", f"{self.path}/config-vars", changes)

    # dynos --------------------------------------------------------------------
    def run(self, command: str, *, attach: bool = True, tty: bool = True, env: dict | None = None,
            size: str | None = None, type: str | None = None, time_to_live: int | None = None,
            exit_status: bool = True, idle_timeout: float | None = None) -> "Run":
        """Start a one-off dyno. Attached runs report their exit status at the end of the stream."""
        self.info()  # learns whether this is a manifold (Dyno-Manifold header) or Heroku
        body: dict = {"command": command, "attach": attach}
        if attach and exit_status:
            if self.client.is_manifold:
                body["exit_status"] = True
            else:
                body["command"] = command + HEROKU_SUFFIX
        if attach and not tty:
            body["force_no_tty"] = True
        for key, value in (("env", env), ("size", size), ("type", type), ("time_to_live", time_to_live),
                           ("idle_timeout", idle_timeout)):
            if value:
                body[key] = value
        return Run(self, self.client.request("POST", f"{self.path}/dynos", body))

    def ps(self) -> list[dict]:
        return self.client.request("GET", f"{self.path}/dynos")

    def dyno(self, name: str) -> dict:
        return self.client.request("GET", f"{self.path}/dynos/{quote(name)}")

    def stop(self, name: str) -> None:
        self.client.request("POST", f"{self.path}/dynos/{quote(name)}/actions/stop")

    def stop_type(self, dyno_type: str) -> None:
        self.client.request("POST", f"{self.path}/formations/{quote(dyno_type)}/actions/stop")

    # logs ---------------------------------------------------------------------
    def logs(self, lines: int = 100, dyno: str | None = None, source: str | None = None,
             tail: bool = False) -> Iterator[str]:
        body: dict = {"lines": lines, "tail": tail}
        if dyno:
            body["dyno"] = dyno
        if source:
            body["source"] = source
        session = self.client.request("POST", f"{self.path}/log-sessions", body)
        return stream_lines(session["logplex_url"], tail, self.client.endpoint.ca_file)


class Run:
    """A one-off dyno started by `App.run`."""

    def __init__(self, app: App, record: dict) -> None:
        self.app, self.record = app, record
        self.name: str = record["name"]
        self.attach_url: str | None = record.get("attach_url")
        self.exit_code: int | None = record.get("exit_code")

    @property
    def state(self) -> str:
        return self.refresh()["state"]

    def refresh(self) -> dict:
        self.record = self.app.dyno(self.name)
        if self.record.get("exit_code") is not None:
            self.exit_code = self.record["exit_code"]
        return self.record

    def stop(self) -> None:
        self.app.stop(self.name)

    def logs(self, lines: int = 1000) -> list[str]:
        return list(self.app.logs(lines=lines, dyno=self.name))

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the dyno to end (by following its log); returns its exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for line in self.app.logs(lines=1_000_000, dyno=self.name, source="heroku", tail=True):
            exited = _EXITED.search(line)
            if exited and exited.group("dyno") == self.name:
                self.exit_code = int(exited.group("code"))
            ended = _ENDED.search(line)
            if ended and ended.group("dyno") == self.name:
                return self.exit_code
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout} s")
        return self.exit_code
