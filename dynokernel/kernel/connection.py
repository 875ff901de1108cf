"""A kernel's one-off dyno: started in the background, attached over rendezvous, driven by pexpect.

    dyno = DynoConnection(profile, app_name=None, cwd=".", idle_timeout=3600)
    dyno.start_in_background()   # deploy if needed, start run.N, attach, REPL up
    for line in dyno.follow_progress(timeout=300):   # the first cell waits here, showing the boot
        print(line)
    dyno.session.run_cell("ls", on_output=print)
    dyno.stop()            # the dyno ends (state complete)
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time

from pexpect.fdpexpect import fdspawn

from ..platform.app import App, Run
from ..platform.errors import PlatformError
from ..platform.rendezvous import bridge, connect
from .output import OutputLimits
from .profiles import ReplProfile
from .session import ReplSession

COLUMNS = 200  # wide: notebook cells wrap themselves
IDLE_GRACE = 5.0  # the kernel's own idle timer fires this long after the manifold's would have


class DynoConnection:
    """The dyno behind one kernel session, and the REPL session running in it."""

    def __init__(self, profile: ReplProfile, app_name: str | None, cwd: str, idle_timeout: float,
                 limits: OutputLimits = OutputLimits()) -> None:
        self._poke = threading.Event()  # wakes the idle timer: activity, a new timeout, the end
        self.profile, self.app_name, self.cwd, self.idle_timeout = profile, app_name, cwd, idle_timeout
        self.limits = limits
        self.app: App | None = None
        self.run: Run | None = None
        self.session: ReplSession | None = None
        self.error: str | None = None
        self.progress: list[str] = []
        self.last_activity = time.monotonic()
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self.reported = False  # the cell that waited has shown how the boot went
        self.closed = threading.Event()  # the dyno's end of the attach connection has gone
        self._sock = None
        self._stopping = False

    def start_in_background(self) -> None:
        threading.Thread(target=self.boot, name="dyno-boot", daemon=True).start()

    def boot(self) -> None:
        try:
            self.app = App(self.app_name, cwd=self.cwd, create=True)
            build = self.app.ensure_release()
            if build:
                self._progress(f"Deployed {self.app.name}: v{build['release']['version']}")
            self.run = self.app.start(self.profile.shell_command, attach=True, tty=True, exit_status=False,
                                      idle_timeout=self.idle_timeout,
                                      env={"COLUMNS": str(COLUMNS), "LINES": "50"})
            self._progress(f"Running {self.profile.display_name} on \u2b22 {self.app.name}... up, {self.run.name}")
            tls, early = connect(self.run.attach_url, self.app.client.endpoint.ca_file)
            self._sock = bridge(tls, early, on_close=self._on_close)
            child = fdspawn(self._sock.fileno(), encoding=None, timeout=None)
            session = ReplSession(child, self.profile, limits=self.limits)
            session.start()
            self.session = session
            if self._stopping:  # the kernel shut down while the dyno booted: no orphan dyno
                self.stop()
            else:
                threading.Thread(target=self._watch_idle, name="dyno-idle", daemon=True).start()
        except Exception as exc:  # shown in the next cell as one line, never a traceback
            self.error = str(exc) if isinstance(exc, PlatformError) else f"{type(exc).__name__}: {exc}"
        finally:
            self.last_activity = time.monotonic()
            with self._changed:
                self._ready.set()
                self._changed.notify_all()

    def _progress(self, line: str) -> None:
        with self._changed:
            self.progress.append(line)
            self._changed.notify_all()

    def follow_progress(self, timeout: float, stop: threading.Event | None = None):
        """Yield the boot's progress lines as they come, until the dyno is ready (or `stop` is set
        or `timeout` passes)."""
        deadline, shown = time.monotonic() + timeout, 0
        while True:
            with self._changed:
                while (shown == len(self.progress) and not self._ready.is_set()
                       and not (stop is not None and stop.is_set())):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._changed.wait(left)
                new, shown = self.progress[shown:], len(self.progress)
                done = self._ready.is_set() or (stop is not None and stop.is_set())
            yield from new
            if done:
                return

    def wake(self) -> None:
        """Wake a `follow_progress` (e.g. its `stop` event was set)."""
        with self._changed:
            self._changed.notify_all()

    @property
    def idle_timeout(self) -> float:
        return self._idle_timeout

    @idle_timeout.setter
    def idle_timeout(self, value: float) -> None:
        self._idle_timeout = value
        self._poke.set()

    @property
    def last_activity(self) -> float:
        return self._last_activity

    @last_activity.setter
    def last_activity(self, value: float) -> None:
        self._last_activity = value
        self._poke.set()

    def _on_close(self) -> None:
        self.closed.set()
        self._poke.set()

    def _watch_idle(self) -> None:
        """The kernel's own idle timer, mirroring the manifold's (and Heroku's): after `idle_timeout`
        with no cell running and no output, hang up the attach connection; the platform then sends
        the dyno SIGHUP. A backstop for platforms that do not cull by themselves."""
        while not (self.closed.is_set() or self._stopping):
            self._poke.clear()
            idle = self.idle_for()
            if idle >= self.idle_timeout + IDLE_GRACE and self.session is not None and not self.session.busy:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
                return
            left = self.idle_timeout + IDLE_GRACE - idle if idle >= 0 else None  # None: a cell is running
            self._poke.wait(left)

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
        self._stopping = True
        self._poke.set()
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
