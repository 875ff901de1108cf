"""Flags of the magics, parsed like the `dyno` CLI parses them.

`%dynorun` keeps the command verbatim: flags are read up to the first word that is not one
(or `--`), and the rest of the line is the command exactly as typed.

    >>> opts = parse_run('-a other --env "RAILS_ENV=staging" bash -c "echo $DYNO"')
    >>> opts.app, opts.env, opts.command
    ('other', {'RAILS_ENV': 'staging'}, 'bash -c "echo $DYNO"')
"""
from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field


class OptionError(ValueError):
    """A bad flag or value; the message is one line for the user."""


@dataclass
class RunOptions:
    app: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    size: str | None = None
    type: str | None = None
    ttl: int | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    detach: bool = False
    tty: bool = False
    stdin: bool = True
    exit_code: bool = True
    help: bool = False
    command: str = ""


# flag -> (field, kind); kind: "str", "int", "float", "env", or a constant stored when the flag is seen
_RUN_FLAGS: dict[str, tuple[str, object]] = {
    "-a": ("app", "str"), "--app": ("app", "str"),
    "-e": ("env", "env"), "--env": ("env", "env"),
    "-s": ("size", "str"), "--size": ("size", "str"),
    "--type": ("type", "str"),
    "--ttl": ("ttl", "int"),
    "--timeout": ("timeout", "float"),
    "--idle-timeout": ("idle_timeout", "float"),
    "-d": ("detach", True), "--detach": ("detach", True), "--detached": ("detach", True),
    "--tty": ("tty", True), "--no-tty": ("tty", False),
    "--no-stdin": ("stdin", False),
    "-x": ("exit_code", True), "--exit-code": ("exit_code", True), "--no-exit-code": ("exit_code", False),
    "-h": ("help", True), "--help": ("help", True),
}

RUN_USAGE = """\
%dynorun [flags] COMMAND...      run COMMAND in a one-off dyno, its output streaming into the cell
%%dynorun [flags] [bash|python|ruby|node]   run the cell's body as a script in a one-off dyno

  -a, --app APP          the app (default: $DYNO_APP, or the app linked to the current directory)
  -e, --env "A=1;B=2"    environment variables for the dyno
  -s, --size SIZE        dyno size (Basic, Standard-1X, Standard-2X, ...)
  --type TYPE            process type of the dyno (default: run)
  --ttl SECONDS          seconds the dyno may live
  --timeout SECONDS      stop the dyno (and fail the cell) after this long
  -d, --detach           return at once with a Run and a live status panel (output goes to the logs)
  --tty                  give the command a terminal (default: pipes, like heroku run --no-tty)
  --no-stdin             the command reads EOF (default: prompts in the notebook when it waits for input)
  --no-exit-code         do not raise when the command exits non-zero
Procfile types work with arguments: %dynorun myworker 42"""


def parse_env(text: str) -> dict[str, str]:
    """`--env "A=1;B=2"`, as the CLI reads it."""
    env: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"Invalid --env {item!r}: expected NAME=value, separated by ';'")
        env[key.strip()] = value
    return env


def _first_word(text: str) -> tuple[str, str]:
    """The first shell word of `text` and what follows it."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    try:
        word = lexer.get_token()
    except ValueError as exc:
        raise OptionError(f"Cannot parse {text!r}: {exc}") from None
    return word or "", text[lexer.instream.tell():]


def parse_run(line: str, *, magic: str = "%dynorun") -> RunOptions:
    """Flags, then the command verbatim."""
    opts = RunOptions()
    rest = line.strip()
    while rest.startswith("-"):
        word, after = _first_word(rest)
        if word == "--":
            rest = after.strip()
            break
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name not in _RUN_FLAGS and not word.startswith("--") and word[:2] in _RUN_FLAGS and len(word) > 2:
            name, eq, inline = word[:2], "=", word[2:]  # -aAPP
        if name not in _RUN_FLAGS:
            raise OptionError(f"Unknown flag {name} for {magic} (put the command after -- if it starts "
                              f"with a dash; see {magic}?)")
        dest, kind = _RUN_FLAGS[name]
        if isinstance(kind, bool):
            if eq:
                raise OptionError(f"{name} takes no value")
            setattr(opts, dest, kind)
            rest = after.strip()
            continue
        if eq:
            value = inline
        else:
            value, after = _first_word(after)
            if not value and not after.strip():
                raise OptionError(f"{name} needs a value")
        setattr(opts, dest, _convert(name, kind, value, opts))
        rest = after.strip()
    opts.command = rest
    return opts


def _convert(name: str, kind: object, value: str, opts: RunOptions):
    if kind == "env":
        return {**opts.env, **parse_env(value)}
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise OptionError(f"{name} expects a whole number of seconds, not {value!r}") from None
    if kind == "float":
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if number <= 0:
            raise OptionError(f"{name} expects a positive number of seconds, not {value!r}")
        return number
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise OptionError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None):
        raise OptionError(message or self.format_usage().strip())


def _parser(prog: str) -> _Parser:
    parser = _Parser(prog=prog, add_help=False)
    parser.add_argument("-a", "--app")
    return parser


def parse_args(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise OptionError(f"{parser.prog}: cannot parse {line!r}: {exc}") from None
    return parser.parse_args(words)


def ps_parser() -> _Parser:
    parser = _parser("%dynops")
    parser.add_argument("types", nargs="*")
    return parser


def logs_parser() -> _Parser:
    parser = _parser("%dynologs")
    parser.add_argument("-n", "--num", type=int, default=100)
    parser.add_argument("-t", "--tail", action="store_true")
    parser.add_argument("-d", "--dyno-name", "--dyno", dest="dyno")
    parser.add_argument("-p", "--process-type")
    parser.add_argument("-s", "--source", choices=["app", "heroku"])
    return parser


def stop_parser() -> _Parser:
    parser = _parser("%dynostop")
    parser.add_argument("-d", "--dyno-name")
    parser.add_argument("-p", "--process-type")
    parser.add_argument("dyno", nargs="?")
    return parser
