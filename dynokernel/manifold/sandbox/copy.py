"""The portable sandbox: each dyno runs in its own private copy of the slug."""
from __future__ import annotations

import shutil
import sys

from .base import DynoSpec, Launch, Sandbox

# Runs inside the dyno's process before its command, so a large copy never blocks the manifold.
_COPY_THEN_EXEC = '{join}cp {flags} -- "$0/." "$HOME" && cd "$HOME" && exec "$@"'


class CopySandbox(Sandbox):
    """Copies the slug per dyno (reflinks where the filesystem has them).

    Differences from the `linux` sandbox: the dyno's home is the copy's host path, not
    `/app`; the dyno shares the host's process table, /tmp and network; its start time
    grows with the slug. Sizes are enforced the same way (cgroups, else rlimits).
    """

    name = "copy"

    @classmethod
    def available(cls) -> bool:
        return True

    def prepare(self, spec: DynoSpec) -> Launch:
        app_dir = spec.work_dir / "app"
        app_dir.mkdir(parents=True, exist_ok=True)
        flags = "-a --reflink=auto" if sys.platform.startswith("linux") else "-Rp"
        join, prefix = self.size_limits(spec)
        script = _COPY_THEN_EXEC.format(flags=flags, join=join + "\n" if join else "")
        argv = [*prefix, "/bin/sh", "-c", script, str(spec.slug_dir), *spec.argv]
        env = dict(spec.env, HOME=str(app_dir))
        return Launch(argv=argv, env=env, cwd=str(spec.work_dir), home=str(app_dir))

    def cleanup(self, spec: DynoSpec) -> None:
        self.remove_limits(spec)
        shutil.rmtree(spec.work_dir, ignore_errors=True)
