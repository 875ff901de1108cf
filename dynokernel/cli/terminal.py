"""Relay the user's terminal to an attached dyno, as `heroku run` does.

With a TTY, the terminal goes raw and keystrokes pass through (^C reaches the dyno; four
^C within a second disconnect). Without one, stdin is sent and then `\\x04` at its end.
"""
from __future__ import annotations

import os
import select
import ssl
import sys
import termios
import time
import tty as ttymod

from ..platform.exitstatus import ExitStatusFilter

_FORCE_QUIT_PRESSES = 4


def relay(sock: ssl.SSLSocket, early: bytes, use_tty: bool) -> int | None:
    """Pump bytes until the dyno closes the connection; returns its exit status if reported."""
    stdin_fd, stdout_fd = sys.stdin.fileno(), sys.stdout.fileno()
    crlf = not os.isatty(stdout_fd)
    status = ExitStatusFilter()
    saved = termios.tcgetattr(stdin_fd) if use_tty else None
    if use_tty:
        ttymod.setraw(stdin_fd)
    try:
        _write(stdout_fd, status.feed(early), crlf)
        _pump(sock, stdin_fd, stdout_fd, status, use_tty, crlf)
        _write(stdout_fd, status.flush(), crlf)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
    return status.status


def _pump(sock: ssl.SSLSocket, stdin_fd: int, stdout_fd: int, status: ExitStatusFilter, use_tty: bool,
          crlf: bool) -> None:
    reading_stdin = True
    interrupts: list[float] = []
    while True:
        wanted = [sock, stdin_fd] if reading_stdin else [sock]
        ready = [sock] if sock.pending() else select.select(wanted, [], [])[0]
        if sock in ready:
            data = _recv(sock)
            if not data:
                return
            _write(stdout_fd, status.feed(data), crlf)
        if reading_stdin and stdin_fd in ready:
            data = os.read(stdin_fd, 65536)
            if not data:
                reading_stdin = False
                sock.sendall(b"\x04")
                continue
            if use_tty and _forced_quit(data, interrupts):
                return
            sock.sendall(data)


def _recv(sock: ssl.SSLSocket) -> bytes:
    try:
        return sock.recv(65536)
    except (ssl.SSLError, OSError):
        return b""


def _forced_quit(data: bytes, interrupts: list[float]) -> bool:
    now = time.monotonic()
    interrupts.extend(now for _ in range(data.count(b"\x03")))
    interrupts[:] = [t for t in interrupts if now - t < 1.0]
    return len(interrupts) >= _FORCE_QUIT_PRESSES


def _write(fd: int, data: bytes, crlf: bool) -> None:
    if crlf:
        data = data.replace(b"\r\n", b"\n")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
