"""Dyno sandboxes: where and how a dyno's processes run.

A sandbox is chosen once per manifold (by configuration, else by capability) the way
jupyter_client chooses kernel provisioners::

    sandbox = choose_sandbox(home, preferred="auto")
    launch = sandbox.prepare(spec)        # ephemeral layer, argv, environment
    proc = sandbox.spawn(launch, stdio)   # a new session/process group
    sandbox.signal(proc, signal.SIGTERM)  # reaches every process of the dyno
    ...                                   # the supervisor reaps (waitpid) centrally
    sandbox.cleanup(spec)                 # the ephemeral layer is gone
"""
from __future__ import annotations

from pathlib import Path

from .base import DynoSpec, Launch, Sandbox, SandboxError
from .copy import CopySandbox
from .linux import LinuxSandbox

SANDBOXES: dict[str, type[Sandbox]] = {"linux": LinuxSandbox, "copy": CopySandbox}


def choose_sandbox(home: Path, preferred: str = "auto") -> Sandbox:
    """The sandbox named by `preferred`, or the best one this machine supports."""
    if preferred != "auto":
        try:
            cls = SANDBOXES[preferred]
        except KeyError:
            raise SandboxError(f"unknown sandbox {preferred!r} (known: {', '.join(SANDBOXES)})") from None
        if not cls.available():
            raise SandboxError(f"the {preferred} sandbox is not available on this machine")
        return cls(home)
    for cls in SANDBOXES.values():
        if cls.available():
            return cls(home)
    raise SandboxError("no sandbox is available on this machine")


__all__ = ["DynoSpec", "Launch", "Sandbox", "SandboxError", "choose_sandbox"]
