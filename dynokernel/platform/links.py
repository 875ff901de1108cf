"""Which local directory belongs to which app: the client's own record, like a git remote."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..paths import HomeFiles


def read_links(files: HomeFiles) -> dict[str, str]:
    try:
        return json.loads(files.links.read_text())
    except (OSError, ValueError):
        return {}


def link(files: HomeFiles, directory: Path, app: str) -> None:
    links = read_links(files)
    links[str(directory.resolve())] = app
    partial = files.links.with_suffix(".part")
    partial.write_text(json.dumps(links, indent=1, sort_keys=True))
    os.replace(partial, files.links)


def linked_app(files: HomeFiles, directory: Path) -> tuple[str, Path] | None:
    """The app linked to `directory` or its nearest linked parent, with that directory."""
    links = read_links(files)
    for candidate in (directory.resolve(), *directory.resolve().parents):
        if str(candidate) in links:
            return links[str(candidate)], candidate
    return None


def linked_dir(files: HomeFiles, app: str) -> Path | None:
    """The directory linked to `app` (the newest link wins)."""
    for directory, name in reversed(list(read_links(files).items())):
        if name == app:
            return Path(directory)
    return None


def app_name_for(directory: Path) -> str:
    """A valid app name made from a directory name: `My_App` → `my-app`."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "app-" + name
    return (name + "-app" if len(name) < 3 else name)[:30].rstrip("-")
