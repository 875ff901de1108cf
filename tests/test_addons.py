"""Add-ons: the registry, its API and CLI, and the sqlite plan's database that outlives dynos.

The heroku-postgresql plan's half of the story is in test_postgres.py."""
from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import SAMPLE_APP, start_manifold


@pytest.fixture(scope="module")
def manifold(tmp_path_factory):
    running = start_manifold(tmp_path_factory.mktemp("addonshome"), {"DYNO_DEFAULT_DATABASE": "sqlite"})
    yield running
    running.stop()


def api(manifold, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    request = urllib.request.Request(
        manifold.info["api_url"] + path if "api_url" in manifold.info
        else f"http://127.0.0.1:{manifold.info['api_port']}{path}",
        method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {manifold.token}", "Content-Type": "application/json",
                 "Accept": "application/vnd.heroku+json; version=3"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def sandbox(manifold) -> str:
    return manifold.dyno("manifold:status").stdout


def test_create_list_info_destroy(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    created = app.dyno("addons:create", "sqlite")
    assert created.returncode == 0, created.stderr
    assert created.stderr.startswith(f"Creating sqlite on {app.name}... ")
    name = created.stdout.split()[1]
    assert created.stdout.startswith(f"Created {name} as DATABASE_URL\n")

    listed = app.dyno("addons")
    assert f" sqlite ({name})" in listed.stdout and " \u2514\u2500 as DATABASE" in listed.stdout  # any renderer
    assert "created" in listed.stdout
    info = app.dyno("addons:info", name)
    assert info.returncode == 0 and info.stdout.startswith(f"=== {name}\n"), info.stderr
    assert f"{app.name}::DATABASE" in info.stdout

    status, addons = api(manifold, "GET", f"/apps/{app.name}/addons")
    assert status == 200 and len(addons) == 1
    addon = addons[0]
    assert addon["name"] == name and addon["addon_service"]["name"] == "sqlite"
    assert addon["plan"]["name"] == "sqlite:sqlite" and addon["config_vars"] == ["DATABASE_URL"]
    assert addon["app"]["name"] == app.name and addon["state"] == "provisioned" and addon["web_url"] is None
    assert api(manifold, "GET", f"/apps/{app.name}/addons/{name}") == (200, addon)
    status, attachments = api(manifold, "GET", f"/apps/{app.name}/addon-attachments")
    assert status == 200 and [(a["name"], a["addon"]["name"], a["app"]["name"]) for a in attachments] == \
        [("DATABASE", name, app.name)]
    assert attachments[0] in api(manifold, "GET", "/addon-attachments")[1]

    config = json.loads(app.dyno("config", "--json").stdout)
    url = config["DATABASE_URL"]
    assert url.startswith("sqlite3:///") and url.endswith("/db.sqlite3")
    ran = app.dyno("run", "--no-tty", "echo $DATABASE_URL")
    assert ran.stdout.strip().splitlines()[-1] == url

    # --as: a second attachment name; duplicates and unknown plans are refused
    second = app.dyno("addons:create", "sqlite", "--as", "CACHE")
    assert second.returncode == 0 and "as CACHE_URL" in second.stdout, second.stderr
    again = app.dyno("addons:create", "sqlite", "--as", "CACHE")
    assert again.returncode != 0 and "already attached" in again.stderr
    status, error = api(manifold, "POST", f"/apps/{app.name}/addons", {"plan": {"name": "nope:plan"}})
    assert status == 422 and error["id"] == "invalid_params"

    refused = app.dyno("addons:destroy", name)
    assert refused.returncode != 0 and "--confirm" in refused.stderr
    destroyed = app.dyno("addons:destroy", name, "--confirm", app.name)
    assert destroyed.returncode == 0, destroyed.stderr
    assert "DATABASE_URL" not in json.loads(app.dyno("config", "--json").stdout)
    assert api(manifold, "GET", f"/apps/{app.name}/addons/{name}")[0] == 404
    status, body = api(manifold, "DELETE", f"/apps/{app.name}/addons/CACHE")
    assert status == 200 and body["state"] == "deprovisioned"

    status, releases = api(manifold, "GET", f"/apps/{app.name}/releases")
    descriptions = [r["description"] for r in releases]
    assert descriptions[1:] == [f"Attach DATABASE (@ref:{name})", f"Attach CACHE (@ref:{addon_name(second)})",
                                f"Detach DATABASE (@ref:{name})", f"Detach CACHE (@ref:{addon_name(second)})"]
    assert api(manifold, "GET", f"/apps/{app.name}/addons") == (200, [])


def addon_name(created) -> str:
    return created.stdout.split()[1]


def test_destroying_the_app_destroys_its_addons(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    name = addon_name(app.dyno("addons:create", "sqlite"))
    addon = api(manifold, "GET", f"/apps/{app.name}/addons/{name}")[1]
    directory = manifold.home / "addons" / addon["id"]
    assert (directory / "db.sqlite3").exists()
    assert manifold.dyno("apps:destroy", app.name, "--confirm", app.name).returncode == 0
    assert not directory.exists()
    again = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    assert api(manifold, "GET", f"/apps/{again.name}/addons") == (200, [])


RUNNER = "bin/rails runner 'Widget.create(name: \"Test\"); p Widget.count'"


def test_rails_sqlite_database_outlives_dynos_and_restarts(manifold, tmp_path):
    app = manifold.new_app(tmp_path, source=SAMPLE_APP)  # its config/database.yml: a sqlite add-on on deploy
    assert [a["plan"]["name"] for a in api(manifold, "GET", f"/apps/{app.name}/addons")[1]] == ["sqlite:sqlite"]
    migrated = app.dyno("run", "--no-tty", "rake", "db:migrate", timeout=120)
    assert migrated.returncode == 0 and "CreateWidgets: migrated" in migrated.stdout, migrated.stderr
    first = app.dyno("run", "--no-tty", RUNNER, timeout=120)
    assert first.stdout.strip().splitlines()[-1] == "1", first.stdout + first.stderr
    # nothing was written into the slug's copy: the database lives outside /app
    assert not (app.dir / "db" / "development.sqlite3").exists()

    manifold.stop()
    manifold.start()
    second = app.dyno("run", "--no-tty", RUNNER, timeout=120)
    assert second.stdout.strip().splitlines()[-1] == "2", second.stdout + second.stderr

    # concurrent dynos write to the same database (WAL)
    script = ("python3 -c \"import sqlite3,os; d=sqlite3.connect(os.environ['DATABASE_URL'][10:], timeout=30, isolation_level=None); "
              "[d.execute('INSERT INTO widgets (name, created_at, updated_at) VALUES (?, 0, 0)', ('w',)) "
              "for _ in range(50)]\"")
    for n in range(3):
        assert app.dyno("run:detached", script).returncode == 0
    counted = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counted = app.dyno("run", "--no-tty", "python3 -c \"import sqlite3,os; print(sqlite3.connect("
                           "os.environ['DATABASE_URL'][10:]).execute('SELECT count(*) FROM widgets').fetchone()[0])\"")
        if counted.stdout.strip().splitlines()[-1:] == ["152"]:
            break
        time.sleep(0.5)
    assert counted.stdout.strip().splitlines()[-1] == "152", counted.stdout + counted.stderr


def test_another_apps_dyno_cannot_reach_the_database(manifold, tmp_path):
    if "linux" not in sandbox(manifold):
        pytest.skip("the copy sandbox shares the host's filesystem")
    owner = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    name = addon_name(owner.dyno("addons:create", "sqlite"))
    other = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    url = json.loads(owner.dyno("config", "--json").stdout)["DATABASE_URL"]
    assert f"/var/lib/dyno-addons/{name}/" in url
    path = url[len("sqlite3://"):]
    assert owner.dyno("run", "--no-tty", f"test -f {path} && echo yes").stdout.strip().endswith("yes")
    peek = other.dyno("run", "--no-tty", f"ls /var/lib/dyno-addons/ 2>&1; test -e {path} || echo absent")
    assert peek.stdout.strip().endswith("absent") and name not in peek.stdout


def test_first_deploy_of_an_app_with_a_database_config_provisions_one(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n", "config/database.yml": "x: 1\n"})
    addons = api(manifold, "GET", f"/apps/{app.name}/addons")[1]
    assert [a["addon_service"]["name"] for a in addons] == ["sqlite"]
    assert "DATABASE_URL" in json.loads(app.dyno("config", "--json").stdout)
    again = app.dyno("deploy")
    assert again.returncode == 0 and "Provisioned" not in again.stderr
    assert len(api(manifold, "GET", f"/apps/{app.name}/addons")[1]) == 1

    fresh = tmp_path / "fresh"
    (fresh / "config").mkdir(parents=True)
    (fresh / "config" / "database.yml").write_text("x: 1\n")
    (fresh / "Procfile").write_text("web: sleep 100\n")
    assert manifold.dyno("apps:create", "t-fresh-db", "--dir", str(fresh)).returncode == 0
    deployed = manifold.dyno("deploy", "-a", "t-fresh-db")
    assert deployed.returncode == 0, deployed.stderr
    assert "Provisioned sqlite:sqlite (sqlite-" in deployed.stderr and "as DATABASE_URL" in deployed.stderr
    plain = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    assert api(manifold, "GET", f"/apps/{plain.name}/addons") == (200, [])
