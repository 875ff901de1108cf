"""The heroku-postgresql add-on: a real PostgreSQL server run by the manifold, one database per add-on.

The seed's story (`rake db:migrate`, then `Widget.create` in other dynos) with PostgreSQL, the server's
life with the manifold's, pg:info / pg:psql / pg:reset, and that one app's credentials open nothing else.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import SAMPLE_APP, kill_pid, start_manifold
from heroku_fixtures import wait_for
from test_addons import RUNNER, addon_name, api

from dynokernel.manifold.postgres import server_binaries

pytestmark = pytest.mark.skipif(server_binaries() is None,
                                reason="PostgreSQL is not installed (apt-get install postgresql)")
WIDGETS = "psql \"$DATABASE_URL\" -Atc 'SELECT count(*) FROM widgets'"


@pytest.fixture(scope="module")
def manifold(tmp_path_factory):
    running = start_manifold(tmp_path_factory.mktemp("pghome"))
    yield running
    running.stop()


def url_of(app) -> str:
    return json.loads(app.dyno("config", "--json").stdout)["DATABASE_URL"]


def psql(url: str, sql: str) -> subprocess.CompletedProcess:
    """psql on the host, as a client outside any dyno."""
    return subprocess.run(["psql", "-X", "-At", url, "-c", sql], capture_output=True, text=True, timeout=30)


def server_pids(manifold) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"postgres -D {manifold.home}/postgres/data"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def last_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else done.stderr


def test_seed_story_with_postgres_outlives_dynos_and_restarts(manifold, tmp_path):
    app = manifold.new_app(tmp_path, source=SAMPLE_APP)  # config/database.yml: a database on first deploy
    addons = api(manifold, "GET", f"/apps/{app.name}/addons")[1]
    assert [a["plan"]["name"] for a in addons] == ["heroku-postgresql:essential-0"]
    assert url_of(app).startswith("postgres://")
    migrated = app.dyno("run", "--no-tty", "rake", "db:migrate", timeout=120)
    assert migrated.returncode == 0 and "CreateWidgets: migrated" in migrated.stdout, migrated.stderr
    console = app.dyno("run", "--no-tty", "bin/rails console", input="p Widget.create(name: 'Test')\nexit\n",
                       timeout=120)
    assert '#<Widget id: 1, name: "Test"' in console.stdout, console.stdout + console.stderr
    assert last_line(app.dyno("run", "--no-tty", RUNNER, timeout=120)) == "2"

    manifold.stop()
    assert server_pids(manifold) == []  # the server stops with the manifold
    manifold.start()
    assert last_line(app.dyno("run", "--no-tty", RUNNER, timeout=120)) == "3"

    # concurrent dynos write to the same database
    insert = "psql \"$DATABASE_URL\" -c \"INSERT INTO widgets (name, created_at, updated_at) " \
             "SELECT 'w', now(), now() FROM generate_series(1, 50)\""
    for _ in range(3):
        assert app.dyno("run:detached", insert).returncode == 0
    wait_for(lambda: last_line(app.dyno("run", "--no-tty", WIDGETS)) == "153", timeout=60,
             message="153 widgets written by three concurrent dynos")


def test_a_killed_manifold_leaves_the_server_to_the_next_one(tmp_path):
    manifold = start_manifold(tmp_path / "home")
    try:
        app = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
        assert app.dyno("addons:create", "heroku-postgresql").returncode == 0
        assert psql(url_of(app), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)").returncode == 0
        (pid,) = server_pids(manifold)  # the postmaster: its children have other process titles
        old = manifold.info["pid"]
        kill_pid(old)
        wait_for(lambda: not Path(f"/proc/{old}").exists(), timeout=10, message="the manifold to die")
        manifold.start()
        assert last_line(app.dyno("run", "--no-tty", "psql \"$DATABASE_URL\" -Atc 'SELECT x FROM kept'")) == "7"
        assert server_pids(manifold) == [pid]
    finally:
        manifold.stop()
    assert server_pids(manifold) == []


def test_pg_info_psql_reset_and_destroy(manifold, tmp_path):
    app = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    none = app.dyno("pg:info")
    assert none.returncode != 0 and none.stderr.strip().endswith(f"{app.name} has no heroku-postgresql databases.")
    created = app.dyno("addons:create", "heroku-postgresql:essential-0")
    assert created.returncode == 0, created.stderr
    name = addon_name(created)
    assert name.startswith("postgresql-") and created.stdout.startswith(f"Created {name} as DATABASE_URL\n")

    made = app.dyno("pg:psql", "-c", "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
    assert made.returncode == 0 and "INSERT 0 2" in made.stdout, made.stderr
    assert f"--> Connecting to {name}" in made.stderr
    script = tmp_path / "count.sql"
    script.write_text("SELECT 'rows=' || count(*) FROM t;\n")
    counted = app.dyno("pg:psql", "DATABASE_URL", "-f", str(script))
    assert "rows=2" in counted.stdout, counted.stdout + counted.stderr
    failed = app.dyno("pg:psql", "-c", "SELECT * FROM nowhere")
    assert failed.returncode != 0 and 'relation "nowhere" does not exist' in failed.stderr + failed.stdout

    info = app.dyno("pg:info")
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert lines[0] == "=== DATABASE_URL" and lines[2] == "Plan:                  Essential 0"
    assert "Status:                Available" in lines and "Tables:                1" in lines
    assert f"Add-on:                {name}" in lines and any(line.startswith("PG Version:") for line in lines)
    unknown = app.dyno("pg:info", "NOPE_URL")
    assert unknown.returncode != 0 and "Unknown database: NOPE_URL. Valid options are: DATABASE_URL" in unknown.stderr

    refused = app.dyno("pg:reset")
    assert refused.returncode != 0 and f"re-run with --confirm {app.name}" in refused.stderr
    wrong = app.dyno("pg:reset", "--confirm", "other-app")
    assert wrong.returncode != 0 and f"did not match {app.name}" in wrong.stderr
    assert "Tables:                1" in app.dyno("pg:info").stdout  # neither touched the data
    reset = app.dyno("pg:reset", "--confirm", app.name)
    assert reset.returncode == 0 and f"Resetting {name}... done" in reset.stderr
    assert "Tables:                0" in app.dyno("pg:info").stdout

    url = url_of(app)
    assert psql(url, "SELECT 1").stdout == "1\n"
    assert app.dyno("addons:destroy", name, "--confirm", app.name).returncode == 0
    gone = psql(url, "SELECT 1")
    assert gone.returncode != 0 and "authentication failed" in gone.stderr  # role and database dropped


def test_another_apps_credentials_open_nothing_here(manifold, tmp_path):
    owner = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    other = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 100\n"})
    for app in (owner, other):
        assert app.dyno("addons:create", "heroku-postgresql").returncode == 0
    mine, theirs = url_of(owner), url_of(other)
    role, password = theirs.split("//")[1].split("@")[0].split(":")
    database = mine.rsplit("/", 1)[1]
    crossed = other.dyno("run", "--no-tty", f"psql postgres://{role}:{password}@127.0.0.1:"
                         f"{mine.rsplit(':', 1)[1].split('/')[0]}/{database} -Atc 'SELECT 1' 2>&1; echo rc=$?")
    assert crossed.stdout.strip().splitlines()[-1] != "rc=0", crossed.stdout
    assert "no pg_hba.conf entry" in crossed.stdout or "permission denied" in crossed.stdout, crossed.stdout
    wrong = psql(mine.replace(mine.split("//")[1].split("@")[0].split(":")[1], "not-the-password"), "SELECT 1")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    superuser = psql(mine.replace(mine.split("//")[1].split("@")[0], "postgres:postgres"), "SELECT 1")
    assert superuser.returncode != 0  # the superuser has no TCP login at all
    assert psql(mine, "SELECT current_database()").stdout.strip() == database
