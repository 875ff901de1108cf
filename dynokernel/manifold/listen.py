"""`dyno manifold:start --listen ADDR:PORT`: the API (and rendezvous) for other machines, over TLS.

The local API stays plain HTTP on 127.0.0.1. On ADDR the manifold serves the same API over
HTTPS with a certificate from its own CA (`$DYNO_HOME/tls/ca.pem`, which remote clients trust
through DYNO_CA_CERT), the bearer token required on every request as always, and rendezvous
on PORT+1 (also TLS) so attach URLs handed to remote clients point at ADDR.

    # on the team's machine
    dyno manifold:start --listen 10.0.0.5:7443
    # on a laptop
    export DYNO_API_URL=https://10.0.0.5:7443 DYNO_API_KEY=<token> DYNO_CA_CERT=ca.pem
"""
from __future__ import annotations

import ipaddress

import tornado.httpserver
import tornado.netutil

from .api import Manifold, make_app
from .rendezvous import start_rendezvous
from .tls import server_context


class ListenError(ValueError):
    """A bad --listen address."""


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65535:
        raise ListenError(f"--listen needs ADDR:PORT (e.g. 10.0.0.5:7443), not {text!r}")
    return host, int(port)


def _cert_name(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


async def start_listen(text: str, manifold: Manifold) -> tuple[dict, list]:
    """Serve the API on ADDR:PORT and rendezvous on ADDR:PORT+1; returns (info, servers to close)."""
    host, port = parse_listen(text)
    files = manifold.supervisor.files
    context = server_context(files.tls_dir, extra_hosts=(_cert_name(host),))
    rendezvous = await start_rendezvous(manifold.supervisor, context, host, port + 1)
    public = {"host": host if ":" not in host else f"[{host}]", "rendezvous_port": port + 1}
    server = tornado.httpserver.HTTPServer(make_app(manifold, public=public), ssl_options=context)
    server.add_sockets(tornado.netutil.bind_sockets(port, host))
    url_host = public["host"]
    info = {"listen_url": f"https://{url_host}:{port}", "listen_rendezvous_port": port + 1}
    return info, [server, rendezvous]
