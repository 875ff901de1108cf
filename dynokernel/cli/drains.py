"""`dyno drains*`: the app's log drains, in the Heroku CLI's output shapes."""
from __future__ import annotations

import argparse
from urllib.parse import quote

from . import format as fmt


def _commands():
    from . import commands  # commands imports this module for its COMMANDS table
    return commands


def drains_cmd(args) -> int:
    app = _commands()._app(args)
    drains = app.client.request("GET", f"{app.path}/log-drains")
    if args.json:
        print(fmt.as_json(drains))
    elif not drains:
        print(f"{app.name} has no drains.")
    else:
        print(fmt.header("Drains") + "\n".join(f"{d['url']} ({d['token']})" for d in drains))
    return 0


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="syslog://HOST:PORT, syslog+tls://HOST:PORT or https://...")


def add_cmd(args) -> int:
    app = _commands()._app(args)
    drain = app.client.request("POST", f"{app.path}/log-drains", {"url": args.url})
    print(f"Successfully added drain {drain['url']}")
    return 0


def remove_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL|TOKEN", help="the drain's URL or token")


def remove_cmd(args) -> int:
    app = _commands()._app(args)
    drain = app.client.request("DELETE", f"{app.path}/log-drains/{quote(args.url, safe='')}")
    print(f"Successfully removed drain {drain['url']}")
    return 0


DRAIN_COMMANDS = {
    "drains": (fmt.json_flag, drains_cmd, True),
    "drains:add": (add_spec, add_cmd, True),
    "drains:remove": (remove_spec, remove_cmd, True),
}
