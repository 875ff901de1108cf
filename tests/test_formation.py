"""The formation through the real CLI and manifold: ps:scale runs web.N/worker.N, crashes restart with
Heroku's back-off, R10 for a web dyno that never binds $PORT, releases restart it, it survives restarts."""
from __future__ import annotations

import json
import re

import pytest

from conftest import kill_pid, start_manifold
from heroku_fixtures import wait_for

PROCFILE = {
    "Procfile": "web: python3 -m http.server --bind 127.0.0.1 $PORT\n"
                "worker: python3 -u -c \"import os, time; print('working', os.environ['DYNO']); time.sleep(1000)\"\n"
                "crasher: python3 -c \"print('bye')\"\n"
                "sleepyweb: sleep 1000\n",
}


@pytest.fixture(scope="module")
def manifold(tmp_path_factory):
    running = start_manifold(tmp_path_factory.mktemp("formationhome"),
                             {"DYNO_RESTART_BACKOFF": "0.5", "DYNO_BOOT_TIMEOUT": "1"})
    yield running
    running.stop()


def ps(app) -> dict[str, str]:
    """Dyno name -> state, from `dyno ps --json`."""
    return {d["name"]: d["state"] for d in json.loads(app.dyno("ps", "--json").stdout)}


def states_become(app, wanted: dict[str, str], timeout: float = 20) -> None:
    wait_for(lambda: ps(app) == wanted, timeout=timeout, message=f"ps to show {wanted}")


def logs(app) -> str:
    return app.dyno("logs", "-n", "1000").stdout


def test_scale_up_and_down_and_group_in_ps(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=PROCFILE)
    scaled = app.dyno("ps:scale", "web=2", "worker=1")
    assert scaled.returncode == 0, scaled.stderr
    assert "now running web at 2:Basic, worker at 1:Basic" in scaled.stderr
    states_become(app, {"web.1": "up", "web.2": "up", "worker.1": "up"})
    text = app.dyno("ps").stdout
    assert re.search(r"^=== web \(Basic\): python3 -m http\.server --bind 127\.0\.0\.1 \$PORT \(2\)$", text, re.M)
    assert re.search(r"^web\.2: up \d{4}/\d\d/\d\d ", text, re.M) and "=== worker (Basic)" in text
    wait_for(lambda: "app[worker.1]: working worker.1" in logs(app), message="the worker's output in the logs")
    assert app.dyno("ps:scale", "web-1").returncode == 0
    states_become(app, {"web.1": "up", "worker.1": "up"})
    assert app.dyno("ps:scale", "worker=0", "web=0").returncode == 0
    states_become(app, {})
    unknown = app.dyno("ps:scale", "nope=1")
    assert unknown.returncode != 0 and "Couldn't find that process type (nope)." in unknown.stderr
    bad = app.dyno("ps:scale", "web=two")
    assert bad.returncode != 0 and "Invalid argument 'web=two'" in bad.stderr and "Traceback" not in bad.stderr


def test_ps_type_resizes_and_restarts_that_type(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=PROCFILE)
    assert app.dyno("ps:scale", "worker=1").returncode == 0
    states_become(app, {"worker.1": "up"})
    resized = app.dyno("ps:type", "worker=Standard-2X")
    assert resized.returncode == 0, resized.stderr
    assert re.search(r"^\s*worker\s+Standard-2X\s+1\s*$", resized.stdout, re.M), resized.stdout  # any renderer
    wait_for(lambda: [d for d in json.loads(app.dyno("ps", "--json").stdout)
                      if d["size"] == "Standard-2X" and d["state"] == "up"], message="worker.1 at its new size")
    wrong = app.dyno("ps:type", "worker=Huge")
    assert wrong.returncode != 0 and "Invalid dyno size 'Huge'" in wrong.stderr
    assert app.dyno("ps:scale", "worker=0").returncode == 0


def test_a_crashing_dyno_restarts_at_once_then_backs_off(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=PROCFILE)
    assert app.dyno("ps:scale", "crasher=1").returncode == 0
    wait_for(lambda: logs(app).count("crasher.1]: State changed from crashed to starting") >= 3, timeout=20,
             message="three restarts")
    text = logs(app)
    assert "heroku[crasher.1]: Process exited with status 0" in text  # exit 0 is a crash too
    assert "heroku[crasher.1]: State changed from up to crashed" in text
    assert ps(app).get("crasher.1") in ("crashed", "starting", "up")
    starts = [float(m) for m in re.findall(r"^\S+T\d\d:\d\d:(\d\d\.\d+)\+00:00 heroku\[crasher\.1\]: State changed "
                                           r"from crashed to starting", text, re.M)][:3]
    crashes = [float(m) for m in re.findall(r"^\S+T\d\d:\d\d:(\d\d\.\d+)\+00:00 heroku\[crasher\.1\]: State changed "
                                            r"from up to crashed", text, re.M)][:3]
    gaps = [(s - c) % 60 for s, c in zip(starts, crashes)]
    assert gaps[0] < 0.4 and gaps[1] >= 0.45 and gaps[2] >= 0.95, gaps  # 0, then 0.5 s, then 1 s
    assert app.dyno("ps:scale", "crasher=0").returncode == 0
    states_become(app, {})


def test_a_web_dyno_that_never_binds_its_port_gets_r10(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 1000\n"})
    assert app.dyno("ps:scale", "web=1").returncode == 0
    wait_for(lambda: "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 1 seconds of launch"
             in logs(app), message="R10")
    wait_for(lambda: "heroku[web.1]: State changed from starting to crashed" in logs(app), message="the crash")
    assert "heroku[web.1]: State changed from starting to up" not in logs(app)
    assert app.dyno("ps:scale", "web=0").returncode == 0


def test_stop_restart_and_a_new_release_bring_dynos_back(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=PROCFILE)
    assert app.dyno("ps:scale", "worker=1").returncode == 0
    states_become(app, {"worker.1": "up"})
    first = json.loads(app.dyno("ps", "--json").stdout)[0]
    assert app.dyno("ps:stop", "worker.1").returncode == 0  # a formation dyno comes back, as on Heroku
    again = wait_for(lambda: [d for d in json.loads(app.dyno("ps", "--json").stdout)
                              if d["id"] != first["id"] and d["state"] == "up"], message="a new worker.1")
    assert again[0]["name"] == "worker.1"
    assert app.dyno("config:set", "GREETING=hi").returncode == 0
    newest = wait_for(lambda: [d for d in json.loads(app.dyno("ps", "--json").stdout)
                               if d["state"] == "up" and d["release"]["version"] == again[0]["release"]["version"] + 1],
                      message="worker.1 on the new release")
    ran = app.dyno("run", "--no-tty", "echo $GREETING")
    assert ran.stdout.strip().endswith("hi") and newest[0]["name"] == "worker.1"
    assert app.dyno("ps:restart", "-p", "worker").returncode == 0
    wait_for(lambda: logs(app).count("heroku[worker.1]: Starting process") >= 4, message="the restart")
    assert app.dyno("ps:scale", "worker=0").returncode == 0


def test_the_formation_survives_a_manifold_restart_and_a_crash(tmp_path):
    manifold = start_manifold(tmp_path / "home")
    try:
        app = manifold.new_app(tmp_path, files=PROCFILE)
        assert app.dyno("ps:scale", "web=1", "worker=1").returncode == 0
        states_become(app, {"web.1": "up", "worker.1": "up"})
        manifold.stop()
        manifold.start()
        states_become(app, {"web.1": "up", "worker.1": "up"})
        kill_pid(manifold.info["pid"])
        wait_for(lambda: manifold.dyno("manifold:status").returncode != 0, message="the manifold to be gone")
        states_become(app, {"web.1": "up", "worker.1": "up"})  # the next command starts a new manifold
        assert "The manifold restarted and lost this dyno's connection" in logs(app)
    finally:
        manifold.stop()


RELEASE_APP = {
    "Procfile": "release: echo migrating $HEROKU_RELEASE_VERSION; exit ${FAIL_RELEASE:-0}\n"
                "worker: python3 -u -c \"import os, time; print('on', os.environ['HEROKU_RELEASE_VERSION']); "
                "time.sleep(1000)\"\n",
}


def test_release_phase_gates_the_release(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files=RELEASE_APP)  # v1: its release phase ran and succeeded
    assert "app[release.1001]: migrating v1" in logs(app)
    assert app.dyno("ps:scale", "worker=1").returncode == 0
    wait_for(lambda: "app[worker.1]: on v1" in logs(app), message="the worker on v1")

    assert app.dyno("config:set", "FAIL_RELEASE=3").returncode == 0  # v2: its release command fails
    failed = app.dyno("deploy")  # v3: fails too
    assert failed.returncode != 0, failed.stderr
    assert "Release phase (release.1003):\n  migrating v3" in failed.stderr
    assert "Release v3 failed: its release command exited with status 3; the app stays on its previous release" \
        in failed.stderr
    releases = app.dyno("releases").stdout
    assert re.search(r"Current: v1$", releases.splitlines()[0])
    assert re.search(r"^\s*v3\s+Deploy \w+ release command failed", releases, re.M)  # any table renderer
    assert app.dyno("run", "--no-tty", "echo $HEROKU_RELEASE_VERSION").stdout.strip().endswith("v1")
    assert [d["release"]["version"] for d in json.loads(app.dyno("ps", "--json").stdout) if d["state"] == "up"] == [1]

    assert app.dyno("config:unset", "FAIL_RELEASE").returncode == 0  # v4: succeeds, the formation moves on
    wait_for(lambda: "app[worker.1]: on v4" in logs(app), message="the worker restarted on v4")
    assert "Release v4 succeeded" in logs(app)
    assert app.dyno("ps:scale", "worker=0").returncode == 0


def test_formation_dynos_are_cycled(tmp_path):
    manifold = start_manifold(tmp_path / "home", {"DYNO_CYCLE_INTERVAL": "1"})
    try:
        app = manifold.new_app(tmp_path, files=PROCFILE)
        assert app.dyno("ps:scale", "worker=1").returncode == 0
        wait_for(lambda: logs(app).count("heroku[worker.1]: Starting process") >= 2, message="a cycled worker.1")
        text = logs(app)
        assert "heroku[worker.1]: Cycling" in text and "heroku[worker.1]: State changed from up to crashed" not in text
        states_become(app, {"worker.1": "up"})
    finally:
        manifold.stop()
