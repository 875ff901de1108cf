"""Where the Platform API is: the local manifold (started on demand) or another one.

`DYNO_API_URL` (+ `DYNO_API_KEY`, or the Heroku CLI's `HEROKU_API_KEY`) points the client at
another manifold or at Heroku itself; otherwise the local manifold of $DYNO_HOME is used,
and started in the background if it is not running.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..paths import HomeFiles, dyno_home
from .errors import ManifoldUnavailable

START_TIMEOUT = 30.0
HEROKU_API = "https://api.heroku.com"


@dataclass(frozen=True)
class Endpoint:
    url: str  # http://127.0.0.1:PORT or https://api.heroku.com
    token: str
    ca_file: str | None  # None: the system's CAs
    local: bool  # the local manifold of this $DYNO_HOME

    @property
    def is_heroku(self) -> bool:
        return (urlparse(self.url).hostname or "").endswith("heroku.com")


def resolve_endpoint(remote: str | None = None, autostart: bool = True) -> Endpoint:
    """The endpoint named by `remote` ("heroku" or a URL), the environment, or the local manifold."""
    url = HEROKU_API if remote == "heroku" else remote or os.environ.get("DYNO_API_URL")
    if url:
        token = os.environ.get("DYNO_API_KEY") or os.environ.get("HEROKU_API_KEY")
        if not token:
            raise ManifoldUnavailable(f"No API key for {url}: set DYNO_API_KEY (or HEROKU_API_KEY)")
        return Endpoint(url.rstrip("/"), token, os.environ.get("DYNO_CA_CERT"), local=False)
    files = HomeFiles(dyno_home())
    info = running_manifold(files) or (start_manifold(files) if autostart else None)
    if info is None:
        raise ManifoldUnavailable("The local manifold is not running (start it with: dyno manifold:start)")
    return Endpoint(info["api_url"], files.token.read_text().strip(), str(files.ca_cert), local=True)


def running_manifold(files: HomeFiles) -> dict | None:
    """The running manifold's manifold.json, if it answers on its port."""
    try:
        info = json.loads(files.endpoint.read_text())
        with socket.create_connection(("127.0.0.1", info["api_port"]), timeout=1):
            return info
    except (OSError, ValueError, KeyError):
        return None


def start_manifold(files: HomeFiles) -> dict:
    """Start the manifold in the background and wait until it serves (one starter at a time)."""
    with open(files.start_lock, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = running_manifold(files)
        if info:
            return info
        read_end, write_end = os.pipe()
        with open(files.log, "ab") as log:
            starter = subprocess.Popen(
                [sys.executable, "-m", "dynokernel.manifold", "--daemonize", "--ready-fd", str(write_end)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_end,),
                env=_daemon_env())
        os.close(write_end)
        starter.wait()
        answer = _read_ready(read_end)
        info = running_manifold(files) if answer.startswith("ready") else None
        if info is None:
            raise ManifoldUnavailable(f"The manifold did not start. Its log says:\n{_tail(files.log)}")
        return info


def _daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def _read_ready(fd: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    data = b""
    try:
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                break
            chunk = os.read(fd, 256)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode(errors="replace")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
