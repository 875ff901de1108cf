"""Add-ons: attachable resources that set a config var and make a release, as on Heroku.

Two plans of databases that outlive dynos:
- `heroku-postgresql`: a database and role of its own on the PostgreSQL server the manifold runs
  (postgres.py); `DATABASE_URL=postgres://ROLE:PASSWORD@127.0.0.1:PORT/DB`.
- `sqlite`: a persistent per-app directory under $DYNO_HOME/addons/<addon-id>/, mounted into every
  dyno of the app outside /app (at /var/lib/dyno-addons/<name> in the linux sandbox; the copy sandbox
  can't remap paths, so there the host path is used). `DATABASE_URL=sqlite3:///<dir>/db.sqlite3`,
  in WAL mode so that concurrent dynos can read and write it.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import uuid
from pathlib import Path

from .postgres import PostgresError, PostgresServer
from .processes import Reaper
from .store import Store, api_time


def _api_error(status: int, error_id: str, message: str) -> Exception:
    from .supervisor import ApiError as Error  # supervisor imports this module
    return Error(status, error_id, message)

MOUNT_ROOT = "/var/lib/dyno-addons"
ADDON_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,59}$")
ATTACHMENT = re.compile(r"^[A-Z][A-Z0-9_]*$")
POSTGRES = "heroku-postgresql"
POSTGRES_PLANS = ("essential-0", "essential-1", "essential-2", "mini", "basic", "hobby-dev", "standard-0")
PLANS = {"sqlite": ("sqlite", "sqlite"), "sqlite:sqlite": ("sqlite", "sqlite"), "sqlite:default": ("sqlite", "sqlite"),
         POSTGRES: (POSTGRES, POSTGRES_PLANS[0]),
         **{f"{POSTGRES}:{plan}": (POSTGRES, plan) for plan in POSTGRES_PLANS}}
NAME_PREFIX = {"sqlite": "sqlite", POSTGRES: "postgresql"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS addons (
  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, name TEXT UNIQUE NOT NULL, service TEXT NOT NULL,
  plan TEXT NOT NULL, attachment TEXT NOT NULL, config_var TEXT NOT NULL, state TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, provider TEXT NOT NULL);
"""


class Addons:
    """The registry of add-ons (table `addons`) and their provisioning."""

    def __init__(self, store: Store, home: Path, sandbox_name: str, reaper: Reaper) -> None:
        self.store, self.root, self.sandbox_name = store, home / "addons", sandbox_name
        self.postgres = PostgresServer(home, reaper)
        store.db.executescript(SCHEMA)

    async def start(self) -> str | None:
        """At the manifold's start: bring up the PostgreSQL server if an add-on needs it (else None)."""
        if not self.store._one("SELECT id FROM addons WHERE service = ?", POSTGRES):
            return None
        try:
            await self.postgres.ensure_running()
        except PostgresError as exc:
            return str(exc)
        return None

    async def stop(self) -> None:
        await self.postgres.stop()

    # queries ------------------------------------------------------------------
    def list(self, app_id: str) -> list[dict]:
        return self.store._all("SELECT * FROM addons WHERE app_id = ? ORDER BY created_at, rowid", app_id)

    def find(self, app_id: str, name_or_id: str) -> dict | None:
        return self.store._one("SELECT * FROM addons WHERE app_id = ? AND (name = ? OR id = ? OR attachment = ?)",
                               app_id, name_or_id, name_or_id, name_or_id)

    def find_anywhere(self, name_or_id: str) -> dict | None:
        return self.store._one("SELECT * FROM addons WHERE name = ? OR id = ?", name_or_id, name_or_id)

    # changes ------------------------------------------------------------------
    async def create(self, app: dict, plan: str, as_name: str | None = None, name: str | None = None,
                     user: str = "local") -> dict:
        if not isinstance(plan, str) or plan not in PLANS:
            raise _api_error(422, "invalid_params", f"Couldn't find either the add-on service or the add-on plan of "
                             f"\"{plan}\". Available plans: {POSTGRES}, sqlite.")
        service, plan_name = PLANS[plan]
        attachment = (as_name or "DATABASE").upper().replace("-", "_")
        if not ATTACHMENT.match(attachment):
            raise _api_error(422, "invalid_params", f"Invalid attachment name: {as_name!r}")
        if self.find(app["id"], attachment):
            raise _api_error(422, "invalid_params", f"{attachment} is already attached to {app['name']}.")
        name = name or f"{NAME_PREFIX[service]}-{_word()}-{random.randint(10000, 99999)}"
        if not ADDON_NAME.match(name) or self.store._one("SELECT id FROM addons WHERE name = ?", name):
            raise _api_error(422, "invalid_params", f"Add-on name {name!r} is invalid or already taken.")
        addon_id = str(uuid.uuid4())
        provider = await self._provision_postgres() if service == POSTGRES else self._provision_sqlite(addon_id, name)
        config_var = f"{attachment}_URL"
        stamp = api_time()
        with self.store.transaction():
            self.store.db.execute("INSERT INTO addons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  (addon_id, app["id"], name, service, plan_name, attachment, config_var,
                                   "provisioned", stamp, stamp, json.dumps(provider)))
            self.store.set_config(app["id"], {config_var: provider["url"]})
            self._release(app, f"Attach {attachment} (@ref:{name})", user)
        return self.find(app["id"], addon_id)

    async def _provision_postgres(self) -> dict:
        try:
            database = await self.postgres.create_database()
        except PostgresError as exc:
            raise _api_error(503, "unavailable", f"Couldn't provision {POSTGRES}: {exc}") from None
        return {"database": database.name, "url": database.url}

    def _provision_sqlite(self, addon_id: str, name: str) -> dict:
        directory = self.root / addon_id
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)  # dynos may run as another user
        db_file = directory / "db.sqlite3"
        with sqlite3.connect(db_file) as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: concurrent dynos read while one writes
        db_file.chmod(0o666)
        inside = f"{MOUNT_ROOT}/{name}" if self.sandbox_name == "linux" else str(directory)
        return {"dir": str(directory), "url": f"sqlite3://{inside}/db.sqlite3"}

    async def destroy(self, app: dict, addon: dict, user: str = "local", release: bool = True) -> None:
        if addon["service"] == POSTGRES:
            try:
                await self.postgres.drop_database(self.database_name(addon))
            except PostgresError as exc:
                raise _api_error(503, "unavailable", f"Couldn't destroy {addon['name']}: {exc}") from None
        with self.store.transaction():
            self.store.db.execute("DELETE FROM addons WHERE id = ?", (addon["id"],))
            if release:
                self.store.set_config(app["id"], {addon["config_var"]: None})
                self._release(app, f"Detach {addon['attachment']} (@ref:{addon['name']})", user)
        shutil.rmtree(self.root / addon["id"], ignore_errors=True)

    async def destroy_all(self, app: dict) -> None:
        for addon in self.list(app["id"]):
            await self.destroy(app, addon, release=False)

    async def provision_if_needed(self, app: dict, source: Path, user: str) -> dict | None:
        """First deploy of an app that looks like it needs a database and has none: give it one,
        PostgreSQL where this machine can run it (or as DYNO_DEFAULT_DATABASE says), else sqlite."""
        if self.store.current_release(app["id"]) is not None or "DATABASE_URL" in self.store.config(app["id"]):
            return None
        if not _wants_database(source):
            return None
        return await self.create(app, await self.default_plan(), user=user)

    async def default_plan(self) -> str:
        wanted = os.environ.get("DYNO_DEFAULT_DATABASE", "auto")
        if wanted == "sqlite" or (wanted == "auto" and not await self.postgres.usable()):
            return "sqlite"
        return POSTGRES

    @staticmethod
    def database_name(addon: dict) -> str:
        return json.loads(addon["provider"])["database"]

    def _release(self, app: dict, description: str, user: str) -> None:
        current = self.store.current_release(app["id"])
        self.store.create_release(app["id"], current["slug_id"] if current else None, description, user)


def addon_mounts(store: Store, app_id: str) -> list[tuple[Path, str]]:
    """(host directory, path inside the dyno) of every sqlite add-on of the app."""
    try:
        rows = store._all("SELECT * FROM addons WHERE app_id = ? AND service = 'sqlite'", app_id)
    except sqlite3.OperationalError:  # no add-on was ever made (no table yet)
        return []
    return [(Path(json.loads(a["provider"])["dir"]), f"{MOUNT_ROOT}/{a['name']}") for a in rows]


def addon_json(app: dict, addon: dict) -> dict:
    """Heroku's add-on shape."""
    return {
        "id": addon["id"], "name": addon["name"], "addon_service": {"id": addon["service"], "name": addon["service"]},
        "plan": _plan(addon),
        "app": {"id": app["id"], "name": app["name"]}, "billing_entity": {"id": app["id"], "name": app["name"],
                                                                         "type": "app"},
        "config_vars": [addon["config_var"]], "state": addon["state"], "created_at": addon["created_at"],
        "updated_at": addon["updated_at"], "web_url": None, "provider_id": addon["id"],
        "actions": [], "billed_price": {"cents": 0, "contract": False, "unit": "month"},
    }


def attachment_json(app: dict, addon: dict) -> dict:
    """Heroku's add-on attachment shape (one attachment per add-on, to its own app)."""
    owner = {"id": app["id"], "name": app["name"]}
    return {"id": addon["id"], "name": addon["attachment"], "namespace": None,
            "addon": {"id": addon["id"], "name": addon["name"], "app": owner, "plan": _plan(addon)},
            "config_vars": [addon["config_var"]],
            "app": owner, "created_at": addon["created_at"], "updated_at": addon["updated_at"], "web_url": None}


def _plan(addon: dict) -> dict:
    return {"id": f"{addon['service']}:{addon['plan']}", "name": f"{addon['service']}:{addon['plan']}"}


def _wants_database(source: Path) -> bool:
    """A Rails-style config/database.yml, or DATABASE_URL named in the Procfile, .env or app.json."""
    if (source / "config" / "database.yml").is_file():
        return True
    for name in ("Procfile", ".env", "app.json"):
        try:
            if "DATABASE_URL" in (source / name).read_text(errors="replace"):
                return True
        except OSError:
            pass
    return False


def _word() -> str:
    return random.choice(("curved", "shallow", "silent", "rugged", "opaque", "vertical", "clear", "solid",
                          "fluffy", "polished", "amorphous", "angular", "cubed", "defined", "symmetrical"))
