"""Delivering a rendezvous client's `\\x04` (EOF) to a dyno's pty without losing it.

The Heroku CLI with piped stdin (`echo ls | heroku run bash`) sends the bytes and then `\\x04`.
In a pty, `\\x04` is an end-of-file only for the line discipline in canonical mode, and Linux
turns it into a flagged NUL in the input buffer. If it arrives while bash runs a command (bash
restores canonical mode for it) and nobody reads it, bash's readline later switches back to
raw mode, the flag is dropped, readline sees a NUL and bash never exits.

So a `\\x04` is held until it can do what the client meant: until the pty's input queue is
empty and either the terminal is in non-canonical mode (readline reads `\\x04` as a character
and treats it as end of input) or a process of the foreground group is blocked reading the
terminal in canonical mode (`cat`: its read returns 0). Keystrokes are unaffected: a person
pressing Ctrl-D at a prompt or in `cat` meets one of those conditions at once.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from typing import Awaitable, Callable

_TIOCGPTN = 0x80045430
# x86_64 and aarch64 numbers of the syscalls a process waiting for terminal input sleeps in
_READS = {"x86_64": {0, 17, 19, 295}, "aarch64": {63, 65, 67, 69}}
_POLLS = {"x86_64": {7, 23, 232, 270, 271, 281}, "aarch64": {22, 72, 73}}
_MACHINE = os.uname().machine


def slave_path(master_fd: int) -> str:
    number = struct.unpack("I", fcntl.ioctl(master_fd, _TIOCGPTN, b"\0" * 4))[0]
    return f"/dev/pts/{number}"


def eof_ready(master_fd: int) -> bool:
    """Whether a `\\x04` written now reaches a reader as end of input."""
    try:
        path = slave_path(master_fd)
        slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return True  # no terminal any more: nothing to lose
    try:
        queued = struct.unpack("i", fcntl.ioctl(slave, termios.TIOCINQ, b"\0" * 4))[0]
        canonical = bool(termios.tcgetattr(slave)[3] & termios.ICANON)
        device = os.fstat(slave).st_rdev
    except (OSError, termios.error):
        return True
    finally:
        os.close(slave)
    if queued:
        return False
    if not canonical:
        return True
    try:
        group = os.tcgetpgrp(master_fd)
    except OSError:
        return True
    return any(_waits_for(pid, device) for pid in _group_members(group))


def _group_members(group: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp
            members.append(int(entry))
    return members


def _waits_for(pid: int, device: int) -> bool:
    """Whether the process sleeps in read() on the terminal (or in a poll, then likely for it)."""
    try:
        with open(f"/proc/{pid}/syscall") as handle:
            parts = handle.read().split()
    except OSError:
        return False
    if not parts or not parts[0].isdigit():
        return False
    number = int(parts[0])
    if number in _POLLS.get(_MACHINE, ()):
        return True
    if number not in _READS.get(_MACHINE, ()):
        return False
    try:
        fd = int(parts[1], 16)
        return os.stat(f"/proc/{pid}/fd/{fd}").st_rdev == device
    except (OSError, ValueError, IndexError):
        return False


async def write_holding_eof(data: bytes, master_fd: Callable[[], int | None],
                            write: Callable[[bytes], Awaitable[None]], alive: Callable[[], bool]) -> None:
    """Write client bytes to a pty, holding each `\\x04` until `eof_ready` (or the dyno ends)."""
    parts = data.split(b"\x04")
    for index, part in enumerate(parts):
        if part:
            await write(part)
        if index == len(parts) - 1:
            return
        delay = 0.005
        while alive():
            fd = master_fd()
            if fd is None:
                return
            await asyncio.sleep(delay)  # let the line discipline take what was just written
            if eof_ready(fd):
                break
            delay = min(delay * 1.5, 0.2)
        else:
            return
        await write(b"\x04")
