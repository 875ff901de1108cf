"""The dyno supervisor: creates, attaches, watches and stops dynos with Heroku's semantics.

Lifecycle of a one-off dyno, as its log lines tell it::

    app[api]: Starting process with command `bash` by user you@localhost
    heroku[run.1]: Awaiting client                      (attached runs only)
    heroku[run.1]: Starting process with command `bash`
    heroku[run.1]: State changed from starting to up
    heroku[run.1]: Process exited with status 0
    heroku[run.1]: State changed from up to complete
"""
from __future__ import annotations

import asyncio
import getpass
import json
import os
import secrets
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..paths import HomeFiles
from .logplex import LineSplitter, Logplex
from .ptyeof import write_holding_eof
from .processes import Reaper, exit_code, free_port, kill_dyno_processes, open_pty, start_time, write_all
from .sandbox import DynoSpec, Sandbox
from .addons import addon_mounts
from .sandbox.limits import DynoCgroup, memory_usage
from .sizes import SizeError, parse_size
from .store import LogRow, Store, api_time

EXIT_MARKER = "\uFFFF heroku-command-exit-status: {}"
_PROFILE_PRELUDE = ('set -a; for f in "$HOME"/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; unset f; '
                    '[ -r "$HOME/.profile" ] && . "$HOME/.profile"; set +a; exec bash -c "$0"')
_OUTPUT_HIGH_WATER = 1 << 20


class ApiError(Exception):
    """An error the API reports as Heroku does: HTTP status, id, message."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status, self.id, self.message = status, error_id, message


@dataclass
class Settings:
    """Manifold-wide timings; each can be set by the environment the manifold starts in."""

    stop_grace: float = 30.0
    attach_timeout: float = 60.0
    idle_timeout: float = 3600.0
    hup_interval: float = 5.0
    memory_interval: float = 20.0  # how often memory is sampled for R14/R15, like log-runtime-metrics
    max_ttl: int = 86400
    boot_timeout: float = 60.0     # a web dyno must bind $PORT within this (R10)
    restart_backoff: float = 60.0  # the first cool-off after repeated crashes (doubling, see formation.py)
    cycle_interval: float = 86400.0  # formation dynos are restarted at least this often

    @classmethod
    def from_env(cls) -> "Settings":
        def number(name: str, default: float) -> float:
            return float(os.environ.get(name, default))
        return cls(stop_grace=number("DYNO_STOP_GRACE", 30), attach_timeout=number("DYNO_ATTACH_TIMEOUT", 60),
                   idle_timeout=number("DYNO_IDLE_TIMEOUT", 3600), hup_interval=number("DYNO_HUP_INTERVAL", 5),
                   memory_interval=number("DYNO_MEMORY_INTERVAL", 20),
                   boot_timeout=number("DYNO_BOOT_TIMEOUT", 60), restart_backoff=number("DYNO_RESTART_BACKOFF", 60),
                   cycle_interval=number("DYNO_CYCLE_INTERVAL", 86400))


@dataclass
class Dyno:
    """A dyno the supervisor is running (or about to run)."""

    record: dict
    spec: DynoSpec
    tty: bool
    attach: bool
    exit_status_wanted: bool
    idle_timeout: float
    ttl: float
    window: tuple[int | None, int | None] = (None, None)
    secret: str | None = None
    proc: subprocess.Popen | None = None
    in_fd: int | None = None
    out_fd: int | None = None
    writer: asyncio.StreamWriter | None = None
    client_done: asyncio.Event = field(default_factory=asyncio.Event)
    splitter: LineSplitter = field(default_factory=LineSplitter)
    last_io: float = field(default_factory=time.monotonic)
    exit_code: int | None = None
    output_done: bool = False
    finished: bool = False
    stopping: bool = False
    oom_reported: bool = False
    formation: bool = False        # run by the formation: a web dyno waits for its port; an exit is a crash
    crashed: bool = False          # ended by a crash (not a stop): the formation restarts it
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.record["name"]

    @property
    def app_id(self) -> str:
        return self.record["app_id"]


class Supervisor:
    def __init__(self, store: Store, logplex: Logplex, sandbox: Sandbox, files: HomeFiles,
                 settings: Settings) -> None:
        self.store, self.logplex, self.sandbox, self.files = store, logplex, sandbox, files
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.reaper = Reaper(self.loop)
        self.running: dict[str, Dyno] = {}
        self._awaiting: dict[str, Dyno] = {}
        self.rendezvous_port = 0
        self.user = f"{getpass.getuser()}@localhost"
        self.end_hooks: list[Callable[[Dyno], None]] = []  # the formation's and the scheduler's

    # creating -----------------------------------------------------------------
    def create(self, app: dict, body: dict, *, name: str | None = None, user: str | None = None,
               formation: bool = False, release: dict | None = None) -> dict:
        """POST /apps/APP/dynos: validate, name and start (or await the client of) a dyno.

        The formation and the scheduler name their dynos (`web.1`) and say who started them."""
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ApiError(422, "invalid_params", "command must be a non-empty string")
        release = release or self.store.current_release(app["id"])
        if release is None:
            raise ApiError(422, "invalid_params", f"App {app['name']} has no release yet. Deploy it first (dyno deploy).")
        try:
            size = parse_size(body.get("size"))
        except SizeError as exc:
            raise ApiError(422, "invalid_params", str(exc)) from None
        env = _body_env(body.get("env"))
        ttl = _ttl(body.get("time_to_live"), self.settings.max_ttl)
        dyno_type = _dyno_type(body.get("type"))
        slug = self.store.slug(release["slug_id"])
        command = substitute_process_type(command, json.loads(slug["process_types"]))
        name = name or self._one_off_name(app, dyno_type)
        record = self._insert(app, release, name, dyno_type, command, size.name, bool(body.get("attach")), formation)
        spec = self._spec(app, release, slug, record, env, size)
        attach = bool(body.get("attach"))
        dyno = Dyno(record=record, spec=spec, tty=attach and not body.get("force_no_tty"), attach=attach,
                    exit_status_wanted=bool(body.get("exit_status")),
                    idle_timeout=float(body.get("idle_timeout") or app.get("idle_timeout") or self.settings.idle_timeout),
                    ttl=ttl, window=(_int(env.get("COLUMNS")), _int(env.get("LINES"))), formation=formation)
        self.running[record["id"]] = dyno
        if not formation:  # the formation's dynos follow from "Scaled to ..." and releases
            self.logplex.platform(app["id"], "api", f"Starting process with command `{command}` by user "
                                  f"{user or self.user}", "app")
        if attach:
            dyno.secret = secrets.token_urlsafe(32)
            self._awaiting[dyno.secret] = dyno
            self.logplex.platform(app["id"], name, "Awaiting client")
            dyno.timers.append(self.loop.call_later(self.settings.attach_timeout, self._attach_expired, dyno))
        else:
            self._start(dyno)
        return self.describe(dyno.record, dyno)

    def _one_off_name(self, app: dict, dyno_type: str) -> str:
        """run.1, run.2...; a one-off of a Procfile type is TYPE.1001... so it never takes a formation name."""
        number = self.store.next_dyno_number(app["id"], dyno_type)
        return f"{dyno_type}.{number if dyno_type == 'run' else ONE_OFF_BASE + number}"

    def _insert(self, app: dict, release: dict, name: str, dyno_type: str, command: str, size: str,
                attach: bool, formation: bool) -> dict:
        stamp = api_time()
        dyno_id = str(uuid.uuid4())
        record = {"id": dyno_id, "app_id": app["id"], "name": name, "type": dyno_type, "command": command,
                  "size": size, "state": "starting", "attach": int(attach), "release_id": release["id"],
                  "created_at": stamp, "updated_at": stamp, "work_dir": str(self.files.dynos / dyno_id),
                  "formation": int(formation), "port": free_port()}
        self.store.insert_dyno(record)
        return record

    def _spec(self, app: dict, release: dict, slug: dict, record: dict, env: dict, size) -> DynoSpec:
        dyno_env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
        dyno_env.update(json.loads(slug["dotenv"]))
        dyno_env.update(json.loads(release["config"]))
        dyno_env.update(env)
        dyno_env.update({
            "DYNO": record["name"], "PORT": str(record["port"]), "HEROKU_APP_NAME": app["name"],
            "HEROKU_APP_ID": app["id"], "HEROKU_DYNO_ID": record["id"],
            "HEROKU_RELEASE_VERSION": f"v{release['version']}", "HEROKU_RELEASE_CREATED_AT": release["created_at"],
            "HEROKU_SLUG_COMMIT": slug["id"],
        })
        slug_dir = self.files.slugs / slug["id"]
        return DynoSpec(dyno_id=record["id"], name=record["name"], slug_dir=slug_dir,
                        work_dir=Path(record["work_dir"]), argv=_argv(record["command"], slug_dir),
                        env=dyno_env, memory_bytes=size.memory_bytes, max_pids=size.max_pids,
                        extra_mounts=addon_mounts(self.store, app["id"]))

    # starting -----------------------------------------------------------------
    def take_awaiting(self, secret: str) -> Dyno | None:
        """The dyno awaiting this rendezvous secret; a secret works once."""
        dyno = self._awaiting.pop(secret, None)
        if dyno is not None:
            dyno.secret = None  # no longer shown as its attach_url
        return dyno

    def _start(self, dyno: Dyno) -> None:
        launch = self.sandbox.prepare(dyno.spec)
        launch.env["PATH"] = f"{launch.home}/bin:{launch.env['PATH']}"
        if dyno.tty:
            launch.env.setdefault("TERM", "xterm")
            master, slave = open_pty(*dyno.window)
            child = (slave, slave, slave)
            dyno.in_fd = dyno.out_fd = master
            to_close = [slave]
        else:
            out_r, out_w = os.pipe()
            in_r, in_w = os.pipe() if dyno.attach else (os.open(os.devnull, os.O_RDONLY), None)
            child = (in_r, out_w, out_w)
            dyno.in_fd, dyno.out_fd = in_w, out_r
            to_close = [in_r, out_w]
        try:
            dyno.proc = self.sandbox.spawn(launch, *child, tty=dyno.tty)
        finally:
            for fd in to_close:
                os.close(fd)
        for fd in {dyno.in_fd, dyno.out_fd} - {None}:
            os.set_blocking(fd, False)
        pid = dyno.proc.pid
        self.store.update_dyno(dyno.record["id"], pid=pid, pid_start=start_time(pid))
        self.reaper.watch(pid, lambda status: self._exited(dyno, status))
        self.loop.add_reader(dyno.out_fd, self._on_output, dyno)
        self.logplex.platform(dyno.app_id, dyno.name, f"Starting process with command `{dyno.record['command']}`")
        if dyno.formation and dyno.record["type"] == "web":
            self._await_port(dyno, time.monotonic() + self.settings.boot_timeout)
        else:
            self._mark_up(dyno)
        dyno.timers.append(self.loop.call_later(dyno.ttl, self._ttl_expired, dyno))
        dyno.timers.append(self.loop.call_later(self.settings.memory_interval, self._check_memory, dyno))

    def _mark_up(self, dyno: Dyno) -> None:
        self.store.update_dyno(dyno.record["id"], state="up")
        dyno.record["state"] = "up"
        self.logplex.platform(dyno.app_id, dyno.name, "State changed from starting to up")

    def _await_port(self, dyno: Dyno, deadline: float) -> None:
        """A web dyno is up once something listens on its $PORT; R10 if nothing does in time."""
        if dyno.exit_code is not None or dyno.stopping:
            return
        if listening(dyno.record["port"]):
            self._mark_up(dyno)
        elif time.monotonic() >= deadline:
            self.logplex.platform(dyno.app_id, dyno.name, "Error R10 (Boot timeout) -> Web process failed to bind "
                                  f"to $PORT within {self.settings.boot_timeout:g} seconds of launch")
            self.stop(dyno.record["id"])
            dyno.crashed = True
        else:
            dyno.timers.append(self.loop.call_later(PORT_POLL, self._await_port, dyno, deadline))

    def _check_memory(self, dyno: Dyno) -> None:
        """Heroku's R14 while over quota; R15 and SIGKILL once the kernel had to kill for memory."""
        if dyno.exit_code is not None:
            return
        usage = memory_usage(dyno.record["id"])
        if usage is None:
            return  # no cgroup: rlimits enforce the size, nothing to sample
        if self._report_oom(dyno):
            self._signal(dyno, signal.SIGKILL)
            return
        quota = dyno.spec.memory_bytes
        if usage > quota:
            self.logplex.platform(dyno.app_id, dyno.name, f"Process running mem={usage >> 20}MB"
                                  f"({100 * usage / quota:.1f}%)")
            self.logplex.platform(dyno.app_id, dyno.name, "Error R14 (Memory quota exceeded)")
        dyno.timers.append(self.loop.call_later(self.settings.memory_interval, self._check_memory, dyno))

    def _report_oom(self, dyno: Dyno) -> bool:
        group = DynoCgroup.find(dyno.record["id"])
        if group is None or not group.oom_kills() or dyno.oom_reported:
            return False
        dyno.oom_reported = True
        self.logplex.platform(dyno.app_id, dyno.name, "Error R15 (Memory quota vastly exceeded)")
        self.logplex.platform(dyno.app_id, dyno.name, "Stopping process with SIGKILL")
        return True

    def _attach_expired(self, dyno: Dyno) -> None:
        if self._awaiting.pop(dyno.secret or "", None) is None:
            return
        self.logplex.platform(dyno.app_id, dyno.name, "Error R13 (Attach error) -> Failed to attach to process")
        dyno.exit_code = 128
        self.logplex.platform(dyno.app_id, dyno.name, "Process exited with status 128")
        self._end(dyno)

    # attached clients ---------------------------------------------------------
    async def serve_client(self, dyno: Dyno, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Relay a rendezvous client to the dyno until either side goes away."""
        dyno.writer = writer
        dyno.last_io = time.monotonic()
        for timer in dyno.timers:
            timer.cancel()
        try:
            self._start(dyno)
        except Exception as exc:  # the sandbox could not start it: tell the client, end the dyno
            writer.write(f"Error: could not start the dyno: {exc}\r\n".encode())
            self.logplex.platform(dyno.app_id, dyno.name, f"Error starting process: {exc}")
            dyno.exit_code = 127
            self._end(dyno)
            return
        self._schedule_idle(dyno)
        stdin_open = True
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                break
            dyno.last_io = time.monotonic()
            if b"\x04" in data:
                dyno.client_done.set()
            if dyno.finished or not stdin_open:
                continue
            if not dyno.tty and b"\x04" in data:
                data, stdin_open = data.split(b"\x04", 1)[0], False
            if dyno.tty and b"\x04" in data:  # hold EOF until a reader can take it (ptyeof.py)
                await write_holding_eof(data, lambda: dyno.in_fd, lambda d: self._to_dyno(dyno, d, close=False),
                                        lambda: not dyno.finished and not writer.is_closing())
                continue
            await self._to_dyno(dyno, data, close=not stdin_open)
        dyno.client_done.set()
        if not dyno.finished and dyno.writer is not None:
            dyno.writer = None
            self._client_gone(dyno)

    async def _to_dyno(self, dyno: Dyno, data: bytes, close: bool) -> None:
        try:
            if data and dyno.in_fd is not None:
                await write_all(self.loop, dyno.in_fd, data)
        except OSError:
            pass  # the dyno stopped reading (it exited); its exit ends the session
        if close and dyno.in_fd is not None and not dyno.tty:
            os.close(dyno.in_fd)
            dyno.in_fd = None

    def _client_gone(self, dyno: Dyno, attempt: int = 1) -> None:
        """Heroku: SIGHUP on disconnect, repeated; R16 for processes that ignore it."""
        if dyno.finished or dyno.exit_code is not None:
            return
        if attempt > 3:
            self.logplex.platform(dyno.app_id, dyno.name, "Error R16 (Detached) -> An attached process is not "
                                  "responding to SIGHUP after its external connection was closed.")
            return
        self.logplex.platform(dyno.app_id, dyno.name, "Client connection closed. Sending SIGHUP to all processes")
        self._signal(dyno, signal.SIGHUP)
        dyno.timers.append(self.loop.call_later(self.settings.hup_interval, self._client_gone, dyno, attempt + 1))

    def _schedule_idle(self, dyno: Dyno) -> None:
        due = dyno.last_io + dyno.idle_timeout
        dyno.timers.append(self.loop.call_at(self.loop.time() + max(0.0, due - time.monotonic()),
                                             self._idle_check, dyno))

    def _idle_check(self, dyno: Dyno) -> None:
        if dyno.finished or dyno.writer is None:
            return
        if time.monotonic() - dyno.last_io < dyno.idle_timeout:
            self._schedule_idle(dyno)
            return
        writer, dyno.writer = dyno.writer, None
        writer.close()
        self._client_gone(dyno)

    # output -------------------------------------------------------------------
    def _on_output(self, dyno: Dyno) -> None:
        try:
            data = os.read(dyno.out_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every process holding the pty has gone
        if not data:
            self._output_eof(dyno)
            return
        dyno.last_io = time.monotonic()
        if dyno.attach:
            self._to_client(dyno, data)
        else:
            rows = [LogRow("app", dyno.name, line) for line in dyno.splitter.feed(data)]
            self.logplex.append(dyno.app_id, rows)

    def _to_client(self, dyno: Dyno, data: bytes) -> None:
        writer = dyno.writer
        if writer is None or writer.is_closing():
            return  # the client went away: an attached dyno's output goes nowhere
        writer.write(data)
        if writer.transport.get_write_buffer_size() > _OUTPUT_HIGH_WATER:
            self.loop.remove_reader(dyno.out_fd)
            asyncio.ensure_future(self._resume_output(dyno, writer))

    async def _resume_output(self, dyno: Dyno, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        if not dyno.output_done and dyno.out_fd is not None:
            self.loop.add_reader(dyno.out_fd, self._on_output, dyno)

    def _output_eof(self, dyno: Dyno) -> None:
        dyno.output_done = True
        self.loop.remove_reader(dyno.out_fd)
        if dyno.exit_code is not None:
            self._finish(dyno)

    # ending -------------------------------------------------------------------
    def _exited(self, dyno: Dyno, status: int) -> None:
        self._report_oom(dyno)
        dyno.exit_code = exit_code(status)
        dyno.proc.returncode = dyno.exit_code  # so subprocess never waits for it again
        self._signal(dyno, signal.SIGKILL)  # a dyno ends with its main process
        if dyno.output_done:
            self._finish(dyno)
        else:
            dyno.timers.append(self.loop.call_later(1.0, self._finish, dyno))

    def _finish(self, dyno: Dyno) -> None:
        if dyno.finished:
            return
        if not dyno.output_done:
            self._drain(dyno)
        if not dyno.attach:
            rows = [LogRow("app", dyno.name, line) for line in dyno.splitter.flush()]
            self.logplex.append(dyno.app_id, rows)
        self.logplex.platform(dyno.app_id, dyno.name, f"Process exited with status {dyno.exit_code}")
        self._end(dyno)

    def _drain(self, dyno: Dyno) -> None:
        self.loop.remove_reader(dyno.out_fd)
        while True:
            try:
                data = os.read(dyno.out_fd, 65536)
            except OSError:
                return
            if not data:
                return
            if dyno.attach:
                self._to_client(dyno, data)
            else:
                self.logplex.append(dyno.app_id, [LogRow("app", dyno.name, l) for l in dyno.splitter.feed(data)])

    def _end(self, dyno: Dyno) -> None:
        dyno.finished = True
        for timer in dyno.timers:
            timer.cancel()
        dyno.crashed = dyno.crashed or (dyno.formation and not dyno.stopping)  # exit 0 too, as on Heroku
        state = "crashed" if dyno.crashed else "down"
        self.logplex.platform(dyno.app_id, dyno.name,
                              f"State changed from {dyno.record['state']} to {'crashed' if dyno.crashed else 'complete'}")
        self.store.update_dyno(dyno.record["id"], state=state, exit_code=dyno.exit_code)
        dyno.record.update(state=state, exit_code=dyno.exit_code)
        for fd in {dyno.in_fd, dyno.out_fd} - {None}:
            os.close(fd)
        dyno.in_fd = dyno.out_fd = None
        self.sandbox.cleanup(dyno.spec)
        self.running.pop(dyno.record["id"], None)
        if dyno.writer is not None:
            asyncio.ensure_future(self._close_client(dyno))
        for hook in self.end_hooks:
            hook(dyno)

    async def _close_client(self, dyno: Dyno) -> None:
        writer = dyno.writer
        if dyno.exit_status_wanted:
            writer.write((EXIT_MARKER.format(dyno.exit_code) + "\r\n").encode())
        try:
            await asyncio.wait_for(dyno.client_done.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    # stopping -----------------------------------------------------------------
    def stop(self, dyno_id: str, reason: str = "Stopping all processes with SIGTERM") -> None:
        dyno = self.running.get(dyno_id)
        if dyno is None or dyno.finished:
            return
        if dyno.proc is None:  # still awaiting its client
            self._awaiting.pop(dyno.secret or "", None)
            self._end(dyno)
            return
        if dyno.stopping:
            return
        dyno.stopping = True
        self.logplex.platform(dyno.app_id, dyno.name, reason)
        self._signal(dyno, signal.SIGTERM)
        dyno.timers.append(self.loop.call_later(self.settings.stop_grace, self._kill, dyno))

    def _kill(self, dyno: Dyno) -> None:
        if dyno.exit_code is not None:
            return
        grace = f"{self.settings.stop_grace:g}"
        self.logplex.platform(dyno.app_id, dyno.name, f"Error R12 (Exit timeout) -> At least one process failed "
                              f"to exit within {grace} seconds of SIGTERM")
        self.logplex.platform(dyno.app_id, dyno.name, "Stopping remaining processes with SIGKILL")
        self._signal(dyno, signal.SIGKILL)

    def _signal(self, dyno: Dyno, sig: int) -> None:
        """Every process of the dyno: the sandbox's way (e.g. its cgroup), then group, session, marker."""
        self.sandbox.signal(dyno.proc.pid, sig)
        kill_dyno_processes(dyno.proc.pid, sig, _marker(dyno.record["id"]))

    def _ttl_expired(self, dyno: Dyno) -> None:
        self.stop(dyno.record["id"], "Cycling: stopping all processes with SIGTERM (time to live reached)")

    async def shutdown(self) -> None:
        """Stop every dyno (the manifold is stopping) and wait for them to end."""
        for dyno_id in list(self.running):
            self.stop(dyno_id, "Stopping all processes with SIGTERM (the manifold is stopping)")
        deadline = time.monotonic() + self.settings.stop_grace + 2
        while self.running and time.monotonic() < deadline:
            waiter = self.loop.create_future()
            self.loop.call_later(0.05, lambda: waiter.done() or waiter.set_result(None))
            await waiter

    # recovery -----------------------------------------------------------------
    def recover(self) -> None:
        """After a crash of the manifold: stop the dynos it left behind and say so truthfully."""
        for record in self.store.live_dynos():
            if record["state"] == "crashed":
                continue  # a formation dyno that crashed before: the formation brings it back
            pid = record["pid"]
            alive = bool(pid) and start_time(pid) == record["pid_start"]
            if alive:
                kill_dyno_processes(pid, signal.SIGKILL, _marker(record["id"]))
            note = "stopped its processes with SIGKILL" if alive else "its processes were already gone"
            self.logplex.platform(record["app_id"], record["name"],
                                  f"The manifold restarted and lost this dyno's connection; {note}")
            self.logplex.platform(record["app_id"], record["name"], f"State changed from {record['state']} to crashed")
            self.store.update_dyno(record["id"], state="crashed")
            spec = DynoSpec(dyno_id=record["id"], name=record["name"], slug_dir=Path("/nonexistent"),
                            work_dir=Path(record["work_dir"]), argv=[], env={})
            self.sandbox.cleanup(spec)

    # views --------------------------------------------------------------------
    def describe(self, record: dict, dyno: Dyno | None = None) -> dict:
        """A dyno as the Platform API shows it (plus our additive fields)."""
        app = self.store.app(record["app_id"])
        release = self.store.release(record["app_id"], record["release_id"]) or {}
        state = "up" if record["state"] == "up" else record["state"]
        body = {
            "id": record["id"], "name": record["name"], "type": record["type"], "command": record["command"],
            "size": record["size"], "state": state, "created_at": record["created_at"],
            "updated_at": record["updated_at"], "attach_url": None,
            "app": {"id": app["id"], "name": app["name"]},
            "release": {"id": release.get("id"), "version": release.get("version")},
            "exit_code": record.get("exit_code"),
        }
        if dyno is not None and dyno.secret:
            body["attach_url"] = f"rendezvous://127.0.0.1:{self.rendezvous_port}/{dyno.secret}"
        return body


def substitute_process_type(command: str, process_types: dict[str, str]) -> str:
    """`myworker 42` with Procfile `myworker: python dowork.py` runs `python dowork.py 42`."""
    first, _, rest = command.strip().partition(" ")
    if first in process_types:
        return f"{process_types[first]} {rest}".strip()
    return command


def _argv(command: str, slug_dir: Path) -> list[str]:
    """`bash -c COMMAND`, sourcing `.profile.d/*.sh` and `.profile` first when the slug has them."""
    if (slug_dir / ".profile").exists() or (slug_dir / ".profile.d").is_dir():
        return ["bash", "-c", _PROFILE_PRELUDE, command]
    return ["bash", "-c", command]


def _body_env(raw) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(422, "invalid_params", "env must be an object of names to values")
    env = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ApiError(422, "invalid_params", f"invalid environment variable name {key!r}")
        if isinstance(value, (dict, list)):
            raise ApiError(422, "invalid_params", f"environment variable {key} must be a string or number")
        env[key] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _ttl(raw, maximum: int) -> float:
    if raw is None:
        return float(maximum)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= maximum:
        raise ApiError(422, "invalid_params", f"time_to_live must be a number of seconds from 1 to {maximum}")
    return float(raw)


def _dyno_type(raw) -> str:
    dyno_type = raw or "run"
    if not isinstance(dyno_type, str) or not dyno_type.replace("-", "").replace("_", "").isalnum():
        raise ApiError(422, "invalid_params", f"invalid dyno type {raw!r}")
    return dyno_type


def _marker(dyno_id: str) -> bytes:
    """The environment entry every process of the dyno inherits."""
    return f"HEROKU_DYNO_ID={dyno_id}".encode()


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


ONE_OFF_BASE = 1000  # one-off dynos of other types than run are numbered from 1001
PORT_POLL = 0.1  # seconds between checks that a booting web dyno listens


def listening(port: int) -> bool:
    """Whether a TCP socket listens on this port (any address), from /proc/net: no connection made."""
    wanted = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle, None)
                if any(wanted in line and line.split()[3] == "0A" for line in handle):
                    return True
        except OSError:
            continue
    return False


__all__ = ["ApiError", "Dyno", "Settings", "Supervisor", "substitute_process_type", "EXIT_MARKER"]
