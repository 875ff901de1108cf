"""JupyterLab in headless Debian Chromium (Playwright): run notebooks/magics.ipynb, see the ps panel
list the running worker, stop it with its Stop button, and see the logs panel show a new line
within a second. Screenshots go to test-artifacts/."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from magics_fixtures import APP, ROOT, api, sample  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(sample, tmp_path_factory):
    """JupyterLab on 127.0.0.1 with its own config, serving a copy of notebooks/ (so nothing is saved
    into the repository), with $DYNO_HOME pointing at this module's manifold."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "magics.ipynb", root / "notebooks")
    (root / "examples").symlink_to(ROOT / "examples")
    settings = base / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))  # no "Select Kernel" dialog
    token, port = secrets.token_hex(16), _free_port()
    env = dict(sample.env, JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(base / "lab.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # wait until it answers (a readiness check with a deadline, not a fixed sleep)
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start:\n" + (base / "lab.log").read_text()[-3000:])
            time.sleep(0.1)
    try:
        yield url, token
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_magics_notebook_in_jupyterlab(lab, sample):
    from playwright.sync_api import expect, sync_playwright
    url, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/notebooks/magics.ipynb?reset&token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first).to_be_visible(
                timeout=60_000)
            expect(page.locator(".jp-Toolbar-kernelName").first).to_have_text("Python 3 (ipykernel)", timeout=60_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            # the ps panel lists the running worker
            row = page.locator(".dyno-row.dyno-up", has=page.locator(".dyno-command", has_text="worker.py"))
            expect(row).to_be_visible(timeout=90_000)
            row.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser-ps-running.png"), full_page=True)
            name = row.locator(".dyno-name").inner_text().strip()
            assert name.startswith("run.")

            # the logs panel shows a line a dyno prints, within a second
            logs = page.locator(".dyno-logs")
            expect(logs).to_be_visible(timeout=30_000)
            marker = "browser-marker-" + secrets.token_hex(4)
            started = time.monotonic()
            api(sample).run(f"echo {marker}", detach=True)
            expect(logs.filter(has_text=marker)).to_be_visible(timeout=1_000)
            seen_after = time.monotonic() - started
            logs.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser-logs.png"), full_page=True)
            assert seen_after < 1.0

            # Stop: the row changes to stopped, and `dyno ps` agrees
            row = page.locator(".dyno-row", has=page.locator(".dyno-name", has_text=name)).first
            row.locator(".dyno-stop").click()
            expect(row.locator(".dyno-state")).to_have_text("stopped", timeout=15_000)
            expect(row.locator(".dyno-stop")).to_be_disabled()
            page.screenshot(path=str(ARTIFACTS / "browser-ps-stopped.png"), full_page=True)
            ps = sample.dyno("ps", "-a", APP)
            assert ps.returncode == 0 and f"{name} " not in ps.stdout + "\n", ps.stdout
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
