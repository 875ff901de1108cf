"""Fixtures of the magics, widget, notebook and browser tests: a manifold with the sample app
deployed, and a real IPython kernel (the `python3` kernelspec) driven through jupyter_client.

Import with `from magics_fixtures import *` (tests/ is on sys.path for pytest's test modules).
"""
from __future__ import annotations

import os
import queue
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from conftest import SAMPLE_APP, Manifold, start_manifold

ROOT = Path(__file__).resolve().parents[1]
APP = "sampleapp"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Manifold:
    """A manifold of this module, with the sample app created (linked to examples/sampleapp) and deployed."""
    manifold = start_manifold(tmp_path_factory.mktemp("dynohome"))
    try:
        for args in (("apps:create", APP, "--dir", str(SAMPLE_APP)), ("deploy", "-a", APP)):
            done = manifold.dyno(*args)
            assert done.returncode == 0, done.stderr
        yield manifold
    finally:
        manifold.stop()


def api(manifold: Manifold):
    """The Python API's App for the sample app, against this manifold."""
    os.environ["DYNO_HOME"] = str(manifold.home)
    from dynokernel.platform.app import App
    return App(APP)


@dataclass
class Result:
    reply: dict
    messages: list[dict] = field(default_factory=list)  # IOPub messages, each with "t" (arrival time)

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    def text(self, name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in self.messages
                       if m["msg_type"] == "stream" and m["content"]["name"] == name)

    @property
    def error(self) -> dict | None:
        return next((m["content"] for m in self.messages if m["msg_type"] == "error"), None)

    def of_type(self, msg_type: str) -> list[dict]:
        return [m for m in self.messages if m["msg_type"] == msg_type]


class Kernel:
    """An IPython kernel of the `python3` kernelspec, in the sample app's directory."""

    def __init__(self, manifold: Manifold, cwd: Path = SAMPLE_APP) -> None:
        env = dict(manifold.env, PYTHONUNBUFFERED="1")
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.on_iopub = None  # called with each IOPub message while `execute` waits

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def send(self, code: str, *, allow_stdin: bool = False, cell_id: str | None = None) -> str:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": allow_stdin, "stop_on_error": True}
        msg = self.kc.session.msg("execute_request", content, metadata={"cellId": cell_id or str(uuid.uuid4())})
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def collect(self, msg_id: str, timeout: float = 60, stdin=None) -> Result:
        """IOPub messages of one request until it is idle, then its reply; `stdin(prompt)` answers input."""
        deadline = time.monotonic() + timeout
        result = Result(reply={})
        idle = False
        while not idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no idle within {timeout} s; got {[m['msg_type'] for m in result.messages]}")
            if stdin is not None:
                try:
                    request = self.kc.stdin_channel.get_msg(timeout=0.01)
                    self.kc.input(stdin(request["content"]["prompt"]))
                except queue.Empty:
                    pass
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            msg["t"] = time.monotonic()
            if self.on_iopub is not None:
                self.on_iopub(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            result.messages.append(msg)
            idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                result.reply = reply
                return result

    def run(self, code: str, timeout: float = 60, **kwargs) -> Result:
        stdin = kwargs.pop("stdin", None)
        return self.collect(self.send(code, **kwargs), timeout=timeout, stdin=stdin)

    def value(self, expression: str):
        """Evaluate an expression in the kernel (its repr, literal_eval'd)."""
        import ast
        result = self.run(f"__value = {expression}\nprint(repr(__value))")
        assert result.status == "ok", result.error
        return ast.literal_eval(result.text().strip().splitlines()[-1])

    def wait_iopub(self, predicate, timeout: float = 10) -> dict:
        """The first IOPub message (of any request) for which `predicate(msg)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                continue
            msg["t"] = time.monotonic()
            if predicate(msg):
                return msg
        raise TimeoutError("no matching IOPub message")


@pytest.fixture(scope="module")
def kernel(sample: Manifold):
    started = Kernel(sample)
    try:
        loaded = started.run("%load_ext dynokernel")
        assert loaded.status == "ok", loaded.error
        yield started
    finally:
        started.stop()


def comm_state_text(msg: dict) -> str:
    """The state of a widget update/open message as one string (for matching)."""
    if msg["msg_type"] not in ("comm_msg", "comm_open"):
        return ""
    return repr(msg["content"].get("data", {}).get("state", {}))
