"""Dyno sizes: a memory and a process limit per dyno, with cgroups where we may create them.

The manifold makes one cgroup per dyno (v1 `memory` and `pids` controllers, under the
manifold's own cgroup in each hierarchy) before the dyno starts; the dyno's first process
joins it from inside (`join_script`) before anything else runs, so every process of the
dyno is counted.  Where no cgroup can be made, `rlimit_argv` is the fallback.

    group = DynoCgroup.create(dyno_id, memory_bytes=512 << 20, max_pids=256)
    script = group.join_script()          # "echo $$ >.../cgroup.procs" lines for the dyno's sh
    memory_usage(dyno_id)                 # bytes, for R14/R15 lines; None without cgroups
    DynoCgroup.find(dyno_id).remove()     # kills what is left, removes the groups

Memory: the hard limit is `HARD_LIMIT_FACTOR` times the dyno's quota, so usage over the
quota is visible (Heroku's R14) before the kernel's OOM killer ends it (R15).
"""
from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PARENT = "dynokernel"  # the folder, in the manifold's own cgroup, that holds the dynos' cgroups
CONTROLLERS = ("memory", "pids")
HARD_LIMIT_FACTOR = 2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class LimitError(Exception):
    """A dyno's cgroup could not be created."""


@functools.cache
def cgroup_parents() -> dict[str, Path] | None:
    """Per controller, the folder that holds dyno cgroups; None where cgroups can't be used.

    Probed once per process: the v1 `memory` and `pids` hierarchies must be mounted and the
    manifold's own cgroup in each must be writable (root, or a delegated subtree).
    """
    mounts = _v1_mounts()
    own = _own_cgroups()
    parents = {}
    for controller in CONTROLLERS:
        if controller not in mounts or controller not in own:
            return None
        parent = mounts[controller] / own[controller].lstrip("/") / PARENT
        try:
            parent.mkdir(exist_ok=True)
        except OSError:
            return None
        if not os.access(parent, os.W_OK | os.X_OK):
            return None
        parents[controller] = parent
    return parents


def _v1_mounts() -> dict[str, Path]:
    """Controller name → mount point of its v1 hierarchy (mounted at its root)."""
    found = {}
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            left, _, right = line.partition(" - ")
            fields, after = left.split(), right.split()
            fstype, options = after[0], after[2]
            if fstype == "cgroup" and fields[3] == "/":
                for name in options.split(","):
                    found.setdefault(name, Path(_unescape(fields[4])))
    return found


def _own_cgroups() -> dict[str, str]:
    """Controller name → this process's cgroup path in that hierarchy."""
    own = {}
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(","):
                own[name] = path
    return own


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


@dataclass(frozen=True)
class DynoCgroup:
    """One dyno's cgroups: a folder per controller, named after the dyno's id."""

    dyno_id: str
    dirs: dict[str, Path]

    @classmethod
    def find(cls, dyno_id: str) -> DynoCgroup | None:
        """The dyno's cgroup paths (whether or not they exist); None without cgroup support."""
        parents = cgroup_parents()
        if parents is None:
            return None
        if not _NAME.match(dyno_id):
            raise LimitError(f"dyno id {dyno_id!r} can't name a cgroup")
        return cls(dyno_id, {name: parent / dyno_id for name, parent in parents.items()})

    @classmethod
    def create(cls, dyno_id: str, memory_bytes: int, max_pids: int) -> DynoCgroup | None:
        """Make the dyno's cgroups with its limits set; None where cgroups can't be used."""
        group = cls.find(dyno_id)
        if group is None:
            return None
        try:
            for path in group.dirs.values():
                path.mkdir(exist_ok=True)
            hard = str(memory_bytes * HARD_LIMIT_FACTOR)
            _write(group.dirs["memory"] / "memory.limit_in_bytes", hard)
            if (group.dirs["memory"] / "memory.memsw.limit_in_bytes").exists():
                _write(group.dirs["memory"] / "memory.memsw.limit_in_bytes", hard)  # no escape into swap
            _write(group.dirs["pids"] / "pids.max", str(max_pids))
        except OSError as exc:
            group.remove()
            raise LimitError(f"can't set up the cgroup of dyno {dyno_id}: {exc}") from exc
        return group

    def join_script(self) -> str:
        """Shell lines that move the running shell (`$$`) into every one of the dyno's cgroups."""
        return "".join(f"echo $$ >{shlex.quote(str(path / 'cgroup.procs'))}\n" for path in self.dirs.values())

    def pids(self) -> set[int]:
        """Every process in the dyno's cgroups (as the host sees them)."""
        found: set[int] = set()
        for path in self.dirs.values():
            try:
                found.update(int(pid) for pid in (path / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                pass
        return found

    def kill(self, sig: int) -> None:
        """Send `sig` to every process of the dyno."""
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def remove(self, timeout: float = 5.0) -> None:
        """SIGKILL whatever is left and remove the cgroups; safe to call twice."""
        deadline = time.monotonic() + timeout
        for path in self.dirs.values():
            while path.exists():
                self.kill(signal.SIGKILL)
                try:
                    path.rmdir()
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY until the killed processes have exited
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)

    def memory_usage(self) -> int | None:
        """Resident memory of the dyno's processes (RSS + tmpfs + swap), in bytes."""
        try:
            text = (self.dirs["memory"] / "memory.stat").read_text()
        except FileNotFoundError:
            return None
        stat = dict(line.split() for line in text.splitlines())
        return sum(int(stat.get(key, 0)) for key in ("total_rss", "total_shmem", "total_swap"))

    def oom_kills(self) -> int:
        """How many of the dyno's processes the kernel's OOM killer has ended."""
        try:
            text = (self.dirs["memory"] / "memory.oom_control").read_text()
        except FileNotFoundError:
            return 0
        return int(dict(line.split() for line in text.splitlines()).get("oom_kill", 0))


def memory_usage(dyno_id: str) -> int | None:
    """The dyno's memory use in bytes (for R14/R15 lines); None where it can't be measured."""
    group = DynoCgroup.find(dyno_id)
    return group.memory_usage() if group else None


def cgroup_of(pid: int) -> DynoCgroup | None:
    """The dyno cgroup `pid` belongs to, if it is one of ours."""
    try:
        with open(f"/proc/{pid}/cgroup") as lines:
            for line in lines:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                parent, _, dyno_id = path.rpartition("/")
                if "pids" in controllers.split(",") and parent.endswith("/" + PARENT):
                    return DynoCgroup.find(dyno_id)
    except (FileNotFoundError, ProcessLookupError, LimitError):
        pass
    return None



def rlimit_argv(memory_bytes: int, max_pids: int) -> list[str]:
    """The fallback without cgroups: a `prlimit` prefix (address space and process count)."""
    return [shutil.which("prlimit") or "prlimit", f"--as={memory_bytes * HARD_LIMIT_FACTOR}", f"--nproc={max_pids}", "--"]


def _write(path: Path, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)
