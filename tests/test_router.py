"""The router with real HTTP: round-robin to web dynos, Heroku's router lines, H10/H12/H13/H14."""
from __future__ import annotations

import http.client
import json
import re

import pytest

from conftest import start_manifold
from heroku_fixtures import wait_for

SERVER = r'''
import http.server, os, socket, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/slow":
            time.sleep(60)
        if self.path == "/close":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.answer(" ".join([os.environ["DYNO"], self.headers["X-Forwarded-For"], self.headers["X-Request-Id"],
                              self.headers["X-Forwarded-Proto"], self.headers["Via"]]).encode())

    def do_POST(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        self.answer(os.environ["DYNO"].encode() + b" got " + body)

    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''
FILES = {"server.py": SERVER, "Procfile": "web: python3 server.py\nworker: sleep 1000\n"}


@pytest.fixture(scope="module")
def manifold(tmp_path_factory):
    running = start_manifold(tmp_path_factory.mktemp("routerhome"),
                             {"DYNO_ROUTER_TIMEOUT": "1", "DYNO_RESTART_BACKOFF": "60"})
    yield running
    running.stop()


def web_port(app) -> int:
    url = json.loads(app.dyno("apps:info", "--json").stdout)["web_url"]
    return int(re.fullmatch(r"http://127\.0\.0\.1:(\d+)/", url).group(1))


def request(port: int, method: str = "GET", path: str = "/", body=None, conn=None, **kw):
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, **kw)
    response = conn.getresponse()
    return response.status, response.read().decode(), conn


def router_lines(app) -> list[str]:
    return [line.split("heroku[router]: ", 1)[1] for line in app.dyno("logs", "-n", "1000", "-d", "router").stdout
            .splitlines() if "heroku[router]: " in line]


def up(app, count: int) -> None:
    try:
        wanted = {f"web.{n}" for n in range(1, count + 1)}  # the formation's (one-offs are web.1001...)
        wait_for(lambda: wanted <= {d["name"] for d in json.loads(app.dyno("ps", "--json").stdout)
                                    if d["state"] == "up"}, timeout=20, message=f"{count} web dynos up")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{app.dyno('ps').stdout}\n{app.dyno('logs', '-n', '60').stdout}") from None


def test_requests_go_round_robin_to_web_dynos_with_heroku_router_lines(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=FILES)
    port = web_port(app)
    assert app.dyno("apps:info").stdout.count(f"Web URL:        http://127.0.0.1:{port}/") == 1
    status, body, _ = request(port)
    assert status == 503 and "Application Error" in body
    wait_for(lambda: any('code=H14 desc="No web processes running"' in line for line in router_lines(app)),
             message="H14")
    assert app.dyno("run:detached", "--type", "web", "python3 server.py").returncode == 0  # one-off: no traffic
    assert request(port)[0] == 503

    assert app.dyno("ps:scale", "web=2").returncode == 0
    up(app, 2)
    conn = None
    served = []
    for _ in range(4):  # one keep-alive connection from the client
        status, body, conn = request(port, conn=conn)
        assert status == 200
        served.append(body.split()[0])
        assert body.split()[1:4][0] == "127.0.0.1" and body.split()[3] == "http"
    assert served in (["web.1", "web.2"] * 2, ["web.2", "web.1"] * 2)
    status, body, conn = request(port, "POST", "/", body=b"x" * 100_000, conn=conn)
    assert status == 200 and body.endswith(" got " + "x" * 100_000)
    status, body, conn = request(port, "POST", "/", body=iter([b"chunk-one ", b"chunk-two"]), conn=conn,
                                 encode_chunked=True)
    assert status == 200 and body.endswith(" got chunk-one chunk-two")
    lines = wait_for(lambda: (lambda found: found if len(found) >= 6 else None)(
        [line for line in router_lines(app) if line.startswith("at=info")]), message="six router lines")
    assert re.fullmatch(r'at=info method=GET path="/" host=127\.0\.0\.1:\d+ request_id=[0-9a-f-]{36} '
                        r'fwd="127\.0\.0\.1" dyno=web\.[12] connect=\d+ms service=\d+ms status=200 bytes=\d+ '
                        r'protocol=http', lines[0]), lines[0]
    assert {re.search(r"dyno=(web\.\d)", line).group(1) for line in lines} == {"web.1", "web.2"}
    assert "method=POST" in lines[4] and "bytes=" in lines[4]
    ids = [re.search(r"request_id=(\S+)", line).group(1) for line in lines[:4]]
    assert len(set(ids)) == 4


def test_h12_timeout_and_h13_closed_connection(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=FILES)
    port = web_port(app)
    assert app.dyno("ps:scale", "web=1").returncode == 0
    up(app, 1)
    assert request(port, path="/slow")[0] == 503
    assert request(port, path="/close")[0] == 503
    assert request(port)[0] == 200  # the dyno is still served afterwards
    lines = wait_for(lambda: (lambda found: found if len(found) >= 2 else None)(
        [line for line in router_lines(app) if line.startswith("at=error")]), message="two errors")
    assert lines[0].startswith('at=error code=H12 desc="Request timeout" method=GET path="/slow"')
    assert "dyno=web.1" in lines[0] and "status=503" in lines[0]
    assert lines[1].startswith('at=error code=H13 desc="Connection closed without response" method=GET '
                               'path="/close"')


def test_h10_when_the_web_dynos_crashed(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files={"Procfile": "web: python3 -c 'import sys; sys.exit(3)'\n"})
    port = web_port(app)
    assert app.dyno("ps:scale", "web=1").returncode == 0
    wait_for(lambda: app.dyno("logs", "-n", "100").stdout.count("heroku[web.1]: State changed from starting to "
                                                                "crashed") >= 2, message="two crashes")
    assert request(port)[0] == 503
    wait_for(lambda: any(line.startswith('at=error code=H10 desc="App crashed" method=GET path="/"') and
                         "dyno= connect= service= status=503 bytes= protocol=http" in line
                         for line in router_lines(app)), message="H10")


def test_the_port_is_kept_across_a_manifold_restart(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=FILES)
    port = web_port(app)
    assert app.dyno("ps:scale", "web=1").returncode == 0
    up(app, 1)
    manifold.stop()
    manifold.start()
    assert web_port(app) == port
    up(app, 1)
    assert request(port)[0] == 200
    assert app.dyno("ps:scale", "web=0").returncode == 0


def test_the_sample_app_served_through_the_router(manifold, tmp_path):
    from conftest import SAMPLE_APP
    app = manifold.new_app(tmp_path, source=SAMPLE_APP)
    assert app.dyno("ps:scale", "web=2", "worker=1").returncode == 0
    up(app, 2)
    port = web_port(app)
    answers = {request(port)[1] for _ in range(4)}
    assert answers == {"Hello from web.1\n", "Hello from web.2\n"}
    wait_for(lambda: "app[worker.1]: worker: tick 1" in app.dyno("logs", "-n", "200").stdout, message="the worker")
    shown = app.dyno("ps")
    text = shown.stdout
    assert "=== web (Basic): python3 web.py (2)" in text and "=== worker (Basic): python3 worker.py (1)" in text
    assert "web.2: up " in text and "Web URL" not in text  # stdout is what `heroku ps` prints
    assert shown.stderr == f"Web URL: http://127.0.0.1:{port}/\n"
    assert app.dyno("ps:scale", "web=0", "worker=0").returncode == 0
