"""The Platform API: one tornado handler per resource, routes in one table at the bottom.

Paths, bodies and JSON shapes follow Heroku's Platform API; errors are Heroku-shaped
(`{"id": "not_found", "message": "..."}` with the matching HTTP status).
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import re
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import tornado.web
from tornado.iostream import StreamClosedError

from .. import __version__
from .logplex import LogSession, Logplex, format_line
from .slugs import SlugError, build_slug
from .store import Store, api_time
from .addons import POSTGRES, Addons, addon_json, attachment_json
from .drains import Drains, drain_json
from .formation import Formation, RestartPolicy
from .releases import Releaser
from .router import Router
from .scheduler import Scheduler, job_json, run_json
from .postgres import PostgresError
from .supervisor import ApiError, Supervisor
from .procfile import ProcfileError
from .dotenv import DotenvError
from .sizes import SizeError, parse_size

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEEPALIVE = 15.0
HEROKU_LOG_LINES = 1500  # Logplex keeps (and a log session returns) at most this many lines
EXIT_SUFFIX = '; echo "\uFFFF heroku-command-exit-status: $?"'  # what `heroku run -x` appends
EXTENSION_DYNO_FIELDS = ("exit_code",)
EXTENSION_APP_FIELDS = ("idle_timeout",)
EXTENSION_BODY_FIELDS = ("exit_status", "idle_timeout")
RANGE = re.compile(r"^\s*(?P<field>\w+)\s*(?P<start>\]?[^.;\s]*)\.\.(?P<end>[^;\s]*)\s*(?:;(?P<opts>.*))?$")


class Manifold:
    """What every handler needs: the store, logplex, supervisor and settings."""

    def __init__(self, store: Store, logplex: Logplex, supervisor: Supervisor, token: str, info: dict) -> None:
        self.store, self.logplex, self.supervisor, self.token, self.info = store, logplex, supervisor, token, info
        self.addons = Addons(store, supervisor.files.home, supervisor.sandbox.name, supervisor.reaper)
        self.formation = Formation(store, logplex, supervisor, RestartPolicy(backoff=supervisor.settings.restart_backoff))
        self.scheduler = Scheduler(store, logplex, supervisor)
        self.releaser = Releaser(store, logplex, supervisor, self.formation)
        self.drains = Drains(store, logplex)
        self.router = Router(store, logplex, self.formation, float(os.environ.get("DYNO_ROUTER_TIMEOUT", 30)))
        # strict: serve only what Heroku's Platform API documents (to test clients meant for Heroku)
        self.strict = os.environ.get("DYNO_STRICT", "") not in ("", "0")
        self.info.setdefault("strict", self.strict)
        log = os.environ.get("DYNO_API_LOG")
        self.request_log = open(log, "a", buffering=1) if log else None


class ApiHandler(tornado.web.RequestHandler):
    """JSON in and out, bearer-token auth, Heroku-shaped errors."""

    needs_auth = True

    def initialize(self, manifold: Manifold, public: dict | None = None) -> None:
        self.m = manifold
        self.public = public  # set on the --listen server: the address remote clients use

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Request-Id", str(uuid.uuid4()))
        if not self.application.settings.get("strict"):  # (runs before initialize)
            self.set_header("Dyno-Manifold", __version__)

    def prepare(self) -> None:
        if self.m.request_log is not None:
            self.m.request_log.write(json.dumps({
                "method": self.request.method, "path": self.request.uri,
                "headers": {k: v for k, v in self.request.headers.items() if k.lower() not in ("authorization",)},
                "auth": bool(self.request.headers.get("Authorization")),
                "body": self.request.body.decode(errors="replace")}) + "\n")
        if self.needs_auth and not self._authorized():
            raise ApiError(401, "unauthorized", "Invalid credentials provided.")

    def _authorized(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            value = base64.b64decode(value + "==").decode(errors="replace").partition(":")[2]
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self.m.token.encode())

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, ApiError):
            body = {"id": error.id, "message": error.message}
        elif isinstance(error, tornado.web.HTTPError) and status_code == 405:
            body = {"id": "method_not_allowed", "message": f"{self.request.method} is not allowed here."}
        elif status_code == 404:
            body = {"id": "not_found", "message": "The requested API endpoint was not found."}
        else:
            body = {"id": "internal_server_error", "message": "Internal server error."}
        self.finish(json.dumps(body))

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        super().send_error(error.status if isinstance(error, ApiError) else status_code, **kwargs)

    def body(self) -> dict:
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "bad_request", "Request body must be valid JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_params", "Request body must be a JSON object.")
        return data

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def paged(self, items: list[dict], field: str, default_max: int = 1000) -> None:
        """Reply with one page of `items`, honouring Heroku's `Range` header (206 + Next-Range if more)."""
        match = RANGE.match(self.request.headers.get("Range", ""))
        limit, descending = default_max, False
        if match and match.group("field") == field:
            for option in (match.group("opts") or "").split(","):
                key, _, value = option.strip().partition("=")
                if key == "max" and value.isdigit():
                    limit = max(1, min(int(value), default_max))
                elif key == "order":
                    descending = value.strip() == "desc"
            items = sorted(items, key=lambda item: item[field], reverse=descending)
            start = match.group("start")
            if start:
                exclusive, bound = start.startswith("]"), _range_value(start.lstrip("]"))
                if descending:
                    items = [i for i in items if i[field] < bound or (not exclusive and i[field] == bound)]
                else:
                    items = [i for i in items if i[field] > bound or (not exclusive and i[field] == bound)]
        page = items[:limit]
        if len(items) > limit:
            order = ", order=desc" if descending else ""
            self.set_header("Next-Range", f"{field} ]{page[-1][field]}..; max={limit}{order}")
            self.reply(page, 206)
        else:
            self.reply(page, 200)

    def dyno_json(self, record: dict, dyno=None) -> dict:
        body = self.m.supervisor.describe(record, dyno)
        if self.m.strict:
            for key in EXTENSION_DYNO_FIELDS:
                body.pop(key, None)
        if self.public and body.get("attach_url"):
            body["attach_url"] = f"rendezvous://{self.public['host']}:{self.public['rendezvous_port']}/" \
                                 + body["attach_url"].split("/", 3)[3]
        return body

    def app_json(self, app: dict) -> dict:
        body = app_json(self.m, app)
        if self.m.strict:
            for key in EXTENSION_APP_FIELDS:
                body.pop(key, None)
        return body

    def app_record(self, name: str) -> dict:
        app = self.m.store.app(unquote(name))
        if app is None:
            raise ApiError(404, "not_found", "Couldn't find that app.")
        return app

    def dyno_record(self, app: dict, name: str) -> dict:
        dyno = self.m.store.dyno(app["id"], unquote(name))
        if dyno is None:
            raise ApiError(404, "not_found", f"Couldn't find that dyno: {unquote(name)}.")
        return dyno


def app_json(m: Manifold, app: dict) -> dict:
    release = m.store.current_release(app["id"])
    user = m.supervisor.user
    return {
        "id": app["id"], "name": app["name"], "created_at": app["created_at"], "updated_at": app["updated_at"],
        "released_at": release["created_at"] if release else None, "generation": "cedar",
        "stack": {"id": "heroku-24", "name": "heroku-24"}, "build_stack": {"id": "heroku-24", "name": "heroku-24"},
        "region": {"id": "local", "name": "local"}, "owner": {"id": "local", "email": user},
        "organization": None, "team": None, "space": None, "process_tier": "basic", "maintenance": False,
        "web_url": _web_url(m, app), "git_url": None, "buildpack_provided_description": None, "repo_size": None,
        "slug_size": _slug_size(m, release), "stack_name": "heroku-24", "acm": False, "archived_at": None,
        "internal_routing": None, "create_status": "complete", "idle_timeout": app["idle_timeout"],
    }


def _web_url(m: Manifold, app: dict) -> str | None:
    """Where the app's router listens (Heroku's https://APP.herokuapp.com/); strict mode shows none."""
    port = None if m.strict else m.router.port(app["id"])
    return f"http://127.0.0.1:{port}/" if port else None


def _range_value(text: str):
    return int(text) if text.isdigit() else text


def _slug_size(m: Manifold, release: dict | None) -> int | None:
    slug = m.store.slug(release["slug_id"]) if release and release["slug_id"] else None
    return slug["size"] if slug else None


def release_json(m: Manifold, app: dict, release: dict, current_version: int | None) -> dict:
    return {
        "id": release["id"], "version": release["version"], "description": release["description"],
        "status": release["status"], "created_at": release["created_at"], "updated_at": release["created_at"],
        "user": {"id": "local", "email": release["user"]}, "current": release["version"] == current_version,
        "slug": {"id": release["slug_id"]} if release["slug_id"] else None,
        "app": {"id": app["id"], "name": app["name"]}, "addon_plan_names": [], "output_stream_url": None,
    }


class AccountHandler(ApiHandler):
    def get(self) -> None:
        self.reply({"id": "local", "email": self.m.supervisor.user, "name": self.m.supervisor.user,
                    "verified": True, "two_factor_authentication": False})


class ManifoldHandler(ApiHandler):
    """Our extension: what this manifold is (for `dyno manifold:status`)."""

    def get(self) -> None:
        if self.m.strict:
            raise ApiError(404, "not_found", "The requested API endpoint was not found.")
        running = len(self.m.supervisor.running)
        self.reply(dict(self.m.info, running_dynos=running, sandbox=self.m.supervisor.sandbox.describe()))


class AppsHandler(ApiHandler):
    def get(self) -> None:
        self.paged([self.app_json(app) for app in self.m.store.apps()], "name")

    async def post(self) -> None:
        name = self.body().get("name")
        if not isinstance(name, str) or not APP_NAME.match(name):
            raise ApiError(422, "invalid_params", "Name must start with a letter, end with a letter or digit and can "
                           "only contain lowercase letters, digits, and dashes.")
        if self.m.store.app(name):
            raise ApiError(422, "invalid_params", "Name is already taken")
        app = self.m.store.create_app(name)
        await self.m.router.open(app)
        self.reply(self.app_json(app), 201)


class AppHandler(ApiHandler):
    def get(self, name: str) -> None:
        self.reply(self.app_json(self.app_record(name)))

    def patch(self, name: str) -> None:
        app = self.app_record(name)
        body = self.body()
        if "idle_timeout" in body and not self.m.strict:
            value = body["idle_timeout"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ApiError(422, "invalid_params", "idle_timeout must be a positive number of seconds")
            self.m.store.update_app(app["id"], idle_timeout=value)
        self.reply(self.app_json(self.m.store.app(app["id"])))

    async def delete(self, name: str) -> None:
        app = self.app_record(name)
        for record in self.m.store.live_dynos(app["id"]):
            self.m.supervisor.stop(record["id"])
        body = self.app_json(app)
        await self.m.addons.destroy_all(app)
        self.m.router.close(app["id"])
        self.m.scheduler.forget_app(app["id"])
        self.m.drains.forget_app(app["id"])
        self.m.store.delete_app(app["id"])
        self.reply(body)


class ConfigVarsHandler(ApiHandler):
    def get(self, name: str) -> None:
        self.reply(self.m.store.config(self.app_record(name)["id"]))

    async def patch(self, name: str) -> None:
        app = self.app_record(name)
        changes = self.body()
        for key, value in changes.items():
            if not CONFIG_KEY.match(key):
                raise ApiError(422, "invalid_params", f"Invalid config var name: {key!r}")
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise ApiError(422, "invalid_params", f"Config var {key} must be a string or null")
        changes = {k: (None if v is None else str(v)) for k, v in changes.items()}
        if changes:
            self.m.store.set_config(app["id"], changes)
            current = self.m.store.current_release(app["id"])
            await self.m.releaser.release(app, current["slug_id"] if current else None,
                                          _config_description(changes), self.m.supervisor.user)
        self.reply(self.m.store.config(app["id"]))


def _config_description(changes: dict) -> str:
    set_keys = [k for k, v in changes.items() if v is not None]
    removed = [k for k, v in changes.items() if v is None]
    parts = []
    if set_keys:
        parts.append(f"Set {', '.join(set_keys)} config vars")
    if removed:
        parts.append(f"Remove {', '.join(removed)} config vars")
    return " and ".join(parts)


class ReleasesHandler(ApiHandler):
    def get(self, name: str) -> None:
        app = self.app_record(name)
        releases = self.m.store.releases(app["id"])
        self.paged([release_json(self.m, app, r, _current_version(self.m, app)) for r in releases], "version")


class ReleaseHandler(ApiHandler):
    def get(self, name: str, version: str) -> None:
        app = self.app_record(name)
        release = self.m.store.release(app["id"], version.lstrip("v"))
        if release is None:
            raise ApiError(404, "not_found", "Couldn't find that release.")
        self.reply(release_json(self.m, app, release, _current_version(self.m, app)))


def _current_version(m: Manifold, app: dict) -> int | None:
    current = m.store.current_release(app["id"])
    return current["version"] if current else None


class BuildsHandler(ApiHandler):
    """POST a build from a local directory (`source_blob.url` = file:///path): slug + release."""

    async def post(self, name: str) -> None:
        app = self.app_record(name)
        url = (self.body().get("source_blob") or {}).get("url") or ""
        parsed = urlparse(url)
        if parsed.scheme != "file" or not parsed.path:
            raise ApiError(422, "invalid_params", "source_blob.url must be a file:// URL of the app's directory")
        files = self.m.supervisor.files
        try:
            slug = await asyncio.get_running_loop().run_in_executor(
                None, build_slug, Path(unquote(parsed.path)), files.objects, files.slugs)
        except (SlugError, ProcfileError, DotenvError) as exc:
            raise ApiError(422, "invalid_params", str(exc)) from None
        self.m.store.save_slug(slug.id, slug.size, slug.process_types, slug.dotenv)
        provisioned = await self.m.addons.provision_if_needed(app, Path(unquote(parsed.path)), self.m.supervisor.user)
        release, phase = await self.m.releaser.release(app, slug.id, f"Deploy {slug.id[:8]}", self.m.supervisor.user)
        self.reply({"id": str(uuid.uuid4()), "status": "succeeded", "created_at": api_time(),
                    "app": {"id": app["id"]}, "slug": {"id": slug.id, "size": slug.size},
                    "release": {"id": release["id"], "version": release["version"], "status": release["status"]},
                    "process_types": slug.process_types, "warnings": slug.warnings,
                    **({"provisioned_addons": [addon_json(app, provisioned)]} if provisioned and not self.m.strict
                       else {}),
                    **({"release_phase": vars(phase)} if phase and not self.m.strict else {})}, 201)


class DynosHandler(ApiHandler):
    def get(self, name: str) -> None:
        app = self.app_record(name)
        self.reply([self.dyno_json(r) for r in self.m.store.live_dynos(app["id"])])

    def post(self, name: str) -> None:
        app = self.app_record(name)
        body = self.body()
        if self.m.strict:
            for key in EXTENSION_BODY_FIELDS:
                body.pop(key, None)
        elif isinstance(body.get("command"), str) and body["command"].endswith(EXIT_SUFFIX) and body.get("attach"):
            # `heroku run -x`: report the status ourselves, so `exit 3` (which never reaches the
            # appended echo) still exits 3 and the marker is always the last line
            body["command"] = body["command"][:-len(EXIT_SUFFIX)]
            body["exit_status"] = True
        created = self.m.supervisor.create(app, body)
        dyno = self.m.supervisor.running.get(created["id"])
        self.reply(self.dyno_json(self.m.store.dyno(app["id"], created["id"]) or created, dyno), 201)

    def delete(self, name: str) -> None:
        """Restart every dyno of the app."""
        app = self.app_record(name)
        for record in self.m.store.live_dynos(app["id"]):
            _restart(self.m, record)
        self.reply({}, 202)


def _restart(m: Manifold, record: dict) -> None:
    """Formation dynos stop and come back (a crashed one at once); one-off dynos just stop."""
    if record["formation"]:
        m.formation.restart(m.store.app(record["app_id"]), [record["name"]])
    else:
        m.supervisor.stop(record["id"])


class DynoHandler(ApiHandler):
    def get(self, name: str, dyno: str) -> None:
        app = self.app_record(name)
        record = self.dyno_record(app, dyno)
        self.reply(self.dyno_json(record, self.m.supervisor.running.get(record["id"])))

    def delete(self, name: str, dyno: str) -> None:
        """Restart one dyno (a bare process type, as old CLIs send it, restarts all of that type)."""
        app = self.app_record(name)
        for record in self.dynos_named(app, dyno):
            _restart(self.m, record)
        self.reply({}, 202)

    def dynos_named(self, app: dict, dyno: str) -> list[dict]:
        name = unquote(dyno)
        if "." not in name:
            records = [r for r in self.m.store.live_dynos(app["id"]) if r["type"] == name]
            if records or name in _process_types(self.m, app):
                return records
        return [self.dyno_record(app, dyno)]


class DynoStopHandler(DynoHandler):
    def get(self, name: str, dyno: str) -> None:
        raise ApiError(405, "method_not_allowed", "GET is not allowed here.")

    def delete(self, name: str, dyno: str) -> None:
        raise ApiError(405, "method_not_allowed", "DELETE is not allowed here.")

    def post(self, name: str, dyno: str) -> None:
        app = self.app_record(name)
        for record in self.dynos_named(app, dyno):
            self.m.supervisor.stop(record["id"])
        self.reply({}, 202)


class FormationTypeDynosHandler(ApiHandler):
    """POST .../formations/TYPE/actions/stop stops them; DELETE .../formations/TYPE restarts them."""

    def records(self, name: str, dyno_type: str) -> list[dict]:
        app = self.app_record(name)
        dyno_type = unquote(dyno_type)
        records = [r for r in self.m.store.live_dynos(app["id"]) if r["type"] == dyno_type]
        known = {f["type"] for f in self.m.store.formation(app["id"])} | set(_process_types(self.m, app))
        if not records and dyno_type not in known:
            raise ApiError(404, "not_found", f"Couldn't find that process type ({dyno_type}).")
        return records



class FormationStopHandler(FormationTypeDynosHandler):
    def post(self, name: str, dyno_type: str) -> None:
        for record in self.records(name, dyno_type):
            self.m.supervisor.stop(record["id"])
        self.reply({}, 202)


class FormationRestartHandler(FormationTypeDynosHandler):
    def delete(self, name: str, dyno_type: str) -> None:
        for record in self.records(name, dyno_type):
            _restart(self.m, record)
        self.reply({}, 202)


def _process_types(m: Manifold, app: dict) -> dict[str, str]:
    release = m.store.current_release(app["id"])
    slug = m.store.slug(release["slug_id"]) if release and release["slug_id"] else None
    return json.loads(slug["process_types"]) if slug else {}


def formation_json(m: Manifold, app: dict, dyno_type: str, quantity: int, size: str, updated_at: str,
                   command: str) -> dict:
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app['id']}/{dyno_type}")),
            "app": {"id": app["id"], "name": app["name"]}, "command": command, "type": dyno_type,
            "quantity": quantity, "size": size, "dyno_size": {"id": None, "name": size},
            "created_at": app["created_at"], "updated_at": updated_at}


def formation_list(m: Manifold, app: dict) -> list[dict]:
    """Every process type of the current release (quantity 0 unless scaled), plus scaled ones."""
    types = _process_types(m, app)
    stored = {f["type"]: f for f in m.store.formation(app["id"])}
    result = []
    for dyno_type in sorted(set(types) | set(stored)):
        row = stored.get(dyno_type)
        result.append(formation_json(m, app, dyno_type, row["quantity"] if row else 0,
                                     row["size"] if row else "Basic",
                                     row["updated_at"] if row else app["updated_at"], types.get(dyno_type, "")))
    return result


def apply_formation(m: Manifold, app: dict, updates: list) -> list[dict]:
    """Validate every update first, then store them all; returns the updated formation entries."""
    current = {f["type"]: f for f in formation_list(m, app)}
    changes = []
    for update in updates:
        if not isinstance(update, dict) or not isinstance(update.get("type"), str):
            raise ApiError(422, "invalid_params", "Each update needs a process type.")
        dyno_type = update["type"]
        if dyno_type not in current:
            raise ApiError(404, "not_found", f"Couldn't find that process type ({dyno_type}).")
        entry = current[dyno_type]
        quantity = entry["quantity"]
        if update.get("quantity") is not None:
            raw = str(update["quantity"]).strip()
            if not re.fullmatch(r"[+-]?\d+", raw):
                raise ApiError(422, "invalid_params", f"Invalid quantity {update['quantity']!r}.")
            quantity = quantity + int(raw) if raw[0] in "+-" else int(raw)
            quantity = max(quantity, 0)
        size = entry["size"]
        if update.get("size"):
            try:
                size = parse_size(str(update["size"])).name
            except SizeError as exc:
                raise ApiError(422, "invalid_params", str(exc)) from None
        changes.append((dyno_type, quantity, size))
    for dyno_type, quantity, size in changes:
        m.store.set_formation(app["id"], dyno_type, quantity, size)
    if changes:
        scaled = ", ".join(f"{t}@{q}:{s}" for t, q, s in changes)
        m.logplex.platform(app["id"], "api", f"Scaled to {scaled} by user {m.supervisor.user}", "app")
        resized = {t for t, _, size in changes if size != current[t]["size"]}
        m.formation.restart(app, [name for name in m.formation.wanted(app) if name.split(".")[0] in resized])
        m.formation.reconcile(app)
    latest = {f["type"]: f for f in formation_list(m, app)}
    return [latest[dyno_type] for dyno_type, _, _ in changes]


class FormationHandler(ApiHandler):
    def get(self, name: str) -> None:
        self.reply(formation_list(self.m, self.app_record(name)))

    def patch(self, name: str) -> None:
        app = self.app_record(name)
        updates = self.body().get("updates")
        if not isinstance(updates, list):
            raise ApiError(422, "invalid_params", "updates must be a list of {type, quantity, size}.")
        self.reply(apply_formation(self.m, app, updates))


class FormationTypeHandler(ApiHandler):
    def entry(self, app: dict, dyno_type: str) -> dict:
        for entry in formation_list(self.m, app):
            if entry["type"] == unquote(dyno_type):
                return entry
        raise ApiError(404, "not_found", f"Couldn't find that process type ({unquote(dyno_type)}).")

    def get(self, name: str, dyno_type: str) -> None:
        app = self.app_record(name)
        self.reply(self.entry(app, dyno_type))

    def patch(self, name: str, dyno_type: str) -> None:
        app = self.app_record(name)
        self.entry(app, dyno_type)
        body = self.body()
        update = {"type": unquote(dyno_type), "quantity": body.get("quantity"), "size": body.get("size")}
        self.reply(apply_formation(self.m, app, [update])[0])


class EmptyListHandler(ApiHandler):
    """Add-ons and collaborators: the manifold has none (apps:info asks)."""

    def get(self, name: str) -> None:
        self.app_record(name)
        self.reply([])


class AddonsHandler(ApiHandler):
    def get(self, name: str) -> None:
        app = self.app_record(name)
        self.reply([addon_json(app, a) for a in self.m.addons.list(app["id"])])

    async def post(self, name: str) -> None:
        app, body = self.app_record(name), self.body()
        attachment, plan, addon_name = body.get("attachment"), body.get("plan"), body.get("name")
        plan = plan.get("name") if isinstance(plan, dict) else plan
        as_name = attachment.get("name") if isinstance(attachment, dict) else None
        if not all(isinstance(v, (str, type(None))) for v in (plan, as_name, addon_name)):
            raise ApiError(422, "invalid_params", "plan, attachment.name and name must be strings")
        addon = await self.m.addons.create(app, plan, as_name, addon_name, self.m.supervisor.user)
        self.m.formation.released(app)
        self.reply(addon_json(app, addon), 201)


class AddonAttachmentsHandler(ApiHandler):
    """GET /addon-attachments (every app's) and /apps/APP/addon-attachments."""

    def get(self, name: str | None = None) -> None:
        apps = [self.app_record(name)] if name else self.m.store.apps()
        self.reply([attachment_json(app, a) for app in apps for a in self.m.addons.list(app["id"])])


class AddonResolveHandler(ApiHandler):
    """POST /actions/addons/resolve and /actions/addon-attachments/resolve, as the Heroku CLI asks
    `addons:info NAME`: the app's add-ons (or their attachments) matching a name, id or attachment."""

    def post(self, kind: str) -> None:
        body = self.body()
        wanted = body.get("addon" if kind == "addons" else "addon_attachment")
        app = self.app_record(body.get("app") or "")
        service = body.get("addon_service")
        found = [a for a in self.m.addons.list(app["id"])
                 if wanted in (a["name"], a["id"], a["attachment"]) and service in (None, a["service"])]
        if not isinstance(wanted, str) or not found:
            raise ApiError(404, "not_found", f"Couldn't find that add-on: {wanted}.")
        shape = addon_json if kind == "addons" else attachment_json
        self.reply([shape(app, a) for a in found])


class GlobalAddonHandler(ApiHandler):
    """GET /addons/ID and /addons/ID/addon-attachments: an add-on found by its id or name alone."""

    def get(self, addon: str, attachments: str | None = None) -> None:
        found = self.m.addons.find_anywhere(unquote(addon))
        if found is None:
            raise ApiError(404, "not_found", f"Couldn't find that add-on: {unquote(addon)}.")
        app = self.m.store.app(found["app_id"])
        self.reply([attachment_json(app, found)] if attachments else addon_json(app, found))


class AddonHandler(ApiHandler):
    def record(self, app: dict, addon: str) -> dict:
        found = self.m.addons.find(app["id"], unquote(addon))
        if found is None:
            raise ApiError(404, "not_found", f"Couldn't find that add-on: {unquote(addon)}.")
        return found

    def get(self, name: str, addon: str) -> None:
        app = self.app_record(name)
        self.reply(addon_json(app, self.record(app, addon)))

    async def delete(self, name: str, addon: str) -> None:
        app = self.app_record(name)
        found = self.record(app, addon)
        await self.m.addons.destroy(app, found, self.m.supervisor.user)
        self.m.formation.released(app)
        self.reply(dict(addon_json(app, found), state="deprovisioned"))


class PostgresInfoHandler(AddonHandler):
    """GET /apps/APP/addons/NAME/postgres: what `dyno pg:info` shows (our extension)."""

    async def get(self, name: str, addon: str) -> None:
        app = self.app_record(name)
        found = self.postgres_addon(app, addon)
        info = await self.pg_call(self.m.addons.postgres.info(Addons.database_name(found)))
        self.reply({"addon": addon_json(app, found), "status": "Available", "max_connections": 100, **info})

    def postgres_addon(self, app: dict, addon: str) -> dict:
        found = self.record(app, addon)
        if found["service"] != POSTGRES:
            raise ApiError(422, "invalid_params", f"{found['name']} is not a {POSTGRES} database.")
        return found

    async def pg_call(self, call):
        try:
            return await call
        except PostgresError as exc:
            raise ApiError(503, "unavailable", str(exc)) from None


class PostgresResetHandler(PostgresInfoHandler):
    """POST /apps/APP/addons/NAME/actions/reset: an empty database again (`dyno pg:reset`)."""

    async def post(self, name: str, addon: str) -> None:
        app = self.app_record(name)
        found = self.postgres_addon(app, addon)
        await self.pg_call(self.m.addons.postgres.reset_database(Addons.database_name(found)))
        self.m.logplex.platform(app["id"], "api", f"Reset {found['attachment']} (@ref:{found['name']}) "
                                f"by user {self.m.supervisor.user}", "app")
        self.reply(addon_json(app, found))


class LogDrainsHandler(ApiHandler):
    def get(self, name: str) -> None:
        app = self.app_record(name)
        self.reply([drain_json(app, d) for d in self.m.drains.list(app["id"])])

    def post(self, name: str) -> None:
        app = self.app_record(name)
        self.reply(drain_json(app, self.m.drains.add(app, self.body().get("url"))), 201)


class LogDrainHandler(ApiHandler):
    def get(self, name: str, key: str) -> None:
        app = self.app_record(name)
        self.reply(drain_json(app, self.m.drains.find(app["id"], unquote(key))))

    def delete(self, name: str, key: str) -> None:
        app = self.app_record(name)
        record = self.m.drains.find(app["id"], unquote(key))
        self.m.drains.remove(app, record)
        self.reply(drain_json(app, record))


class SchedulerJobsHandler(ApiHandler):
    """GET/POST /apps/APP/scheduler/jobs (our extension: Heroku Scheduler has no public API)."""

    def get(self, name: str) -> None:
        app = self.app_record(name)
        self.reply([job_json(self.m.scheduler, job) for job in self.m.scheduler.jobs(app["id"])])

    def post(self, name: str) -> None:
        app = self.app_record(name)
        self.reply(job_json(self.m.scheduler, self.m.scheduler.add(app, self.body())), 201)


class SchedulerJobHandler(ApiHandler):
    """GET/DELETE .../scheduler/jobs/ID; POST .../ID/actions/run; GET .../ID/runs."""

    def get(self, name: str, job_id: str, what: str | None = None) -> None:
        app = self.app_record(name)
        job = self.m.scheduler.job(app["id"], unquote(job_id))
        if what == "runs":
            self.reply([run_json(run) for run in self.m.scheduler.runs(job)])
        else:
            self.reply(job_json(self.m.scheduler, job))

    def post(self, name: str, job_id: str, what: str | None = None) -> None:
        app = self.app_record(name)
        job = self.m.scheduler.job(app["id"], unquote(job_id))
        if what != "actions/run":
            raise ApiError(405, "method_not_allowed", "POST is not allowed here.")
        dyno = self.m.scheduler.run_now(job)
        self.reply(self.dyno_json(self.m.store.dyno(app["id"], dyno["id"])), 201)

    def delete(self, name: str, job_id: str, what: str | None = None) -> None:
        app = self.app_record(name)
        job = self.m.scheduler.job(app["id"], unquote(job_id))
        if what is not None:
            raise ApiError(405, "method_not_allowed", "DELETE is not allowed here.")
        self.m.scheduler.remove(app, job)
        self.reply(job_json(self.m.scheduler, job))


class PipelineCouplingHandler(ApiHandler):
    def get(self, name: str) -> None:
        self.app_record(name)
        raise ApiError(404, "not_found", "Couldn't find that pipeline coupling.")


class LogSessionsHandler(ApiHandler):
    def post(self, name: str) -> None:
        app = self.app_record(name)
        body = self.body()
        lines = body.get("lines", 100)
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise ApiError(422, "invalid_params", "lines must be a non-negative integer")
        if self.m.strict:
            lines = min(lines, HEROKU_LOG_LINES)
        dyno, source = body.get("dyno"), body.get("source")
        for field, value in (("dyno", dyno), ("source", source)):
            if value is not None and not isinstance(value, str):
                raise ApiError(422, "invalid_params", f"{field} must be a string")
        token = self.m.logplex.open_session(LogSession(app["id"], dyno or None, source or None, lines,
                                                       bool(body.get("tail"))))
        host = self.request.host
        stamp = api_time()
        self.reply({"id": str(uuid.uuid4()), "logplex_url": f"{self.request.protocol}://{host}/log-streams/{token}",
                    "created_at": stamp, "updated_at": stamp}, 201)


class LogStreamHandler(ApiHandler):
    """Server-Sent Events: history first, then (for a tail) every new line as it is stored."""

    needs_auth = False  # the URL's own token is the credential, as with Logplex

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")

    async def get(self, token: str) -> None:
        session = self.m.logplex.take_session(token)
        if session is None:
            raise ApiError(404, "not_found", "Log session not found or expired.")
        self.closed = False
        resume = self.request.headers.get("Last-Event-ID", "")
        filters = {"dyno": session.dyno, "source": session.source}
        if resume.isdigit():
            last = int(resume)
            await self._flush()  # the headers go out now, not with the next line
        else:
            rows = self.m.store.read_logs(session.app_id, last=session.lines, **filters) if session.lines else []
            last = rows[-1]["id"] if rows else self._newest(session.app_id)
            self.write("retry: 10\n\n")
            await self._send(rows, session.tail)
        if session.tail:
            await self._follow(session, last, filters)
        self.finish()

    def _newest(self, app_id: str) -> int:
        row = self.m.store.db.execute("SELECT COALESCE(MAX(id), 0) FROM logs WHERE app_id = ?", (app_id,)).fetchone()
        return row[0]

    async def _follow(self, session: LogSession, last: int, filters: dict) -> None:
        event = self.m.logplex.watch(session.app_id)
        try:
            while not self.closed:
                event.clear()
                rows = self.m.store.read_logs(session.app_id, after=last, **filters)
                if rows:
                    last = rows[-1]["id"]
                    await self._send(rows, True)
                    continue
                try:
                    await asyncio.wait_for(event.wait(), KEEPALIVE)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                    await self._flush()
        finally:
            self.m.logplex.unwatch(session.app_id, event)

    async def _send(self, rows: list[dict], with_id: bool) -> None:
        if not rows:
            await self._flush()
            return
        data = "".join(f"data: {format_line(row)}\n" for row in rows)
        self.write((f"id: {rows[-1]['id']}\n" if with_id else "") + data + "\n")
        await self._flush()

    async def _flush(self) -> None:
        try:
            await self.flush()
        except StreamClosedError:
            self.closed = True

    def on_connection_close(self) -> None:
        self.closed = True


class NotFoundHandler(ApiHandler):
    def prepare(self) -> None:
        super().prepare()
        raise ApiError(404, "not_found", "The requested API endpoint was not found.")


def make_app(manifold: Manifold, public: dict | None = None) -> tornado.web.Application:
    """The API; `public` ({host, rendezvous_port}) for the --listen server's attach URLs."""
    app_ = r"/apps/([^/]+)"
    routes = [
        (r"/account", AccountHandler),
        (r"/manifold", ManifoldHandler),
        (r"/apps", AppsHandler),
        (app_, AppHandler),
        (app_ + r"/config-vars", ConfigVarsHandler),
        (app_ + r"/releases", ReleasesHandler),
        (app_ + r"/formation", FormationHandler),
        (app_ + r"/formation/([^/]+)", FormationTypeHandler),
        (app_ + r"/formations/([^/]+)", FormationRestartHandler),
        (app_ + r"/addons", AddonsHandler),
        (app_ + r"/addons/([^/]+)", AddonHandler),
        (app_ + r"/addons/([^/]+)/postgres", PostgresInfoHandler),
        (app_ + r"/addons/([^/]+)/actions/reset", PostgresResetHandler),
        (app_ + r"/addon-attachments", AddonAttachmentsHandler),
        (r"/addon-attachments", AddonAttachmentsHandler),
        (r"/actions/(addons|addon-attachments)/resolve", AddonResolveHandler),
        (r"/addons/([^/]+)", GlobalAddonHandler),
        (r"/addons/([^/]+)/(addon-attachments)", GlobalAddonHandler),
        (app_ + r"/log-drains", LogDrainsHandler),
        (app_ + r"/log-drains/(.+)", LogDrainHandler),
        (app_ + r"/scheduler/jobs", SchedulerJobsHandler),
        (app_ + r"/scheduler/jobs/([^/]+)", SchedulerJobHandler),
        (app_ + r"/scheduler/jobs/([^/]+)/(runs|actions/run)", SchedulerJobHandler),
        (app_ + r"/collaborators", EmptyListHandler),
        (app_ + r"/pipeline-couplings", PipelineCouplingHandler),
        (app_ + r"/releases/([^/]+)", ReleaseHandler),
        (app_ + r"/builds", BuildsHandler),
        (app_ + r"/dynos", DynosHandler),
        (app_ + r"/dynos/([^/]+)", DynoHandler),
        (app_ + r"/dynos/([^/]+)/actions/stop", DynoStopHandler),
        (app_ + r"/formations/([^/]+)/actions/stop", FormationStopHandler),
        (app_ + r"/log-sessions", LogSessionsHandler),
        (r"/log-streams/([A-Za-z0-9_-]+)", LogStreamHandler),
    ]
    args = {"manifold": manifold, "public": public}
    return tornado.web.Application([(path, handler, args) for path, handler in routes],
                                   default_handler_class=NotFoundHandler,
                                   default_handler_args=args, log_function=lambda h: None,
                                   strict=manifold.strict)
