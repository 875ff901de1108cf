"""Add-ons: attachable resources that set a config var and make a release, as on Heroku.

The `sqlite` plan is a persistent per-app directory under $DYNO_HOME/addons/<addon-id>/,
mounted into every dyno of the app outside /app (at /var/lib/dyno-addons/<name> in the
linux sandbox; the copy sandbox can't remap paths, so there the host path is used).
`DATABASE_URL=sqlite3:///<dir>/db.sqlite3`; the database is put in WAL mode so that
concurrent dynos can read and write it.
"""
from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
import uuid
from pathlib import Path

from .store import Store, api_time


def _api_error(status: int, error_id: str, message: str) -> Exception:
    from .supervisor import ApiError as Error  # supervisor imports this module
    return Error(status, error_id, message)

MOUNT_ROOT = "/var/lib/dyno-addons"
ADDON_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,59}$")
ATTACHMENT = re.compile(r"^[A-Z][A-Z0-9_]*$")
PLANS = {"sqlite": ("sqlite", "sqlite"), "sqlite:default": ("sqlite", "sqlite")}
SCHEMA = """
CREATE TABLE IF NOT EXISTS addons (
  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, name TEXT UNIQUE NOT NULL, service TEXT NOT NULL,
  plan TEXT NOT NULL, attachment TEXT NOT NULL, config_var TEXT NOT NULL, state TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, provider TEXT NOT NULL);
"""


class Addons:
    """The registry of add-ons (table `addons`) and their provisioning."""

    def __init__(self, store: Store, home: Path, sandbox_name: str) -> None:
        self.store, self.root, self.sandbox_name = store, home / "addons", sandbox_name
        store.db.executescript(SCHEMA)

    # queries ------------------------------------------------------------------
    def list(self, app_id: str) -> list[dict]:
        return self.store._all("SELECT * FROM addons WHERE app_id = ? ORDER BY created_at, rowid", app_id)

    def find(self, app_id: str, name_or_id: str) -> dict | None:
        return self.store._one("SELECT * FROM addons WHERE app_id = ? AND (name = ? OR id = ? OR attachment = ?)",
                               app_id, name_or_id, name_or_id, name_or_id)

    def mounts(self, app_id: str) -> list[tuple[Path, str]]:
        return addon_mounts(self.store, app_id)

    # changes ------------------------------------------------------------------
    def create(self, app: dict, plan: str, as_name: str | None = None, name: str | None = None,
               user: str = "local") -> dict:
        if not isinstance(plan, str) or plan not in PLANS:
            raise _api_error(422, "invalid_params", f"Couldn't find either the add-on service or the add-on plan of "
                           f"\"{plan}\". Available plans: sqlite.")
        service, plan_name = PLANS[plan]
        attachment = (as_name or "DATABASE").upper().replace("-", "_")
        if not ATTACHMENT.match(attachment):
            raise _api_error(422, "invalid_params", f"Invalid attachment name: {as_name!r}")
        if self.find(app["id"], attachment):
            raise _api_error(422, "invalid_params", f"{attachment} is already attached to {app['name']}.")
        name = name or f"{service}-{_word()}-{random.randint(10000, 99999)}"
        if not ADDON_NAME.match(name) or self.store._one("SELECT id FROM addons WHERE name = ?", name):
            raise _api_error(422, "invalid_params", f"Add-on name {name!r} is invalid or already taken.")
        addon_id = str(uuid.uuid4())
        directory = self.root / addon_id
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)  # dynos may run as another user
        db_file = directory / "db.sqlite3"
        with sqlite3.connect(db_file) as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: concurrent dynos read while one writes
        db_file.chmod(0o666)
        inside = f"{MOUNT_ROOT}/{name}" if self.sandbox_name == "linux" else str(directory)
        url = f"sqlite3://{inside}/db.sqlite3"
        config_var = f"{attachment}_URL"
        stamp = api_time()
        provider = {"dir": str(directory), "url": url}
        with self.store.transaction():
            self.store.db.execute("INSERT INTO addons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  (addon_id, app["id"], name, service, plan_name, attachment, config_var,
                                   "provisioned", stamp, stamp, json.dumps(provider)))
            self.store.set_config(app["id"], {config_var: url})
            self._release(app, f"Attach {attachment} (@ref:{name})", user)
        return self.find(app["id"], addon_id)

    def destroy(self, app: dict, addon: dict, user: str = "local", release: bool = True) -> None:
        with self.store.transaction():
            self.store.db.execute("DELETE FROM addons WHERE id = ?", (addon["id"],))
            if release:
                self.store.set_config(app["id"], {addon["config_var"]: None})
                self._release(app, f"Detach {addon['attachment']} (@ref:{addon['name']})", user)
        shutil.rmtree(self.root / addon["id"], ignore_errors=True)

    def destroy_all(self, app: dict) -> None:
        for addon in self.list(app["id"]):
            self.destroy(app, addon, release=False)

    def provision_if_needed(self, app: dict, source: Path, user: str) -> dict | None:
        """First deploy of an app that looks like it needs a database and has none: give it one."""
        if self.store.current_release(app["id"]) is not None or "DATABASE_URL" in self.store.config(app["id"]):
            return None
        if not _wants_database(source):
            return None
        return self.create(app, "sqlite", user=user)

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
        "plan": {"id": f"{addon['service']}:{addon['plan']}", "name": f"{addon['service']}:{addon['plan']}"},
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
            "addon": {"id": addon["id"], "name": addon["name"], "app": owner},
            "app": owner, "created_at": addon["created_at"], "updated_at": addon["updated_at"], "web_url": None}


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
