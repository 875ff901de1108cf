"""Shared fixtures: a real manifold process per test module, and the `dyno` CLI against it."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_APP = ROOT / "examples" / "sampleapp"

# Short timings so lifecycle tests finish quickly; each is a manifold setting users can change too.
FAST_SETTINGS = {"DYNO_STOP_GRACE": "1", "DYNO_HUP_INTERVAL": "0.2", "DYNO_ATTACH_TIMEOUT": "3",
                 "DYNO_MEMORY_INTERVAL": "0.3"}


class Manifold:
    """A manifold started for tests in its own $DYNO_HOME, and helpers to drive it."""

    def __init__(self, home: Path, settings: dict[str, str] | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.env = {**os.environ, "DYNO_HOME": str(home), **FAST_SETTINGS, **(settings or {})}
        self.env.pop("DYNO_APP", None)
        self.env.pop("DYNO_API_URL", None)

    def start(self) -> "Manifold":
        done = self.dyno("manifold:start")
        assert done.returncode == 0, done.stderr
        return self

    def stop(self) -> None:
        if (self.home / "manifold.json").exists():
            self.dyno("manifold:stop", timeout=90)

    @property
    def info(self) -> dict:
        return json.loads((self.home / "manifold.json").read_text())

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def dyno(self, *args: str, cwd: Path | None = None, input: bytes | str | None = None,
             timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run the real `dyno` CLI; stdout/stderr as text unless input is bytes."""
        text = not isinstance(input, bytes)
        return subprocess.run([sys.executable, "-m", "dynokernel.cli.main", *args], cwd=cwd or self.home,
                              env={**self.env, **(env or {})}, input=input, capture_output=True,
                              timeout=timeout, text=text)

    def new_app(self, tmp_path: Path, source: Path | None = None, files: dict[str, str] | None = None) -> "AppDir":
        """A fresh app directory (a copy of `source`, plus `files`), created and deployed."""
        name = "t-" + uuid.uuid4().hex[:10]
        directory = tmp_path / name
        if source:
            shutil.copytree(source, directory)
        else:
            directory.mkdir()
        for rel, content in (files or {}).items():
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        created = self.dyno("apps:create", name, "--dir", str(directory))
        assert created.returncode == 0, created.stderr
        deployed = self.dyno("deploy", "-a", name)
        assert deployed.returncode == 0, deployed.stderr
        return AppDir(name, directory, self)


class AppDir:
    def __init__(self, name: str, directory: Path, manifold: Manifold) -> None:
        self.name, self.dir, self.manifold = name, directory, manifold

    def dyno(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """The CLI with `-a APP` right after the command (before a `run` command's words)."""
        return self.manifold.dyno(args[0], "-a", self.name, *args[1:], **kwargs)

    def api(self):
        """The Python API's App for this app, against this manifold."""
        os.environ["DYNO_HOME"] = str(self.manifold.home)
        from dynokernel.platform.app import App
        return App(self.name)


def start_manifold(home: Path, settings: dict[str, str] | None = None) -> Manifold:
    return Manifold(home, settings).start()


@pytest.fixture(scope="module")
def manifold(tmp_path_factory) -> Manifold:
    running = start_manifold(tmp_path_factory.mktemp("dynohome"))
    yield running
    running.stop()


@pytest.fixture
def app(manifold: Manifold, tmp_path: Path) -> AppDir:
    """A small app with a Procfile, a .profile.d script and some files."""
    return manifold.new_app(tmp_path, files={
        "Procfile": "web: python3 -m http.server $PORT\nmyworker: python3 dowork.py\n",
        "dowork.py": "import sys\nprint('dowork:', *sys.argv[1:])\n",
        "README": "hello from the slug\n",
        ".profile.d/greeting.sh": 'export GREETING="${GREETING:-from profile.d}"\n',
    })


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
