"""Procfile parsing: `<type>: <command>` per line, with errors that name the line.

    >>> parse_procfile("web: python3 web.py\\nworker: python3 worker.py\\n").types
    {'web': 'python3 web.py', 'worker': 'python3 worker.py'}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r"^([A-Za-z0-9_-]{1,63}):\s*(.*)$")


class ProcfileError(ValueError):
    """A Procfile line that is not `type: command`."""


@dataclass
class Procfile:
    types: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def parse_procfile(text: str, name: str = "Procfile") -> Procfile:
    """Parse Procfile text; blank lines and `#` comments are skipped; the last duplicate wins."""
    procfile = Procfile()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ProcfileError(f"{name} line {number}: expected '<process type>: <command>', got {raw!r}")
        ptype, command = match.group(1), match.group(2).strip()
        if not command:
            raise ProcfileError(f"{name} line {number}: process type {ptype!r} has no command")
        if ptype in procfile.types:
            procfile.warnings.append(f"{name} line {number}: duplicate process type {ptype!r}; the last one wins")
        procfile.types[ptype] = command
    return procfile
