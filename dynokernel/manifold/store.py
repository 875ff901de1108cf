"""The manifold's state in SQLite: apps, config vars, releases, slugs, dynos and logs.

Only the manifold's event-loop thread uses the connection. WAL mode keeps readers cheap
and commits fast; every write is committed before the API answers.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
  id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL, idle_timeout INTEGER);
CREATE TABLE IF NOT EXISTS config_vars (
  app_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (app_id, key));
CREATE TABLE IF NOT EXISTS slugs (
  id TEXT PRIMARY KEY, size INTEGER NOT NULL, process_types TEXT NOT NULL, dotenv TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS releases (
  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, version INTEGER NOT NULL, slug_id TEXT,
  config TEXT NOT NULL, description TEXT NOT NULL, user TEXT NOT NULL, created_at TEXT NOT NULL,
  UNIQUE (app_id, version));
CREATE TABLE IF NOT EXISTS dynos (
  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
  command TEXT NOT NULL, size TEXT NOT NULL, state TEXT NOT NULL, attach INTEGER NOT NULL,
  release_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  pid INTEGER, pid_start INTEGER, exit_code INTEGER, work_dir TEXT);
CREATE INDEX IF NOT EXISTS dynos_app ON dynos (app_id, name);
CREATE TABLE IF NOT EXISTS counters (
  app_id TEXT NOT NULL, type TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (app_id, type));
CREATE TABLE IF NOT EXISTS formation (
  app_id TEXT NOT NULL, type TEXT NOT NULL, quantity INTEGER NOT NULL, size TEXT NOT NULL,
  updated_at TEXT NOT NULL, PRIMARY KEY (app_id, type));
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY, app_id TEXT NOT NULL, ts TEXT NOT NULL, source TEXT NOT NULL,
  dyno TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_app ON logs (app_id, id);
CREATE INDEX IF NOT EXISTS logs_dyno ON logs (app_id, dyno, id);
"""
# columns added after the first release of the schema: (table, column, definition)
MIGRATIONS = (("dynos", "formation", "INTEGER NOT NULL DEFAULT 0"), ("dynos", "port", "INTEGER"),
              ("releases", "status", "TEXT NOT NULL DEFAULT 'succeeded'"))

LIVE_STATES = ("starting", "up", "idle")  # what ps lists (and crashed formation dynos); ended ones stay readable


def now() -> datetime:
    return datetime.now(timezone.utc)


def api_time(moment: datetime | None = None) -> str:
    """The Platform API's timestamp format: 2026-11-22T07:46:23Z."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LogRow:
    source: str  # app or heroku
    dyno: str  # run.2, api, router
    message: str


class Store:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        for table, column, definition in MIGRATIONS:
            present = {row["name"] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One explicit transaction (the connection autocommits otherwise)."""
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> dict | None:
        row = self.db.execute(sql, args).fetchone()
        return dict(row) if row else None

    def _all(self, sql: str, *args: Any) -> list[dict]:
        return [dict(row) for row in self.db.execute(sql, args)]

    # apps -----------------------------------------------------------------
    def app(self, name_or_id: str) -> dict | None:
        return self._one("SELECT * FROM apps WHERE name = ? OR id = ?", name_or_id, name_or_id)

    def apps(self) -> list[dict]:
        return self._all("SELECT * FROM apps ORDER BY name")

    def create_app(self, name: str) -> dict:
        stamp = api_time()
        app_id = str(uuid.uuid4())
        self.db.execute("INSERT INTO apps (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                        (app_id, name, stamp, stamp))
        return self.app(app_id)

    def update_app(self, app_id: str, **fields: Any) -> None:
        for key, value in fields.items():
            self.db.execute(f"UPDATE apps SET {key} = ?, updated_at = ? WHERE id = ?", (value, api_time(), app_id))

    def delete_app(self, app_id: str) -> None:
        with self.transaction():
            for table in ("config_vars", "releases", "dynos", "counters", "formation", "logs"):
                self.db.execute(f"DELETE FROM {table} WHERE app_id = ?", (app_id,))
            self.db.execute("DELETE FROM apps WHERE id = ?", (app_id,))

    # config vars and releases ----------------------------------------------
    def config(self, app_id: str) -> dict[str, str]:
        rows = self.db.execute("SELECT key, value FROM config_vars WHERE app_id = ? ORDER BY key", (app_id,))
        return {row["key"]: row["value"] for row in rows}

    def set_config(self, app_id: str, changes: dict[str, str | None]) -> None:
        for key, value in changes.items():
            if value is None:
                self.db.execute("DELETE FROM config_vars WHERE app_id = ? AND key = ?", (app_id, key))
            else:
                self.db.execute("INSERT OR REPLACE INTO config_vars VALUES (?, ?, ?)", (app_id, key, value))

    def current_release(self, app_id: str) -> dict | None:
        """The newest release that succeeded (one whose release phase failed never becomes current)."""
        return self._one("SELECT * FROM releases WHERE app_id = ? AND status = 'succeeded' "
                         "ORDER BY version DESC LIMIT 1", app_id)

    def releases(self, app_id: str) -> list[dict]:
        return self._all("SELECT * FROM releases WHERE app_id = ? ORDER BY version", app_id)

    def release(self, app_id: str, version_or_id: str) -> dict | None:
        return self._one("SELECT * FROM releases WHERE app_id = ? AND (id = ? OR version = ?)",
                         app_id, version_or_id, version_or_id)

    def create_release(self, app_id: str, slug_id: str | None, description: str, user: str,
                       status: str = "succeeded") -> dict:
        newest = self._one("SELECT max(version) AS v FROM releases WHERE app_id = ?", app_id)["v"]
        release_id = str(uuid.uuid4())
        self.db.execute("INSERT INTO releases (id, app_id, version, slug_id, config, description, user, created_at, "
                        "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (release_id, app_id, (newest or 0) + 1, slug_id, json.dumps(self.config(app_id)),
                         description, user, api_time(), status))
        return self.release(app_id, release_id)

    def set_release_status(self, release_id: str, status: str) -> None:
        self.db.execute("UPDATE releases SET status = ? WHERE id = ?", (status, release_id))

    def slug(self, slug_id: str) -> dict | None:
        return self._one("SELECT * FROM slugs WHERE id = ?", slug_id)

    def save_slug(self, slug_id: str, size: int, process_types: dict, dotenv: dict) -> None:
        self.db.execute("INSERT OR IGNORE INTO slugs VALUES (?, ?, ?, ?, ?)",
                        (slug_id, size, json.dumps(process_types), json.dumps(dotenv), api_time()))

    # dynos -----------------------------------------------------------------
    def next_dyno_number(self, app_id: str, dyno_type: str) -> int:
        row = self._one("SELECT n FROM counters WHERE app_id = ? AND type = ?", app_id, dyno_type)
        number = row["n"] + 1 if row else 1
        self.db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (app_id, dyno_type, number))
        return number

    def insert_dyno(self, record: dict) -> None:
        columns = ", ".join(record)
        marks = ", ".join("?" for _ in record)
        self.db.execute(f"INSERT INTO dynos ({columns}) VALUES ({marks})", tuple(record.values()))

    def update_dyno(self, dyno_id: str, **fields: Any) -> None:
        fields["updated_at"] = api_time()
        assignments = ", ".join(f"{key} = ?" for key in fields)
        self.db.execute(f"UPDATE dynos SET {assignments} WHERE id = ?", (*fields.values(), dyno_id))

    def dyno(self, app_id: str, name_or_id: str) -> dict | None:
        return self._one("SELECT * FROM dynos WHERE app_id = ? AND (name = ? OR id = ?) "
                         "ORDER BY created_at DESC, rowid DESC LIMIT 1", app_id, name_or_id, name_or_id)

    def live_dynos(self, app_id: str | None = None) -> list[dict]:
        """Running dynos, and formation dynos that crashed (until they are restarted or scaled away)."""
        where = f"(state IN ({', '.join('?' for _ in LIVE_STATES)}) OR (formation = 1 AND state = 'crashed'))"
        if app_id is None:
            return self._all(f"SELECT * FROM dynos WHERE {where}", *LIVE_STATES)
        return self._all(f"SELECT * FROM dynos WHERE app_id = ? AND {where} ORDER BY rowid", app_id, *LIVE_STATES)

    def retire_crashed(self, app_id: str, name: str) -> None:
        """A crashed formation dyno is replaced (or scaled away): ps stops listing it."""
        self.db.execute("UPDATE dynos SET state = 'down' WHERE app_id = ? AND name = ? AND state = 'crashed'",
                        (app_id, name))

    # formation -------------------------------------------------------------
    def formation(self, app_id: str) -> list[dict]:
        return self._all("SELECT * FROM formation WHERE app_id = ? ORDER BY type", app_id)

    def set_formation(self, app_id: str, dyno_type: str, quantity: int, size: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO formation VALUES (?, ?, ?, ?, ?)",
                        (app_id, dyno_type, quantity, size, api_time()))

    # logs ------------------------------------------------------------------
    def append_logs(self, app_id: str, stamp: str, rows: Iterable[LogRow]) -> int:
        """Store lines (one timestamp for a batch that arrived together); returns the last id."""
        with self.transaction():
            cursor = self.db.executemany(
                "INSERT INTO logs (app_id, ts, source, dyno, message) VALUES (?, ?, ?, ?, ?)",
                ((app_id, stamp, row.source, row.dyno, row.message) for row in rows))
        return self.db.execute("SELECT last_insert_rowid()").fetchone()[0] if cursor.rowcount else 0

    def read_logs(self, app_id: str, *, after: int = 0, last: int | None = None, dyno: str | None = None,
                  source: str | None = None, limit: int = 5000) -> list[dict]:
        """Log rows after id `after`, or the `last` N rows, optionally filtered."""
        where, args = ["app_id = ?", "id > ?"], [app_id, after]
        if dyno:
            if "." in dyno:
                where.append("dyno = ?")
                args.append(dyno)
            else:
                where.append("(dyno = ? OR dyno LIKE ?)")
                args += [dyno, dyno + ".%"]
        if source:
            where.append("source = ?")
            args.append(source)
        sql = f"SELECT id, ts, source, dyno, message FROM logs WHERE {' AND '.join(where)}"
        if last is not None:
            rows = self._all(sql + " ORDER BY id DESC LIMIT ?", *args, last)
            return rows[::-1]
        return self._all(sql + " ORDER BY id LIMIT ?", *args, limit)

    def prune_logs(self, app_id: str, keep: int) -> None:
        """Keep only the newest `keep` lines of the app."""
        row = self._one("SELECT id FROM logs WHERE app_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?", app_id, keep)
        if row:
            self.db.execute("DELETE FROM logs WHERE app_id = ? AND id <= ?", (app_id, row["id"]))
