"""The scheduler: Heroku Scheduler's jobs, run as `scheduler.N` one-off dynos, and more.

A job is a command and a schedule: Heroku's `--every 10m|1h|1d [--at HH:MM]` (UTC), or any cron
expression (croniter's, with an optional sixth field for seconds). Beyond Heroku: what to do when
a run is due while the last one still runs (`allow`, `forbid`: skip it, `replace`: stop the old
one), a `--timeout` (default: the interval, as Heroku stops a job after about one interval), a
history of runs with their exit codes, and runs missed while the manifold was down are logged and,
per job, skipped or run once. Jobs and runs live in the manifold's database.
"""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass

from croniter import croniter

from .logplex import Logplex
from .store import Store, api_time
from .supervisor import ApiError, Dyno, Supervisor

SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduler_jobs (
  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, command TEXT NOT NULL, schedule TEXT NOT NULL, every TEXT,
  cron TEXT NOT NULL, overlap TEXT NOT NULL, timeout REAL NOT NULL, catch_up TEXT NOT NULL, size TEXT,
  created_at TEXT NOT NULL, next_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS scheduler_runs (
  id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, dyno TEXT, dyno_id TEXT, scheduled_at REAL NOT NULL,
  started_at REAL, ended_at REAL, exit_code INTEGER, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS scheduler_runs_job ON scheduler_runs (job_id, id);
"""
USER = "scheduler@addons.heroku.com"
EVERY = ("10m", "1h", "1d")  # Heroku Scheduler's choices
OVERLAP = ("allow", "forbid", "replace")
CATCH_UP = ("skip", "once")


def parse_schedule(every: str | None, at: str | None, cron: str | None) -> str:
    """A job's schedule as one cron expression; ApiError (422) with the reason if it is not valid."""
    if bool(every) == bool(cron):
        raise _invalid("give a schedule: --every 10m|1h|1d [--at HH:MM], or --cron EXPRESSION (not both)")
    if cron:
        if at:
            raise _invalid("--at goes with --every, not with --cron")
        if not croniter.is_valid(cron):
            raise _invalid(f"not a cron expression: {cron!r} (e.g. \"*/5 * * * *\")")
        return cron
    if every not in EVERY:
        raise _invalid(f"--every must be 10m, 1h or 1d (as Heroku Scheduler), not {every!r}; use --cron for others")
    hour, minute = _at(at) if at else (0, 0)
    if every == "10m":
        if at:
            raise _invalid("--at goes with --every 1h or 1d")
        return "*/10 * * * *"
    return f"{minute} * * * *" if every == "1h" else f"{minute} {hour} * * *"


def _at(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise _invalid(f"--at must be a UTC time HH:MM (00:00 to 23:59), not {text!r}")
    return int(match.group(1)), int(match.group(2))


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_params", message)


def fire_times(cron: str, after: float, until: float) -> list[float]:
    """The schedule's times in (after, until]."""
    times, iterator = [], croniter(cron, after)
    while (moment := iterator.get_next(float)) <= until:
        times.append(moment)
    return times


def interval(cron: str, now: float) -> float:
    """The gap between the schedule's next two times: the default timeout of a run."""
    iterator = croniter(cron, now)
    first = iterator.get_next(float)
    return iterator.get_next(float) - first


@dataclass
class Scheduler:
    store: Store
    logplex: Logplex
    supervisor: Supervisor

    def __post_init__(self) -> None:
        self.store.db.executescript(SCHEMA)
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.running: dict[str, list[str]] = {}  # job id -> ids of its dynos still running
        self.supervisor.end_hooks.append(self._ended)

    # jobs ---------------------------------------------------------------------------------------
    def jobs(self, app_id: str) -> list[dict]:
        return self.store._all("SELECT * FROM scheduler_jobs WHERE app_id = ? ORDER BY created_at, rowid", app_id)

    def job(self, app_id: str, job_id: str) -> dict:
        found = self.store._one("SELECT * FROM scheduler_jobs WHERE app_id = ? AND (id = ? OR id LIKE ?)",
                                app_id, job_id, f"{job_id}%") if len(job_id) >= 4 else None
        if found is None:
            raise ApiError(404, "not_found", f"Couldn't find that scheduler job: {job_id}.")
        return found

    def add(self, app: dict, body: dict) -> dict:
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            raise _invalid("command must be a non-empty string")
        fields = {k: body.get(k) for k in ("every", "at", "cron", "overlap", "catch_up", "size")}
        if not all(isinstance(v, (str, type(None))) for v in fields.values()):
            raise _invalid("every, at, cron, overlap, catch_up and size must be strings")
        cron = parse_schedule(fields["every"], fields["at"], fields["cron"])
        overlap, catch_up = fields["overlap"] or "allow", fields["catch_up"] or "skip"
        if overlap not in OVERLAP or catch_up not in CATCH_UP:
            raise _invalid(f"overlap must be one of {', '.join(OVERLAP)}; catch_up one of {', '.join(CATCH_UP)}")
        timeout = body.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise _invalid("timeout must be a positive number of seconds")
        now = time.time()
        job = {"id": str(uuid.uuid4()), "app_id": app["id"], "command": command, "cron": cron,
               "schedule": f"every {fields['every']}" + (f" at {fields['at']} UTC" if fields["at"] else "")
               if fields["every"] else cron, "every": fields["every"], "overlap": overlap,
               "timeout": float(timeout or interval(cron, now)), "catch_up": catch_up, "size": fields["size"],
               "created_at": api_time(), "next_at": croniter(cron, now).get_next(float)}
        self.store.db.execute(f"INSERT INTO scheduler_jobs ({', '.join(job)}) VALUES ({', '.join('?' * len(job))})",
                              tuple(job.values()))
        self.logplex.platform(app["id"], "api", f"Add scheduler job `{command}` ({job['schedule']}) by user "
                              f"{self.supervisor.user}", "app")
        self._arm(job)
        return job

    def remove(self, app: dict, job: dict) -> None:
        timer = self.timers.pop(job["id"], None)
        if timer:
            timer.cancel()
        self.store.db.execute("DELETE FROM scheduler_jobs WHERE id = ?", (job["id"],))
        self.logplex.platform(app["id"], "api", f"Remove scheduler job `{job['command']}` by user "
                              f"{self.supervisor.user}", "app")

    def forget_app(self, app_id: str) -> None:
        """The app is destroyed: its jobs and their history go with it."""
        for job in self.jobs(app_id):
            timer = self.timers.pop(job["id"], None)
            if timer:
                timer.cancel()
            self.store.db.execute("DELETE FROM scheduler_runs WHERE job_id = ?", (job["id"],))
        self.store.db.execute("DELETE FROM scheduler_jobs WHERE app_id = ?", (app_id,))

    def runs(self, job: dict, limit: int = 100) -> list[dict]:
        return self.store._all("SELECT * FROM scheduler_runs WHERE job_id = ? ORDER BY id DESC LIMIT ?",
                               job["id"], limit)

    # timing ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """At the manifold's start: deal with runs missed while it was down, then arm every job."""
        now = time.time()
        for job in self.store._all("SELECT * FROM scheduler_jobs ORDER BY created_at"):
            missed = fire_times(job["cron"], job["next_at"] - 0.001, now)
            if missed:
                self._missed(job, missed)
            job["next_at"] = croniter(job["cron"], now).get_next(float)
            self.store.db.execute("UPDATE scheduler_jobs SET next_at = ? WHERE id = ?", (job["next_at"], job["id"]))
            self._arm(job)

    def _missed(self, job: dict, missed: list[float]) -> None:
        what = "running it once now" if job["catch_up"] == "once" else "skipped (--catch-up skip)"
        self.logplex.platform(job["app_id"], "scheduler", f"Missed {len(missed)} run(s) of `{job['command']}` "
                              f"while the manifold was down (first due {_stamp(missed[0])}): {what}")
        for moment in missed:
            self._record(job, moment, "missed")
        if job["catch_up"] == "once":
            self._run(job, missed[-1])

    def _arm(self, job: dict) -> None:
        loop = asyncio.get_running_loop()
        self.timers[job["id"]] = loop.call_at(loop.time() + max(0.0, job["next_at"] - time.time()),
                                              self._fire, job["id"])

    def _fire(self, job_id: str) -> None:
        job = self.store._one("SELECT * FROM scheduler_jobs WHERE id = ?", job_id)
        if job is None:
            return
        due = job["next_at"]
        if time.time() < due - 0.0005:  # woke early (clock adjusted): wait for the real time
            self._arm(job)
            return
        job["next_at"] = croniter(job["cron"], max(time.time(), due)).get_next(float)
        self.store.db.execute("UPDATE scheduler_jobs SET next_at = ? WHERE id = ?", (job["next_at"], job_id))
        self._arm(job)
        self._run(job, due)

    # runs -----------------------------------------------------------------------------------------
    def run_now(self, job: dict) -> dict:
        return self._run(job, time.time(), overlap="allow")

    def _run(self, job: dict, due: float, overlap: str | None = None) -> dict | None:
        live = [d for d in self.running.get(job["id"], []) if d in self.supervisor.running]
        policy = overlap or job["overlap"]
        if live and policy == "forbid":
            self.logplex.platform(job["app_id"], "scheduler", f"Skipped `{job['command']}` due {_stamp(due)}: "
                                  "the previous run is still running (--overlap forbid)")
            self._record(job, due, "skipped")
            return None
        if live and policy == "replace":
            for dyno_id in live:
                self.supervisor.stop(dyno_id, "Stopping all processes with SIGTERM (replaced by the next run of "
                                              "its scheduler job)")
        app = self.store.app(job["app_id"])
        body = {"command": job["command"], "type": "scheduler", "attach": False, "size": job["size"]}
        try:
            dyno = self.supervisor.create(app, body, user=USER)
        except ApiError as exc:
            self.logplex.platform(job["app_id"], "scheduler", f"Could not run `{job['command']}`: {exc.message}")
            self._record(job, due, "failed")
            return None
        self.running.setdefault(job["id"], []).append(dyno["id"])
        self._record(job, due, "running", dyno)
        asyncio.get_running_loop().call_later(job["timeout"], self._timed_out, dyno["id"], job["timeout"])
        return dyno

    def _timed_out(self, dyno_id: str, timeout: float) -> None:
        if dyno_id in self.supervisor.running:
            self.store.db.execute("UPDATE scheduler_runs SET state = 'timed out' WHERE dyno_id = ?", (dyno_id,))
            self.supervisor.stop(dyno_id, f"Stopping all processes with SIGTERM (the job ran past its timeout of "
                                          f"{timeout:g} s)")

    def _record(self, job: dict, due: float, state: str, dyno: dict | None = None) -> None:
        self.store.db.execute(
            "INSERT INTO scheduler_runs (job_id, dyno, dyno_id, scheduled_at, started_at, state) VALUES (?, ?, ?, ?, ?, ?)",
            (job["id"], dyno and dyno["name"], dyno and dyno["id"], due, time.time() if dyno else None, state))

    def _ended(self, dyno: Dyno) -> None:
        if dyno.record["type"] != "scheduler":
            return
        run = self.store._one("SELECT * FROM scheduler_runs WHERE dyno_id = ?", dyno.record["id"])
        if run is None:
            return
        ids = self.running.get(run["job_id"], [])
        if dyno.record["id"] in ids:
            ids.remove(dyno.record["id"])
        state = "timed out" if run["state"] == "timed out" else "succeeded" if dyno.exit_code == 0 else "failed"
        self.store.db.execute("UPDATE scheduler_runs SET ended_at = ?, exit_code = ?, state = ? WHERE id = ?",
                              (time.time(), dyno.exit_code, state, run["id"]))

    def close(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def job_json(scheduler: Scheduler, job: dict) -> dict:
    """A job as the API shows it, with its last run."""
    last = scheduler.store._one("SELECT * FROM scheduler_runs WHERE job_id = ? AND state != 'missed' "
                                "ORDER BY id DESC LIMIT 1", job["id"])
    return {"id": job["id"], "command": job["command"], "schedule": job["schedule"], "cron": job["cron"],
            "overlap": job["overlap"], "timeout": job["timeout"], "catch_up": job["catch_up"], "size": job["size"],
            "created_at": job["created_at"], "next_run_at": _stamp(job["next_at"]),
            "last_run": run_json(last) if last else None}


def run_json(run: dict) -> dict:
    return {"dyno": run["dyno"], "scheduled_at": _stamp(run["scheduled_at"]),
            "started_at": _stamp(run["started_at"]) if run["started_at"] else None,
            "lateness_ms": round((run["started_at"] - run["scheduled_at"]) * 1000) if run["started_at"] else None,
            "state": run["state"], "exit_code": run["exit_code"]}
