"""The rendezvous server: Heroku's attach protocol over TLS.

A client connects, sends `SECRET\\r\\n`; the server answers `rendezvous\\r\\n` in a TLS record
of its own, then relays raw bytes both ways. Secrets work once; unknown ones are dropped.
"""
from __future__ import annotations

import asyncio
import ssl

from .supervisor import Supervisor

BANNER = b"rendezvous\r\n"
SECRET_TIMEOUT = 10.0


async def start_rendezvous(supervisor: Supervisor, context: ssl.SSLContext, host: str = "127.0.0.1",
                           port: int = 0) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), SECRET_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError, OSError, ssl.SSLError):
            writer.close()
            return
        secret = line.strip().decode("ascii", errors="replace").lstrip("/")
        dyno = supervisor.take_awaiting(secret)
        if dyno is None:
            writer.close()
            return
        writer.write(BANNER)
        await writer.drain()  # the banner leaves as its own TLS record
        await supervisor.serve_client(dyno, reader, writer)

    return await asyncio.start_server(handle, host, port, ssl=context)
