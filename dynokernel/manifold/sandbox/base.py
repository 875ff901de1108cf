"""The sandbox lifecycle every implementation shares: prepare, spawn, signal, cleanup."""
from __future__ import annotations

import os
import signal
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .limits import DynoCgroup, LimitError, cgroup_of, rlimit_argv


class SandboxError(Exception):
    """A sandbox could not be prepared or is not available."""


@dataclass
class DynoSpec:
    """What the supervisor asks a sandbox to run."""

    dyno_id: str
    name: str  # run.3, web.1
    slug_dir: Path  # the release's slug, read-only, shared by every dyno of the release
    work_dir: Path  # the dyno's own directory under $DYNO_HOME/dynos/, removed at cleanup
    argv: list[str]  # what runs inside, e.g. ["bash", "-c", script]
    env: dict[str, str]  # the dyno's environment, without HOME (the sandbox sets it)
    memory_bytes: int = 512 * 1024 * 1024
    max_pids: int = 256
    extra: dict[str, str] = field(default_factory=dict)
    # persistent host directories (add-ons) mounted read-write into the dyno: (host path, dyno path)
    extra_mounts: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class Launch:
    """How to start a prepared dyno: argv, environment and working directory on the host."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    home: str  # the dyno's $HOME as the dyno sees it (/app, or the copy's path)


class Sandbox(ABC):
    """One way to run dynos. Subclasses implement `available`, `prepare` and `cleanup`."""

    name: ClassVar[str]

    def __init__(self, home: Path) -> None:
        self.home = home

    @classmethod
    @abstractmethod
    def available(cls) -> bool:
        """Whether this machine can run this sandbox (probed once)."""

    @abstractmethod
    def prepare(self, spec: DynoSpec) -> Launch:
        """Create the dyno's ephemeral filesystem and say how to start it."""

    @abstractmethod
    def cleanup(self, spec: DynoSpec) -> None:
        """Remove everything `prepare` made; safe to call twice or after a crash."""

    def spawn(self, launch: Launch, stdin: int, stdout: int, stderr: int, tty: bool) -> subprocess.Popen:
        """Start the dyno as the leader of a new session (its own process group).

        With a tty, `setsid --ctty` makes the pty the controlling terminal so that
        ^C typed by the client reaches the foreground job, as in a terminal.
        """
        argv = ["setsid", "--ctty", *launch.argv] if tty else launch.argv
        return subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=stderr, env=launch.env, cwd=launch.cwd,
            start_new_session=not tty, close_fds=True,
        )

    def signal(self, pid: int, sig: int) -> None:
        """Deliver `sig` to every process of the dyno: its cgroup when it has one, and its group."""
        group = cgroup_of(pid)
        if group is None or sig == signal.SIGKILL:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
        if group is not None:
            group.kill(sig)

    @staticmethod
    def size_limits(spec: DynoSpec) -> tuple[str, list[str]]:
        """How the dyno's size is enforced: a cgroup-joining shell snippet, else a prlimit prefix."""
        try:
            group = DynoCgroup.create(spec.dyno_id, spec.memory_bytes, spec.max_pids)
        except LimitError as exc:
            raise SandboxError(str(exc)) from exc
        if group is not None:
            return group.join_script(), []
        return "", rlimit_argv(spec.memory_bytes, spec.max_pids)

    @staticmethod
    def remove_limits(spec: DynoSpec) -> None:
        """Remove the dyno's cgroup, killing whatever is still in it."""
        try:
            group = DynoCgroup.find(spec.dyno_id)
            if group:
                group.remove()
        except (LimitError, OSError) as exc:
            raise SandboxError(f"can't remove the cgroup of dyno {spec.name}: {exc}") from exc

    def describe(self) -> str:
        """One line for `dyno manifold:status`."""
        return self.name

