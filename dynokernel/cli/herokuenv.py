"""`dyno heroku-env`: the environment that points an installed Heroku CLI at the local manifold.

    eval "$(dyno heroku-env)"
    heroku run bash -a myapp

The Heroku CLI accepts only loopback (or Heroku) hosts in HEROKU_HOST, trusts extra CAs through
NODE_EXTRA_CA_CERTS (rendezvous is always TLS), and — with telemetry, the auto-updater and the
version check switched off and its files kept under $DYNO_HOME/heroku — makes no connection
anywhere but the manifold.
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..paths import HomeFiles, dyno_home
from ..platform.endpoint import running_manifold, start_manifold


def heroku_env(files: HomeFiles, info: dict) -> dict[str, str]:
    """The variables, in the order they are printed."""
    base = files.home / "heroku"
    for sub in ("cache", "data", "config"):
        (base / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    (base / "cache" / "terms-of-service").touch()
    gitconfig = base / "gitconfig"
    gitconfig.touch()
    url = f"http://127.0.0.1:{info['api_port']}"
    return {
        "HEROKU_HOST": url,
        "HEROKU_API_KEY": files.token.read_text().strip(),
        "HEROKU_PARTICLEBOARD_URL": url,
        "NODE_EXTRA_CA_CERTS": str(files.ca_cert),
        "DISABLE_TELEMETRY": "true",
        "HEROKU_DISABLE_AUTOUPDATE": "1",
        "HEROKU_SKIP_NEW_VERSION_CHECK": "1",
        "HEROKU_CACHE_DIR": str(base / "cache"),
        "HEROKU_DATA_DIR": str(base / "data"),
        "HEROKU_CONFIG_DIR": str(base / "config"),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
    }


def heroku_env_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the variables as a JSON object")
    parser.add_argument("--unset", action="store_true", help="print the `unset` line that undoes it")


def heroku_env_cmd(args) -> int:
    files = HomeFiles(dyno_home())
    if args.unset:
        print("unset " + " ".join(heroku_env_names()))
        return 0
    info = running_manifold(files) or start_manifold(files)
    env = heroku_env(files, info)
    if args.json:
        import json
        print(json.dumps(env, indent=2))
    else:
        print("\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items()))
    return 0


def heroku_env_names() -> list[str]:
    return ["HEROKU_HOST", "HEROKU_API_KEY", "HEROKU_PARTICLEBOARD_URL", "NODE_EXTRA_CA_CERTS", "DISABLE_TELEMETRY",
            "HEROKU_DISABLE_AUTOUPDATE", "HEROKU_SKIP_NEW_VERSION_CHECK", "HEROKU_CACHE_DIR", "HEROKU_DATA_DIR",
            "HEROKU_CONFIG_DIR", "GIT_CONFIG_GLOBAL"]


__all__ = ["heroku_env", "heroku_env_cmd", "heroku_env_spec", "heroku_env_names", "Path"]
