"""The manifold daemon: one per $DYNO_HOME, started by the first client that needs it.

Files it keeps in $DYNO_HOME: `token` (0600, the API's bearer token), `manifold.json`
(pid and ports, while running), `manifold.lock` (held while running), `state.db`,
`tls/` (its CA), `slugs/`, `objects/`, `dynos/`, `manifold.log`.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import secrets
import signal
import sys
import time

import tornado.httpserver
import tornado.netutil

from .. import __version__
from ..paths import HomeFiles, dyno_home
from .api import Manifold, make_app
from .logplex import DEFAULT_RETENTION, Logplex
from .processes import become_subreaper
from .rendezvous import start_rendezvous
from .sandbox import SandboxError, choose_sandbox
from .store import Store
from .supervisor import Settings, Supervisor
from .tls import server_context


def read_token(files: HomeFiles) -> str:
    """The API token, created (0600) on first use."""
    try:
        return files.token.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        fd = os.open(files.token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token


async def serve(files: HomeFiles, ready_fd: int | None) -> None:
    store = Store(files.state_db)
    logplex = Logplex(store, int(os.environ.get("DYNO_LOG_RETENTION", DEFAULT_RETENTION)))
    sandbox = choose_sandbox(files.home, os.environ.get("DYNO_SANDBOX", "auto"))
    become_subreaper()
    supervisor = Supervisor(store, logplex, sandbox, files, Settings.from_env())
    supervisor.recover()
    rendezvous = await start_rendezvous(supervisor, server_context(files.tls_dir))
    supervisor.rendezvous_port = rendezvous.sockets[0].getsockname()[1]
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    api_port = sockets[0].getsockname()[1]
    info = {"pid": os.getpid(), "api_url": f"http://127.0.0.1:{api_port}", "api_port": api_port,
            "rendezvous_port": supervisor.rendezvous_port, "version": __version__, "home": str(files.home),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    manifold = Manifold(store, logplex, supervisor, read_token(files), info)
    problem = await manifold.addons.start()
    if problem:
        print(f"dyno manifold: the PostgreSQL server for add-ons did not start: {problem}", file=sys.stderr, flush=True)
    manifold.formation.start()
    await manifold.router.start()
    manifold.scheduler.start()
    manifold.drains.start()
    server = tornado.httpserver.HTTPServer(make_app(manifold))
    server.add_sockets(sockets)
    remote: list = []
    if os.environ.get("DYNO_LISTEN"):  # manifold:start --listen ADDR:PORT (listen.py)
        from .listen import start_listen
        listen_info, remote = await start_listen(os.environ["DYNO_LISTEN"], manifold)
        info.update(listen_info)
    _write_json(files.endpoint, info)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    _signal_ready(ready_fd, f"ready {api_port}")
    await stopping.wait()
    server.stop()
    rendezvous.close()
    for extra in remote:
        (extra.stop if isinstance(extra, tornado.httpserver.HTTPServer) else extra.close)()
    manifold.formation.close()
    manifold.scheduler.close()
    manifold.drains.close()
    manifold.router.close_all()
    await supervisor.shutdown()
    await manifold.addons.stop()
    files.endpoint.unlink(missing_ok=True)
    store.close()


def _write_json(path, data: dict) -> None:
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def _signal_ready(fd: int | None, message: str) -> None:
    if fd is not None:
        os.write(fd, message.encode() + b"\n")
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynokernel.manifold", description="Run the dyno manifold.")
    parser.add_argument("--ready-fd", type=int, help="write 'ready PORT' to this fd once serving")
    parser.add_argument("--daemonize", action="store_true", help="detach from the parent (double fork)")
    args = parser.parse_args(argv)
    if args.daemonize and os.fork():
        os._exit(0)  # the starter waits for this child; the grandchild lives on
    if args.daemonize:
        os.setsid()
    files = HomeFiles(dyno_home())
    lock = open(files.run_lock, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"A manifold is already running for {files.home}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(files, args.ready_fd))
    except SandboxError as exc:
        print(f"manifold: {exc}", file=sys.stderr)
        return 1
    return 0
