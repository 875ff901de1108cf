"""Procfile, .env and slug building: parsing rules and errors that name the line."""
from __future__ import annotations

import os

import pytest

from dynokernel.manifold.dotenv import DotenvError, parse_dotenv
from dynokernel.manifold.procfile import ProcfileError, parse_procfile
from dynokernel.manifold.slugs import SlugError, build_slug


def test_procfile_types_comments_and_blank_lines():
    parsed = parse_procfile("# processes\n\nweb: python3 web.py --port $PORT\nmy-worker_2:python3 w.py\n")
    assert parsed.types == {"web": "python3 web.py --port $PORT", "my-worker_2": "python3 w.py"}


@pytest.mark.parametrize("text, fragment", [
    ("web: ok\nthis is not a process\n", "Procfile line 2"),
    ("web:\n", "has no command"),
    ("we b: x\n", "line 1"),
])
def test_procfile_errors_name_the_line(text, fragment):
    with pytest.raises(ProcfileError, match=fragment):
        parse_procfile(text)


def test_procfile_last_duplicate_wins_with_a_warning():
    parsed = parse_procfile("web: a\nweb: b\n")
    assert parsed.types == {"web": "b"}
    assert "line 2" in parsed.warnings[0]


def test_dotenv_values():
    text = 'A=1\nexport B="two words"  # note\nC=\'single $x\'\nD="line\\nbreak"\nE=plain # comment\n'
    assert parse_dotenv(text) == {"A": "1", "B": "two words", "C": "single $x", "D": "line\nbreak", "E": "plain"}


@pytest.mark.parametrize("text, fragment", [
    ("A=1\nnot a pair\n", ".env line 2"),
    ('A="unterminated\n', "unterminated"),
    ('A="x" trailing\n', "after the closing quote"),
])
def test_dotenv_errors_name_the_line(text, fragment):
    with pytest.raises(DotenvError, match=fragment):
        parse_dotenv(text)


def _slug(tmp_path, source):
    return build_slug(source, tmp_path / "objects", tmp_path / "slugs")


def test_slug_honours_slugignore_and_skips_git(tmp_path):
    source = tmp_path / "app"
    (source / "tmp").mkdir(parents=True)
    (source / ".git").mkdir()
    (source / "keep.txt").write_text("keep")
    (source / "debug.log").write_text("drop")
    (source / "tmp" / "cache").write_text("drop")
    (source / ".git" / "HEAD").write_text("drop")
    (source / ".slugignore").write_text("*.log\ntmp/\n")
    slug = _slug(tmp_path, source)
    tree = tmp_path / "slugs" / slug.id
    assert sorted(p.name for p in tree.iterdir()) == [".slugignore", "keep.txt"]


def test_slugs_are_content_addressed_and_share_unchanged_files(tmp_path):
    source = tmp_path / "app"
    source.mkdir()
    (source / "same.txt").write_text("unchanged")
    (source / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(source / "run.sh", 0o755)
    first = _slug(tmp_path, source)
    assert _slug(tmp_path, source).id == first.id
    (source / "new.txt").write_text("added")
    second = _slug(tmp_path, source)
    assert second.id != first.id
    old, new = tmp_path / "slugs" / first.id, tmp_path / "slugs" / second.id
    assert (old / "same.txt").stat().st_ino == (new / "same.txt").stat().st_ino
    assert os.access(new / "run.sh", os.X_OK)
    assert not (old / "new.txt").exists()  # an existing slug never changes


def test_slug_errors(tmp_path):
    source = tmp_path / "app"
    source.mkdir()
    (source / "Procfile").write_text("web python3 web.py\n")
    with pytest.raises(ProcfileError, match="Procfile line 1"):
        _slug(tmp_path, source)
    with pytest.raises(SlugError, match="not a directory"):
        _slug(tmp_path, tmp_path / "missing")
    (source / "Procfile").write_bytes(b"web: \xff\xfe\n")
    with pytest.raises(SlugError, match="not UTF-8"):
        _slug(tmp_path, source)
