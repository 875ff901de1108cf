"""A small Platform API client over http.client (fast to import: `dyno ps` stays quick)."""
from __future__ import annotations

import http.client
import json
import ssl
import uuid
from typing import Any
from urllib.parse import quote, urlparse

from .. import __version__
from .endpoint import Endpoint, resolve_endpoint
from .errors import ApiError, ManifoldUnavailable

ACCEPT = "application/vnd.heroku+json; version=3"


class Client:
    """Requests against one endpoint; keeps the connection alive between calls."""

    def __init__(self, endpoint: Endpoint | None = None) -> None:
        self.endpoint = endpoint or resolve_endpoint()
        self._parsed = urlparse(self.endpoint.url)
        self._conn: http.client.HTTPConnection | None = None
        self.is_manifold: bool | None = None  # learnt from the first response's Dyno-Manifold header

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": ACCEPT, "Authorization": f"Bearer {self.endpoint.token}",
                       "User-Agent": f"dynokernel/{__version__}", "Request-Id": str(uuid.uuid4()),
                       "Content-Type": "application/json", **(headers or {})}
        response = self._send(method, path, payload, all_headers)
        data = response.read()
        if self.is_manifold is None:
            self.is_manifold = response.getheader("Dyno-Manifold") is not None
        if response.status >= 400:
            raise _api_error(response.status, data)
        return json.loads(data) if data else None

    def _send(self, method: str, path: str, payload: bytes | None, headers: dict) -> http.client.HTTPResponse:
        for attempt in (1, 2):  # a kept-alive connection may have been closed by the server
            conn = self._connection()
            try:
                conn.request(method, path, payload, headers)
                return conn.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 2 or not isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected,
                                                        BrokenPipeError)):
                    raise ManifoldUnavailable(f"Cannot reach the API at {self.endpoint.url}: {exc}") from None
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            host, port = self._parsed.hostname, self._parsed.port
            if self._parsed.scheme == "https":
                context = ssl.create_default_context(cafile=self.endpoint.ca_file)
                self._conn = http.client.HTTPSConnection(host, port, context=context, timeout=60)
            else:
                self._conn = http.client.HTTPConnection(host, port, timeout=60)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # resources ----------------------------------------------------------------
    def app(self, name: str) -> dict:
        return self.request("GET", f"/apps/{quote(name)}")


def _api_error(status: int, data: bytes) -> ApiError:
    try:
        body = json.loads(data)
        return ApiError(status, body.get("id", "error"), body.get("message", "") or f"HTTP {status}")
    except (ValueError, AttributeError):
        return ApiError(status, "error", f"HTTP {status}: {data[:200].decode(errors='replace')}")
