"""The scheduler through the real CLI and manifold, on a seconds cadence (croniter's sixth field)."""
from __future__ import annotations

import json
import re
import time

import pytest

from conftest import SAMPLE_APP, start_manifold
from heroku_fixtures import wait_for

EVERY_SECOND = "* * * * * *"
NEVER_SOON = "0 0 1 1 *"  # once a year: only run-now runs it in a test


@pytest.fixture(scope="module")
def manifold(tmp_path_factory):
    running = start_manifold(tmp_path_factory.mktemp("schedulerhome"))
    yield running
    running.stop()


@pytest.fixture
def app(manifold, tmp_path):
    return manifold.new_app(tmp_path, files={"Procfile": "web: sleep 1000\n"})


def add(app, command: str, *flags: str) -> str:
    done = app.dyno("scheduler:add", command, *flags)
    assert done.returncode == 0, done.stderr
    return re.match(r"Added job ([0-9a-f]{8}):", done.stdout).group(1)


def runs(app, job: str) -> list[dict]:
    return json.loads(app.dyno("scheduler:runs", job, "--json").stdout)


def logs(app) -> str:
    return app.dyno("logs", "-n", "2000").stdout


def test_a_job_runs_on_its_schedule_as_scheduler_dynos(app):
    ok = add(app, "echo tick $DYNO", "--cron", EVERY_SECOND)
    failing = add(app, "echo sad; exit 3", "--cron", EVERY_SECOND)
    wait_for(lambda: len([r for r in runs(app, ok) if r["state"] == "succeeded"]) >= 2, timeout=15,
             message="two runs")
    text = logs(app)
    assert "app[api]: Starting process with command `echo tick $DYNO` by user scheduler@addons.heroku.com" in text
    names = re.findall(r"app\[(scheduler\.\d+)\]: tick (scheduler\.\d+)", text)
    assert names and all(a == b for a, b in names)
    wait_for(lambda: any(r["exit_code"] == 3 and r["state"] == "failed" for r in runs(app, failing)),
             message="the failing job's exit code")
    late = [r["lateness_ms"] for r in runs(app, ok) if r["lateness_ms"] is not None]
    assert late and max(late) < 1000, late  # started within a second of its time
    listed = app.dyno("scheduler").stdout
    assert ok in listed and "echo tick $DYNO" in listed and "exit 3" in listed
    for job in (ok, failing):
        assert app.dyno("scheduler:remove", job).returncode == 0
    assert app.dyno("scheduler").stdout.startswith("No scheduler jobs")


def test_overlap_policies(app):
    forbid = add(app, "sleep 2.5", "--cron", EVERY_SECOND, "--overlap", "forbid", "--timeout", "10")
    replace = add(app, "sleep 30", "--cron", EVERY_SECOND, "--overlap", "replace", "--timeout", "60")
    allow = add(app, "sleep 2.5", "--cron", EVERY_SECOND, "--timeout", "10")
    wait_for(lambda: any(r["state"] == "skipped" for r in runs(app, forbid)), timeout=15, message="a skipped run")
    wait_for(lambda: "(replaced by the next run of its scheduler job)" in logs(app), timeout=15,
             message="a replaced run")
    wait_for(lambda: sum(r["state"] == "running" for r in runs(app, allow)) >= 2, timeout=15,
             message="two runs at once")
    assert "Skipped `sleep 2.5` due " in logs(app)
    assert sum(r["state"] == "running" for r in runs(app, forbid)) <= 1
    for job in (forbid, replace, allow):
        assert app.dyno("scheduler:remove", job).returncode == 0


def test_run_now_timeout_and_remove(app):
    slow = add(app, "sleep 100", "--cron", NEVER_SOON, "--timeout", "1")
    started = app.dyno("scheduler:run-now", slow)
    assert started.returncode == 0 and re.search(r"done, scheduler\.\d+", started.stderr), started.stderr
    wait_for(lambda: runs(app, slow)[0]["state"] == "timed out", message="the timeout")
    assert "(the job ran past its timeout of 1 s)" in logs(app)
    ticking = add(app, "echo keep", "--cron", EVERY_SECOND)
    gone = add(app, "echo gone", "--cron", EVERY_SECOND)
    wait_for(lambda: runs(app, gone), message="a first run")
    assert app.dyno("scheduler:remove", gone).returncode == 0
    before = logs(app).count("app[api]: Starting process with command `echo gone`")
    count = len(runs(app, ticking))
    wait_for(lambda: len(runs(app, ticking)) >= count + 2, message="two more ticks of the other job")
    assert logs(app).count("app[api]: Starting process with command `echo gone`") == before
    unknown = app.dyno("scheduler:remove", "deadbeef")
    assert unknown.returncode != 0 and "Couldn't find that scheduler job: deadbeef." in unknown.stderr
    assert app.dyno("scheduler:remove", ticking).returncode == 0
    for flags, error in ((["--every", "7m"], "invalid choice"), (["--every", "1h", "--at", "25:00"], "--at must be"),
                         (["--cron", "every day"], "not a cron expression"),
                         (["--every", "1h", "--cron", EVERY_SECOND], "not both")):
        bad = app.dyno("scheduler:add", "true", *flags)
        assert bad.returncode != 0 and error in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_jobs_persist_and_missed_runs_are_skipped_or_run_once(tmp_path):
    manifold = start_manifold(tmp_path / "home")
    try:
        app = manifold.new_app(tmp_path, files={"Procfile": "web: sleep 1000\n"})
        once = add(app, "echo caught-up", "--cron", EVERY_SECOND, "--catch-up", "once")
        skip = add(app, "echo skipper", "--cron", EVERY_SECOND)
        wait_for(lambda: runs(app, once) and runs(app, skip), message="first runs")
        manifold.stop()
        stopped = time.time()
        wait_for(lambda: time.time() > stopped + 2.5, timeout=5, message="two fire times to pass")
        manifold.start()
        wait_for(lambda: "running it once now" in logs(app) and "skipped (--catch-up skip)" in logs(app),
                 message="the missed runs in the log")
        assert re.search(r"Missed [2-9] run\(s\) of `echo caught-up` while the manifold was down", logs(app))
        assert sum(r["state"] == "missed" for r in runs(app, skip)) >= 2
        wait_for(lambda: len([r for r in runs(app, skip) if r["state"] == "succeeded"]) >= 2, message="firing again")
        assert {json.loads(app.dyno("scheduler", "--json").stdout)[i]["id"][:8] for i in (0, 1)} == {once, skip}
    finally:
        manifold.stop()


def test_the_seed_greeting_job_of_the_sample_app(manifold, tmp_path):
    app = manifold.new_app(tmp_path, source=SAMPLE_APP)
    job = add(app, "rake output_greeting", "--cron", "* * * * * */10")
    wait_for(lambda: re.search(r"app\[scheduler\.\d+\]: Hello World", logs(app)), timeout=60,
             message="Hello World from the scheduler")
    assert app.dyno("scheduler:remove", job).returncode == 0
