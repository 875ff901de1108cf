"""Slugs: immutable, content-addressed snapshots of an app directory.

Every file's content is stored once under objects/ (keyed by SHA-256 and the executable
bit); a slug is a manifest of paths and a read-only tree of hard links to those objects,
so unchanged files are shared between slugs and a slug never changes after it is built.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .dotenv import parse_dotenv
from .procfile import parse_procfile

SLUG_LIMIT_BYTES = 1024 ** 3  # Heroku's slug limit since 2026
_ALWAYS_IGNORED = {".git", ".hg", ".svn", ".dyno"}


class SlugError(ValueError):
    """The directory cannot become a slug (missing, too large, bad Procfile or .env)."""


@dataclass
class Slug:
    id: str
    size: int
    process_types: dict[str, str]
    dotenv: dict[str, str]
    warnings: list[str]


def build_slug(source: Path, objects: Path, slugs: Path) -> Slug:
    """Snapshot `source` into the object store and materialise the slug tree."""
    if not source.is_dir():
        raise SlugError(f"{source} is not a directory")
    process_types, dotenv, warnings = _read_app_files(source)
    ignore = _slugignore(source)
    manifest, size = [], 0
    for rel, path in _walk(source, ignore):
        entry, nbytes = _store(path, rel, objects)
        manifest.append(entry)
        size += nbytes
        if size > SLUG_LIMIT_BYTES:
            raise SlugError(f"slug size exceeds the {SLUG_LIMIT_BYTES // 1024 ** 3} GB limit")
    slug_id = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:32]
    tree = slugs / slug_id
    if not tree.exists():
        _materialise(manifest, objects, tree)
    return Slug(slug_id, size, process_types, dotenv, warnings)


def _read_app_files(source: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    process_types: dict[str, str] = {}
    warnings: list[str] = []
    procfile = source / "Procfile"
    if procfile.is_file():
        parsed = parse_procfile(_text(procfile), "Procfile")
        process_types, warnings = parsed.types, parsed.warnings
    dotenv_path = source / ".env"
    dotenv = parse_dotenv(_text(dotenv_path), ".env") if dotenv_path.is_file() else {}
    return process_types, dotenv, warnings


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SlugError(f"{path.name} is not UTF-8 text (byte {exc.start})") from None


def _slugignore(source: Path) -> list[str]:
    path = source / ".slugignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in _text(path).splitlines())
    return [line for line in lines if line and not line.startswith("#") and not line.startswith("!")]


def _ignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        pat = pattern.rstrip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pat:
            if fnmatch.fnmatchcase(rel, pat.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pat):
            return True
    return False


def _walk(source: Path, ignore: list[str]):
    for root, dirs, files in os.walk(source):
        base = os.path.relpath(root, source)
        prefix = "" if base == "." else base + "/"
        kept = []
        for name in sorted(dirs):
            rel = prefix + name
            full = os.path.join(root, name)
            if name in _ALWAYS_IGNORED or _ignored(rel, True, ignore):
                continue
            if os.path.islink(full):
                yield rel, Path(full)
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            rel = prefix + name
            if not _ignored(rel, False, ignore):
                yield rel, Path(root, name)


def _store(path: Path, rel: str, objects: Path) -> tuple[list, int]:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return [rel, "l", os.readlink(path)], 0
    if not stat.S_ISREG(info.st_mode):
        return [rel, "s", ""], 0  # sockets, fifos: skipped, but recorded
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    kind = "x" if info.st_mode & 0o111 else "f"
    blob = objects / digest.hexdigest()[:2] / f"{digest.hexdigest()}.{kind}"
    if not blob.exists():
        blob.parent.mkdir(parents=True, exist_ok=True)
        partial = blob.with_suffix(".part")
        shutil.copyfile(path, partial)
        os.chmod(partial, 0o755 if kind == "x" else 0o644)
        os.replace(partial, blob)
    return [rel, kind, blob.name], info.st_size


def _materialise(manifest: list, objects: Path, tree: Path) -> None:
    partial = tree.with_name(tree.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for rel, kind, ref in manifest:
        target = partial / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "l":
            os.symlink(ref, target)
        elif kind in ("f", "x"):
            os.link(objects / ref[:2] / ref, target)
    os.replace(partial, tree)
