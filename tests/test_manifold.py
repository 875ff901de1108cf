"""The manifold as a server: apps, releases, config vars, the API's errors, restarts."""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
from pathlib import Path


from conftest import AppDir, Manifold, kill_pid, start_manifold


def api(manifold: Manifold, method: str, path: str, body: bytes | None = None, token: str | None = "ok"):
    conn = http.client.HTTPConnection("127.0.0.1", manifold.info["api_port"], timeout=10)
    headers = {"Accept": "application/vnd.heroku+json; version=3", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {manifold.token if token == 'ok' else token}"
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def test_token_file_is_private_and_required(manifold: Manifold):
    assert (manifold.home / "token").stat().st_mode & 0o777 == 0o600
    assert api(manifold, "GET", "/apps", token=None) == (401, {"id": "unauthorized",
                                                              "message": "Invalid credentials provided."})
    assert api(manifold, "GET", "/apps", token="wrong")[0] == 401
    assert api(manifold, "GET", "/apps")[0] == 200


def test_api_errors_are_heroku_shaped(manifold: Manifold, app: AppDir):
    assert api(manifold, "GET", "/apps/no-such-app") == (404, {"id": "not_found", "message": "Couldn't find that app."})
    status, body = api(manifold, "POST", f"/apps/{app.name}/dynos", b"{not json")
    assert (status, body["id"]) == (400, "bad_request")
    status, body = api(manifold, "POST", f"/apps/{app.name}/dynos", b'{"attach": false}')
    assert (status, body["id"], body["message"]) == (422, "invalid_params", "command must be a non-empty string")
    status, body = api(manifold, "POST", f"/apps/{app.name}/dynos", b'{"command": "x", "size": "huge"}')
    assert status == 422 and "Invalid dyno size" in body["message"]
    status, body = api(manifold, "POST", f"/apps/{app.name}/dynos", b'{"command": "x", "time_to_live": 0}')
    assert status == 422 and "time_to_live" in body["message"]
    status, body = api(manifold, "GET", f"/apps/{app.name}/dynos/run.999")
    assert (status, body["id"]) == (404, "not_found")
    assert api(manifold, "GET", "/no/such/endpoint")[0] == 404
    status, body = api(manifold, "POST", "/apps", b'{"name": "Bad_Name"}')
    assert status == 422 and "lowercase letters" in body["message"]


def test_cli_bad_input_gives_one_line_errors(manifold: Manifold, app: AppDir):
    cases = [
        (("ps", "-a", "no-such-app"), "Couldn't find that app."),
        (("ps:stop", "-a", app.name, "run.999"), "Couldn't find that dyno"),
        (("ps:stop", "-a", app.name, "-p", "nosuchtype"), "Couldn't find that process type"),
        (("run", "-a", app.name, "--env", "A=1;broken", "true"), "Invalid --env"),
        (("run", "-a", app.name), "command to run is required"),
        (("run", "-a", app.name, "   "), "command to run is required"),
        (("logs", "-a", app.name, "--num", "many"), "invalid int value"),
        (("ps", "--no-such-flag"), "unrecognized arguments"),
        (("no-such-command",), "is not a dyno command"),
    ]
    for args, message in cases:
        done = manifold.dyno(*args)
        assert done.returncode != 0, args
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_deploy_rejects_malformed_procfile_and_env(manifold: Manifold, app: AppDir):
    (app.dir / "Procfile").write_text("web: ok\nthis line is wrong\n")
    done = app.dyno("deploy")
    assert done.returncode != 0 and "Procfile line 2" in done.stderr
    (app.dir / "Procfile").write_text("web: ok\n")
    (app.dir / ".env").write_text('GOOD=1\nBAD="unterminated\n')
    done = app.dyno("deploy")
    assert done.returncode != 0 and ".env line 2" in done.stderr
    (app.dir / ".env").write_text("FROM_DOTENV=dotenv value\n")
    assert app.dyno("deploy").returncode == 0
    assert app.dyno("run", "echo $FROM_DOTENV").stdout.strip() == "dotenv value"


def test_releases_and_config_vars(manifold: Manifold, app: AppDir):
    assert "Deploy" in app.dyno("releases").stdout
    done = app.dyno("config:set", "A=1", "LONGER=two words")
    assert done.returncode == 0 and re.search(r"done, v2$", done.stderr.strip())
    assert app.dyno("config:get", "LONGER").stdout == "two words\n"
    assert json.loads(app.dyno("config", "--json").stdout) == {"A": "1", "LONGER": "two words"}
    assert app.dyno("config:unset", "A").returncode == 0
    assert json.loads(app.dyno("config", "--json").stdout) == {"LONGER": "two words"}
    releases = json.loads(app.dyno("releases", "--json").stdout)
    assert [r["version"] for r in releases] == [3, 2, 1]
    assert [r["description"] for r in releases[:2]] == ["Remove A config vars", "Set A, LONGER config vars"]
    assert app.dyno("run", "echo ${A:-unset} $LONGER").stdout.strip() == "unset two words"


def test_app_resolution_order(manifold: Manifold, app: AppDir, tmp_path: Path):
    nested = app.dir / "sub" / "dir"
    nested.mkdir(parents=True)
    assert manifold.dyno("run", "echo $HEROKU_APP_NAME", cwd=nested).stdout.strip() == app.name
    other = manifold.new_app(tmp_path)
    assert manifold.dyno("run", "echo $HEROKU_APP_NAME", cwd=nested,
                         env={"DYNO_APP": other.name}).stdout.strip() == other.name
    assert manifold.dyno("run", "-a", app.name, "echo $HEROKU_APP_NAME", cwd=nested,
                         env={"DYNO_APP": other.name}).stdout.strip() == app.name


def test_unlinked_directory_is_linked_and_deployed_on_first_run(manifold: Manifold, tmp_path: Path):
    directory = tmp_path / "Fresh_App"
    directory.mkdir()
    (directory / "hello.txt").write_text("hi\n")
    done = manifold.dyno("run", "cat hello.txt; echo $HEROKU_APP_NAME", cwd=directory)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hi", "fresh-app"]
    assert "Deploying" in done.stderr and "done, v1" in done.stderr
    assert manifold.dyno("ps", cwd=directory / ".").returncode == 0


def test_manifold_status(manifold: Manifold):
    done = manifold.dyno("manifold:status")
    assert done.returncode == 0
    assert f"pid {manifold.info['pid']}" in done.stdout and "Sandbox:" in done.stdout


def test_manifold_killed_while_dynos_run(tmp_path: Path):
    crashing = start_manifold(tmp_path / "home")
    try:
        app = crashing.new_app(tmp_path)
        started = app.dyno("run:detached", "sleep 901.901")
        name = re.search(r"done, (run\.\d+)", started.stderr).group(1)
        old_pid = crashing.info["pid"]
        kill_pid(old_pid)
        _wait_gone(old_pid)
        ps = app.dyno("ps")  # the next command starts a new manifold
        assert ps.returncode == 0 and crashing.info["pid"] != old_pid
        assert ps.stdout.strip() == f"No dynos on {app.name}"  # piped: no colours, no hexagon
        assert api(crashing, "GET", f"/apps/{app.name}/dynos/{name}")[1]["state"] == "crashed"
        assert subprocess.run(["pgrep", "-f", "sleep 901.901"], capture_output=True).stdout == b""
        logs = app.dyno("logs", "-d", name).stdout
        assert "The manifold restarted and lost this dyno's connection; stopped its processes" in logs
        assert "State changed from up to crashed" in logs
        assert not list((crashing.home / "dynos").iterdir())  # no residue
    finally:
        crashing.stop()


def _wait_gone(pid: int) -> None:
    """Wait for a killed process to disappear (pidfd: an event, not a poll)."""
    import select
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    select.select([fd], [], [], 10)
    os.close(fd)
