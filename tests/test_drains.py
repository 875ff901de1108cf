"""Log drains with real receivers on loopback: syslog over TCP and TLS, and HTTP, framed as Logplex does."""
from __future__ import annotations

import http.server
import re
import socket
import socketserver
import threading

import pytest

from conftest import start_manifold
from dynokernel.manifold.tls import server_context
from heroku_fixtures import wait_for

FRAME = re.compile(rb"(\d+) ")
MESSAGE = re.compile(r"<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00) host (app|heroku) (\S+) - - (.*)\Z", re.S)


def parse_frames(data: bytes) -> list[tuple[int, str, str, str]]:
    """Octet-counted RFC 5424 frames, strictly: (pri, app-name, proc-id, message) each."""
    frames, pos = [], 0
    while pos < len(data):
        match = FRAME.match(data, pos)
        assert match, f"no octet count at byte {pos}: {data[pos:pos + 40]!r}"
        length = int(match.group(1))
        body = data[match.end():match.end() + length]
        assert len(body) == length, "a frame shorter than its count"
        parsed = MESSAGE.match(body.decode())
        assert parsed, body
        frames.append((int(parsed.group(1)), parsed.group(3), parsed.group(4), parsed.group(5)))
        pos = match.end() + length
    return frames


class SyslogReceiver(socketserver.ThreadingTCPServer):
    """A TCP (or TLS) syslog receiver that keeps every byte it is sent."""

    daemon_threads = allow_reuse_address = True

    def __init__(self, port: int = 0, context=None) -> None:
        self.data, self.context, self.lock = bytearray(), context, threading.Lock()
        self.connections: list[socket.socket] = []
        super().__init__(("127.0.0.1", port), self.Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn = self.request
            self.server.connections.append(conn)
            if self.server.context:
                conn = self.server.context.wrap_socket(conn, server_side=True)
            while chunk := conn.recv(65536):
                with self.server.lock:
                    self.server.data += chunk

    def frames(self):
        with self.lock:
            return parse_frames(bytes(self.data))

    def stop(self) -> None:
        """Go away as a crashed receiver does: the listening socket and every connection closed."""
        self.shutdown()
        self.server_close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("draintls")
    server_context(directory)  # a CA of the test's own and a certificate for 127.0.0.1
    return directory


@pytest.fixture(scope="module")
def manifold(tmp_path_factory, tls_dir):
    running = start_manifold(tmp_path_factory.mktemp("drainshome"),
                             {"DYNO_DRAIN_CA": str(tls_dir / "ca.pem"), "DYNO_DRAIN_BUFFER": "40"})
    yield running
    running.stop()


@pytest.fixture
def app(manifold, tmp_path):
    return manifold.new_app(tmp_path, files={"Procfile": "web: sleep 1000\n"})


def output_lines(frames, dyno_prefix: str = "run.") -> list[str]:
    return [message for pri, name, proc, message in frames if name == "app" and proc.startswith(dyno_prefix)]


def test_syslog_drain_gets_every_line_framed_in_order(app):
    receiver = SyslogReceiver()
    try:
        url = f"syslog://127.0.0.1:{receiver.port}"
        added = app.dyno("drains:add", url)
        assert added.returncode == 0 and added.stdout == f"Successfully added drain {url}\n", added.stderr
        listed = app.dyno("drains").stdout
        assert listed.startswith("=== Drains\n") and re.search(rf"^{re.escape(url)} \(d\.[0-9a-f-]{{36}}\)$", listed, re.M)
        assert app.dyno("run:detached", "seq 1 30; echo 'ünïcode ✓'").returncode == 0  # within the buffer (40)
        frames = wait_for(lambda: (lambda f: f if len(output_lines(f)) >= 31 else None)(receiver.frames()),
                          message="31 lines at the receiver")
        assert output_lines(frames) == [str(n) for n in range(1, 31)] + ["ünïcode ✓"]
        platform = [(pri, proc, message) for pri, name, proc, message in frames if name == "heroku"]
        assert (45, "run.1", "State changed from starting to up") in platform
        assert any(pri == 190 and proc == "api" and "Starting process" in message for pri, _, proc, message in frames)
        again = app.dyno("drains:add", url)
        assert again.returncode != 0 and "already added" in again.stderr
        assert app.dyno("drains:remove", url).stdout == f"Successfully removed drain {url}\n"
        count = len(receiver.data)
        assert app.dyno("run:detached", "echo after-removal").returncode == 0
        assert app.dyno("drains").stdout.strip() == f"{app.name} has no drains."
        assert b"after-removal" not in receiver.data[count:]
    finally:
        receiver.stop()


def test_tls_drain_with_the_test_ca_and_bad_urls(app, tls_dir):
    receiver = SyslogReceiver(context=server_context(tls_dir))
    try:
        assert app.dyno("drains:add", f"syslog+tls://127.0.0.1:{receiver.port}").returncode == 0
        assert app.dyno("run:detached", "echo over-tls").returncode == 0
        wait_for(lambda: "over-tls" in output_lines(receiver.frames()), message="the line over TLS")
    finally:
        receiver.stop()
    for url in ("ftp://example.com", "syslog://127.0.0.1", "not a url"):
        bad = app.dyno("drains:add", url)
        assert bad.returncode != 0 and "Invalid drain URL" in bad.stderr and "Traceback" not in bad.stderr


def test_lines_wait_while_the_receiver_is_down_within_the_buffer(app):
    receiver = SyslogReceiver()
    port = receiver.port
    assert app.dyno("drains:add", f"syslog://127.0.0.1:{port}").returncode == 0
    assert app.dyno("run:detached", "echo first").returncode == 0
    wait_for(lambda: "first" in output_lines(receiver.frames()), message="the first line")
    receiver.stop()
    assert app.dyno("run:detached", "echo while-down; seq 1 100").returncode == 0  # more than the buffer (40)
    receiver = SyslogReceiver(port)
    try:
        frames = wait_for(lambda: (lambda f: f if "100" in output_lines(f) else None)(receiver.frames()),
                          timeout=30, message="the buffered lines after the receiver came back")
        lines = output_lines(frames)
        assert lines[-3:] == ["98", "99", "100"] and len(frames) <= 41  # the newest lines, bounded
        overflow = [m for _, name, proc, m in frames if proc == "logplex"]
        assert overflow and re.match(r"Error L10 \(output buffer overflow\): \d+ messages dropped since ", overflow[0])
    finally:
        receiver.stop()


def test_https_style_drain_gets_logplex_posts(app):
    posts: list[tuple[dict, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/logs"
        assert app.dyno("drains:add", url).returncode == 0
        token = re.search(r"\((d\.[0-9a-f-]+)\)", app.dyno("drains").stdout).group(1)
        assert app.dyno("run:detached", "echo posted").returncode == 0
        wait_for(lambda: any(b"posted" in body for _, body in posts), message="a POST with the line")
        headers, body = next((h, b) for h, b in posts if b"posted" in b)
        assert headers["Content-Type"] == "application/logplex-1" and headers["Logplex-Drain-Token"] == token
        assert int(headers["Logplex-Msg-Count"]) == len(parse_frames(body)) and headers["Logplex-Frame-Id"]
        assert app.dyno("drains:remove", token).returncode == 0
    finally:
        server.shutdown()
        server.server_close()


def test_drains_survive_a_manifold_restart(manifold, app):
    receiver = SyslogReceiver()
    try:
        assert app.dyno("drains:add", f"syslog://127.0.0.1:{receiver.port}").returncode == 0
        manifold.stop()
        manifold.start()
        assert app.dyno("run:detached", "echo after-restart").returncode == 0
        wait_for(lambda: "after-restart" in output_lines(receiver.frames()), message="a line after the restart")
    finally:
        receiver.stop()
