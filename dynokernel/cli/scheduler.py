"""`dyno scheduler*`: Heroku Scheduler's jobs (and cron schedules, overlap and timeouts) from the CLI."""
from __future__ import annotations

import argparse
from urllib.parse import quote

from . import format as fmt


def _commands():
    from . import commands  # commands imports this module for its COMMANDS table
    return commands


def _job_path(app, job_id: str) -> str:
    return f"{app.path}/scheduler/jobs/{quote(job_id, safe='')}"


def _last(job: dict) -> str:
    run = job.get("last_run")
    if not run:
        return "never"
    code = "" if run["exit_code"] is None else f", exit {run['exit_code']}"
    return f"{run['scheduled_at']} {run['state']}{code}"


def list_cmd(args) -> int:
    app = _commands()._app(args)
    jobs = app.client.request("GET", f"{app.path}/scheduler/jobs")
    if args.json:
        print(fmt.as_json(jobs))
    elif not jobs:
        print(f"No scheduler jobs on {fmt.app_label(app.name)}.")
    else:
        print(fmt.header(f"{app.name} Scheduler Jobs") + fmt.table(
            ["ID", "Command", "Schedule", "Overlap", "Next run", "Last run"],
            [[j["id"][:8], j["command"], j["schedule"], j["overlap"], j["next_run_at"], _last(j)] for j in jobs]))
    return 0


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("command", help="the command to run, e.g. \"rake output_greeting\"")
    parser.add_argument("--every", choices=("10m", "1h", "1d"), help="as Heroku Scheduler")
    parser.add_argument("--at", help="HH:MM UTC: the minute of an hourly job, the time of a daily one")
    parser.add_argument("--cron", help='a cron expression, e.g. "*/5 * * * *" (a sixth field: seconds)')
    parser.add_argument("--overlap", choices=("allow", "forbid", "replace"), default="allow",
                        help="a run due while the last one runs: start it anyway, skip it, or stop the old one")
    parser.add_argument("--timeout", type=float, help="seconds a run may take (default: the interval)")
    parser.add_argument("--catch-up", choices=("skip", "once"), default="skip",
                        help="runs missed while the manifold was down: skip them, or run once")
    parser.add_argument("-s", "--size", help="dyno size")


def add_cmd(args) -> int:
    commands = _commands()
    app = commands._app(args)
    body = {"command": args.command, "every": args.every, "at": args.at, "cron": args.cron,
            "overlap": args.overlap, "timeout": args.timeout, "catch_up": args.catch_up, "size": args.size}
    commands._err_inline(f"Adding scheduler job on {fmt.app_label(app.name)}... ")
    job = app.client.request("POST", f"{app.path}/scheduler/jobs", {k: v for k, v in body.items() if v is not None})
    commands._err("done")
    print(f"Added job {job['id'][:8]}: `{job['command']}` {job['schedule']}, next run {job['next_run_at']}")
    return 0


def id_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the job's id (or its first 8 characters)")


def remove_cmd(args) -> int:
    commands = _commands()
    app = commands._app(args)
    job = app.client.request("DELETE", _job_path(app, args.id))
    commands._err(f"Removed job {job['id'][:8]} (`{job['command']}`) from {fmt.app_label(app.name)}")
    return 0


def run_now_cmd(args) -> int:
    commands = _commands()
    app = commands._app(args)
    dyno = app.client.request("POST", _job_path(app, args.id) + "/actions/run")
    commands._err(f"Running `{dyno['command']}` on {fmt.app_label(app.name)}... done, {dyno['name']}")
    print(f"Run dyno logs --app {app.name} --dyno {dyno['name']} to view the output.")
    return 0


def runs_spec(parser: argparse.ArgumentParser) -> None:
    id_spec(parser)
    fmt.json_flag(parser)


def runs_cmd(args) -> int:
    app = _commands()._app(args)
    runs = app.client.request("GET", _job_path(app, args.id) + "/runs")
    if args.json:
        print(fmt.as_json(runs))
        return 0
    print(fmt.table(["Scheduled", "Dyno", "State", "Exit", "Late"],
                    [[r["scheduled_at"], r["dyno"] or "", r["state"], "" if r["exit_code"] is None else str(r["exit_code"]),
                      "" if r["lateness_ms"] is None else f"{r['lateness_ms']} ms"] for r in runs]))
    return 0


SCHEDULER_COMMANDS = {
    "scheduler": (fmt.json_flag, list_cmd, True),
    "scheduler:list": (fmt.json_flag, list_cmd, True),
    "scheduler:add": (add_spec, add_cmd, True),
    "scheduler:remove": (id_spec, remove_cmd, True),
    "scheduler:run-now": (id_spec, run_now_cmd, True),
    "scheduler:runs": (runs_spec, runs_cmd, True),
}
