"""Read a Logplex log session: Server-Sent Events, reconnecting with Last-Event-ID."""
from __future__ import annotations

import http.client
import ssl
from typing import Iterator
from urllib.parse import urlparse

from .errors import PlatformError


def stream_lines(logplex_url: str, tail: bool, ca_file: str | None = None) -> Iterator[str]:
    """Yield log lines; a tail follows until the caller stops iterating."""
    last_id: str | None = None
    while True:
        response = _open(logplex_url, last_id, ca_file)
        for field, value in _events(response):
            if field == "data":
                yield value
            elif field == "id":
                last_id = value
        response.close()
        if not tail:
            return


def _open(url: str, last_id: str | None, ca_file: str | None) -> http.client.HTTPResponse:
    parsed = urlparse(url)
    if parsed.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parsed.hostname, parsed.port, context=ssl.create_default_context(cafile=ca_file))
    else:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
    headers = {"Accept": "text/event-stream"}
    if last_id:
        headers["Last-Event-ID"] = last_id
    try:
        conn.request("GET", parsed.path + (f"?{parsed.query}" if parsed.query else ""), headers=headers)
        response = conn.getresponse()
    except OSError as exc:
        raise PlatformError(f"Cannot reach the log stream: {exc}") from None
    if response.status in (403, 404):
        raise PlatformError("Log stream timed out. Please try again.")
    if response.status != 200:
        raise PlatformError(f"Log stream failed: HTTP {response.status}")
    return response


def _events(response: http.client.HTTPResponse) -> Iterator[tuple[str, str]]:
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        yield field, value[1:] if value.startswith(" ") else value
