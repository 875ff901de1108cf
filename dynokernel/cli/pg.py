"""`dyno pg:*`: the app's heroku-postgresql databases, in the Heroku CLI's output shapes."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import datetime
from urllib.parse import quote

from ..platform.app import App
from ..platform.errors import PlatformError
from . import format as fmt
from .confirm import confirm_destructive

SERVICE = "heroku-postgresql"


def _commands():
    from . import commands  # commands imports this module for its COMMANDS table
    return commands


def databases(app: App, wanted: str | None) -> list[dict]:
    """The app's postgres add-ons: the one named (add-on, attachment or config var), else all."""
    found = [a for a in app.client.request("GET", f"{app.path}/addons") if a["addon_service"]["name"] == SERVICE]
    if wanted is None:
        if not found:
            raise PlatformError(f"{app.name} has no heroku-postgresql databases.")
        return found
    key = wanted[:-4] if wanted.upper().endswith("_URL") else wanted
    named = [a for a in found if key in (a["name"], a["id"]) or key.upper() in (v[:-4] for v in a["config_vars"])]
    if not named:
        raise PlatformError(f"Unknown database: {wanted}. Valid options are: "
                            f"{', '.join(v for a in found for v in a['config_vars']) or 'none'}")
    return named[:1]


def _one(app: App, wanted: str | None) -> dict:
    """The database named, else the one attached as DATABASE_URL, else the first."""
    found = databases(app, wanted)
    return next((a for a in found if wanted or "DATABASE_URL" in a["config_vars"]), found[0])


# pg:info ------------------------------------------------------------------------
def info_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", help="config var (DATABASE_URL) or add-on name; default: all")
    fmt.json_flag(parser)


def info_cmd(args) -> int:
    app = _commands()._app(args)
    infos = [app.client.request("GET", f"{app.path}/addons/{quote(a['id'], safe='')}/postgres")
             for a in databases(app, args.database)]
    print(fmt.as_json(infos) if args.json else "\n".join(info_text(i) for i in infos))
    return 0


def info_text(info: dict) -> str:
    addon = info["addon"]
    plan = addon["plan"]["name"].split(":", 1)[-1].replace("-", " ").title()
    created = datetime.strptime(addon["created_at"], "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d %H:%M UTC")
    return fmt.header(", ".join(addon["config_vars"])) + fmt.styled_object([
        ("Plan", plan), ("Status", info["status"]),
        ("Connections", f"{info['connections']}/{info['max_connections']}"), ("PG Version", info["version"]),
        ("Created", created), ("Data Size", fmt.filesize(info["data_size"])), ("Tables", str(info["tables"])),
        ("Fork/Follow", "Unsupported"), ("Rollback", "Unsupported"), ("Continuous Protection", "Off"),
        ("Add-on", addon["name"])]) + "\n"


# pg:psql ------------------------------------------------------------------------
def psql_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", help="config var (DATABASE_URL) or add-on name")
    parser.add_argument("-c", "--command", help="SQL command to run")
    parser.add_argument("-f", "--file", help="SQL file to run")


def psql_cmd(args) -> int:
    commands = _commands()
    app = commands._app(args)
    addon = _one(app, args.database)
    command = f'psql "${addon["config_vars"][0]}"'
    if args.command is not None:
        command += f" -c {shlex.quote(args.command)}"
    if args.file is not None:
        _stdin_from(args.file)
    commands._err(f"--> Connecting to {addon['name']}")
    run_args = argparse.Namespace(app=app.name, remote=getattr(args, "remote", None), command=[command],
                                  no_tty=args.command is not None or args.file is not None, exit_code=True,
                                  no_exit_code=False, idle_timeout=None, env=None, size=None, type=None, ttl=None)
    return commands.run_cmd(run_args)


def _stdin_from(path: str) -> None:
    """psql -f FILE: the file becomes the dyno's standard input."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise PlatformError(f"Cannot read {path}: {exc.strerror}") from None
    os.dup2(fd, sys.stdin.fileno())
    os.close(fd)


# pg:reset -----------------------------------------------------------------------
def reset_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", help="config var (DATABASE_URL) or add-on name")
    parser.add_argument("-c", "--confirm", help="the app's name, to confirm")


def reset_cmd(args) -> int:
    commands = _commands()
    app = commands._app(args)
    addon = _one(app, args.database)
    confirm_destructive(app.name, args.confirm, f"{addon['name']} will lose all of its data")
    commands._err_inline(f"Resetting {addon['name']}... ")
    app.client.request("POST", f"{app.path}/addons/{quote(addon['id'], safe='')}/actions/reset")
    commands._err("done")
    return 0


PG_COMMANDS = {
    "pg:info": (info_spec, info_cmd, True),
    "pg:psql": (psql_spec, psql_cmd, True),
    "pg:reset": (reset_spec, reset_cmd, True),
}
