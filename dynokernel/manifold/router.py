"""The router: one HTTP port per app on loopback, requests round-robin to the app's web dynos.

As Heroku's router: only formation `web` dynos that are up get traffic (never one-off dynos); it adds
X-Forwarded-For/-Proto/-Port, X-Request-Id, X-Request-Start and Via; each request is a
`heroku[router]` log line (`at=info method=GET path="/" ... dyno=web.1 connect=1ms service=3ms
status=200 bytes=13 protocol=http`), and failures are H-codes answered with a 503: H10 (app
crashed), H12 (no response within 30 s), H13 (connection closed without response), H14 (no web
dynos). HTTP/1.1 keep-alive on both sides; bodies stream in both directions.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

from .logplex import Logplex
from .processes import free_port
from .formation import Formation
from .store import LogRow, Store

SCHEMA = "CREATE TABLE IF NOT EXISTS routers (app_id TEXT PRIMARY KEY, port INTEGER NOT NULL)"
HEAD_LIMIT = 64 * 1024
COPY_CHUNK = 256 * 1024
LOG_FLUSH = 0.05  # router lines are written in batches this often
H_CODES = {"H10": "App crashed", "H12": "Request timeout", "H13": "Connection closed without response",
           "H14": "No web processes running"}
ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>Application Error</title></head><body>"
              b"<p>An error occurred in the application and your page could not be served.</p></body></html>")


class HttpError(Exception):
    """The client sent something that is not HTTP/1.x: the connection is closed."""


@dataclass
class Message:
    """A request's or response's head: the first line and the headers (names lowercased)."""

    first: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def keep_alive(self) -> bool:
        connection = (self.get("connection") or "").lower()
        version = self.first.split(" ", 1)[0] if self.first.startswith("HTTP/") else self.first.rsplit(" ", 1)[-1]
        return "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection

    def encode(self, extra: list[tuple[str, str]] = ()) -> bytes:
        lines = [self.first, *(f"{k}: {v}" for k, v in (*self.headers, *extra))]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_head(reader: asyncio.StreamReader) -> Message | None:
    """The next head on the stream; None at a clean end of the connection."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError("incomplete head") from None
        return None
    except asyncio.LimitOverrunError:
        raise HttpError("head too large") from None
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise HttpError(f"bad header line {line!r}")
            headers.append((name.strip().lower(), value.strip()))
    return Message(lines[0], headers)


async def copy_body(head: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    until_close: bool = False) -> int:
    """Copy the body that follows `head` (Content-Length, chunked, or to the end); bytes copied."""
    if (head.get("transfer-encoding") or "").lower().endswith("chunked"):
        return await _copy_chunked(reader, writer)
    length = head.get("content-length")
    if length is not None:
        return await _copy_exactly(reader, writer, int(length))
    if not until_close:
        return 0
    total = 0
    while chunk := await reader.read(COPY_CHUNK):
        writer.write(chunk)
        total += len(chunk)
        await writer.drain()
    return total


async def _copy_exactly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int) -> int:
    left = length
    while left:
        chunk = await reader.read(min(left, COPY_CHUNK))
        if not chunk:
            raise ConnectionResetError("the body ended early")
        writer.write(chunk)
        left -= len(chunk)
        if writer.transport.get_write_buffer_size() > COPY_CHUNK:
            await writer.drain()
    return length


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        writer.write(size_line)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                writer.write(trailer)
            writer.write(b"\r\n")
            return total
        total += await _copy_exactly(reader, writer, size + 2) - 2


@dataclass
class Exchange:
    """One request's journey, for its log line."""

    head: Message
    fwd: str
    request_id: str
    dyno: str = ""
    code: str = ""                  # an H-code when the router answered for the app
    connect_ms: int | None = None
    service_ms: int | None = None
    status: int | None = None
    bytes: int | None = None
    started: float = field(default_factory=time.monotonic)


class Router:
    """One listening socket per app; see the module docstring."""

    def __init__(self, store: Store, logplex: Logplex, formation: Formation, timeout: float = 30.0) -> None:
        self.store, self.logplex, self.formation, self.timeout = store, logplex, formation, timeout
        self.servers: dict[str, asyncio.base_events.Server] = {}
        self.turn: dict[str, int] = {}
        self.idle: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
        self.pending_logs: dict[str, list[LogRow]] = {}
        self.flush_timer: asyncio.TimerHandle | None = None
        store.db.execute(SCHEMA)

    # ports ------------------------------------------------------------------------------------
    def port(self, app_id: str) -> int | None:
        row = self.store._one("SELECT port FROM routers WHERE app_id = ?", app_id)
        return row["port"] if row else None

    async def start(self) -> None:
        for app in self.store.apps():
            await self.open(app)

    async def open(self, app: dict) -> int:
        """Listen for the app (on its old port when free); returns the port."""
        if app["id"] in self.servers:
            return self.port(app["id"])
        port = self.port(app["id"])
        try:
            server = await self._listen(app["id"], port or free_port())
        except OSError:  # the old port is taken now: a new one
            server = await self._listen(app["id"], free_port())
        port = server.sockets[0].getsockname()[1]
        self.store.db.execute("INSERT OR REPLACE INTO routers VALUES (?, ?)", (app["id"], port))
        self.servers[app["id"]] = server
        return port

    async def _listen(self, app_id: str, port: int) -> asyncio.base_events.Server:
        return await asyncio.start_server(lambda r, w: self._serve(app_id, r, w), "127.0.0.1", port,
                                          limit=HEAD_LIMIT, reuse_address=True)

    def close(self, app_id: str) -> None:
        server = self.servers.pop(app_id, None)
        if server is not None:
            server.close()
        self.store.db.execute("DELETE FROM routers WHERE app_id = ?", (app_id,))

    def close_all(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
        self._flush_logs()

    # requests ---------------------------------------------------------------------------------
    async def _serve(self, app_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        try:
            while (head := await read_head(reader)) is not None:
                exchange = Exchange(head, peer[0], head.get("x-request-id") or str(uuid.uuid4()))
                keep = await self._route(app_id, exchange, reader, writer)
                self._log(app_id, exchange)
                if not keep:
                    break
        except (HttpError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _route(self, app_id: str, exchange: Exchange, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> bool:
        backends = self.formation.web_backends(app_id)
        if not backends:
            await copy_body(exchange.head, reader, _Discard())
            code = "H10" if self.formation.web_crashed(app_id) else "H14"
            return await self._fail(exchange, writer, code)
        turn = self.turn.get(app_id, 0)
        self.turn[app_id] = turn + 1
        exchange.dyno, port = backends[turn % len(backends)]
        upstream = await self._connect(exchange, port)
        if upstream is None:
            return await self._fail(exchange, writer, "H13")
        up_reader, up_writer = upstream
        up_writer.write(exchange.head.encode(self._forwarded(app_id, exchange)))
        await copy_body(exchange.head, reader, up_writer)
        try:
            response = await asyncio.wait_for(read_head(up_reader), self.timeout)
        except asyncio.TimeoutError:
            up_writer.close()
            return await self._fail(exchange, writer, "H12")
        except (HttpError, ConnectionError):
            response = None
        if response is None:
            up_writer.close()
            return await self._fail(exchange, writer, "H13")
        exchange.service_ms = _ms(exchange.started) - (exchange.connect_ms or 0)
        exchange.status = int(response.first.split(" ", 2)[1])
        writer.write(response.encode())
        bodyless = exchange.head.first.startswith("HEAD ") or exchange.status in (204, 304) or exchange.status < 200
        framed = bodyless or response.get("content-length") is not None or response.get("transfer-encoding")
        exchange.bytes = 0 if bodyless else await copy_body(response, up_reader, writer, until_close=not framed)
        await writer.drain()
        if framed and response.keep_alive():
            self.idle.setdefault(port, []).append(upstream)
        else:
            up_writer.close()
        return bool(framed) and exchange.head.keep_alive()

    async def _connect(self, exchange: Exchange, port: int):
        """A pooled keep-alive connection to the dyno, else a new one (None: nothing listens)."""
        pool = self.idle.get(port, [])
        while pool:
            reader, writer = pool.pop()
            if not reader.at_eof() and not writer.is_closing():
                exchange.connect_ms = 0
                return reader, writer
            writer.close()
        try:
            connection = await asyncio.open_connection("127.0.0.1", port, limit=HEAD_LIMIT)
        except OSError:
            return None
        exchange.connect_ms = _ms(exchange.started)
        return connection

    def _forwarded(self, app_id: str, exchange: Exchange) -> list[tuple[str, str]]:
        server = self.servers.get(app_id)
        port = server.sockets[0].getsockname()[1] if server else 0
        return [("x-forwarded-for", exchange.fwd), ("x-forwarded-proto", "http"), ("x-forwarded-port", str(port)),
                ("x-request-start", str(int(time.time() * 1000))), ("x-request-id", exchange.request_id),
                ("via", "1.1 dyno-router")]

    async def _fail(self, exchange: Exchange, writer: asyncio.StreamWriter, code: str) -> bool:
        exchange.status, exchange.code = 503, code
        if code in ("H12", "H13") and exchange.service_ms is None:
            exchange.service_ms = _ms(exchange.started) - (exchange.connect_ms or 0)
        exchange.bytes = 0 if exchange.dyno else None
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n"
                     b"Content-Length: %d\r\nCache-Control: no-cache, no-store\r\n\r\n%s" % (len(ERROR_PAGE), ERROR_PAGE))
        await writer.drain()
        return exchange.head.keep_alive()

    # log lines ----------------------------------------------------------------------------------
    def _log(self, app_id: str, exchange: Exchange) -> None:
        self.pending_logs.setdefault(app_id, []).append(LogRow("heroku", "router", log_line(self, app_id, exchange)))
        if self.flush_timer is None:
            self.flush_timer = asyncio.get_running_loop().call_later(LOG_FLUSH, self._flush_logs)

    def _flush_logs(self) -> None:
        self.flush_timer = None
        pending, self.pending_logs = self.pending_logs, {}
        for app_id, rows in pending.items():
            if self.store.app(app_id) is not None:
                self.logplex.append(app_id, rows)


class _Discard:
    """A writer that drops what it is given (the body of a request nobody can serve)."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    @property
    def transport(self):
        return self

    def get_write_buffer_size(self) -> int:
        return 0


def log_line(router: Router, app_id: str, exchange: Exchange) -> str:
    """Heroku's router line for one request."""
    method, _, rest = exchange.head.first.partition(" ")
    path = rest.rsplit(" ", 1)[0]
    host = exchange.head.get("host") or f"127.0.0.1:{router.port(app_id)}"
    code = exchange.code
    lead = f'at=error code={code} desc="{H_CODES[code]}"' if code else "at=info"
    return (f'{lead} method={method} path="{path}" host={host} request_id={exchange.request_id} '
            f'fwd="{exchange.fwd}" dyno={exchange.dyno} connect={_field(exchange.connect_ms, "ms")} '
            f'service={_field(exchange.service_ms, "ms")} status={exchange.status} '
            f'bytes={_field(exchange.bytes)} protocol=http')


def _field(value: int | None, unit: str = "") -> str:
    return "" if value is None else f"{value}{unit}"


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)
