"""The magics: `%dynorun`, `%%dynorun`, `%dynops`, `%dynologs`, `%dynostop`.

    %load_ext dynokernel
    %dynorun rake db:migrate            # Running rake db:migrate on ⬢ myapp... up, run.4
    r = %dynorun --detach node tally_results.js
    %%dynorun python
    print("hello from", __import__("os").environ["DYNO"])
"""
from __future__ import annotations

import os
import subprocess
import sys

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ..platform.app import App, Run, RunTimeout
from ..platform.errors import ManifoldUnavailable, PlatformError
from . import options
from .stream import stream

HEXAGON = "\u2b22"

# %%dynorun KIND: the cell body reaches the dyno in an environment variable (no quoting, short `ps` line)
CELL_VAR = "DYNORUN_CELL"
INTERPRETERS = {
    "bash": f'bash -c "${CELL_VAR}"',
    "sh": f'sh -c "${CELL_VAR}"',
    "python": f'python3 -c "${CELL_VAR}"',
    "python3": f'python3 -c "${CELL_VAR}"',
    "ruby": f'ruby -e "${CELL_VAR}"',
    "node": f'node -e "${CELL_VAR}"',
}


class DynoError(Exception):
    """A one-line error for the notebook (no traceback)."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class DynoExitError(subprocess.CalledProcessError):
    """The command exited non-zero; `exit_code` (also `returncode`) carries its status."""

    def __init__(self, run: Run, exit_code: int | None) -> None:
        super().__init__(-1 if exit_code is None else exit_code, run.record.get("command", ""))
        self.exit_code, self.run, self.dyno = exit_code, run, run.name

    def __str__(self) -> str:
        if self.exit_code is None:
            return f"{self.dyno}: no exit code returned (the connection to the dyno closed)"
        return f"{self.dyno}: Process exited with code {self.exit_code}"

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def _err(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


@magics_class
class DynoMagics(Magics):
    def __init__(self, shell=None) -> None:
        super().__init__(shell)
        self._apps: dict[tuple, App] = {}

    # apps ------------------------------------------------------------------------
    def _app(self, name: str | None, create: bool = False) -> App:
        """The app for a magic, cached per (name, directory, home) to keep the API connection warm."""
        key = (name or os.environ.get("DYNO_APP"), os.getcwd(), os.environ.get("DYNO_HOME"),
               os.environ.get("DYNO_API_URL"), create)
        app = self._apps.get(key)
        if app is None:
            app = App(name, create=create)
            if create:
                self._deploy_if_needed(app)
            self._apps[key] = app
        return app

    def _call(self, name: str | None, action, create: bool = False):
        """Run `action(app)`; a cached app whose manifold moved (restart) is resolved again once."""
        try:
            return action(self._app(name, create))
        except ManifoldUnavailable:
            self._apps.clear()
            return action(self._app(name, create))

    @staticmethod
    def _deploy_if_needed(app: App) -> None:
        if app.info().get("released_at"):
            return
        _err(f"Deploying {HEXAGON} {app.name} from {app.directory or app.cwd}... ", end="")
        build = app.deploy()
        _err(f"done, v{build['release']['version']}")

    # %dynorun --------------------------------------------------------------------
    @line_magic
    def dynorun(self, line: str):
        """Run a command in a one-off dyno: `%dynorun [-a APP] [-e "A=1"] [--detach] COMMAND`.

        Output streams into the cell; a non-zero exit raises DynoExitError; interrupting the
        kernel stops the dyno. With --detach: returns a Run and shows its live status panel.
        """
        with _one_line_errors():
            opts = options.parse_run(line)
            if opts.help or not opts.command:
                if not opts.help:
                    raise options.OptionError("Usage: %dynorun [flags] COMMAND (a command to run is required; "
                                              "see %dynorun --help)")
                print(options.RUN_USAGE)
                return None
            return self._run(opts, opts.command, opts.command)

    @cell_magic("dynorun")
    def dynorun_cell(self, line: str, cell: str):
        """Run the cell as a script in a one-off dyno: `%%dynorun [flags] [bash|python|ruby|node]`."""
        with _one_line_errors():
            opts = options.parse_run(line, magic="%%dynorun")
            kind = opts.command.strip() or "bash"
            if opts.help:
                print(options.RUN_USAGE)
                return None
            if kind not in INTERPRETERS:
                raise options.OptionError(f"%%dynorun runs bash, python, ruby or node cells, not {kind!r}")
            opts.env = {**opts.env, CELL_VAR: cell}
            return self._run(opts, INTERPRETERS[kind], f"{kind} cell")

    def _run(self, opts: options.RunOptions, command: str, label: str):
        app = self._call(opts.app, lambda app: app, create=True)
        env = dict(opts.env)
        if opts.tty:
            env.setdefault("TERM", "xterm-256color")
        _err(f"Running {label} on {HEXAGON} {app.name}... ", end="")
        if opts.detach:
            timeout_ttl = int(opts.timeout + 0.999) if opts.timeout and not opts.ttl else opts.ttl
            run = app.start(command, attach=False, env=env, size=opts.size, type=opts.type,
                            time_to_live=timeout_ttl)
            _err(f"done, {run.name}")
            from IPython.display import display
            display(run.panel())
            return run
        run = app.start(command, attach=True, tty=opts.tty, env=env, size=opts.size, type=opts.type,
                        time_to_live=opts.ttl, idle_timeout=opts.idle_timeout)
        run.attach()
        _err(f"up, {run.name}")
        kernel = getattr(self.shell, "kernel", None)
        allow_stdin = opts.stdin and bool(getattr(kernel, "_allow_stdin", False))
        code = stream(run, kernel=kernel, allow_stdin=allow_stdin, timeout=opts.timeout)
        if opts.exit_code and code != 0:
            raise DynoExitError(run, code)
        return None

    # %dynostop -------------------------------------------------------------------
    @line_magic
    def dynostop(self, line: str) -> None:
        """Stop a dyno (`%dynostop run.4`) or every dyno of a type (`%dynostop -p worker`)."""
        with _one_line_errors():
            args = options.parse_args(options.stop_parser(), line)
            name = args.dyno_name or args.dyno
            if args.process_type and name:
                raise options.OptionError("Use either --dyno-name or --process-type, not both")
            dyno_type = args.process_type or (name if name and "." not in name else None)
            if not (name or dyno_type):
                raise options.OptionError("Please specify a process type or dyno name to stop (-p TYPE or NAME)")
            app = self._call(args.app, lambda app: app)
            if dyno_type:
                _err(f"Stopping {dyno_type} dynos on {HEXAGON} {app.name}... ", end="")
                app.stop_type(dyno_type)
            else:
                _err(f"Stopping dyno {name} on {HEXAGON} {app.name}... ", end="")
                app.stop(name)
            _err("done")

    # panels ----------------------------------------------------------------------
    @line_magic
    def dynops(self, line: str):
        """The live ps panel: `%dynops [-a APP] [TYPE...]`."""
        with _one_line_errors():
            args = options.parse_args(options.ps_parser(), line)
            from ..widgets import PsPanel
            return self._call(args.app, lambda app: PsPanel(app, types=args.types or None))

    @line_magic
    def dynologs(self, line: str):
        """The logs panel: `%dynologs [-a APP] [-d DYNO] [-s app|heroku] [-n N] [--tail]`."""
        with _one_line_errors():
            args = options.parse_args(options.logs_parser(), line)
            if args.num < 0:
                raise options.OptionError("--num must be zero or more")
            from ..widgets import LogsPanel
            return self._call(args.app, lambda app: LogsPanel(
                app, dyno=args.dyno or args.process_type, source=args.source, lines=args.num, tail=args.tail))


class _one_line_errors:
    """Bad flags and platform errors become one-line DynoErrors; exit errors pass through."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if isinstance(value, (options.OptionError, PlatformError)) and not isinstance(value, RunTimeout):
            raise DynoError(str(value)) from None
        if isinstance(value, RunTimeout):
            raise DynoError(str(value)) from None
        return False
