"""`dyno addons*`: add-ons of an app, in the Heroku CLI's output shapes."""
from __future__ import annotations

import argparse
from urllib.parse import quote

from ..platform.errors import PlatformError
from . import format as fmt
from .confirm import confirm_destructive

STATES = {"provisioned": "created", "provisioning": "creating", "deprovisioned": "errored",
          "deprovisioning": "destroying"}


def _commands():
    from . import commands  # commands imports this module for its COMMANDS table
    return commands


def _plan(addon: dict) -> str:
    service, plan = addon["addon_service"]["name"], addon["plan"]["name"]
    return plan[len(service) + 1:] if plan.startswith(service + ":") else plan


def addons_text(app: str, addons: list[dict]) -> str:
    if not addons:
        return f"No add-ons for app {app}."
    rows = []
    for addon in addons:
        attachments = [f"\u2514\u2500 as {var[:-4] if var.endswith('_URL') else var}"
                       for var in addon.get("config_vars", [])]
        cell = "\n".join([f"{addon['addon_service']['name']} ({addon['name']})", *attachments])
        rows.append([cell, _plan(addon), "free", "free", STATES.get(addon["state"], "")])
    # one table row per line of a multi-line cell, as the Heroku CLI wraps them
    lines = []
    for row in rows:
        cells = [c.split("\n") for c in row]
        for i in range(max(len(c) for c in cells)):
            lines.append([c[i] if i < len(c) else "" for c in cells])
        lines.append([""] * len(row))
    table = fmt.table(["Add-on", "Plan", "Price", "Max Price", "State"], lines)
    return ("\n" + table + "\n" + f"The table above shows add-ons and the attachments to the current app ({app}) "
            "or other apps.\n  ")


def addons_cmd(args) -> int:
    app = _commands()._app(args)
    addons = app.client.request("GET", f"{app.path}/addons")
    print(fmt.as_json(addons) if args.json else addons_text(app.name, addons))
    return 0


def addons_create_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="SERVICE:PLAN", help="heroku-postgresql[:PLAN] or sqlite")
    parser.add_argument("--as", dest="as_name", help="name for the initial add-on attachment (default DATABASE)")
    parser.add_argument("--name", help="name for the add-on resource")


def addons_create_cmd(args) -> int:
    commands = _commands()
    app = commands._app(args)
    body = {"plan": {"name": args.plan}}
    if args.as_name:
        body["attachment"] = {"name": args.as_name}
    if args.name:
        body["name"] = args.name
    commands._err_inline(f"Creating {args.plan} on {fmt.app_label(app.name)}... ")
    try:
        addon = app.client.request("POST", f"{app.path}/addons", body)
    except PlatformError:
        commands._err("!")
        raise
    commands._err("free")
    print(f"Created {addon['name']} as {', '.join(addon['config_vars'])}" if addon["config_vars"]
          else f"Created {addon['name']}")
    print(f"Run dyno addons:info {addon['name']} to see its details.")
    return 0


def addons_destroy_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="add-on to destroy")
    parser.add_argument("-c", "--confirm", help="the app's name, to confirm")


def addons_destroy_cmd(args) -> int:
    commands = _commands()
    app = commands._app(args)
    addon = app.client.request("GET", f"{app.path}/addons/{quote(args.name, safe='')}")
    confirm_destructive(app.name, args.confirm, f"This command will affect the app {fmt.app_label(app.name)}")
    commands._err_inline(f"Destroying {addon['name']} on {fmt.app_label(app.name)}... ")
    app.client.request("DELETE", f"{app.path}/addons/{quote(addon['id'], safe='')}")
    commands._err("done")
    return 0


def addons_info_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="add-on")
    fmt.json_flag(parser)


def addons_info_cmd(args) -> int:
    app = _commands()._app(args)
    addon = app.client.request("GET", f"{app.path}/addons/{quote(args.name, safe='')}")
    if args.json:
        print(fmt.as_json(addon))
        return 0
    print(fmt.header(addon["name"]) + fmt.styled_object([
        ("Plan", addon["plan"]["name"]), ("Price", "free"), ("Max Price", "free"),
        ("Attachments", [f"{app.name}::{v[:-4] if v.endswith('_URL') else v}" for v in addon["config_vars"]]),
        ("Owning app", app.name), ("Installed at", fmt.js_date(addon["created_at"])),
        ("State", STATES.get(addon["state"], addon["state"]))]))
    return 0


ADDON_COMMANDS = {
    "addons": (fmt.json_flag, addons_cmd, True),
    "addons:create": (addons_create_spec, addons_create_cmd, True),
    "addons:destroy": (addons_destroy_spec, addons_destroy_cmd, True),
    "addons:info": (addons_info_spec, addons_info_cmd, True),
}
