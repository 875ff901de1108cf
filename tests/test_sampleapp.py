"""The sample app's pieces, run directly in a copy of the app (not through the manifold)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SAMPLEAPP = Path(__file__).resolve().parent.parent / "examples" / "sampleapp"

needs_ruby = pytest.mark.skipif(
    shutil.which("ruby") is None,
    reason="ruby is not installed (apt-get install ruby rake ruby-rails ruby-sqlite3)",
)
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture
def app(tmp_path):
    return Path(shutil.copytree(SAMPLEAPP, tmp_path / "app"))


def app_env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RAILS_ENV", "DYNO", "GREETING")}
    env.update(overrides)
    return env


def run(app, *cmd, stdin=None, **env):
    result = subprocess.run(
        cmd, cwd=app, env=app_env(**env), input=stdin, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{cmd} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"web exited early with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"nothing listening on port {port} after {timeout}s")


def test_procfile_declares_web_worker_and_myworker():
    lines = (SAMPLEAPP / "Procfile").read_text().splitlines()
    entries = dict(line.split(": ", 1) for line in lines if line.strip())
    assert entries == {
        "web": "python3 web.py",
        "worker": "python3 worker.py",
        "myworker": "python3 dowork.py",
    }


def test_dowork_works_on_its_arguments(app):
    assert run(app, "python3", "dowork.py", "42").stdout == "dowork: working on 42\n"


def test_do_work_script(app):
    out = run(app, "bin/do-work", DYNO="run.1").stdout
    assert "as run.1" in out
    assert out.endswith("do-work: done\n")


@needs_node
def test_tally_results(app):
    assert "total: 5" in run(app, "node", "tally_results.js").stdout.splitlines()


@pytest.mark.parametrize("config_var, expected", [(None, "Hello World"), ("Bonjour", "Bonjour")])
def test_profile_d_defaults_greeting_unless_set(app, config_var, expected):
    env = {"GREETING": config_var} if config_var else {}
    out = run(app, "bash", "-c", '. .profile.d/sample.sh && echo "$GREETING"', **env).stdout
    assert out == f"{expected}\n"


def test_web_answers_with_its_dyno_name(app):
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "web.py"], cwd=app, env=app_env(PORT=str(port), DYNO="web.1"),
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, web)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200
            assert response.read().decode() == "Hello from web.1\n"
    finally:
        web.terminate()
        web.wait(timeout=10)


def test_worker_ticks_until_sigterm(app):
    worker = subprocess.Popen(
        [sys.executable, "worker.py"], cwd=app, env=app_env(WORKER_INTERVAL="0.1"),
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert worker.stdout.readline() == "worker: tick 1\n"
        worker.send_signal(signal.SIGTERM)
        rest, _ = worker.communicate(timeout=10)
    finally:
        worker.kill()
    assert worker.returncode == 0
    assert rest.endswith("worker: SIGTERM received, shutting down\n")


@needs_ruby
def test_rake_output_greeting(app):
    assert run(app, "rake", "output_greeting").stdout == "Hello World\n"


@needs_ruby
def test_migrate_then_runner_creates_and_counts_widgets(app):
    assert "CreateWidgets: migrated" in run(app, "rake", "db:migrate").stdout
    script = 'w = Widget.create!(name: "Test"); puts Widget.find(w.id).name, Widget.count'
    assert run(app, "bin/rails", "runner", script).stdout == "Test\n1\n"
    assert run(app, "bin/rails", "runner", script).stdout == "Test\n2\n"
    assert (app / "db" / "development.sqlite3").is_file()


@needs_ruby
def test_database_url_with_an_absolute_sqlite3_path(app, tmp_path):
    db = tmp_path / "elsewhere.sqlite3"
    url = f"sqlite3://{db}"
    run(app, "rake", "db:migrate", DATABASE_URL=url)
    out = run(app, "bin/rails", "runner", 'Widget.create!(name: "x"); puts Widget.count', DATABASE_URL=url).stdout
    assert out == "1\n"
    assert db.is_file()
    assert not (app / "db" / "development.sqlite3").exists()


@needs_ruby
def test_rails_console_creates_a_widget(app):
    run(app, "rake", "db:migrate")
    flags = ["--nomultiline", "--nosingleline", "--nocolorize", "--prompt", "default", "--inspect", "p"]
    out = run(app, "bin/rails", "console", "--", *flags, stdin='Widget.create name: "Test"\n').stdout
    assert '=> #<Widget id: 1, name: "Test", created_at: ' in out
