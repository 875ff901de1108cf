"""`App` and `Run`: what users, the CLI, the kernels and the magics script with.

    app = App()                                   # -a, $DYNO_APP, or the linked directory
    run = app.run("rake db:migrate")              # attached: waits, collects the output
    run.exit_code, run.output
    job = app.run("node tally_results.js", detach=True)
    job.wait(timeout=60); job.exit_code           # also for detached runs
    for line in app.logs(dyno=job.name): print(line)

`app.run(..., attach=...)` is the low-level form the CLI uses: it creates the dyno and leaves
connecting to `run.attach_url` to the caller (as does `app.start`).
"""
from __future__ import annotations

import http.client
import math
import os
import re
import select
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlparse

from ..paths import HomeFiles, dyno_home
from . import links
from .client import Client
from .endpoint import resolve_endpoint
from .errors import ApiError, ManifoldUnavailable, PlatformError
from .exitstatus import HEROKU_SUFFIX, ExitStatusFilter
from .logstream import stream_lines
from .rendezvous import connect

LIVE_STATES = ("starting", "up", "idle")
_EXITED = re.compile(r"heroku\[(?P<dyno>[^\]]+)\]: Process exited with status (?P<code>\d+)$")
_ENDED = re.compile(r"heroku\[(?P<dyno>[^\]]+)\]: State changed from \w+ to (?P<state>complete|crashed)$")


class RunTimeout(TimeoutError):
    """A run took longer than its timeout (the dyno has been stopped)."""

    def __init__(self, run: "Run", timeout: float) -> None:
        super().__init__(f"{run.name} still running after {timeout:g} s; stopped it")
        self.run = run


class SharedClient(Client):
    """A Client that several threads may use (one request at a time on its connection)."""

    def __init__(self, endpoint=None) -> None:
        super().__init__(endpoint)
        self._request_lock = threading.Lock()

    def request(self, *args, **kwargs):
        with self._request_lock:
            return super().request(*args, **kwargs)


class App:
    """An app on the manifold (or Heroku), resolved like the CLI resolves it."""

    def __init__(self, name: str | None = None, *, cwd: Path | str | None = None, client: Client | None = None,
                 create: bool = False) -> None:
        self.client = client or Client()
        self.files = HomeFiles(dyno_home())
        self.cwd = Path(cwd or os.getcwd())
        self.name, self.directory = self._resolve(name, create)

    def __repr__(self) -> str:
        return f"App({self.name!r})"

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

    def reconnect(self, autostart: bool = False) -> None:
        """Find the API again (a restarted local manifold listens on a new port)."""
        old = self.client
        self.client = type(old)(resolve_endpoint(autostart=autostart))
        old.close()

    def for_threads(self) -> "App":
        """The same app with its own connection, safe to share between threads (the panels use it)."""
        twin = App.__new__(App)
        twin.__dict__.update(self.__dict__)
        twin.client = SharedClient(self.client.endpoint)
        return twin

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
    def run(self, command: str, *, detach: bool = False, env: dict | None = None, size: str | None = None,
            timeout: float | None = None, input: str | bytes | None = None, type: str | None = None,
            time_to_live: int | None = None, idle_timeout: float | None = None,
            attach: bool | None = None, tty: bool | None = None, exit_status: bool = True) -> "Run":
        """Run a one-off dyno.

        Attached (the default): waits for the end, `run.output` holds the output and
        `run.exit_code` the status; `input` is the command's stdin (EOF after it); after
        `timeout` seconds the dyno is stopped and `RunTimeout` raised.
        Detached: returns at once; the output goes to the logs; `timeout` becomes the
        dyno's time to live. Passing `attach=` only creates the dyno (see `start`).
        """
        if attach is not None:
            return self.start(command, attach=attach, tty=True if tty is None else tty, env=env, size=size,
                              type=type, time_to_live=time_to_live, exit_status=exit_status,
                              idle_timeout=idle_timeout)
        if timeout is not None and time_to_live is None:
            time_to_live = max(1, math.ceil(timeout)) if detach else max(1, math.ceil(timeout)) + 5
        run = self.start(command, attach=not detach, tty=bool(tty), env=env, size=size, type=type,
                         time_to_live=time_to_live, exit_status=exit_status, idle_timeout=idle_timeout)
        if detach:
            return run
        session = run.attach()
        if input is not None:
            session.send(input.encode() if isinstance(input, str) else input)
        session.close_stdin()
        run.wait(timeout)
        return run

    def start(self, command: str, *, attach: bool = True, tty: bool = False, env: dict | None = None,
              size: str | None = None, type: str | None = None, time_to_live: int | None = None,
              exit_status: bool = True, idle_timeout: float | None = None) -> "Run":
        """Create a one-off dyno; an attached one waits for a client at `run.attach_url`."""
        if self.client.is_manifold is None:
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
        return Run(self, self.client.request("POST", f"{self.path}/dynos", body), attached=attach, tty=tty)

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
        session = self.log_session(lines=lines, dyno=dyno, source=source, tail=tail)
        return stream_lines(session["logplex_url"], tail, self.client.endpoint.ca_file)

    def log_session(self, lines: int = 100, dyno: str | None = None, source: str | None = None,
                    tail: bool = False) -> dict:
        body: dict = {"lines": lines, "tail": tail}
        if dyno:
            body["dyno"] = dyno
        if source:
            body["source"] = source
        return self.client.request("POST", f"{self.path}/log-sessions", body)

    def tail(self, lines: int = 0, dyno: str | None = None, source: str | None = None) -> "LogTail":
        """A live tail that another thread can `close()` (what the widget panels follow)."""
        return LogTail(self, lines=lines, dyno=dyno, source=source)


class Run:
    """A one-off dyno started by `App.run`."""

    def __init__(self, app: App, record: dict, *, attached: bool | None = None, tty: bool = False) -> None:
        self.app, self.record = app, record
        self.name: str = record["name"]
        self.attach_url: str | None = record.get("attach_url")
        self.attached = bool(record.get("attach_url")) if attached is None else attached
        self.tty = tty
        self.session: Attachment | None = None
        self._exit_code: int | None = record.get("exit_code")
        self._output: list[bytes] = []
        self._ended = False

    def __repr__(self) -> str:
        return f"<Run {self.name} of {self.app.name}: {self.record.get('command', '')!r}>"

    # state --------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.refresh()["state"]

    @property
    def exit_code(self) -> int | None:
        """The exit status once the dyno has ended (asked of the API if not known yet)."""
        if self._exit_code is None and not self._ended and self.session is None:
            try:
                self.refresh()
            except PlatformError:
                pass
        return self._exit_code

    @exit_code.setter
    def exit_code(self, value: int | None) -> None:
        self._exit_code = value

    @property
    def done(self) -> bool:
        return self._ended or self.refresh()["state"] not in LIVE_STATES

    def refresh(self) -> dict:
        self.record = self.app.dyno(self.name)
        if self.record.get("exit_code") is not None:
            self._exit_code = self.record["exit_code"]
        if self.record["state"] not in LIVE_STATES:
            self._ended = True
        return self.record

    @property
    def output(self) -> str:
        """What the run printed: the attached stream, or (detached) its `app[...]` log lines."""
        if self.attached:
            return b"".join(self._output).decode("utf-8", errors="replace")
        prefix = f" app[{self.name}]: "
        return "".join(line.split(prefix, 1)[1] + "\n" for line in self.logs(source="app") if prefix in line)

    def stop(self) -> None:
        self.app.stop(self.name)

    def logs(self, lines: int = 1000, source: str | None = None) -> list[str]:
        return list(self.app.logs(lines=lines, dyno=self.name, source=source))

    def panel(self):
        """A live status panel for this run (ipywidgets)."""
        from ..widgets import RunPanel
        return RunPanel(self)

    # attached runs --------------------------------------------------------------
    def attach(self) -> "Attachment":
        """Connect to the attached dyno (once)."""
        if self.session is None:
            if not self.attach_url:
                raise PlatformError(f"{self.name} is not waiting for a client to attach")
            sock, early = connect(self.attach_url, self.app.client.endpoint.ca_file)
            self.session = Attachment(self, sock, early)
        return self.session

    def _ended_with(self, code: int | None) -> None:
        self._exit_code = code
        self._ended = True

    # waiting --------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the dyno to end; returns its exit code. Raises RunTimeout (after stopping it)."""
        if self.attached and self.session is None and self.attach_url and not self._ended:
            self.attach().close_stdin()
        if self.session is not None:
            return self._wait_attached(timeout)
        return self._wait_detached(timeout)

    def _wait_attached(self, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        session = self.session
        while not session.done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._timed_out(timeout)
            data = session.read(remaining)
            if data:
                self._output.append(data)
        return self._exit_code

    def _wait_detached(self, timeout: float | None) -> int | None:
        if self._ended:
            return self._exit_code
        tail = self.app.tail(lines=1000, dyno=self.name, source="heroku")
        timer = threading.Timer(timeout, tail.close) if timeout is not None else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            if self.refresh()["state"] not in LIVE_STATES:
                return self._exit_code
            for line in tail:
                exited = _EXITED.search(line)
                if exited and exited.group("dyno") == self.name:
                    self._exit_code = int(exited.group("code"))
                ended = _ENDED.search(line)
                if ended and ended.group("dyno") == self.name:
                    self._ended = True
                    return self._exit_code
        finally:
            if timer:
                timer.cancel()
            tail.close()
        if timeout is not None:
            raise TimeoutError(f"{self.name} still running after {timeout:g} s")
        return self._exit_code

    def _timed_out(self, timeout: float) -> None:
        try:
            self.stop()
        finally:
            if self.session is not None:
                self.session.close()
        raise RunTimeout(self, timeout)


class Attachment:
    """The client end of an attached run: read output (exit marker removed), send input."""

    def __init__(self, run: Run, sock: ssl.SSLSocket, early: bytes) -> None:
        self.run, self.sock = run, sock
        self.filter = ExitStatusFilter()
        self.done = False
        self._early = early
        self._stdin_open = True

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, timeout: float | None = None) -> bytes | None:
        """The next output bytes (maybe empty once the run is done); None if nothing came in time."""
        if self.done:
            return b""
        if self._early:
            data, self._early = self._early, b""
        else:
            if not self.sock.pending() and not select.select([self.sock], [], [], timeout)[0]:
                return None
            try:
                data = self.sock.recv(65536)
            except ssl.SSLWantReadError:
                return None
            except (OSError, ssl.SSLError):
                data = b""
        if not data:
            out = self.filter.flush()
            self._finish()
            return out
        out = self.filter.feed(data)
        if self.filter.status is not None:
            out += self.filter.flush()
            self._finish()
        return out.replace(b"\r\n", b"\n") if self.run.tty else out

    def send(self, data: bytes) -> None:
        if data and self._stdin_open and not self.done:
            try:
                self.sock.sendall(data)
            except OSError:
                pass

    def close_stdin(self) -> None:
        """EOF for the command's stdin (the `\\x04` of the attach protocol)."""
        if self._stdin_open:
            self.send(b"\x04")
            self._stdin_open = False

    def _finish(self) -> None:
        self.done = True
        self.run._ended_with(self.filter.status)
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class LogTail:
    """Follow an app's log; iterate for lines, `close()` from any thread to stop.

    The position (the SSE event id) survives `close()`: `resume()` gives a tail that
    continues exactly where this one stopped, e.g. after the manifold restarted.
    """

    def __init__(self, app: App, *, lines: int = 0, dyno: str | None = None, source: str | None = None,
                 last_id: str | None = None) -> None:
        self.app, self.lines, self.dyno, self.source = app, lines, dyno, source
        self.last_id = last_id
        self._conn: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def resume(self) -> "LogTail":
        return LogTail(self.app, lines=self.lines, dyno=self.dyno, source=self.source, last_id=self.last_id)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __iter__(self) -> Iterator[str]:
        for batch in self.batches():
            yield from batch

    def open(self) -> "LogTail":
        """Start the log session and connect (iterating does it when not done yet)."""
        if self._response is None and not self.closed:
            session = self.app.log_session(lines=self.lines, dyno=self.dyno, source=self.source, tail=True)
            self._response = self._open(session["logplex_url"])
        return self

    def batches(self) -> Iterator[list[str]]:
        """Lists of lines, one per server event (history arrives as one big batch)."""
        response = self.open()._response
        if response is None:
            return
        batch: list[str] = []
        try:
            while not self.closed:
                try:
                    raw = response.readline()
                except (OSError, http.client.HTTPException, ValueError, AttributeError):
                    raw = b""
                if not raw:
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    if batch:
                        yield batch
                        batch = []
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    batch.append(value)
                elif field == "id":
                    self.last_id = value
        finally:
            self._disconnect()
        if not self.closed:
            raise ManifoldUnavailable("The log stream ended (the manifold went away)")

    def _open(self, url: str) -> http.client.HTTPResponse | None:
        parsed = urlparse(url)
        if parsed.scheme == "https":
            context = ssl.create_default_context(cafile=self.app.client.endpoint.ca_file)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(parsed.hostname, parsed.port,
                                                                           context=context, timeout=30)
        else:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        with self._lock:
            if self.closed:
                return None
            self._conn = conn
        try:
            conn.request("GET", parsed.path + (f"?{parsed.query}" if parsed.query else ""), headers=headers)
            response = conn.getresponse()
            if conn.sock is not None:
                conn.sock.settimeout(None)
        except OSError as exc:
            raise ManifoldUnavailable(f"Cannot reach the log stream: {exc}") from None
        if response.status != 200:
            raise ManifoldUnavailable(f"Log stream failed: HTTP {response.status}")
        return response

    def close(self) -> None:
        """Stop following (any thread); a blocked iteration ends quietly."""
        self._closed.set()
        with self._lock:
            sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _disconnect(self) -> None:
        """The reader's own clean-up (only the iterating thread closes the connection)."""
        with self._lock:
            conn, self._conn, self._response = self._conn, None, None
        if conn is not None:
            conn.close()
