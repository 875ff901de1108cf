"""Host process plumbing for the supervisor: central reaping, process identity, ptys."""
from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import tempfile
import termios
from typing import Callable

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphaned grandchildren of dynos are re-parented to us, so we can reap them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: orphans go to init, which reaps them


class Reaper:
    """Reaps every child on SIGCHLD and hands each watched pid's wait status to its callback.

    The manifold runs no other child processes, so waitpid(-1) is ours alone.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._callbacks: dict[int, Callable[[int], None]] = {}
        loop.add_signal_handler(signal.SIGCHLD, self.reap)

    def watch(self, pid: int, callback: Callable[[int], None]) -> None:
        self._callbacks[pid] = callback
        self.reap()  # it may have exited already

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            callback = self._callbacks.pop(pid, None)
            if callback:
                callback(status)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it (128+N for signal N)."""
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, a unique identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def dyno_members(sid: int, marker: bytes | None = None) -> list[int]:
    """Every process of a dyno: its session, plus any that left it but carry its env marker."""
    members = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit() and (_in_session(entry, sid) or (marker and _has_marker(entry, marker))):
            members.append(int(entry))
    return members


def _in_session(pid: str, sid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[3]) == sid
    except (OSError, IndexError, ValueError):
        return False


def _has_marker(pid: str, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return marker in handle.read().split(b"\0")
    except OSError:
        return False


def kill_dyno_processes(pid: int, sig: int, marker: bytes | None = None) -> None:
    """Send `sig` to the dyno's process group and to every other process that belongs to it."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for member in dyno_members(pid, marker):
        try:
            os.kill(member, sig)
        except (ProcessLookupError, PermissionError):
            pass


def open_pty(columns: int | None, lines: int | None) -> tuple[int, int]:
    """A pty pair; the master is non-blocking, the window size as the client asked."""
    master, slave = os.openpty()
    if columns and lines:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    os.set_blocking(master, False)
    return master, slave


async def write_all(loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> None:
    """Write everything to a non-blocking fd, waiting for room when it is full."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
            view = view[written:]
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_writer(fd)


async def run_tool(reaper: Reaper, argv: list[str], **popen) -> tuple[int, str]:
    """Run a short helper program (initdb, psql...) to its end without racing the central reaper.

    Returns its exit code and its output (stdout and stderr together).
    """
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, **popen)
        reaper.watch(proc.pid, lambda status: done.done() or done.set_result(exit_code(status)))
        proc.returncode = code = await done  # reaped by us: Popen must never wait for this pid again
        output.seek(0)
        return code, output.read().decode(errors="replace")


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
