"""The Heroku CLI's user-visible text (heroku@11.10.0), reproduced byte for byte.

Scripts parse this output, so `dyno ps`, `releases`, `config`, `apps:info` print what
`heroku` prints for the same API answers (tests/test_heroku_cli.py compares them). Like the
Heroku CLI, app names get the hexagon only when stdout is a colour terminal.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from datetime import datetime, timezone

HEXAGON = "\u2b22"


def colour_terminal() -> bool:
    """The Heroku CLI's rule: FORCE_COLOR wins, NO_COLOR disables, otherwise stdout must be a TTY."""
    if os.environ.get("FORCE_COLOR") is not None:
        return True
    if os.environ.get("NO_COLOR") not in (None, "0"):
        return False
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def app_label(name: str) -> str:
    return f"{HEXAGON} {name}" if colour_terminal() else name


def parse_api_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def local_time(epoch: float) -> str:
    """`2026/11/22 07:54:51 +0000` in the local zone, like the CLI's strftime."""
    return time.strftime("%Y/%m/%d %H:%M:%S %z", time.localtime(epoch))


def js_date(stamp: str) -> str:
    """A timestamp as JavaScript's Date#toString shows it: `Sun Nov 22 2026 12:00:03 GMT+0000 (...)`."""
    moment = time.localtime(parse_api_time(stamp))
    zone = "Coordinated Universal Time" if moment.tm_gmtoff == 0 and moment.tm_zone in ("UTC", "GMT") \
        else moment.tm_zone
    return time.strftime("%a %b %d %Y %H:%M:%S GMT%z", moment) + f" ({zone})"


def ago(stamp: str, now: float | None = None) -> str:
    """`2026/11/22 07:54:51 +0000 (~ 2s ago)`; the suffix goes after 25 hours (lib/time.js)."""
    since = parse_api_time(stamp)
    elapsed = math.floor((now if now is not None else time.time()) - since)
    text = local_time(since)
    if elapsed < 60:
        return f"{text} (~ {elapsed}s ago)"
    if elapsed < 3600:
        return f"{text} (~ {elapsed // 60}m ago)"
    if elapsed < 25 * 3600:
        return f"{text} (~ {elapsed // 3600}h ago)"
    return text


def header(text: str) -> str:
    """hux.styledHeader: `=== TEXT` and a blank line."""
    return f"=== {text}\n\n"


def styled_object(items: list[tuple[str, object]]) -> str:
    """hux.styledObject: `Key: value` lines, values aligned two columns past the longest key."""
    shown = [(k, v) for k, v in items if v is not None and not (isinstance(v, list) and not v)]
    width = max((len(k) for k, _ in shown), default=0) + 2
    lines = []
    for key, value in shown:
        values = value if isinstance(value, list) else [value]
        lines.append(f"{key}:" + " " * (width - len(key) - 1) + _pretty(values[0]))
        lines += [" " * width + _pretty(v) for v in values[1:]]
    return "\n".join(lines)


def _pretty(value) -> str:
    """prettyPrint of styled-object.js."""
    if value == "" and isinstance(value, str):
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_inspect(v)}" for k, v in value.items())
    return str(value)


def _inspect(value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def table(columns: list[str], rows: list[list[str]]) -> str:
    """hux.table (@oclif/table, no border): padded cells, a rule under the header.

    Under CI (any `CI*` environment variable, as the Heroku CLI checks) it is the plain
    renderer: cells padded to width+1 after a space, a dashed rule, nothing stripped.
    """
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    if any(name.startswith("CI") for name in os.environ):
        return _plain_table(widths, columns, rows)

    def line(cells: list[str]) -> str:
        return (" " + " ".join(f" {cell.ljust(widths[i])} " for i, cell in enumerate(cells))).rstrip()

    rule = " " + "\u2500" * (sum(w + 2 for w in widths) + len(widths) - 1)
    return "\n".join([line(columns), rule] + [line(r) for r in rows]) + "\n"


def _plain_table(widths: list[int], columns: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        if not any(cells):  # an empty row: the Heroku CLI pads every column but the first (seen in `addons`)
            return "  " + "".join(" " * (w + 2) for w in widths[1:])
        return "".join(" " + cell.ljust(widths[i] + 1) for i, cell in enumerate(cells))

    rule = "-" * sum(w + 2 for w in widths)
    return "\n".join([line(columns), rule] + [line(r) for r in rows]) + "\n"


# ps -----------------------------------------------------------------------------
def ps_text(app: str, dynos: list[dict]) -> str:
    """`heroku ps`: one-off dynos first (by number), then the others grouped by command."""
    if not dynos:
        return f"No dynos on {app_label(app)}"
    dynos = sorted(dynos, key=lambda d: d["name"])
    blocks = []
    one_offs = sorted((d for d in dynos if d["type"] == "run"), key=_dyno_number)
    if one_offs:
        lines = [f"{d['name']} ({d.get('size') or '1X'}): {d['state']} {ago(d['updated_at'])}: {d['command']}"
                 for d in one_offs]
        blocks.append(header(f"run: one-off processes ({len(one_offs)})") + "\n".join(lines) + "\n")
    commands: list[str] = []
    for dyno in dynos:
        if dyno["type"] != "run" and dyno["command"] not in commands:
            commands.append(dyno["command"])
    for command in commands:
        members = sorted((d for d in dynos if d["command"] == command), key=_dyno_number)
        first = members[0]
        lines = [f"{d['name']}: {d['state']} {ago(d['updated_at'])}" for d in members]
        blocks.append(header(f"{first['type']} ({first.get('size') or '1X'}): {command} ({len(members)})")
                      + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _dyno_number(dyno: dict) -> int:
    match = re.match(r"^([^.]+)\.(\d+)$", dyno["name"])
    return int(match.group(2)) if match else 0


def scale_text(formation: list[dict]) -> str:
    """`heroku ps:scale` with no changes: `web=1:Basic worker=0:Basic`."""
    return " ".join(sorted(f"{f['type']}={f['quantity']}:{f['size']}" for f in formation))


# config -------------------------------------------------------------------------
def config_text(app: str, config: dict[str, str]) -> str:
    return header(f"{app_label(app)} Config Vars") + config_pairs(config)


def config_pairs(config: dict[str, str]) -> str:
    return styled_object(list(config.items()))


def shell_quote(value: str) -> str:
    """lib/config/quote.js: single quotes unless the value has a quote or newline."""
    if re.search(r"[\"\s#!$&'()*,:;<=>?@\[\\\]^`{|}]", value):
        if re.search(r"['\n]", value):
            return '"' + re.sub(r'(["\\$`!])', r"\\\1", value).replace("\n", "\\n") + '"'
        return f"'{value}'"
    return value


def shell_quote_config(config: dict[str, str]) -> str:
    return "\n".join(f"{key}={shell_quote(value)}" for key, value in config.items())


# releases -----------------------------------------------------------------------
def releases_text(app: str, releases: list[dict]) -> str:
    """`heroku releases`: newest first, as a table."""
    if not releases:
        return f"{app_label(app)} has no releases."
    title = f"{app_label(app)} Releases"
    current = next((r for r in releases if r.get("current")), None)
    if current:
        title += f" - Current: v{current['version']}"
    rows = [[f"v{r['version']}", _release_description(r), (r.get("user") or {}).get("email") or "",
             ago(r["created_at"])] for r in sorted(releases, key=lambda r: -(r.get("version") or 0))]
    return header(title) + table(["v", "description", "user", "created_at"], rows)


def _release_description(release: dict) -> str:
    status = {"pending": "release command executing", "failed": "release command failed",
              "expired": "release expired"}.get(release.get("status") or "")
    return f"{release['description']} {status}" if status else release["description"]


# apps:info ----------------------------------------------------------------------
def info_text(app: dict, dynos: list[dict], addons: list | None = None, collaborators: list | None = None) -> str:
    owner = (app.get("owner") or {}).get("email")
    data: list[tuple[str, object]] = [
        ("Addons", sorted(a.get("plan", {}).get("name") for a in addons or [])),
        ("Collaborators", sorted(c["user"]["email"] for c in collaborators or [] if c["user"]["email"] != owner)),
    ]
    if app.get("archived_at"):
        data.append(("Archived At", app["archived_at"]))
    if app.get("create_status") != "complete":
        data.append(("Create Status", app.get("create_status")))
    if app.get("space"):
        data.append(("Space", app["space"]["name"]))
    data += [("Auto Cert Mgmt", app.get("acm")), ("Git URL", app.get("git_url")),
             ("Web URL", app.get("web_url") or ""), ("Repo Size", filesize(app.get("repo_size")))]
    if app.get("generation") != "fir":
        data.append(("Slug Size", filesize(app.get("slug_size"))))
    stack = app["stack"]["name"]
    if app.get("build_stack") and app["build_stack"]["name"] != stack:
        stack += f" (next build will use {app['build_stack']['name']})"
    data += [("Owner", owner), ("Region", app["region"]["name"]), ("Dynos", _count_types(dynos)), ("Stack", stack)]
    return header(app_label(app["name"])) + styled_object(data)


def _count_types(dynos: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dyno in dynos:
        counts[dyno["type"]] = counts.get(dyno["type"], 0) + 1
    return counts


def filesize(size: int | None) -> str:
    """The `filesize` package with {round: 0, standard: 'jedec'}: `0 B`, `5 KB`, `12 MB`."""
    size = size or 0
    units = ["B", "KB", "MB", "GB", "TB"]
    exponent = 0
    while size >= 1024 ** (exponent + 1) and exponent < len(units) - 1:
        exponent += 1
    value = math.floor(size / 1024 ** exponent + 0.5)
    if value == 1024 and exponent < len(units) - 1:
        value, exponent = 1, exponent + 1
    return f"{value} {units[exponent]}"


def json_flag(parser) -> None:
    """The `--json` flag of a listing command."""
    parser.add_argument("--json", action="store_true", help="output in json format")


def as_json(data) -> str:
    """hux.styledJSON without colours: JSON.stringify(data, null, 2)."""
    return json.dumps(data, indent=2, ensure_ascii=False)
