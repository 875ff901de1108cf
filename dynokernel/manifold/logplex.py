"""Logplex: stores every log line before anyone sees it, and wakes the tails.

Lines look like Heroku's: `2026-11-22T07:46:23.082095+00:00 app[run.4]: some output`.
Tails hold no queues of their own: a tail remembers the last id it sent and, when woken,
reads what follows from SQLite — so a slow reader costs no memory and loses nothing.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from .store import LogRow, Store, now

MAX_LINE_BYTES = 10_000  # Logplex splits longer lines
SESSION_TTL = 300  # a log session URL must be used within 5 minutes
DEFAULT_RETENTION = 100_000


def log_time() -> str:
    """RFC 5424 timestamp with microseconds, as Logplex prints it."""
    return now().isoformat(timespec="microseconds")


def format_line(row: dict) -> str:
    return f"{row['ts']} {row['source']}[{row['dyno']}]: {row['message']}"


class LineSplitter:
    """Turns a byte stream into log lines: invalid UTF-8 escaped, long lines split."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[str]:
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        if len(self.pending) > MAX_LINE_BYTES:
            lines.append(self.pending)
            self.pending = b""
        return [part for line in lines for part in _split(line.rstrip(b"\r"))]

    def flush(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return _split(rest.rstrip(b"\r")) if rest else []


def _split(line: bytes) -> list[str]:
    chunks = [line[i:i + MAX_LINE_BYTES] for i in range(0, len(line), MAX_LINE_BYTES)] or [b""]
    return [_text(chunk) for chunk in chunks]


def _text(chunk: bytes) -> str:
    text = chunk.decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00").replace("\r", "\\r")


@dataclass
class LogSession:
    app_id: str
    dyno: str | None
    source: str | None
    lines: int
    tail: bool
    created: float = field(default_factory=time.monotonic)


class Logplex:
    def __init__(self, store: Store, retention: int = DEFAULT_RETENTION) -> None:
        self.store = store
        self.retention = retention
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._since_prune: dict[str, int] = defaultdict(int)
        self._sessions: dict[str, LogSession] = {}
        self.listeners: list[Callable[[str, str, list[LogRow]], None]] = []  # e.g. the log drains

    def platform(self, app_id: str, dyno: str, message: str, source: str = "heroku") -> None:
        """A platform line such as `heroku[run.2]: State changed from starting to up`."""
        self.append(app_id, [LogRow(source, dyno, message)])

    def append(self, app_id: str, rows: list[LogRow]) -> None:
        if not rows:
            return
        stamp = log_time()
        self.store.append_logs(app_id, stamp, rows)
        for listener in self.listeners:
            listener(app_id, stamp, rows)
        self._since_prune[app_id] += len(rows)
        if self._since_prune[app_id] > max(self.retention // 10, 1000):
            self._since_prune[app_id] = 0
            self.store.prune_logs(app_id, self.retention)
        for event in self._waiters.get(app_id, ()):
            event.set()

    def watch(self, app_id: str) -> asyncio.Event:
        """An event set whenever the app gets new lines; pair with `unwatch`."""
        event = asyncio.Event()
        self._waiters[app_id].add(event)
        return event

    def unwatch(self, app_id: str, event: asyncio.Event) -> None:
        self._waiters[app_id].discard(event)

    # log sessions ------------------------------------------------------------
    def open_session(self, session: LogSession) -> str:
        self._expire_sessions()
        token = secrets.token_urlsafe(24)
        self._sessions[token] = session
        return token

    def take_session(self, token: str) -> LogSession | None:
        """The session for a stream URL; it stays valid for reconnects of a tail."""
        self._expire_sessions()
        return self._sessions.get(token)

    def _expire_sessions(self) -> None:
        cutoff = time.monotonic() - SESSION_TTL
        for token in [t for t, s in self._sessions.items() if s.created < cutoff and not s.tail]:
            del self._sessions[token]
        tail_cutoff = time.monotonic() - 3600
        for token in [t for t, s in self._sessions.items() if s.created < tail_cutoff]:
            del self._sessions[token]
