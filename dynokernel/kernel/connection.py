"""A kernel's one-off dyno: started in the background, attached over rendezvous, driven by pexpect.

    dyno = DynoConnection(profile, app_name=None, cwd=".", idle_timeout=3600)
    dyno.boot()            # on a background thread: deploy if needed, start run.N, attach, REPL up
    dyno.wait_ready(60)    # the first cell waits here
    dyno.session.run_cell("ls", on_output=print)
    dyno.stop()            # the dyno ends (state complete)
"""
from __future__ import annotations

import contextlib
import threading
import time

from pexpect.fdpexpect import fdspawn

from ..platform.app import App, Run
from ..platform.errors import PlatformError
from ..platform.rendezvous import bridge, connect
from .profiles import ReplProfile
from .session import ReplSession

COLUMNS = 200  # wide: notebook cells wrap themselves


class DynoConnection:
    """The dyno behind one kernel session, and the REPL session running in it."""

    def __init__(self, profile: ReplProfile, app_name: str | None, cwd: str, idle_timeout: float) -> None:
        self.profile, self.app_name, self.cwd, self.idle_timeout = profile, app_name, cwd, idle_timeout
        self.app: App | None = None
        self.run: Run | None = None
        self.session: ReplSession | None = None
        self.error: str | None = None
        self.progress: list[str] = []
        self.last_activity = time.monotonic()
        self._ready = threading.Event()
        self.closed = threading.Event()  # the dyno's end of the attach connection has gone
        self._sock = None

    def start_in_background(self) -> None:
        threading.Thread(target=self.boot, name="dyno-boot", daemon=True).start()

    def boot(self) -> None:
        try:
            self.app = App(self.app_name, cwd=self.cwd, create=True)
            build = self.app.ensure_release()
            if build:
                self.progress.append(f"Deployed {self.app.name}: v{build['release']['version']}")
            self.run = self.app.start(self.profile.shell_command, attach=True, tty=True, exit_status=False,
                                      idle_timeout=self.idle_timeout,
                                      env={"COLUMNS": str(COLUMNS), "LINES": "50"})
            self.progress.append(f"Running {self.profile.display_name} on \u2b22 {self.app.name}... up, {self.run.name}")
            tls, early = connect(self.run.attach_url, self.app.client.endpoint.ca_file)
            self._sock = bridge(tls, early, on_close=self.closed.set)
            child = fdspawn(self._sock.fileno(), encoding=None, timeout=None)
            session = ReplSession(child, self.profile)
            session.start()
            self.session = session
        except Exception as exc:  # shown in the next cell as one line, never a traceback
            self.error = str(exc) if isinstance(exc, PlatformError) else f"{type(exc).__name__}: {exc}"
        finally:
            self.last_activity = time.monotonic()
            self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity

    def describe(self) -> dict:
        record = self.run.refresh() if self.run else {}
        return {"app": self.app.name if self.app else self.app_name, "dyno": record.get("name"),
                "state": record.get("state"), "release": (record.get("release") or {}).get("version"),
                "command": record.get("command"), "api": self.app.client.endpoint.url if self.app else None}

    def stop(self) -> None:
        """End the dyno (as a user's exit would) and the local ends of the connection."""
        if self.session is not None:
            self.session.close()
        if self.run is not None:
            try:
                self.run.stop()
            except PlatformError:
                pass
        if self._sock is not None:
            with contextlib.suppress(OSError):  # the session may have closed it already
                self._sock.close()
