"""Our client on "Heroku" (a manifold in strict mode) and on a manifold on another machine
(`manifold:start --listen`, two network namespaces joined by a veth pair)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from heroku_fixtures import SAMPLE_APP, wait_for

ROOT = Path(__file__).resolve().parents[1]


def dyno(env: dict, *args: str, input: str | None = None, netns: str | None = None, timeout: float = 60):
    argv = [sys.executable, "-m", "dynokernel.cli.main", *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, env=env, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, cwd=env["DYNO_HOME"])


def base_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEROKU_", "DYNO_"))}
    env.update(DYNO_HOME=str(home), DYNO_STOP_GRACE="2", PYTHONPATH=str(ROOT), **extra)
    home.mkdir(parents=True, exist_ok=True)
    return env


def start_with_app(env: dict, app: str, netns: str | None = None, *start_args: str) -> None:
    for args in (["manifold:start", *start_args], ["apps:create", app, "--dir", str(SAMPLE_APP)],
                 ["deploy", "-a", app, "--dir", str(SAMPLE_APP)]):
        done = dyno(env, *args, netns=netns)
        assert done.returncode == 0, done.stderr


# strict mode: only what Heroku documents ---------------------------------------------------
@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    home = tmp_path_factory.mktemp("strict") / "home"
    env = base_env(home, DYNO_STRICT="1", DYNO_ATTACH_TIMEOUT="1")
    app = "s-" + uuid.uuid4().hex[:8]
    start_with_app(env, app)
    info = json.loads((home / "manifold.json").read_text())
    token = (home / "token").read_text().strip()
    # the client as a user on Heroku has it: an API URL and a key, nothing local
    client = base_env(home.parent / "client", DYNO_API_URL=info["api_url"], HEROKU_API_KEY=token,
                      DYNO_CA_CERT=str(home / "tls" / "ca.pem"))
    yield {"env": env, "client": client, "app": app, "info": info, "token": token}
    dyno(env, "manifold:stop", timeout=90)


def api(strict: dict, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(strict["info"]["api_url"] + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {strict['token']}",
                                              "Accept": "application/vnd.heroku+json; version=3",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers, json.loads(response.read() or b"null")


def test_strict_mode_serves_only_documented_fields(strict):
    headers, app = api(strict, "GET", f"/apps/{strict['app']}")
    assert headers.get("Dyno-Manifold") is None
    assert "idle_timeout" not in app
    _, dyno_ = api(strict, "POST", f"/apps/{strict['app']}/dynos", {"command": "true", "attach": False,
                                                                     "exit_status": True})
    assert "exit_code" not in dyno_
    with pytest.raises(urllib.error.HTTPError) as missing:
        api(strict, "GET", "/manifold")
    assert missing.value.code == 404


def test_our_client_on_heroku_uses_the_exit_status_sentinel(strict):
    client, app = strict["client"], strict["app"]
    done = dyno(client, "run", "-a", app, "--", "echo on-heroku; false")
    assert done.returncode == 1, done.stderr
    assert done.stdout.replace("\r\n", "\n") == "on-heroku\n"  # the sentinel line is stripped
    assert "Process exited with code 1" in done.stderr
    ok = dyno(client, "run", "--no-tty", "-a", app, "--", "echo fine")
    assert ok.returncode == 0 and ok.stdout == "fine\n"
    detached = dyno(client, "run:detached", "-a", app, "--", "echo logged")
    name = detached.stderr.strip().rsplit(" ", 1)[-1]
    wait_for(lambda: "logged" in dyno(client, "logs", "-a", app, "-d", name).stdout, message="the log line")
    assert dyno(client, "ps", "-a", app).returncode == 0


def test_unattached_rendezvous_expires_with_r13(strict):
    _, created = api(strict, "POST", f"/apps/{strict['app']}/dynos", {"command": "echo never", "attach": True})
    name = created["name"]
    assert created["attach_url"].startswith("rendezvous://127.0.0.1:")

    def logs() -> str:
        return dyno(strict["env"], "logs", "-a", strict["app"], "-d", name).stdout
    wait_for(lambda: "Error R13 (Attach error) -> Failed to attach to process" in logs(), timeout=10,
             message="R13")
    text = logs()
    assert text.index("Awaiting client") < text.index("Error R13")
    # the secret is dead now: connecting with it gets no banner
    from dynokernel.platform.rendezvous import AttachError, connect
    with pytest.raises(AttachError):
        connect(created["attach_url"], str(Path(strict["env"]["DYNO_HOME"]) / "tls" / "ca.pem"), timeout=5)


# --listen between two network namespaces ----------------------------------------------------
def _can_netns() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture(scope="module")
def two_machines():
    if not _can_netns():
        pytest.skip("needs root and iproute2 for network namespaces")
    tag = uuid.uuid4().hex[:6]
    server, laptop = f"dks{tag}", f"dkl{tag}"
    veth_s, veth_l = f"vs{tag}", f"vl{tag}"
    commands = [
        ["ip", "netns", "add", server], ["ip", "netns", "add", laptop],
        ["ip", "link", "add", veth_s, "type", "veth", "peer", "name", veth_l],
        ["ip", "link", "set", veth_s, "netns", server], ["ip", "link", "set", veth_l, "netns", laptop],
        ["ip", "-n", server, "addr", "add", "10.213.7.1/30", "dev", veth_s],
        ["ip", "-n", laptop, "addr", "add", "10.213.7.2/30", "dev", veth_l],
        ["ip", "-n", server, "link", "set", veth_s, "up"], ["ip", "-n", laptop, "link", "set", veth_l, "up"],
        ["ip", "-n", server, "link", "set", "lo", "up"], ["ip", "-n", laptop, "link", "set", "lo", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        for ns in (server, laptop):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"network namespaces unavailable: {exc.stderr!r}")
    yield server, laptop, "10.213.7.1"
    for ns in (server, laptop):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_listen_serves_a_remote_client_over_tls(two_machines, tmp_path):
    server_ns, laptop_ns, address = two_machines
    server = base_env(tmp_path / "server")
    app = "r-" + uuid.uuid4().hex[:8]
    start_with_app(server, app, server_ns, "--listen", f"{address}:7443")
    try:
        info = json.loads((tmp_path / "server" / "manifold.json").read_text())
        assert info["listen_url"] == f"https://{address}:7443"
        ca = str(tmp_path / "server" / "tls" / "ca.pem")
        token = (tmp_path / "server" / "token").read_text().strip()
        laptop = base_env(tmp_path / "laptop", DYNO_API_URL=info["listen_url"], DYNO_API_KEY=token, DYNO_CA_CERT=ca)
        done = dyno(laptop, "run", "-a", app, "--", "echo remote $DYNO; exit 5", netns=laptop_ns)
        assert done.returncode == 5, done.stderr
        assert done.stdout.replace("\r\n", "\n").startswith("remote run.")
        piped = dyno(laptop, "run", "-a", app, "cat", input="through the veth\n", netns=laptop_ns)
        assert "through the veth" in piped.stdout
        logs = dyno(laptop, "logs", "-a", app, "-n", "50", netns=laptop_ns)
        assert "Starting process with command `echo remote $DYNO; exit 5`" in logs.stdout
        assert dyno(laptop, "ps", "-a", app, netns=laptop_ns).returncode == 0
        # the token is required, TLS is required, and the laptop never got a local manifold
        wrong = dict(laptop, DYNO_API_KEY="wrong")
        refused = dyno(wrong, "ps", "-a", app, netns=laptop_ns)
        assert refused.returncode != 0 and "Invalid credentials" in refused.stderr
        plain = dyno(dict(laptop, DYNO_API_URL=f"http://{address}:7443"), "ps", "-a", app, netns=laptop_ns)
        assert plain.returncode != 0
        untrusted = dyno(dict(laptop, DYNO_CA_CERT="/etc/ssl/certs/ca-certificates.crt"), "ps", "-a", app,
                         netns=laptop_ns)
        assert untrusted.returncode != 0
        assert not (tmp_path / "laptop" / "manifold.json").exists()
        # the loopback API is not reachable from the other machine
        local_port = info["api_port"]
        probe = subprocess.run(["ip", "netns", "exec", laptop_ns, sys.executable, "-c",
                                f"import socket; socket.create_connection(('{address}', {local_port}), 3)"],
                               capture_output=True)
        assert probe.returncode != 0
    finally:
        dyno(server, "manifold:stop", netns=server_ns, timeout=90)
