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
from .supervisor import ApiError, Supervisor
from .procfile import ProcfileError
from .dotenv import DotenvError

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEEPALIVE = 15.0


class Manifold:
    """What every handler needs: the store, logplex, supervisor and settings."""

    def __init__(self, store: Store, logplex: Logplex, supervisor: Supervisor, token: str, info: dict) -> None:
        self.store, self.logplex, self.supervisor, self.token, self.info = store, logplex, supervisor, token, info


class ApiHandler(tornado.web.RequestHandler):
    """JSON in and out, bearer-token auth, Heroku-shaped errors."""

    needs_auth = True

    def initialize(self, manifold: Manifold) -> None:
        self.m = manifold

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Request-Id", str(uuid.uuid4()))
        self.set_header("Dyno-Manifold", __version__)

    def prepare(self) -> None:
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
        "web_url": None, "git_url": None, "buildpack_provided_description": None, "repo_size": None,
        "slug_size": _slug_size(m, release), "stack_name": "heroku-24", "acm": False, "archived_at": None,
        "internal_routing": None, "idle_timeout": app["idle_timeout"],
    }


def _slug_size(m: Manifold, release: dict | None) -> int | None:
    slug = m.store.slug(release["slug_id"]) if release and release["slug_id"] else None
    return slug["size"] if slug else None


def release_json(m: Manifold, app: dict, release: dict, current_version: int | None) -> dict:
    return {
        "id": release["id"], "version": release["version"], "description": release["description"],
        "status": "succeeded", "created_at": release["created_at"], "updated_at": release["created_at"],
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
        running = len(self.m.supervisor.running)
        self.reply(dict(self.m.info, running_dynos=running, sandbox=self.m.supervisor.sandbox.describe()))


class AppsHandler(ApiHandler):
    def get(self) -> None:
        self.reply([app_json(self.m, app) for app in self.m.store.apps()])

    def post(self) -> None:
        name = self.body().get("name")
        if not isinstance(name, str) or not APP_NAME.match(name):
            raise ApiError(422, "invalid_params", "Name must start with a letter, end with a letter or digit and can "
                           "only contain lowercase letters, digits, and dashes.")
        if self.m.store.app(name):
            raise ApiError(422, "invalid_params", "Name is already taken")
        self.reply(app_json(self.m, self.m.store.create_app(name)), 201)


class AppHandler(ApiHandler):
    def get(self, name: str) -> None:
        self.reply(app_json(self.m, self.app_record(name)))

    def patch(self, name: str) -> None:
        app = self.app_record(name)
        body = self.body()
        if "idle_timeout" in body:
            value = body["idle_timeout"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ApiError(422, "invalid_params", "idle_timeout must be a positive number of seconds")
            self.m.store.update_app(app["id"], idle_timeout=value)
        self.reply(app_json(self.m, self.m.store.app(app["id"])))

    def delete(self, name: str) -> None:
        app = self.app_record(name)
        for record in self.m.store.live_dynos(app["id"]):
            self.m.supervisor.stop(record["id"])
        body = app_json(self.m, app)
        self.m.store.delete_app(app["id"])
        self.reply(body)


class ConfigVarsHandler(ApiHandler):
    def get(self, name: str) -> None:
        self.reply(self.m.store.config(self.app_record(name)["id"]))

    def patch(self, name: str) -> None:
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
            self.m.store.create_release(app["id"], current["slug_id"] if current else None,
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
        current = releases[-1]["version"] if releases else None
        requested = self.request.headers.get("Range", "")
        if "order=desc" in requested:
            releases = releases[::-1]
        limit = re.search(r"max=(\d+)", requested)
        if limit:
            releases = releases[:int(limit.group(1))]
        self.reply([release_json(self.m, app, r, current) for r in releases])


class ReleaseHandler(ApiHandler):
    def get(self, name: str, version: str) -> None:
        app = self.app_record(name)
        release = self.m.store.release(app["id"], version.lstrip("v"))
        if release is None:
            raise ApiError(404, "not_found", "Couldn't find that release.")
        current = self.m.store.current_release(app["id"])["version"]
        self.reply(release_json(self.m, app, release, current))


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
        release = self.m.store.create_release(app["id"], slug.id, f"Deploy {slug.id[:8]}", self.m.supervisor.user)
        self.reply({"id": str(uuid.uuid4()), "status": "succeeded", "created_at": api_time(),
                    "app": {"id": app["id"]}, "slug": {"id": slug.id, "size": slug.size},
                    "release": {"id": release["id"], "version": release["version"]},
                    "process_types": slug.process_types, "warnings": slug.warnings}, 201)


class DynosHandler(ApiHandler):
    def get(self, name: str) -> None:
        app = self.app_record(name)
        self.reply([self.m.supervisor.describe(r) for r in self.m.store.live_dynos(app["id"])])

    def post(self, name: str) -> None:
        app = self.app_record(name)
        self.reply(self.m.supervisor.create(app, self.body()), 201)

    def delete(self, name: str) -> None:
        app = self.app_record(name)
        for record in self.m.store.live_dynos(app["id"]):
            self.m.supervisor.stop(record["id"])
        self.reply({}, 202)


class DynoHandler(ApiHandler):
    def get(self, name: str, dyno: str) -> None:
        app = self.app_record(name)
        self.reply(self.m.supervisor.describe(self.dyno_record(app, dyno)))

    def delete(self, name: str, dyno: str) -> None:
        app = self.app_record(name)
        record = self.dyno_record(app, dyno)
        self.m.supervisor.stop(record["id"])
        self.reply({}, 202)


class DynoStopHandler(ApiHandler):
    def post(self, name: str, dyno: str) -> None:
        app = self.app_record(name)
        record = self.dyno_record(app, dyno)
        self.m.supervisor.stop(record["id"])
        self.reply({}, 202)


class FormationStopHandler(ApiHandler):
    def post(self, name: str, dyno_type: str) -> None:
        app = self.app_record(name)
        records = [r for r in self.m.store.live_dynos(app["id"]) if r["type"] == unquote(dyno_type)]
        known = {f["type"] for f in self.m.store.formation(app["id"])}
        if not records and unquote(dyno_type) not in known:
            raise ApiError(404, "not_found", f"Couldn't find that process type ({unquote(dyno_type)}).")
        for record in records:
            self.m.supervisor.stop(record["id"])
        self.reply({}, 202)


class LogSessionsHandler(ApiHandler):
    def post(self, name: str) -> None:
        app = self.app_record(name)
        body = self.body()
        lines = body.get("lines", 100)
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise ApiError(422, "invalid_params", "lines must be a non-negative integer")
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


def make_app(manifold: Manifold) -> tornado.web.Application:
    app_ = r"/apps/([^/]+)"
    routes = [
        (r"/account", AccountHandler),
        (r"/manifold", ManifoldHandler),
        (r"/apps", AppsHandler),
        (app_, AppHandler),
        (app_ + r"/config-vars", ConfigVarsHandler),
        (app_ + r"/releases", ReleasesHandler),
        (app_ + r"/releases/([^/]+)", ReleaseHandler),
        (app_ + r"/builds", BuildsHandler),
        (app_ + r"/dynos", DynosHandler),
        (app_ + r"/dynos/([^/]+)", DynoHandler),
        (app_ + r"/dynos/([^/]+)/actions/stop", DynoStopHandler),
        (app_ + r"/formations/([^/]+)/actions/stop", FormationStopHandler),
        (app_ + r"/log-sessions", LogSessionsHandler),
        (r"/log-streams/([A-Za-z0-9_-]+)", LogStreamHandler),
    ]
    return tornado.web.Application([(path, handler, {"manifold": manifold}) for path, handler in routes],
                                   default_handler_class=NotFoundHandler,
                                   default_handler_args={"manifold": manifold}, log_function=lambda h: None)
