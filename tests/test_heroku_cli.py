"""The real Heroku CLI (heroku@11.10.0) against the manifold, in the offline `dyno heroku-env`.

Each command's stdout, stderr and exit status are checked; where `dyno` has the same command,
its output must be identical (ages masked). One test runs the CLI under strace and asserts it
connected to nothing but loopback.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from heroku_fixtures import HerokuManifold, normalize, wait_for


@pytest.fixture(scope="module")
def hm(tmp_path_factory):
    manifold = HerokuManifold(tmp_path_factory.mktemp("heroku") / "home").start()
    yield manifold
    manifold.stop()


def detached(hm: HerokuManifold, command: str) -> str:
    """Start a detached dyno through our client (fast); returns its name."""
    return hm.dyno_api("POST", f"/apps/{hm.app}/dynos", {"command": command, "attach": False})["name"]


def gone(hm: HerokuManifold, name: str) -> bool:
    return all(d["name"] != name for d in hm.dynos())


# the environment --------------------------------------------------------------------
def test_heroku_env_exports_an_offline_environment(hm):
    lines = hm.exports.strip().splitlines()
    assert all(line.startswith("export ") for line in lines)
    env = hm.heroku_env
    assert env["HEROKU_HOST"] == hm.api_url and env["HEROKU_PARTICLEBOARD_URL"] == hm.api_url
    assert env["HEROKU_API_KEY"] == hm.token
    assert env["NODE_EXTRA_CA_CERTS"].endswith("tls/ca.pem")
    assert env["DISABLE_TELEMETRY"] == "true" and env["HEROKU_DISABLE_AUTOUPDATE"] == "1"
    for key in ("HEROKU_CACHE_DIR", "HEROKU_DATA_DIR", "HEROKU_CONFIG_DIR", "GIT_CONFIG_GLOBAL"):
        assert env[key].startswith(str(hm.home))
    evaluated = subprocess.run(["bash", "-c", hm.exports + '\necho "$HEROKU_HOST"'], capture_output=True, text=True)
    assert evaluated.stdout.strip() == hm.api_url


# heroku run -------------------------------------------------------------------------
def test_run_exit_code_flag(hm):
    done = hm.heroku("run", "-x", "-a", hm.app, "--", "echo out; exit 3")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "out\n"
    assert "Error: Process exited with code 3" in done.stderr
    assert re.search(r"up, run\.\d+", done.stderr)
    body = json.loads(hm.requests("POST", "/dynos")[-1]["body"])
    assert body["command"].endswith('; echo "\uFFFF heroku-command-exit-status: $?"') and body["attach"] is True
    without = hm.heroku("run", "-a", hm.app, "--", "exit 3")  # no -x: heroku run exits 0
    assert without.returncode == 0, without.stderr


def test_run_bash_with_piped_stdin_exits(hm):
    # the EOF (\x04) must not be lost while bash runs a command in canonical mode
    done = hm.heroku("run", "-x", "-a", hm.app, "bash", input="echo hi; exit 3\n", timeout=20)
    assert done.returncode == 3, done.stderr
    assert "hi\n" in done.stdout
    done = hm.heroku("run", "-a", hm.app, "bash", input="ls\n", timeout=20)
    assert done.returncode == 0 and "Procfile" in done.stdout
    cat = hm.heroku("run", "-x", "-a", hm.app, "cat", input="hi\n", timeout=20)
    assert cat.returncode == 0, cat.stderr
    assert cat.stdout.count("hi\n") == 2  # the pty's echo, then cat's copy


def test_run_no_tty_env_size_and_type(hm):
    hm.mark_requests()
    done = hm.heroku("run", "--no-tty", "--env", "A=1;B=2", "--size", "Standard-2X", "-a", hm.app, "--",
                     "echo $A$B $DYNO; tty")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("12 run.")
    assert "not a tty" in done.stdout
    body = json.loads(hm.requests("POST", "/dynos")[-1]["body"])
    assert body["force_no_tty"] is True and body["size"] == "Standard-2X"
    assert body["env"] == {"A": "1", "B": "2", "TERM": body["env"]["TERM"]} or body["env"]["A"] == "1"
    typed = hm.heroku("run", "--type", "worker", "-a", hm.app, "--", "echo $DYNO")
    assert typed.returncode == 0 and typed.stdout.startswith("worker.")


def test_run_procfile_type_with_args(hm):
    done = hm.heroku("run", "-a", hm.app, "myworker", "42")
    assert done.returncode == 0, done.stderr
    assert "42" in done.stdout
    start = [line for line in hm.logs().splitlines() if "Starting process with command `python3 dowork.py 42`" in line]
    assert start


def test_run_on_a_terminal(hm):
    status, output = hm.heroku_tty("run", "-a", hm.app, "--", "tty; echo cols=$COLUMNS lines=$LINES")
    assert status == 0, output
    assert "cols=120 lines=40" in output
    assert "not a tty" not in output
    status, output = hm.heroku_tty("run", "-a", hm.app, "cat", keys=b"typed\r\x04")
    assert status == 0 and "typed" in output


# run:detached and logs ---------------------------------------------------------------
def test_run_detached_then_logs(hm):
    done = hm.heroku("run:detached", "-a", hm.app, "--", "echo detached-output")
    assert done.returncode == 0, done.stderr
    name = re.search(r"done, (run\.\d+)", done.stderr).group(1)
    assert done.stderr.endswith(f"Running echo detached-output on {hm.app}... done, {name}\n")
    assert done.stdout == f"Run heroku logs --app {hm.app} --dyno {name} to view the output.\n\n"
    wait_for(lambda: f"heroku[{name}]: State changed from up to complete" in hm.logs(), message="the dyno to end")
    logs = hm.heroku("logs", "-a", hm.app, "-d", name)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert any(re.fullmatch(rf"\S+ app\[{re.escape(name)}\]: detached-output", line) for line in lines)
    assert all(f"[{name}]" in line for line in lines)
    one = hm.heroku("logs", "-a", hm.app, "-n", "1", "-s", "app", "-p", name)
    assert one.stdout.splitlines() == [next(l for l in lines if "app[" in l)]
    assert json.loads(hm.requests("POST", "/log-sessions")[-1]["body"]) == \
        {"dyno": name, "lines": 1, "source": "app", "tail": False}
    ours = hm.dyno("logs", "-a", hm.app, "-d", name)
    assert ours.stdout == logs.stdout


def test_logs_tail_shows_a_detached_dynos_line_within_a_second(hm):
    tail = subprocess.Popen(hm.heroku_argv(("logs", "--tail", "-a", hm.app, "-n", "1")), cwd=hm.home,
                            env=hm.cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        tail.stdout.readline()  # the history line: the stream is open
        started = time.monotonic()
        name = detached(hm, "echo tailed-line")
        while True:
            line = tail.stdout.readline()
            assert line, "the tail ended"
            if f"app[{name}]: tailed-line" in line:
                break
        assert time.monotonic() - started < 1.0
    finally:
        tail.kill()
        tail.wait()


def test_run_detached_tail(hm):
    proc = subprocess.Popen(hm.heroku_argv(("run:detached", "--tail", "-a", hm.app, "--", "echo via-tail")),
                            cwd=hm.home, env=hm.cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while not any("app[run." in line and "via-tail" in line for line in seen):
            line = proc.stdout.readline()
            assert line, "the tail ended"
            seen.append(line)
    finally:
        proc.kill()
        proc.wait()
    body = json.loads(hm.requests("POST", "/log-sessions")[-1]["body"])
    assert body["tail"] is True and body["dyno"].startswith("run.")


# ps, ps:stop, ps:restart, ps:scale -----------------------------------------------------
def test_ps_and_stop(hm):
    name = detached(hm, "sleep 120")
    ps = hm.heroku("ps", "-a", hm.app)
    assert ps.returncode == 0, ps.stderr
    assert re.search(rf"^=== run: one-off processes \(\d+\)\n\n(.*\n)*{re.escape(name)} \(Basic\): up "
                     r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \+0000 \(~ \d+s ago\): sleep 120\n", ps.stdout, re.M)
    assert ps.stdout.endswith("\n\n")
    assert normalize(hm.dyno("ps", "-a", hm.app).stdout) == normalize(ps.stdout)
    as_json = json.loads(hm.heroku("ps", "--json", "-a", hm.app).stdout)
    assert any(d["name"] == name and d["state"] == "up" for d in as_json)
    stop = hm.heroku("ps:stop", "-d", name, "-a", hm.app)
    assert stop.returncode == 0, stop.stderr
    assert stop.stderr == f"Stopping dyno {name} on {hm.app}... done\n"
    wait_for(lambda: gone(hm, name), message=f"{name} to stop")
    assert name not in hm.heroku("ps", "-a", hm.app).stdout


def test_ps_kill_process_type_and_restart(hm):
    first, second = detached(hm, "sleep 120"), detached(hm, "sleep 121")
    kill = hm.heroku("ps:kill", "-p", "run", "-a", hm.app)
    assert kill.returncode == 0 and kill.stderr == f"Stopping all run dynos on {hm.app}... done\n"
    assert hm.requests("POST", "/formations/run/actions/stop")
    wait_for(lambda: gone(hm, first) and gone(hm, second), message="the run dynos to stop")
    assert hm.heroku("ps", "-a", hm.app).stdout == f"No dynos on {hm.app}\n"
    restart = hm.heroku("ps:restart", "-a", hm.app)
    assert restart.returncode == 0 and restart.stderr == f"Restarting all dynos on {hm.app}... done\n"
    assert hm.requests("DELETE", f"/apps/{hm.app}/dynos")
    restart = hm.heroku("ps:restart", "-p", "web", "-a", hm.app)
    assert restart.returncode == 0 and restart.stderr == f"Restarting all web dynos on {hm.app}... done\n"
    missing = hm.heroku("ps:stop", "-p", "nope", "-a", hm.app)
    assert missing.returncode != 0 and "Couldn't find that process type (nope)." in missing.stderr


def test_ps_scale(hm):
    hm.mark_requests()
    scale = hm.heroku("ps:scale", "web=2", "worker+1:Standard-2X", "-a", hm.app)
    assert scale.returncode == 0, scale.stderr
    assert scale.stderr == "Scaling dynos... done, now running web at 2:Basic, worker at 1:Standard-2X\n"
    assert json.loads(hm.requests("PATCH", "/formation")[-1]["body"]) == {"updates": [
        {"quantity": "2", "type": "web"}, {"quantity": "+1", "size": "Standard-2X", "type": "worker"}]}
    shown = hm.heroku("ps:scale", "-a", hm.app)
    assert shown.stdout == "myworker=0:Basic web=2:Basic worker=1:Standard-2X\n"
    assert hm.dyno("ps:scale", "-a", hm.app).stdout == shown.stdout
    assert "Scaled to web@2:Basic" in hm.logs()
    hm.heroku("ps:scale", "web=0", "worker=0", "-a", hm.app)


# config, releases, apps:info ------------------------------------------------------------
def test_config_commands(hm):
    done = hm.heroku("config:set", "GREETING=hello world", "Q=it's", "-a", hm.app)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"Setting GREETING, Q and restarting {hm.app}\.\.\. done, v\d+\n", done.stderr)
    assert done.stdout == "GREETING: hello world\nQ:        it's\n"
    config = hm.heroku("config", "-a", hm.app)
    assert config.stdout.startswith(f"=== {hm.app} Config Vars\n\n")
    assert re.search(r"^GREETING: +hello world$", config.stdout, re.M)  # aligned with DATABASE_URL (add-on)
    assert hm.dyno("config", "-a", hm.app).stdout == config.stdout
    shell = hm.heroku("config", "--shell", "-a", hm.app)
    assert "GREETING='hello world'\n" in shell.stdout and 'Q="it\'s"\n' in shell.stdout
    assert hm.dyno("config", "--shell", "-a", hm.app).stdout == shell.stdout
    get = hm.heroku("config:get", "GREETING", "-a", hm.app)
    assert get.stdout == "hello world\n" and hm.dyno("config:get", "GREETING", "-a", hm.app).stdout == get.stdout
    run = hm.heroku("run", "-a", hm.app, "--", "echo $GREETING")
    assert run.stdout == "hello world\n"
    unset = hm.heroku("config:unset", "GREETING", "-a", hm.app)
    assert re.fullmatch(rf"Unsetting GREETING and restarting {hm.app}\.\.\. done, v\d+\n", unset.stderr)
    assert hm.heroku("config:get", "GREETING", "-a", hm.app).stdout == "\n"


def test_addons_and_their_config_match_dyno(hm):
    """The sample app got a database add-on on its first deploy (PostgreSQL where installed)."""
    addons = hm.heroku("addons", "-a", hm.app)
    assert addons.returncode == 0, addons.stderr
    (addon,) = hm.dyno_api("GET", f"/apps/{hm.app}/addons")
    service = addon["addon_service"]["name"]
    assert f"{service} ({addon['name']})" in addons.stdout and "\u2514\u2500 as DATABASE" in addons.stdout
    assert hm.dyno("addons", "-a", hm.app).stdout == addons.stdout
    for wanted in ("DATABASE", addon["name"]):
        info = hm.heroku("addons:info", wanted, "-a", hm.app)
        assert info.returncode == 0 and info.stdout.startswith(f"=== {addon['name']}\n"), info.stderr
        assert f"Attachments:  {hm.app}::DATABASE\n" in info.stdout
        assert hm.dyno("addons:info", wanted, "-a", hm.app).stdout == info.stdout
    unknown = hm.heroku("addons:info", "no-such-addon", "-a", hm.app)
    assert unknown.returncode != 0 and "Couldn't find that add-on: no-such-addon." in unknown.stderr
    config = hm.heroku("config:get", "DATABASE_URL", "-a", hm.app)
    assert config.stdout.startswith("postgres://" if service == "heroku-postgresql" else "sqlite3:///")


def test_releases_and_apps_info_match_dyno(hm):
    releases = hm.heroku("releases", "-a", hm.app)
    assert releases.returncode == 0, releases.stderr
    lines = releases.stdout.splitlines()
    assert re.fullmatch(rf"=== {hm.app} Releases - Current: v\d+", lines[0])
    assert lines[2].split() == ["v", "description", "user", "created_at"]
    assert set(lines[3].strip()) == ({"-"} if any(k.startswith("CI") for k in os.environ) else {"\u2500"})
    assert normalize(hm.dyno("releases", "-a", hm.app).stdout) == normalize(releases.stdout)
    two = hm.heroku("releases", "-n", "2", "-a", hm.app)
    assert len(two.stdout.strip().splitlines()) == 4 + 2
    assert hm.requests("GET", "/releases")[-1]["headers"]["Range"] == "version ..; max=2, order=desc"
    info = hm.heroku("apps:info", "-a", hm.app)
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith(f"=== {hm.app}\n\n") and "Stack:          heroku-24\n" in info.stdout
    assert hm.dyno("apps:info", "-a", hm.app).stdout == info.stdout


# security and the network --------------------------------------------------------------
def test_bad_token_is_refused(hm):
    done = hm.heroku("ps", "-a", hm.app, env={"HEROKU_API_KEY": "wrong"})
    assert done.returncode != 0
    assert "The token provided to HEROKU_API_KEY is invalid" in done.stderr
    refused = [r for r in hm.requests("GET", f"/apps/{hm.app}") if r["auth"]]
    assert refused
    import urllib.error
    import urllib.request
    request = urllib.request.Request(f"{hm.api_url}/apps/{hm.app}", headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as unauthorized:
        urllib.request.urlopen(request, timeout=5)
    assert unauthorized.value.code == 401
    assert json.loads(unauthorized.value.read()) == {"id": "unauthorized", "message": "Invalid credentials provided."}
    # a log stream URL is its own credential: a made-up one is refused
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(hm.api_url + "/log-streams/not-a-real-session", timeout=5)
    assert refused.value.code == 404


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_cli_connects_only_to_loopback(hm, tmp_path):
    trace = tmp_path / "trace"
    for args in (("run", "-a", hm.app, "--", "echo traced"), ("ps", "-a", hm.app), ("logs", "-a", hm.app, "-n", "5")):
        done = hm.heroku(*args, wrapper=["strace", "-f", "-qq", "-e", "trace=connect,sendto", "-o", str(trace)])
        assert done.returncode == 0, done.stderr
        calls = [line for line in trace.read_text().splitlines() if "connect(" in line or "sendto(" in line]
        inet = [line for line in calls if "AF_INET" in line]
        assert inet, calls  # it did talk to the manifold
        for line in inet:
            assert re.search(r'inet_addr\("127\.0\.0\.1"\)|inet_pton\(AF_INET6, "::1"|"::ffff:127\.0\.0\.1"', line), line
        assert not any("sin_port=htons(53)" in line for line in calls)  # no DNS
