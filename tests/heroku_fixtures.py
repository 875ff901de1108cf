"""Fixtures for running the real Heroku CLI (heroku@11.10.0, installed under .cache/heroku by
scripts/install-heroku-cli.sh) against a manifold started for the tests, in the offline
environment `dyno heroku-env` prints.
"""
from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import fcntl
import subprocess
import termios
import time
import uuid
from pathlib import Path

import pytest

from conftest import Manifold

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_APP = ROOT / "examples" / "sampleapp"
INSTALL = ROOT / "scripts" / "install-heroku-cli.sh"
HEROKU_JS = ROOT / ".cache" / "heroku" / "node_modules" / "heroku" / "bin" / "run.js"
AGO = re.compile(r"\(~ \d+[smh] ago\)")


def heroku_js() -> Path:
    """The pinned CLI's entry point, installed on first use; skips when node/npm are missing."""
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    if not HEROKU_JS.exists():
        done = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not HEROKU_JS.exists():
            pytest.skip(f"could not install heroku@11.10.0: {done.stderr[-500:]}")
    return HEROKU_JS


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def normalize(text: str) -> str:
    """Output with the moving parts (`(~ 3s ago)`) masked."""
    return AGO.sub("(~ AGO)", text)


class HerokuManifold(Manifold):
    """A manifold in its own $DYNO_HOME with a deployed sample app, plus `heroku` and `dyno` runners."""

    def __init__(self, home: Path, settings: dict[str, str] | None = None) -> None:
        self.api_log = home / "api.log"
        super().__init__(home, {"DYNO_STOP_GRACE": "2", "DYNO_API_LOG": str(self.api_log), "TZ": "UTC",
                                **(settings or {})})
        self.env = {k: v for k, v in self.env.items() if not k.startswith("HEROKU_")}
        self.app = "h-" + uuid.uuid4().hex[:8]
        self.cli = heroku_js()
        self.heroku_env: dict[str, str] = {}

    def start(self) -> "HerokuManifold":
        super().start()
        for args in (["apps:create", self.app, "--dir", str(SAMPLE_APP)],
                     ["deploy", "-a", self.app, "--dir", str(SAMPLE_APP)]):
            done = self.dyno(*args)
            assert done.returncode == 0, done.stderr
        exports = self.dyno("heroku-env")
        assert exports.returncode == 0, exports.stderr
        self.exports = exports.stdout
        self.heroku_env = json.loads(self.dyno("heroku-env", "--json").stdout)
        return self

    @property
    def api_url(self) -> str:
        return self.info["api_url"]

    def heroku_argv(self, args: tuple[str, ...], wrapper: list[str] | None = None) -> list[str]:
        return [*(wrapper or []), "node", "--no-deprecation", str(self.cli), *args]

    def cli_env(self, extra: dict | None = None) -> dict[str, str]:
        env = {**self.env, **self.heroku_env, **(extra or {})}
        env.pop("DYNO_API_LOG", None)
        return env

    def heroku(self, *args: str, input: str | bytes | None = None, timeout: float = 30, env: dict | None = None,
               wrapper: list[str] | None = None) -> subprocess.CompletedProcess:
        """The real Heroku CLI, stdin from `input` (or /dev/null), stdout/stderr captured."""
        text = not isinstance(input, bytes)
        return subprocess.run(self.heroku_argv(args, wrapper), cwd=self.home, env=self.cli_env(env),
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=text, timeout=timeout)

    def heroku_tty(self, *args: str, keys: bytes = b"", timeout: float = 30,
                   size: tuple[int, int] = (40, 120)) -> tuple[int, str]:
        """The CLI on a terminal (stdin, stdout and stderr a pty); returns (status, everything printed)."""
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        proc = subprocess.Popen(self.heroku_argv(args), cwd=self.home, env=self.cli_env({"TERM": "xterm"}),
                                stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        output = b""
        deadline = time.monotonic() + timeout
        sent = False
        while time.monotonic() < deadline:
            ready = select.select([master], [], [], 0.1)[0]
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
                if keys and not sent and b"up, " in output:
                    # type only once the CLI has put the terminal in raw mode, as a person would
                    wait_for(lambda: not termios.tcgetattr(master)[3] & termios.ICANON, 10, 0.01, "raw mode")
                    os.write(master, keys)
                    sent = True
            elif proc.poll() is not None:
                break
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"heroku {' '.join(args)} did not finish: {output[-500:]!r}")
        os.close(master)
        return proc.wait(timeout=5), output.decode(errors="replace")

    def requests(self, method: str | None = None, path_part: str = "") -> list[dict]:
        """The API requests the manifold logged (DYNO_API_LOG)."""
        if not self.api_log.exists():
            return []
        rows = [json.loads(line) for line in self.api_log.read_text().splitlines() if line.strip()]
        return [r for r in rows if (method is None or r["method"] == method) and path_part in r["path"]]

    def mark_requests(self) -> None:
        self.api_log.write_text("")

    def dyno_api(self, method: str, path: str, body: dict | None = None):
        from dynokernel.platform.client import Client
        from dynokernel.platform.endpoint import Endpoint
        client = Client(Endpoint(self.api_url, self.token, str(self.home / "tls" / "ca.pem"), local=True))
        try:
            return client.request(method, path, body)
        finally:
            client.close()

    def dynos(self) -> list[dict]:
        return self.dyno_api("GET", f"/apps/{self.app}/dynos")

    def logs(self) -> str:
        return self.dyno("logs", "-a", self.app, "-n", "1500").stdout
