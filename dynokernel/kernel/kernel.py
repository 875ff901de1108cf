"""DynoKernel: a Jupyter kernel whose cells run in a REPL inside a one-off dyno.

The profile (bash, python, irb, rails, node) comes from the kernelspec's argv. kernel_info
answers at once while the dyno boots on a background thread; the first cell waits for it.
"""
from __future__ import annotations

import os
import time

import comm
import ipykernel.ipkernel  # noqa: F401  (installs ipykernel's comm implementation for ipywidgets)
from IPython.core.error import StdinNotImplementedError
from ipykernel.kernelbase import Kernel
from traitlets import Float, Unicode

from .. import __version__
from .connection import DynoConnection
from .profiles import get_profile
from .session import CellResult, ReplDied, ReplError

BOOT_TIMEOUT = 300.0
KERNEL_MAGICS = ("%dyno", "%restart", "%ps", "%logs")


class DynoKernel(Kernel):
    implementation = "dynokernel"
    implementation_version = __version__

    profile_name = Unicode("bash", config=True, help="REPL profile: bash, python, irb, rails or node")
    app = Unicode(None, allow_none=True, config=True, help="the app (default: $DYNO_APP, else the notebook's directory)")
    idle_timeout = Float(3600.0, config=True, help="seconds without a running cell or output before the dyno "
                                                   "gets SIGHUP, as Heroku culls idle one-off dynos")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.profile = get_profile(self.profile_name)
        self.comm_manager = comm.get_comm_manager()
        for msg_type in ("comm_open", "comm_msg", "comm_close"):
            self.shell_handlers[msg_type] = getattr(self.comm_manager, msg_type)
        self.dyno = self._new_dyno()

    @property
    def language_info(self) -> dict:
        return self.profile.language_info()

    @property
    def banner(self) -> str:
        return f"{self.profile.display_name}: cells run in a one-off dyno (dynokernel {__version__})"

    def _new_dyno(self) -> DynoConnection:
        dyno = DynoConnection(self.profile, self.app or os.environ.get("DYNO_APP") or None, os.getcwd(),
                              self.idle_timeout)
        dyno.start_in_background()
        return dyno

    # output ---------------------------------------------------------------------------
    def _stream(self, text: str, name: str = "stdout") -> None:
        if text:
            self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def _error(self, ename: str, evalue: str, show: bool = True) -> dict:
        """An error reply; `show` also puts one red line in the cell (never a Python traceback)."""
        traceback = [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"] if show else []
        if show:
            self.send_response(self.iopub_socket, "error", {"ename": ename, "evalue": evalue,
                                                            "traceback": traceback})
        return {"status": "error", "execution_count": self.execution_count, "ename": ename, "evalue": evalue,
                "traceback": traceback}

    def _ok(self) -> dict:
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}

    # execute --------------------------------------------------------------------------
    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        first = code.strip().split(None, 1)[0] if code.strip() else ""
        if first in KERNEL_MAGICS:
            return self._kernel_magic(first, code.strip()[len(first):].strip())
        session = self._session()
        if session is None:
            return self._error("DynoUnavailable", self.dyno.error or "the dyno did not start")
        self._allow_stdin = allow_stdin
        self.dyno.last_activity = float("inf")  # a running cell is never idle
        try:
            result = session.run_cell(code, self._stream, self._input if allow_stdin else None,
                                      allow_stdin=allow_stdin)
        except ReplDied as exc:
            self._stream(f"{self._why_ended()} The next cell starts a new dyno.\n", "stderr")
            self.dyno = self._new_dyno()
            return self._error("DynoEnded", str(exc), show=False)
        except ReplError as exc:
            return self._error(type(exc).__name__, str(exc))
        finally:
            self.dyno.last_activity = time.monotonic()
        return self._reply(result)

    def _reply(self, result: CellResult) -> dict:
        if result.interrupted:
            return self._error("KeyboardInterrupt", "interrupted", show=False)
        if result.alt_screen:
            return self._error("FullScreenProgram", "full-screen programs (vim, less, top) cannot run in a "
                               "notebook cell; use a terminal: dyno run bash")
        if result.exit_status not in (0, None):
            if self.profile.name == "bash":
                return self._error("DynoExitCode", f"exit status {result.exit_status}")
            return self._error(result.error_name or "Error", result.error_name or "error", show=False)
        return self._ok()

    def _session(self):
        """The REPL session, waiting for the boot (with progress shown) and replacing a dead dyno."""
        if self.dyno.session is not None and (self.dyno.closed.is_set() or not self.dyno.session.alive):
            self._stream(self._why_ended() + " Starting a new dyno.\n", "stderr")
            self.dyno = self._new_dyno()
        if not self.dyno.ready:  # the boot's progress, in the cell that waits for it
            self._stream(f"Starting a one-off dyno for {self.profile.display_name}...\n", "stderr")
            self.dyno.wait_ready(BOOT_TIMEOUT)
            self._stream("".join(line + "\n" for line in self.dyno.progress), "stderr")
        return self.dyno.session

    def _why_ended(self) -> str:
        name = self.dyno.run.name if self.dyno.run else "the dyno"
        if self.dyno.idle_for() >= self.idle_timeout:
            return (f"{name} was idle for {self.idle_timeout:g} s and got SIGHUP, as Heroku culls idle one-off "
                    "dynos.")
        return f"{name} ended (it exited, or was stopped from elsewhere, e.g. dyno ps:stop)."

    def _input(self, prompt: str, password: bool) -> str | None:
        try:
            return self.getpass(prompt) if password else self.raw_input(prompt)
        except (EOFError, KeyboardInterrupt, StdinNotImplementedError):
            return None

    # kernel magics --------------------------------------------------------------------
    def _kernel_magic(self, name: str, rest: str) -> dict:
        if name == "%restart":
            self.dyno.stop()
            self.dyno = self._new_dyno()
            self._session()
            return self._ok()
        if name == "%dyno":
            if self._session() is None:
                return self._error("DynoUnavailable", self.dyno.error or "the dyno did not start")
            info = self.dyno.describe()
            self._stream("".join(f"{key}: {value}\n" for key, value in info.items()))
            return self._ok()
        return self._panel(name, rest)

    def _panel(self, name: str, rest: str) -> dict:
        try:
            from ..widgets import LogsPanel, PsPanel
            app = self.dyno.app.name if self.dyno.app else self.dyno.app_name
            panel = PsPanel(app) if name == "%ps" else LogsPanel(app, dyno=rest or None)
        except Exception as exc:  # the panel could not be made: say why in one line
            return self._error("PanelError", f"{name}: {exc}")
        self.send_response(self.iopub_socket, "display_data",
                           {"data": panel._repr_mimebundle_(), "metadata": {}, "transient": {}})
        return self._ok()

    # completion, completeness, interrupt, shutdown ---------------------------------------
    def do_is_complete(self, code):
        verdict = self.profile.is_complete(code)
        reply = {"status": verdict.status}
        if verdict.status == "incomplete":
            reply["indent"] = verdict.indent
        return reply

    def do_complete(self, code, cursor_pos):
        empty = {"status": "ok", "matches": [], "cursor_start": cursor_pos, "cursor_end": cursor_pos,
                 "metadata": {}}
        session = self.dyno.session
        if session is None or session.busy or not session.alive:
            return empty
        found = session.complete(code, cursor_pos)
        return dict(empty, matches=found.matches, cursor_start=found.cursor_start, cursor_end=found.cursor_end)

    async def interrupt_request(self, stream, ident, parent):
        """interrupt_mode "message": Ctrl-C goes to the dyno's foreground job."""
        session = self.dyno.session
        if session is not None:
            session.interrupt()
        self.session.send(stream, "interrupt_reply", {"status": "ok"}, parent, ident=ident)

    def do_shutdown(self, restart):
        self.dyno.stop()
        return {"status": "ok", "restart": restart}
