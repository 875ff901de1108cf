"""Where dynokernel keeps its files ($DYNO_HOME) and the names of those files."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def dyno_home() -> Path:
    """$DYNO_HOME, default ~/.local/share/dynokernel (created, private to the user)."""
    raw = os.environ.get("DYNO_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "dynokernel")
    home = Path(raw).expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


@dataclass(frozen=True)
class HomeFiles:
    """The files of one $DYNO_HOME, shared by the manifold and its local clients."""

    home: Path

    @property
    def state_db(self) -> Path:
        return self.home / "state.db"

    @property
    def token(self) -> Path:
        return self.home / "token"

    @property
    def endpoint(self) -> Path:
        """JSON written by a running manifold: pid, API port, rendezvous port."""
        return self.home / "manifold.json"

    @property
    def start_lock(self) -> Path:
        return self.home / "start.lock"

    @property
    def run_lock(self) -> Path:
        return self.home / "manifold.lock"

    @property
    def log(self) -> Path:
        return self.home / "manifold.log"

    @property
    def ca_cert(self) -> Path:
        return self.home / "tls" / "ca.pem"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def links(self) -> Path:
        """Which local directory belongs to which app (the client's business, like a git remote)."""
        return self.home / "links.json"

    @property
    def slugs(self) -> Path:
        return self.home / "slugs"

    @property
    def objects(self) -> Path:
        return self.home / "objects"

    @property
    def dynos(self) -> Path:
        return self.home / "dynos"
