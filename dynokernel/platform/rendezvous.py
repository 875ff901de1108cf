"""The attach client: connect to a dyno's `rendezvous://host:port/secret` over TLS.

Unlike the Heroku CLI, bytes that arrive glued to the `rendezvous\\r\\n` banner are kept.
`bridge()` turns the TLS stream into a plain socket end (a thread relays), which pexpect's
fdspawn and select() can use like any file descriptor.
"""
from __future__ import annotations

import socket
import ssl
import threading
from typing import Callable
from urllib.parse import urlparse

from .errors import PlatformError

BANNER = b"rendezvous\r\n"


class AttachError(PlatformError):
    """The dyno's attach URL could not be used."""


def connect(attach_url: str, ca_file: str | None, timeout: float = 30.0) -> tuple[ssl.SSLSocket, bytes]:
    """Connect, send the secret, read the banner; returns the socket and any early output."""
    url = urlparse(attach_url)
    if not url.hostname or not url.port:
        raise AttachError(f"Invalid attach URL: {attach_url}")
    secret = url.path.lstrip("/") + (f"?{url.query}" if url.query else "")
    context = ssl.create_default_context(cafile=ca_file)
    try:
        raw = socket.create_connection((url.hostname, url.port), timeout=timeout)
        sock = context.wrap_socket(raw, server_hostname=url.hostname)
        sock.sendall(secret.encode() + b"\r\n")
        received = b""
        while len(received) < len(BANNER):
            chunk = sock.recv(65536)
            if not chunk:
                raise AttachError("The dyno refused the attach (expired or already used secret)")
            received += chunk
    except (OSError, ssl.SSLError) as exc:
        raise AttachError(f"Could not attach to the dyno: {exc}") from None
    if not received.startswith(BANNER):
        raise AttachError("The attach server did not answer with the rendezvous banner")
    sock.settimeout(None)
    return sock, received[len(BANNER):]


def bridge(sock: ssl.SSLSocket, early: bytes = b"", on_close: Callable[[], None] | None = None) -> socket.socket:
    """A plain socket end carrying the dyno's bytes both ways (relay threads do the TLS).

    `on_close` is called once the dyno's side has closed the connection.
    """
    ours, theirs = socket.socketpair()
    if early:
        ours.sendall(early)
    threading.Thread(target=_pump, args=(sock, ours, on_close), daemon=True, name="attach-out").start()
    threading.Thread(target=_pump, args=(ours, sock, None), daemon=True, name="attach-in").start()
    return theirs


def _pump(source: socket.socket, sink: socket.socket, on_close: Callable[[], None] | None) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (sink, source):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if on_close is not None:
            on_close()
