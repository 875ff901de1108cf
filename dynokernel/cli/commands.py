"""The `dyno` commands. Each is a pair: flags (spec) and action (run)."""
from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from pathlib import Path
from urllib.parse import quote

from ..paths import HomeFiles, dyno_home
from ..platform.app import App
from ..platform.client import Client
from ..platform.endpoint import resolve_endpoint, running_manifold, start_manifold
from ..platform.errors import PlatformError
from ..platform.rendezvous import connect
from . import format as fmt
from .herokuenv import heroku_env_cmd, heroku_env_spec
from .addons import ADDON_COMMANDS
from .confirm import confirm_destructive
from .drains import DRAIN_COMMANDS
from .pg import PG_COMMANDS
from .scheduler import SCHEDULER_COMMANDS


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _client(args) -> Client:
    return Client(resolve_endpoint(getattr(args, "remote", None)))


def _app(args, create: bool = False) -> App:
    return App(args.app, client=_client(args), create=create)


def heroku_join(words: list[str]) -> str:
    """Arguments joined as `heroku run` joins them: one verbatim, several quoted if needed."""
    if len(words) == 1:
        return words[0]
    return " ".join(f'"{w.replace(chr(34), chr(92) + chr(34))}"' if (" " in w or '"' in w) else w for w in words)


def parse_env(text: str | None) -> dict[str, str]:
    """`--env "A=1;B=2"`."""
    env: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PlatformError(f"Invalid --env {item!r}: expected NAME=value, separated by ';'")
        env[key.strip()] = value
    return env


def _command_words(args) -> str:
    words = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not words or not "".join(words).strip():
        raise PlatformError("Usage: dyno run COMMAND (a command to run is required)")
    return heroku_join(words)


def _run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-e", "--env", help='environment variables for the dyno, e.g. "A=1;B=2"')
    parser.add_argument("-s", "--size", help="dyno size (Basic, Standard-1X, Standard-2X, ...)")
    parser.add_argument("--type", help="process type to use for the dyno (default: run)")
    parser.add_argument("--ttl", type=int, help="seconds the dyno may live (max 86400)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run")


# run ----------------------------------------------------------------------------
def run_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-tty", action="store_true", help="force the command to not run in a tty")
    parser.add_argument("-x", "--exit-code", action="store_true", help="exit with the dyno's status (the default)")
    parser.add_argument("--no-exit-code", action="store_true", help="always exit 0, like heroku run without -x")
    parser.add_argument("--idle-timeout", type=float, help="seconds without input or output before SIGHUP")
    _run_flags(parser)


def run_cmd(args) -> int:
    command = _command_words(args)
    app = _app(args, create=True)
    _deploy_if_needed(app)
    use_tty = not args.no_tty and sys.stdin.isatty()
    env = parse_env(args.env)
    if use_tty and sys.stdout.isatty():
        size = os.get_terminal_size()
        env.update(TERM=os.environ.get("TERM", "xterm"), COLUMNS=str(size.columns), LINES=str(size.lines))
    _err_inline(f"Running {command} on {fmt.app_label(app.name)}... ")
    run = app.run(command, attach=True, tty=use_tty, env=env, size=args.size, type=args.type,
                  time_to_live=args.ttl, idle_timeout=args.idle_timeout)
    sock, early = connect(run.attach_url, app.client.endpoint.ca_file)
    _err(f"up, {run.name}")
    from .terminal import relay
    status = relay(sock, early, use_tty)
    if args.no_exit_code:
        return 0
    if status is None:
        _err(" \u203a   Error: No exit code returned (the connection to the dyno closed)")
        return 1
    if status:
        _err(f" \u203a   Error: Process exited with code {status}")
    return status


def _err_inline(text: str) -> None:
    print(text, end="", file=sys.stderr, flush=True)


def _deploy_if_needed(app: App) -> None:
    if app.info().get("released_at"):
        return
    _err_inline(f"Deploying {fmt.app_label(app.name)} from {app.directory or app.cwd}... ")
    _report_build(app.deploy())


def detached_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--tail", action="store_true", help="continually stream logs")
    _run_flags(parser)


def detached_cmd(args) -> int:
    command = _command_words(args)
    app = _app(args, create=True)
    _deploy_if_needed(app)
    _err_inline(f"Running {command} on {fmt.app_label(app.name)}... ")
    run = app.run(command, attach=False, env=parse_env(args.env), size=args.size, type=args.type,
                  time_to_live=args.ttl)
    _err(f"done, {run.name}")
    if args.tail:
        for line in app.logs(lines=100, dyno=run.name, tail=True):
            print(line, flush=True)
        return 0
    print(f"Run dyno logs --app {app.name} --dyno {run.name} to view the output.\n")
    return 0


# ps -----------------------------------------------------------------------------
def ps_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="display as json")
    parser.add_argument("types", nargs="*", help="only these process types")


def ps_cmd(args) -> int:
    app = _app(args)
    dynos = app.ps()
    if args.types:
        dynos = [d for d in dynos if d["type"] in args.types]
        for dyno_type in args.types:
            if not any(d["type"] == dyno_type for d in dynos):
                raise PlatformError(f"No {dyno_type} dynos on {fmt.app_label(app.name)}")
    if args.json:
        print(fmt.as_json(dynos))
        return 0
    print(fmt.ps_text(app.name, dynos))
    web_url = app.info().get("web_url") if any(d["type"] == "web" for d in dynos) else None
    if web_url:  # on stderr: stdout stays what `heroku ps` prints, for scripts that parse it
        _err(f"Web URL: {web_url}")
    return 0


def stop_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--dyno-name", help="name of the dyno to stop")
    parser.add_argument("-p", "--process-type", help="stop every dyno of this process type")
    parser.add_argument("dyno", nargs="?", help="name of the dyno to stop (deprecated: use -d)")


def stop_cmd(args) -> int:
    app = _app(args)
    name = args.dyno_name or args.dyno
    if args.process_type and name:
        raise PlatformError("Use either --dyno-name or --process-type, not both")
    if args.process_type:
        _err_inline(f"Stopping all {args.process_type} dynos on {fmt.app_label(app.name)}... ")
        app.stop_type(args.process_type)
    elif name:
        _err_inline(f"Stopping dyno {name} on {fmt.app_label(app.name)}... ")
        app.stop(name)  # a bare process type (`ps:stop web`) stops all of that type
    else:
        raise PlatformError("Please specify a process type or dyno name to stop (-p TYPE or -d NAME)")
    _err("done")
    return 0


# logs ---------------------------------------------------------------------------
def logs_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--num", type=int, default=100, help="number of lines to display (default 100)")
    parser.add_argument("-t", "--tail", action="store_true", help="continually stream logs")
    parser.add_argument("-d", "--dyno-name", "--dyno", dest="dyno", help="only show output from this dyno")
    parser.add_argument("-p", "--process-type", help="only show output from this process type (or dyno)")
    parser.add_argument("-s", "--source", help="only show output from this source (app or heroku)")


def logs_cmd(args) -> int:
    if args.num < 0:
        raise PlatformError("--num must be zero or more")
    app = _app(args)
    for line in app.logs(lines=args.num, dyno=args.dyno or args.process_type, source=args.source,
                         tail=args.tail):
        print(line, flush=args.tail)
    return 0


# apps, deploy, releases -----------------------------------------------------------
def apps_cmd(args) -> int:
    apps = _client(args).request("GET", "/apps")
    if args.json:
        print(fmt.as_json(apps))
    elif not apps:
        print("You have no apps.")
    else:
        print("=== Apps\n\n" + "\n".join(a["name"] for a in apps))
    return 0


def apps_create_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="name of the app (default: the directory's name)")
    parser.add_argument("--dir", default=".", help="directory to link to the app (default: the current one)")


def apps_create_cmd(args) -> int:
    directory = Path(args.dir).resolve()
    if not directory.is_dir():
        raise PlatformError(f"{args.dir} is not a directory")
    from ..platform import links
    name = args.name or links.app_name_for(directory)
    _err_inline(f"Creating {fmt.app_label(name)}... ")
    app = App(name, client=_client(args), cwd=directory)
    app.create(name, directory)
    _err("done")
    print(f"Linked {directory} to {name}")
    return 0


def apps_info_cmd(args) -> int:
    app = _app(args)
    info = app.info()
    if args.json:
        print(fmt.as_json(info))
    else:
        print(fmt.info_text(info, app.ps(), app.client.request("GET", f"{app.path}/addons")))
    return 0


# formation ----------------------------------------------------------------------
def restart_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--dyno-name", help="name of the dyno to restart")
    parser.add_argument("-p", "--process-type", help="name of the process type to restart")
    parser.add_argument("dyno", nargs="?", help="name of the dyno to restart (deprecated: use -d)")


def restart_cmd(args) -> int:
    app = _app(args)
    name = args.dyno_name or args.dyno
    if args.process_type and name:
        raise PlatformError("--process-type cannot also be provided when using --dyno-name")
    if args.process_type:
        message, path = f"Restarting all {args.process_type} dynos", f"/formations/{quote(args.process_type)}"
    elif name:
        message, path = f"Restarting dyno {name}", f"/dynos/{quote(name)}"
    else:
        message, path = "Restarting all dynos", "/dynos"
    _err_inline(f"{message} on {fmt.app_label(app.name)}... ")
    app.client.request("DELETE", app.path + path)
    _err("done")
    return 0


def scale_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("changes", nargs="*", metavar="TYPE=QUANTITY[:SIZE]", help="e.g. web=2 worker+1:Standard-2X")


def scale_cmd(args) -> int:
    import re
    app = _app(args)
    changes = []
    for arg in args.changes:
        match = re.match(r"^([\w-]+)([=+-]\d+)(?::([\w-]+))?$", arg)
        if not match:
            raise PlatformError(f"Invalid argument {arg!r}: expected TYPE=QUANTITY[:SIZE], TYPE+N or TYPE-N "
                                "(e.g. web=2 worker+1:Standard-2X)")
        quantity = match.group(2)[1:] if match.group(2)[0] == "=" else match.group(2)
        change = {"quantity": quantity, "type": match.group(1)}
        if match.group(3):
            change["size"] = match.group(3)
        changes.append(change)
    if not changes:
        formation = app.client.request("GET", f"{app.path}/formation")
        if not formation:
            raise PlatformError(f"No process types on {fmt.app_label(app.name)}.\n"
                                "Upload a Procfile to add process types.")
        print(fmt.scale_text(formation))
        return 0
    _err_inline("Scaling dynos... ")
    formation = app.client.request("PATCH", f"{app.path}/formation", {"updates": changes})
    changed = {c["type"] for c in changes}
    _err("done, now running " + ", ".join(f"{f['type']} at {f['quantity']}:{f['size']}"
                                          for f in formation if f["type"] in changed))
    return 0


def type_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("changes", nargs="*", metavar="TYPE=SIZE", help="e.g. web=Standard-2X worker=Basic")


def type_cmd(args) -> int:
    """`ps:type`: the formation's dyno sizes (and quantities); TYPE=SIZE changes them."""
    app = _app(args)
    updates = []
    for arg in args.changes:
        dyno_type, sep, size = arg.partition("=")
        if not sep or not dyno_type or not size:
            raise PlatformError(f"Invalid argument {arg!r}: expected TYPE=SIZE (e.g. web=Standard-2X)")
        updates.append({"type": dyno_type, "size": size})
    if updates:
        _err_inline(f"Scaling dynos on {fmt.app_label(app.name)}... ")
        app.client.request("PATCH", f"{app.path}/formation", {"updates": updates})
        _err("done")
    formation = app.client.request("GET", f"{app.path}/formation")
    print(fmt.header("Dyno Types") + fmt.table(["Type", "Size", "Qty"],
                                                [[f["type"], f["size"], str(f["quantity"])] for f in formation]))
    return 0


def apps_update_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idle-timeout", type=float, required=True,
                        help="seconds an attached dyno may be idle before it gets SIGHUP")


def apps_update_cmd(args) -> int:
    app = _app(args)
    app.client.request("PATCH", app.path, {"idle_timeout": args.idle_timeout})
    _err(f"Updated {fmt.app_label(app.name)}: idle timeout {args.idle_timeout:g} s")
    return 0


def apps_destroy_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="app to destroy")
    parser.add_argument("-c", "--confirm", help="the app's name, to confirm")


def apps_destroy_cmd(args) -> int:
    name = args.app or args.name
    if not name:
        raise PlatformError("Specify the app to destroy with -a APP")
    confirm_destructive(name, args.confirm, f"This will destroy {fmt.app_label(name)} and all its dynos, add-ons "
                        "and logs.")
    client = _client(args)
    _err_inline(f"Destroying {fmt.app_label(name)} (including all add-ons)... ")
    client.request("DELETE", f"/apps/{name}")
    _err("done")
    return 0


def deploy_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="directory to build from (default: the app's linked directory)")


def deploy_cmd(args) -> int:
    app = _app(args, create=True)
    source = Path(args.dir).resolve() if args.dir else (app.directory or app.cwd)
    _err_inline(f"Deploying {fmt.app_label(app.name)} from {source}... ")
    build = app.deploy(source)
    failed = _report_build(build)
    types = build.get("process_types") or {}
    if types:
        print("Process types: " + ", ".join(sorted(types)))
    return 1 if failed else 0


def _report_build(build: dict) -> bool:
    """What a deploy did: its release, warnings, add-ons, release phase; True if the release failed."""
    release = build["release"]
    _err(f"done, v{release['version']}")
    for warning in build.get("warnings", []):
        _err(f" \u203a   Warning: {warning}")
    for addon in build.get("provisioned_addons", []):
        _err(f"Provisioned {addon['plan']['name']} ({addon['name']}) as {', '.join(addon['config_vars'])}: "
             "the app has a database config and no database add-on")
    phase = build.get("release_phase")
    if phase:
        _err(f"Release phase ({phase['dyno']}):")
        for line in phase["output"]:
            _err(f"  {line}")
    if release.get("status") == "failed":
        _err(f" \u203a   Error: Release v{release['version']} failed: its release command exited with status "
             f"{phase['exit_code'] if phase else '?'}; the app stays on its previous release")
        return True
    return False


def releases_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--num", type=int, default=15, help="number of releases to show")
    parser.add_argument("--json", action="store_true", help="output in json format")


def releases_cmd(args) -> int:
    app = _app(args)
    releases = app.client.request("GET", f"{app.path}/releases",
                                  headers={"Range": f"version ..; max={args.num or 15}, order=desc"})
    print(fmt.as_json(releases) if args.json else fmt.releases_text(app.name, releases))
    return 0


# config -------------------------------------------------------------------------
def config_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="output config vars in json format")
    parser.add_argument("-s", "--shell", action="store_true", help="output config vars in shell format")


def config_cmd(args) -> int:
    app = _app(args)
    config = app.config()
    if args.json:
        print(fmt.as_json(config))
    elif args.shell:
        print(fmt.shell_quote_config(config))
    else:
        print(fmt.config_text(app.name, config))
    return 0


def config_get_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keys", nargs="+", metavar="KEY", help="config var name")
    parser.add_argument("-s", "--shell", action="store_true", help="output config vars in shell format")
    parser.add_argument("-j", "--json", action="store_true", help="output in json format")


def config_get_cmd(args) -> int:
    config = _app(args).config()
    if args.json:
        results = [{"key": key, "value": config.get(key)} for key in args.keys]
        print(fmt.as_json(results[0] if len(results) == 1 else results))
    for key in [] if args.json else args.keys:
        value = config.get(key) or ""
        print(f"{key}={fmt.shell_quote(value)}" if args.shell else value)
    return 0


def config_set_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pairs", nargs="+", metavar="KEY=VALUE")


def config_set_cmd(args) -> int:
    changes = {}
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PlatformError(f"{pair} is invalid. Must be in the format FOO=bar.")
        changes[key] = value
    app = _app(args)
    _err_inline(f"Setting {', '.join(changes)} and restarting {fmt.app_label(app.name)}... ")
    config = app.set_config(changes)
    _err(f"done, v{_last_release(app)}")
    print(fmt.config_pairs({k: v for k, v in config.items() if changes.get(k)}))
    return 0


def _last_release(app: App) -> int:
    releases = app.client.request("GET", f"{app.path}/releases", headers={"Range": "version ..; order=desc,max=1"})
    return releases[0]["version"]


def config_unset_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keys", nargs="+", metavar="KEY")


def config_unset_cmd(args) -> int:
    app = _app(args)
    _err_inline(f"Unsetting {', '.join(args.keys)} and restarting {fmt.app_label(app.name)}... ")
    app.set_config({key: None for key in args.keys})
    _err(f"done, v{_last_release(app)}")
    return 0


# the manifold -------------------------------------------------------------------
def manifold_start_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="ADDR:PORT",
                        help="also serve the API over TLS on ADDR:PORT (rendezvous on PORT+1), for other machines")


def manifold_start_cmd(args) -> int:
    files = HomeFiles(dyno_home())
    info = running_manifold(files)
    if info is None:
        if args.listen:
            from ..manifold.listen import parse_listen, ListenError
            try:
                parse_listen(args.listen)
            except ListenError as exc:
                raise PlatformError(str(exc)) from None
            os.environ["DYNO_LISTEN"] = args.listen
        info = start_manifold(files)
    elif args.listen and info.get("listen_url") is None:
        raise PlatformError("The manifold is already running without --listen; stop it first (dyno manifold:stop)")
    print(f"Manifold running: pid {info['pid']}, API {info['api_url']}, home {files.home}")
    if info.get("listen_url"):
        print(f"Listening on {info['listen_url']} (TLS, CA {files.ca_cert}; rendezvous port "
              f"{info['listen_rendezvous_port']})")
    return 0


def manifold_stop_cmd(args) -> int:
    files = HomeFiles(dyno_home())
    info = running_manifold(files)
    if info is None:
        print("The manifold is not running.")
        return 0
    pid = info["pid"]
    pidfd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGTERM)
    if not select.select([pidfd], [], [], 60)[0]:
        raise PlatformError(f"The manifold (pid {pid}) did not stop within 60 s")
    os.close(pidfd)
    print(f"Manifold stopped (pid {pid}).")
    return 0


def manifold_status_cmd(args) -> int:
    files = HomeFiles(dyno_home())
    info = running_manifold(files)
    if info is None:
        print(f"The manifold is not running (home {files.home}).")
        return 3
    status = Client(resolve_endpoint(autostart=False)).request("GET", "/manifold")
    print(f"Manifold running: pid {status['pid']}, version {status['version']}\n"
          f"API:        {status['api_url']}\nRendezvous: port {status['rendezvous_port']}\n"
          f"Sandbox:    {status['sandbox']}\nDynos up:   {status['running_dynos']}\nHome:       {status['home']}")
    return 0


def kernels_install_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", action="store_true", help="install for this user")
    parser.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (e.g. a venv)")


def kernels_install_cmd(args) -> int:
    from ..kernel.install import install
    for path in install(user=args.user, prefix=sys.prefix if args.sys_prefix else None):
        print(f"Installed {Path(path).name} in {path}")
    return 0


def _none(parser: argparse.ArgumentParser) -> None:
    pass


COMMANDS = {
    "run": (run_spec, run_cmd, True),
    "run:detached": (detached_spec, detached_cmd, True),
    "ps": (ps_spec, ps_cmd, True),
    "ps:stop": (stop_spec, stop_cmd, True),
    "ps:kill": (stop_spec, stop_cmd, True),
    "ps:restart": (restart_spec, restart_cmd, True),
    "ps:scale": (scale_spec, scale_cmd, True),
    "ps:type": (type_spec, type_cmd, True),
    "logs": (logs_spec, logs_cmd, True),
    "apps": (fmt.json_flag, apps_cmd, True),
    "apps:create": (apps_create_spec, apps_create_cmd, True),
    "apps:info": (fmt.json_flag, apps_info_cmd, True),
    "apps:update": (apps_update_spec, apps_update_cmd, True),
    "apps:destroy": (apps_destroy_spec, apps_destroy_cmd, True),
    "deploy": (deploy_spec, deploy_cmd, True),
    "releases": (releases_spec, releases_cmd, True),
    "config": (config_spec, config_cmd, True),
    "config:get": (config_get_spec, config_get_cmd, True),
    "config:set": (config_set_spec, config_set_cmd, True),
    "config:unset": (config_unset_spec, config_unset_cmd, True),
    "heroku-env": (heroku_env_spec, heroku_env_cmd, False),
    "kernels:install": (kernels_install_spec, kernels_install_cmd, False),
    "manifold:start": (manifold_start_spec, manifold_start_cmd, False),
    "manifold:stop": (_none, manifold_stop_cmd, False),
    "manifold:status": (_none, manifold_status_cmd, False),
    **ADDON_COMMANDS,
    **PG_COMMANDS,
    **SCHEDULER_COMMANDS,
    **DRAIN_COMMANDS,
}
