"""`dyno`: the Heroku CLI's verbs and flags, against the local manifold (or another API).

Each command is a function taking parsed arguments; COMMANDS maps `topic:verb` to it.
Errors from the platform are printed as one line on stderr with a non-zero exit.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from ..platform.errors import PlatformError
from . import commands

USAGE = """usage: dyno COMMAND [ARGS]

One-off dynos:  run, run:detached, ps, ps:stop, ps:kill, logs
Formation:      ps:scale, ps:type, ps:restart
Apps:           apps, apps:create, apps:info, apps:update, apps:destroy, deploy, releases
Add-ons:        addons, addons:create, addons:destroy, addons:info, pg:info, pg:psql, pg:reset
Scheduler:      scheduler, scheduler:add, scheduler:remove, scheduler:run-now, scheduler:runs
Logs:           logs, drains, drains:add, drains:remove
Config vars:    config, config:get, config:set, config:unset
The manifold:   manifold:start, manifold:stop, manifold:status
Kernels:        kernels:install

Run `dyno COMMAND --help` for a command's flags."""


class UsageError(Exception):
    """Bad flags or arguments."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def parser_for(name: str, spec: Callable[[argparse.ArgumentParser], None], with_app: bool = True) -> Parser:
    parser = Parser(prog=f"dyno {name}")
    if with_app:
        parser.add_argument("-a", "--app", help="app to run command against")
        parser.add_argument("-r", "--remote", help="API to use: 'heroku' or a URL (default: the local manifold)")
    spec(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    entry = commands.COMMANDS.get(name)
    if entry is None:
        print(f" \u203a   Error: {name} is not a dyno command.\n \u203a   See dyno --help", file=sys.stderr)
        return 127
    spec, run, with_app = entry
    try:
        args = parser_for(name, spec, with_app).parse_args(rest)
        return run(args) or 0
    except UsageError as exc:
        print(f" \u203a   Error: {exc}", file=sys.stderr)
        return 2
    except PlatformError as exc:
        print(f" \u203a   Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
