"""Log drains: every line of an app, as Logplex sends it, to syslog (TCP or TLS) or HTTPS endpoints.

Each line is an RFC 5424 message, octet-counted as RFC 6587 frames it:
`LEN <PRI>1 TIMESTAMP host APP-NAME PROCID - - MESSAGE`, with app-name `app` (PRI 190,
local7.info) for the app's own output and `heroku` (PRI 45, syslog.notice) for the platform's,
and the dyno (`web.1`, `router`, `api`) as the proc-id. HTTPS drains get POSTs of up to 500 frames
with Logplex's headers (`Content-Type: application/logplex-1`, `Logplex-Msg-Count`,
`Logplex-Frame-Id`, `Logplex-Drain-Token`). A drain that cannot be reached is retried with a
growing back-off; meanwhile lines wait in a bounded buffer (DYNO_DRAIN_BUFFER, 10,000), the oldest
dropped first and counted in Logplex's `Error L10 (output buffer overflow)` line once it is back.
"""
from __future__ import annotations

import asyncio
import collections
import os
import ssl
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import tornado.httpclient

from .logplex import Logplex, log_time
from .store import LogRow, Store, api_time
from .supervisor import ApiError

SCHEMA = """CREATE TABLE IF NOT EXISTS log_drains (
  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, token TEXT UNIQUE NOT NULL, url TEXT NOT NULL,
  created_at TEXT NOT NULL, UNIQUE (app_id, url))"""
SCHEMES = ("syslog", "syslog+tls", "http", "https")
BATCH = 500
BACKOFF = (0.2, 30.0)  # the first retry delay and the longest


def frame(stamp: str, row: LogRow) -> bytes:
    """One octet-counted RFC 5424 frame, as Logplex writes it."""
    pri, app_name = (190, "app") if row.source == "app" else (45, "heroku")
    message = f"<{pri}>1 {stamp} host {app_name} {row.dyno or '-'} - - {row.message}".encode("utf-8", "replace")
    return b"%d %s" % (len(message), message)


def check_url(url) -> str:
    """A drain URL this manifold can send to (ApiError 422 otherwise)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname:
        raise ApiError(422, "invalid_params", f"Invalid drain URL {url!r}: use syslog://HOST:PORT, "
                       "syslog+tls://HOST:PORT, or an https:// (or http://) URL")
    if parts.scheme.startswith("syslog") and not parts.port:
        raise ApiError(422, "invalid_params", f"Invalid drain URL {url!r}: a syslog drain needs a port")
    return url


@dataclass
class Drain:
    """One drain's buffer and its delivery task."""

    record: dict
    capacity: int
    buffer: collections.deque = field(default_factory=collections.deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0
    dropped_since: str = ""
    task: asyncio.Task | None = None
    reader: asyncio.StreamReader | None = None   # a syslog receiver never writes: EOF means it went away
    writer: asyncio.StreamWriter | None = None

    def add(self, stamp: str, rows: list[LogRow]) -> None:
        for row in rows:
            if len(self.buffer) >= self.capacity:
                self.buffer.popleft()
                self.dropped_since = self.dropped_since or stamp
                self.dropped += 1
            self.buffer.append(frame(stamp, row))
        self.ready.set()

    def batch(self) -> list[bytes]:
        if self.dropped:
            note = LogRow("heroku", "logplex", f"Error L10 (output buffer overflow): {self.dropped} messages dropped "
                          f"since {self.dropped_since}.")
            self.buffer.appendleft(frame(log_time(), note))
            self.dropped, self.dropped_since = 0, ""
        return [self.buffer[i] for i in range(min(BATCH, len(self.buffer)))]


class Drains:
    """The registry (table `log_drains`) and a sender per drain."""

    def __init__(self, store: Store, logplex: Logplex) -> None:
        self.store, self.logplex = store, logplex
        self.capacity = int(os.environ.get("DYNO_DRAIN_BUFFER", 10_000))
        self.ca_file = os.environ.get("DYNO_DRAIN_CA") or None
        self.by_app: dict[str, dict[str, Drain]] = {}
        store.db.execute(SCHEMA)
        logplex.listeners.append(self._lines)

    # registry -----------------------------------------------------------------------------------
    def list(self, app_id: str) -> list[dict]:
        return self.store._all("SELECT * FROM log_drains WHERE app_id = ? ORDER BY created_at, rowid", app_id)

    def find(self, app_id: str, key: str) -> dict:
        found = self.store._one("SELECT * FROM log_drains WHERE app_id = ? AND (id = ? OR url = ? OR token = ?)",
                                app_id, key, key, key)
        if found is None:
            raise ApiError(404, "not_found", f"Couldn't find that drain: {key}.")
        return found

    def add(self, app: dict, url) -> dict:
        url = check_url(url)
        if self.store._one("SELECT id FROM log_drains WHERE app_id = ? AND url = ?", app["id"], url):
            raise ApiError(422, "invalid_params", f"Drain {url} is already added to {app['name']}.")
        record = {"id": str(uuid.uuid4()), "app_id": app["id"], "token": f"d.{uuid.uuid4()}", "url": url,
                  "created_at": api_time()}
        self.store.db.execute("INSERT INTO log_drains (id, app_id, token, url, created_at) VALUES (?, ?, ?, ?, ?)",
                              tuple(record.values()))
        self._open(record)
        return record

    def remove(self, app: dict, record: dict) -> None:
        self.store.db.execute("DELETE FROM log_drains WHERE id = ?", (record["id"],))
        self._close(self.by_app.get(app["id"], {}).pop(record["id"], None))

    def forget_app(self, app_id: str) -> None:
        for drain in self.by_app.pop(app_id, {}).values():
            self._close(drain)
        self.store.db.execute("DELETE FROM log_drains WHERE app_id = ?", (app_id,))

    def start(self) -> None:
        for record in self.store._all("SELECT * FROM log_drains ORDER BY created_at"):
            self._open(record)

    def close(self) -> None:
        for app_id in list(self.by_app):
            for drain in self.by_app.pop(app_id).values():
                self._close(drain)

    def _open(self, record: dict) -> None:
        drain = Drain(record, self.capacity)
        drain.task = asyncio.get_running_loop().create_task(self._deliver(drain))
        self.by_app.setdefault(record["app_id"], {})[record["id"]] = drain

    @staticmethod
    def _close(drain: Drain | None) -> None:
        if drain is not None:
            drain.task.cancel()
            if drain.writer is not None:
                drain.writer.close()

    def _lines(self, app_id: str, stamp: str, rows: list[LogRow]) -> None:
        for drain in self.by_app.get(app_id, {}).values():
            drain.add(stamp, rows)

    # delivery -------------------------------------------------------------------------------------
    async def _deliver(self, drain: Drain) -> None:
        delay = BACKOFF[0]
        while True:
            await drain.ready.wait()
            drain.ready.clear()
            while drain.buffer:
                frames = drain.batch()
                try:
                    await self._send(drain, frames)
                except (OSError, ssl.SSLError, tornado.httpclient.HTTPClientError, asyncio.TimeoutError):
                    if drain.writer is not None:
                        drain.writer.close()
                        drain.writer = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF[1])
                    continue
                delay = BACKOFF[0]
                for _ in frames:
                    drain.buffer.popleft()

    async def _send(self, drain: Drain, frames: list[bytes]) -> None:
        url = urlsplit(drain.record["url"])
        if url.scheme.startswith("http"):
            await tornado.httpclient.AsyncHTTPClient().fetch(
                drain.record["url"], method="POST", body=b"".join(frames), request_timeout=30, ca_certs=self.ca_file,
                headers={"Content-Type": "application/logplex-1", "Logplex-Msg-Count": str(len(frames)),
                         "Logplex-Frame-Id": uuid.uuid4().hex, "Logplex-Drain-Token": drain.record["token"],
                         "User-Agent": "Logplex/v72 (dynokernel)"})
            return
        if drain.writer is None or drain.writer.is_closing() or drain.reader.at_eof():
            if drain.writer is not None:
                drain.writer.close()
            context = ssl.create_default_context(cafile=self.ca_file) if url.scheme == "syslog+tls" else None
            drain.reader, drain.writer = await asyncio.wait_for(
                asyncio.open_connection(url.hostname, url.port, ssl=context), 30)
        drain.writer.write(b"".join(frames))
        await asyncio.wait_for(drain.writer.drain(), 30)
        if drain.writer.transport.is_closing():
            raise ConnectionResetError("the drain closed the connection")


def drain_json(app: dict, record: dict) -> dict:
    """The Platform API's log-drain shape."""
    return {"id": record["id"], "token": record["token"], "url": record["url"], "addon": None,
            "app": {"id": app["id"], "name": app["name"]}, "created_at": record["created_at"],
            "updated_at": record["created_at"]}
