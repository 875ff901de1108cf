"""The PostgreSQL server behind `heroku-postgresql` add-ons, run by the manifold itself.

One server per $DYNO_HOME (Debian's `postgresql` binaries), its cluster in $DYNO_HOME/postgres/data,
listening on a loopback TCP port (kept across restarts) and on a Unix socket in a 0700 directory
that only the manifold reaches: the manifold is the cluster's trusted superuser through that socket.
Each add-on gets a database and a login role of the same random name with a random password; the
cluster's pg_hba lets a role connect over TCP to its own database only (scram-sha-256).

PostgreSQL refuses to run as root. A root manifold runs the server in a user namespace where it is
an ordinary user (util-linux `unshare --map-user`), which still owns its files outside.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from .processes import Reaper, free_port, run_tool

HBA = """\
# dynokernel: the manifold over its private socket; add-on roles over TCP to their own database.
local all postgres trust
host  sameuser all 127.0.0.1/32 scram-sha-256
host  sameuser all ::1/128      scram-sha-256
"""
INFO_SQL = """SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) - 1,
  pg_database_size(current_database()),
  (SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')),
  current_setting('server_version')"""


class PostgresError(Exception):
    """The server could not be set up, started or asked something; the message says why."""


@dataclass
class Database:
    """One add-on's database: its name is also its role's name."""
    name: str
    password: str
    port: int

    @property
    def url(self) -> str:
        return f"postgres://{self.name}:{self.password}@127.0.0.1:{self.port}/{self.name}"


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL server's bin directory (Debian layout), if any."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file() and (p / "pg_ctl").is_file()]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found and shutil.which("psql") else None


class PostgresServer:
    """Creates the cluster on first need, starts and stops the server, and runs SQL as its superuser."""

    def __init__(self, home: Path, reaper: Reaper) -> None:
        self.root = home / "postgres"
        self.data, self.sockets = self.root / "data", self.root / "run"
        self.reaper = reaper
        self.bin = server_binaries()
        self._lock = asyncio.Lock()
        self._usable: bool | None = None

    # availability ---------------------------------------------------------------
    async def usable(self) -> bool:
        """Whether this machine can run the server (binaries present; as root, user namespaces)."""
        if self._usable is None:
            self._usable = self.bin is not None and (os.geteuid() != 0 or await self._namespace_works())
        return self._usable

    async def _namespace_works(self) -> bool:
        try:
            code, _ = await run_tool(self.reaper, [*self._as_user(), "true"])
        except OSError:
            return False
        return code == 0

    def _as_user(self) -> list[str]:
        return ["unshare", "--user", "--map-user=1000", "--map-group=1000", "--"] if os.geteuid() == 0 else []

    # the server -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return json.loads((self.root / "server.json").read_text())["port"]

    async def ensure_running(self) -> None:
        async with self._lock:
            if not await self.usable():
                raise PostgresError("PostgreSQL is not installed here (Debian: apt-get install postgresql)")
            if not (self.data / "PG_VERSION").exists():
                await self._initdb()
            if await self._pg_ctl("status") != 0:
                await self._start()

    async def _initdb(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        code, output = await run_tool(self.reaper, [
            *self._as_user(), str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"])
        if code != 0:
            raise PostgresError(f"initdb failed: {_last_line(output)}")
        (self.data / "pg_hba.conf").write_text(HBA)
        (self.root / "server.json").write_text(json.dumps({"port": free_port()}))

    async def _start(self) -> None:
        self.sockets.mkdir(mode=0o700, exist_ok=True)
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=100"
        code = await self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.root / "server.log"), "-o", options)
        if code != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            raise PostgresError(f"the PostgreSQL server did not start: {_last_line(log)}")

    async def stop(self) -> None:
        """Fast shutdown (at the manifold's stop): open sessions are ended, data is safe."""
        if self.bin is not None and (self.data / "postmaster.pid").exists():
            await self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")

    async def _pg_ctl(self, *args: str) -> int:
        code, _ = await run_tool(self.reaper, [*self._as_user(), str(self.bin / "pg_ctl"), "-D", str(self.data), *args])
        return code

    # SQL ------------------------------------------------------------------------
    async def sql(self, *statements: str, database: str = "postgres") -> list[str]:
        """Run each statement on its own as the superuser; the rows of the last, fields split by '|'."""
        args = [a for statement in statements for a in ("-c", statement)]
        code, output = await run_tool(self.reaper, [
            "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockets), "-p", str(self.port),
            "-U", "postgres", "-d", database, *args])
        if code != 0:
            raise PostgresError(_last_line(output))
        return output.splitlines()

    async def create_database(self) -> Database:
        await self.ensure_running()
        database = Database("d" + secrets.token_hex(7), secrets.token_hex(24), self.port)
        await self.sql(f"CREATE ROLE {database.name} LOGIN PASSWORD '{database.password}'", *_fresh(database.name))
        return database

    async def reset_database(self, name: str) -> None:
        await self.ensure_running()
        await self.sql(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)", *_fresh(name))

    async def drop_database(self, name: str) -> None:
        await self.ensure_running()
        await self.sql(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)", f"DROP ROLE IF EXISTS {_ident(name)}")

    async def info(self, name: str) -> dict:
        await self.ensure_running()
        connections, size, tables, version = (await self.sql(INFO_SQL, database=_ident(name)))[-1].split("|")
        return {"connections": int(connections), "data_size": int(size), "tables": int(tables),
                "version": version.split()[0]}


def _fresh(name: str) -> list[str]:
    """A new empty database owned by the role of the same name, closed to every other role."""
    name = _ident(name)
    return [f"CREATE DATABASE {name} OWNER {name}", f"REVOKE ALL ON DATABASE {name} FROM PUBLIC"]


def _ident(name: str) -> str:
    if not (name.isascii() and name.isalnum() and name.islower()):
        raise PostgresError(f"not a database name made by the manifold: {name!r}")
    return name


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"

