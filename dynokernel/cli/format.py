"""The Heroku CLI's user-visible text, reproduced where scripts might parse it."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

HEXAGON = "\u2b22"


def app_label(name: str) -> str:
    return f"{HEXAGON} {name}"


def parse_api_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def local_time(epoch: float) -> str:
    """`2026/11/22 07:54:51 +0000` in the local zone, like the CLI's strftime."""
    return time.strftime("%Y/%m/%d %H:%M:%S %z", time.localtime(epoch))


def ago(stamp: str, now: float | None = None) -> str:
    """`2026/11/22 07:54:51 +0000 (~ 2s ago)`; the suffix goes after 25 hours."""
    since = parse_api_time(stamp)
    elapsed = int((now if now is not None else time.time()) - since)
    text = local_time(since)
    if elapsed <= 60:
        return f"{text} (~ {max(elapsed, 0)}s ago)"
    if elapsed <= 3600:
        return f"{text} (~ {elapsed // 60}m ago)"
    if elapsed <= 25 * 3600:
        return f"{text} (~ {elapsed // 3600}h ago)"
    return text


def ps_text(app: str, dynos: list[dict]) -> str:
    """`heroku ps`: one-off dynos first, then the others grouped by type and command."""
    if not dynos:
        return f"No dynos on {app_label(app)}"
    blocks = []
    one_offs = [d for d in dynos if d["type"] == "run"]
    if one_offs:
        lines = [f"{d['name']} ({d.get('size') or 'Basic'}): {d['state']} {ago(d['updated_at'])}: {d['command']}"
                 for d in sorted(one_offs, key=_dyno_number)]
        blocks.append(f"=== run: one-off processes ({len(one_offs)})\n\n" + "\n".join(lines))
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for dyno in dynos:
        if dyno["type"] != "run":
            groups.setdefault((dyno["type"], dyno.get("size") or "Basic", dyno["command"]), []).append(dyno)
    for (dyno_type, size, command), members in sorted(groups.items()):
        lines = [f"{d['name']}: {d['state']} {ago(d['updated_at'])}" for d in sorted(members, key=_dyno_number)]
        blocks.append(f"=== {dyno_type} ({size}): {command} ({len(members)})\n\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def _dyno_number(dyno: dict) -> int:
    suffix = dyno["name"].rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def config_text(app: str, config: dict[str, str]) -> str:
    if not config:
        return f"=== {app} Config Vars"
    width = max(len(key) for key in config) + 1
    lines = [f"{(key + ':').ljust(width)} {value}" for key, value in sorted(config.items())]
    return f"=== {app} Config Vars\n\n" + "\n".join(lines)


def shell_quote_config(config: dict[str, str]) -> str:
    import shlex
    return "\n".join(f"{key}={shlex.quote(value)}" for key, value in sorted(config.items()))


def releases_text(app: str, releases: list[dict]) -> str:
    """`heroku releases`: newest first, columns padded to the widest value."""
    if not releases:
        return f"=== {app} Releases\n\nNo releases found for this app."
    current = next((r for r in releases if r.get("current")), releases[0])
    rows = [(f"v{r['version']}", r["description"], r["user"]["email"], ago(r["created_at"]))
            for r in sorted(releases, key=lambda r: -r["version"])]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)) for row in rows]
    return f"=== {app} Releases - Current: v{current['version']}\n\n" + "\n".join(lines)


def info_text(app: dict, dynos: list[dict]) -> str:
    fields = {
        "Dynos": ", ".join(f"{t}: {n}" for t, n in _count_types(dynos).items()) or "",
        "Owner": app["owner"]["email"],
        "Region": app["region"]["name"],
        "Slug Size": _megabytes(app.get("slug_size")),
        "Stack": app["stack"]["name"],
    }
    width = max(len(k) for k in fields) + 1
    lines = [f"{(key + ':').ljust(width)} {value}" for key, value in fields.items() if value]
    return f"=== {app_label(app['name'])}\n\n" + "\n".join(lines)


def _count_types(dynos: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dyno in dynos:
        counts[dyno["type"]] = counts.get(dyno["type"], 0) + 1
    return counts


def _megabytes(size: int | None) -> str:
    return "" if size is None else f"{size / 1024 / 1024:.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def as_json(data) -> str:
    return json.dumps(data, indent=2)
