"""A REPL behind a terminal, driven cell by cell: :class:`ReplSession`.

The session works on any pexpect ``SpawnBase`` in bytes mode: a local ``pexpect.spawn`` (tests, a
local REPL) or ``pexpect.fdpexpect.fdspawn`` over a dyno's attach socket. The far end is a
pseudo-terminal either way. Each cell is sent as one unit (see :mod:`.profiles` for the protocol),
its output is streamed through :class:`.output.Batcher` to ``on_output``, and the REPL's next prompt,
an invisible sentinel carrying a per-cell nonce and the exit status, ends it.

Example::

    argv = BASH.argv()
    child = pexpect.spawn(argv[0], argv[1:])       # or pexpect.fdpexpect.fdspawn(attach_socket)
    session = ReplSession(child, BASH)
    session.start()
    result = session.run_cell("echo hi; false", on_output=print)  # prints "hi\\n"
    result.exit_status                                              # -> 1

Threads: ``run_cell``/``complete`` run one at a time (the kernel's execute thread);
``interrupt()`` may be called from any thread while a cell runs. Nothing here sleeps: every wait is
a ``select`` on the terminal (and a wake-up pipe) with a deadline.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import secrets
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import pexpect

from .output import Batcher, OutputLimits, OutputStats
from .profiles import OSC, IsComplete, ReplProfile

__all__ = [
    "ReplSession", "CellResult", "Completions", "ReplError", "ReplStartError", "ReplDied",
    "ReplUnresponsive", "ReplBusy", "looks_like_prompt", "is_password_prompt",
]

Clock = Callable[[], float]
OutputCallback = Callable[[str], None]
InputCallback = Callable[[str, bool], Optional[str]]
DisplayCallback = Callable[[dict], None]

READ_SIZE = 256 * 1024
MARKER_MAX = 64 * 1024 * 1024   # a display marker carries a whole image, base64
WRITE_CHUNK = 4096
INTERRUPT_GRACE = 1.0
# What is typed when a cell will not stop: (keys, seconds to wait for the prompt afterwards).
INTERRUPT_STEPS = (("\x03", INTERRUPT_GRACE), ("\x03", INTERRUPT_GRACE), ("\x1c", INTERRUPT_GRACE))
# For a full-screen program: Ctrl-C, then the usual ways out of pagers, top and vi, then SIGQUIT.
ALT_SCREEN_STEPS = (("", 0.1), ("\x03", 0.5), ("q", 0.5), ("\x1b\x1b:qa!\r", 0.5), ("\x1c", 1.0))
ALT_SCREEN_NOTE = ("[dynokernel] full-screen programs (vi, less, top, ...) cannot run in a notebook "
                   "cell; stopping it. Use a non-interactive form (e.g. cat, sed, ps) instead.\n")

_PROMPT_END = re.compile(r"(?:[:?>\]$#]\s?|\((?:y/n|yes/no)[^)\n]*\)\s?)\Z", re.I)
_PASSWORD = re.compile(r"pass(?:word|phrase| phrase)|\bPIN\b|passcode", re.I)


def looks_like_prompt(line: str) -> bool:
    """Whether an unterminated line that went quiet looks like a program asking for input."""
    line = line.rstrip("\r")
    return 0 < len(line) <= 240 and (bool(_PROMPT_END.search(line)) or bool(_PASSWORD.search(line)))


def is_password_prompt(prompt: str) -> bool:
    return bool(_PASSWORD.search(prompt))


class ReplError(Exception):
    """Something went wrong with the REPL session."""


class ReplStartError(ReplError):
    """The REPL did not come up (no first prompt, or the init failed)."""


class ReplBusy(ReplError):
    """A cell is already running in this session."""


class ReplDied(ReplError):
    """The REPL's terminal closed (the REPL exited, the dyno stopped or the connection dropped).

    ``result`` holds what the cell produced before (its output was flushed), ``tail`` the last output.
    """

    def __init__(self, message: str, result: Optional["CellResult"] = None, tail: str = "") -> None:
        super().__init__(message)
        self.result = result
        self.tail = tail


class ReplUnresponsive(ReplError):
    """The REPL did not come back to its prompt after Ctrl-C, Ctrl-C again and SIGQUIT."""

    def __init__(self, message: str, result: Optional["CellResult"] = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class CellResult:
    """How a cell ended."""

    exit_status: Optional[int]      # bash: $?; python/irb/node: 0, or 1 after an exception; None unknown
    error_name: str = ""            # python/irb/node: the exception's class name
    interrupted: bool = False
    timed_out: bool = False
    alt_screen: bool = False        # a full-screen program was refused
    output: OutputStats = field(default_factory=OutputStats)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.interrupted and not self.alt_screen


@dataclass
class Completions:
    matches: list[str]
    cursor_start: int
    cursor_end: int


@dataclass
class _Cell:
    nonce: str
    batcher: Batcher
    allow_stdin: bool
    on_input: Optional[InputCallback]
    started: float
    timeout: Optional[float]
    heuristics: bool
    status: Optional[int] = None
    error_name: str = ""
    escalating: bool = False          # keys to stop it were sent: any prompt of ours ends the cell
    interrupted: bool = False
    timed_out: bool = False
    steps: list = field(default_factory=list)
    step_at: Optional[float] = None
    keys_sent: int = 0
    asked: str = ""                   # the partial line an input request was made for
    alt_handled: bool = False
    errors: Optional[Batcher] = None  # the stderr stream's batcher (when the REPL marks stderr)
    on_stderr: Optional[OutputCallback] = None
    on_display: Optional[DisplayCallback] = None
    in_stderr: bool = False           # between a REPL's stderr-begin and stderr-end markers
    last_fed: Optional[Batcher] = None

    def batchers(self) -> list[Batcher]:
        return [self.batcher] + ([self.errors] if self.errors else [])


class ReplSession:
    """One REPL reached through a terminal; see the module docstring."""

    def __init__(self, child: pexpect.spawnbase.SpawnBase, profile: ReplProfile, *,
                 clock: Clock = time.monotonic, limits: OutputLimits = OutputLimits(),
                 input_quiet: float = 0.5, token: Optional[str] = None) -> None:
        if getattr(child, "encoding", None) is not None:
            raise ValueError("ReplSession needs a pexpect child in bytes mode (encoding=None)")
        self.child = child
        self.child.delaybeforesend = None
        self.profile = profile
        self.limits = limits
        self.input_quiet = input_quiet
        self._clock = clock
        self.token = token or secrets.token_hex(8)
        self._marker = re.compile(
            rb"\x1b\]" + str(OSC).encode() + rb";" + self.token.encode()
            + rb";([pisd]);([^\x07\x1b]{0,%d})\x07" % MARKER_MAX)
        self._marker_prefix = b"\x1b]" + str(OSC).encode() + b";" + self.token.encode() + b";"
        self._pending = b""           # bytes read but not yet consumed (e.g. after a prompt)
        self._held = b""              # the start of a marker, waiting for its end
        self._esc_lock = threading.RLock()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._cell: Optional[_Cell] = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._dead: Optional[str] = None
        self.started = False
        self.cells_run = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: Optional[float] = None) -> None:
        """Wait for the REPL's first prompt, send the init, wait for the first sentinel prompt."""
        timeout = self.profile.startup_timeout if timeout is None else timeout
        deadline = self._clock() + timeout
        try:
            self.child.expect(self.profile.ready_regex, timeout=timeout)
        except pexpect.EOF:
            self._dead = "exited"
            raise ReplStartError(f"{self.profile.name} exited before its first prompt; it printed:\n"
                                 f"{_tail(self.child.before)}") from None
        except pexpect.TIMEOUT:
            raise ReplStartError(f"no {self.profile.name} prompt after {timeout:g}s; it printed:\n"
                                 f"{_tail(self.child.before)}") from None
        self._take_child_buffer()
        self._pending = b""
        nonce = secrets.token_hex(6)
        self._send(self.profile.init_lines(self.token, nonce))
        seen = bytearray()
        while True:
            data = self._read(max(0.0, deadline - self._clock()))
            if not data:
                if self._clock() >= deadline:
                    raise ReplStartError(f"{self.profile.name} did not take the dynokernel init within "
                                         f"{timeout:g}s; it printed:\n{_tail(bytes(seen))}")
                continue
            data = self._pending + data
            self._pending = b""
            for m in self._marker.finditer(data):
                if m.group(1) == b"p" and m.group(2).split(b";")[0] == nonce.encode():
                    self._pending = data[m.end():]
                    self.started = True
                    return
            seen += data
            del seen[:-8192]
            keep = _possible_marker_start(data, self._marker_prefix)
            self._pending = data[len(data) - keep:] if keep else b""

    def close(self) -> None:
        """Close the terminal (the far end sees end-of-file or a hangup)."""
        try:
            self.child.close(force=True) if isinstance(self.child, pexpect.spawn) else self.child.close()
        except Exception:
            pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._dead = self._dead or "closed"

    @property
    def alive(self) -> bool:
        return self._dead is None

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    # -- cells -------------------------------------------------------------------------------
    def run_cell(self, code: str, on_output: OutputCallback,
                 on_input_request: Optional[InputCallback] = None, allow_stdin: bool = True,
                 timeout: Optional[float] = None, on_stderr: Optional[OutputCallback] = None,
                 on_display: Optional[DisplayCallback] = None,
                 interrupted: Optional[threading.Event] = None) -> CellResult:
        """Run ``code`` as one cell; stream its output to ``on_output``; return how it ended.

        ``interrupted``: an event the caller sets to interrupt; set before the cell reaches the REPL
        (an interrupt racing the cell's start), the cell is interrupted as soon as it is sent.

        What the REPL marks as standard error goes to ``on_stderr`` (default: ``on_output``), rich
        output (a MIME bundle: ``{"data": {...}, "metadata": {}}``) to ``on_display``.

        ``on_input_request(prompt, password)`` is called when the cell waits for input and returns
        the answer (``None``: end-of-file). Without it, or with ``allow_stdin=False``, the cell's
        standard input is end-of-file. ``timeout`` (seconds) interrupts a cell that runs too long.
        Raises :class:`ReplDied` if the REPL goes away, :class:`ReplUnresponsive` if it cannot be
        brought back to its prompt, :class:`ReplBusy` if a cell is running already.
        """
        refusal = self.profile.refusal(code)
        if refusal:
            on_output(refusal)
            return CellResult(exit_status=1, error_name="Refused",
                              output=OutputStats(messages=1, chars=len(refusal)))
        allow = allow_stdin and on_input_request is not None
        return self._execute(lambda nonce: self.profile.cell_lines(code, nonce, allow), on_output,
                             on_input_request if allow else None, allow, timeout, heuristics=True,
                             on_stderr=on_stderr, on_display=on_display, interrupted=interrupted)

    def complete(self, code: str, cursor_pos: Optional[int] = None, timeout: float = 5.0) -> Completions:
        """Completions of the word before the cursor, asked of the REPL without side effects."""
        pos = len(code) if cursor_pos is None else cursor_pos
        query = self.profile.completion(code, pos)
        if query is None:
            return Completions([], pos, pos)
        out: list[str] = []
        self._execute(query.command, out.append, None, False, timeout, heuristics=False)
        return Completions(self.profile.parse_completions("".join(out)), query.start, query.end)

    def is_complete(self, code: str) -> IsComplete:
        """Whether ``code`` is a complete cell, by the language's own parser (run locally)."""
        return self.profile.is_complete(code)

    def interrupt(self) -> bool:
        """Ctrl-C to the running cell; escalates if the REPL does not come back. Any thread."""
        cell = self._cell
        if cell is None or self._dead:
            return False
        cell.interrupted = True
        self._escalate(cell, INTERRUPT_STEPS)
        return True

    # -- the cell loop -----------------------------------------------------------------------
    def _execute(self, make_lines: Callable[[str], str], on_output: OutputCallback,
                 on_input: Optional[InputCallback], allow_stdin: bool, timeout: Optional[float],
                 heuristics: bool, on_stderr: Optional[OutputCallback] = None,
                 on_display: Optional[DisplayCallback] = None,
                 interrupted: Optional[threading.Event] = None) -> CellResult:
        if self._dead:
            raise ReplDied(f"the {self.profile.name} session has ended ({self._dead})")
        if not self.started:
            raise ReplError("start() the session first")
        if not self._lock.acquire(blocking=False):
            raise ReplBusy(f"a cell is already running in this {self.profile.name} session")
        try:
            cell = self._run_one(make_lines, on_output, on_input, allow_stdin, timeout, heuristics,
                                 on_stderr, on_display, interrupted)
            if (cell.alt_handled or cell.keys_sent > 1) and self.profile.tty_reset:
                reset = self.profile.tty_reset
                self._run_one(lambda n: self.profile.cell_lines(reset, n, False),
                              lambda _t: None, None, False, 5.0, False)
            return self._result(cell)
        finally:
            self._lock.release()

    def _run_one(self, make_lines: Callable[[str], str], on_output: OutputCallback,
                 on_input: Optional[InputCallback], allow_stdin: bool, timeout: Optional[float],
                 heuristics: bool, on_stderr: Optional[OutputCallback] = None,
                 on_display: Optional[DisplayCallback] = None,
                 interrupted: Optional[threading.Event] = None) -> _Cell:
        nonce = secrets.token_hex(6)
        hold = self.input_quiet + 0.1 if heuristics and on_input is not None else 0.0
        batcher = Batcher(on_output, clock=self._clock,
                          limits=dataclasses.replace(self.limits, hold_prompt=hold),
                          looks_like_prompt=looks_like_prompt, name=f"{self.profile.name}-cell")
        cell = _Cell(nonce, batcher, allow_stdin, on_input, self._clock(), timeout, heuristics,
                     on_stderr=on_stderr or on_output, on_display=on_display)
        self._cell = cell
        try:
            self._send("\x15" + make_lines(nonce), pump=True)
            if interrupted is not None and interrupted.is_set():
                self.interrupt()  # it came while the cell was on its way
            self._pump(cell)
        except pexpect.EOF:
            self._dead = "end of file"
            raise ReplDied(f"the {self.profile.name} REPL ended: its terminal closed (the dyno "
                           f"exited or was stopped, or the connection dropped){self._exit_note()}",
                           self._result(cell)) from None
        except ReplUnresponsive as e:
            self._dead = "unresponsive"
            e.result = self._result(cell)
            raise
        finally:
            self._cell = None
        self.cells_run += 1
        return cell

    def _result(self, cell: _Cell) -> CellResult:
        stats = cell.batcher.close()
        if cell.errors is not None:
            more = cell.errors.close()
            stats.messages += more.messages
            stats.wire_bytes += more.wire_bytes
            stats.lines += more.lines
            stats.chars += more.chars
            stats.spill_path = stats.spill_path or more.spill_path
        return CellResult(exit_status=cell.status, error_name=cell.error_name,
                          interrupted=cell.interrupted, timed_out=cell.timed_out,
                          alt_screen=cell.alt_handled, output=stats,
                          duration=self._clock() - cell.started)

    def _pump(self, cell: _Cell) -> None:
        """Read and dispatch until the cell's prompt comes back."""
        while True:
            if self._pending:
                data, self._pending, self._held = self._held + self._pending, b"", b""
            else:
                data = self._read(self._wait_time(cell))
                if data and self._held:
                    data, self._held = self._held + data, b""
            if data and self._consume(cell, data):
                return
            self._housekeeping(cell)

    def _wait_time(self, cell: _Cell) -> Optional[float]:
        times = [b.deadline() for b in cell.batchers()] + [cell.step_at]
        if cell.timeout is not None and not cell.escalating:
            times.append(cell.started + cell.timeout)
        if self._may_ask(cell):
            times.append(cell.batcher.last_feed + self.input_quiet)
        times = [t for t in times if t is not None]
        if not times:
            return None
        return max(0.0, min(times) - self._clock())

    def _consume(self, cell: _Cell, data: bytes) -> bool:
        """Feed output, act on markers; True when the cell's prompt came (the rest is kept)."""
        pos = 0
        for m in self._marker.finditer(data):
            self._feed(cell, data[pos:m.start()])
            pos = m.end()
            fields = m.group(2).split(b";")
            if m.group(1) == b"p":
                # Only the prompt with this cell's nonce ends it; once keys were sent to stop it,
                # any prompt of ours does (Ctrl-C may have cut the cell's own line short).
                if fields[0] == cell.nonce.encode() or cell.escalating:
                    cell.status = _int(fields[1] if len(fields) > 1 else b"")
                    cell.error_name = fields[2].decode("utf-8", "replace") if len(fields) > 2 else ""
                    self._pending = data[pos:]
                    return True
            elif m.group(1) == b"s":
                self._switch_stream(cell, fields[0] == b"2")
            elif m.group(1) == b"d":
                self._display(cell, fields)
            else:
                flags = fields[0].decode("ascii", "replace")
                prompt = _b64decode(fields[1] if len(fields) > 1 else b"")
                self._ask(cell, prompt, flags)
        rest = data[pos:]
        keep = _possible_marker_start(rest, self._marker_prefix)
        if keep:
            self._held = rest[len(rest) - keep:]
            rest = rest[:len(rest) - keep]
        self._feed(cell, rest)
        return False

    def _feed(self, cell: _Cell, data: bytes) -> None:
        if not data:
            return
        target = cell.errors if cell.in_stderr else cell.batcher
        if cell.last_fed is not None and cell.last_fed is not target:
            cell.last_fed.flush()    # the other stream's text so far comes first
        cell.last_fed = target
        target.feed(data)
        if cell.in_stderr:
            return
        if cell.batcher.alt_screen and not cell.alt_handled:
            cell.alt_handled = True
            cell.batcher.note(ALT_SCREEN_NOTE)
            self._escalate(cell, ALT_SCREEN_STEPS)

    def _switch_stream(self, cell: _Cell, to_stderr: bool) -> None:
        """A stderr marker: what follows (up to the next one) belongs to the other stream."""
        if to_stderr and cell.errors is None:
            cell.errors = Batcher(cell.on_stderr, clock=self._clock, limits=self.limits,
                                  name=f"{self.profile.name}-stderr")
        cell.in_stderr = to_stderr

    def _display(self, cell: _Cell, fields: list[bytes]) -> None:
        """A display marker: ``mime;base64;mime;base64...`` becomes one rich output, after the text."""
        bundle = display_bundle(fields)
        if not bundle or cell.on_display is None:
            return
        for batcher in cell.batchers():
            batcher.flush()
        cell.on_display({"data": bundle, "metadata": {}})

    def _housekeeping(self, cell: _Cell) -> None:
        now = self._clock()
        for batcher in cell.batchers():
            batcher.tick()
        if cell.step_at is not None and now >= cell.step_at:
            self._next_step(cell)
        if (cell.timeout is not None and not cell.escalating and now >= cell.started + cell.timeout):
            cell.timed_out = cell.interrupted = True
            cell.batcher.note(f"[dynokernel] the cell ran longer than {cell.timeout:g}s; interrupting it\n")
            self._escalate(cell, INTERRUPT_STEPS)
        if self._may_ask(cell) and cell.batcher.quiet_for >= self.input_quiet:
            partial = cell.batcher.partial_text()
            cell.asked = partial
            self._ask(cell, "", "")

    # -- stdin -------------------------------------------------------------------------------
    def _may_ask(self, cell: _Cell) -> bool:
        """Is the cell's last line an unanswered prompt-like line? (Checked once output is quiet.)"""
        if not cell.heuristics or cell.escalating:
            return False
        partial = cell.batcher.partial_text()
        if not partial or partial == cell.asked or not looks_like_prompt(partial):
            return False
        # Without a frontend to answer, the cell's stdin is /dev/null already; only programs that
        # read the terminal itself (sudo, ssh, passwd) still wait: those get end-of-file.
        return cell.on_input is not None or is_password_prompt(partial)

    def _ask(self, cell: _Cell, prompt: str, flags: str) -> None:
        """The cell waits for input: ask the frontend (or send end-of-file)."""
        if cell.on_input is None:
            cell.batcher.flush()
            self._send("\x04", pump=True)
            return
        if prompt:
            cell.batcher.flush()
        else:
            prompt = cell.batcher.take_partial()
        password = "p" in flags or is_password_prompt(prompt)
        answer = cell.on_input(prompt, password)
        if answer is None:
            self._send("\x04", pump=True)
        else:
            line = answer.replace("\r\n", "\n").split("\n")[0]
            self._send(line + ("" if "n" in flags else "\n"), pump=True)
        cell.asked = ""

    # -- interrupting ------------------------------------------------------------------------
    def _escalate(self, cell: _Cell, steps: tuple) -> None:
        with self._esc_lock:
            if cell.escalating and steps is INTERRUPT_STEPS:
                return
            cell.escalating = True
            cell.steps = list(steps)
            self._next_step(cell)
        self._wake()

    def _next_step(self, cell: _Cell) -> None:
        with self._esc_lock:
            if not cell.steps:
                raise ReplUnresponsive(f"the {self.profile.name} REPL did not come back to its prompt "
                                       f"after Ctrl-C and SIGQUIT; the session is unusable")
            keys, grace = cell.steps.pop(0)
            cell.keys_sent += 1
            cell.step_at = self._clock() + grace
            self._send(keys)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # -- terminal I/O ------------------------------------------------------------------------
    def _take_child_buffer(self) -> bytes:
        data = self.child.buffer
        if data:
            self.child.buffer = self.child.string_type()
        return data or b""

    def _read(self, timeout: Optional[float]) -> bytes:
        """Bytes from the terminal, or b'' on timeout/wake-up; raises pexpect.EOF."""
        data = self._take_child_buffer()
        if data:
            return data
        fd = self.child.child_fd
        ready, _, _ = select.select([fd, self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            try:
                os.read(self._wake_r, 4096)
            except OSError:
                pass
        if fd not in ready:
            return b""
        try:
            return self.child.read_nonblocking(READ_SIZE, timeout=0)
        except pexpect.TIMEOUT:
            return b""

    def _send(self, text: str, pump: bool = False) -> None:
        """Write all of ``text``. On the cell's thread (``pump``), output that arrives while the
        terminal's input is full is read and kept, so neither side can block the other."""
        data = text.encode("utf-8", "surrogateescape")
        fd = self.child.child_fd
        with self._send_lock:
            while data:
                if pump:
                    ready_r, ready_w, _ = select.select([fd], [fd], [])
                    if not ready_w:
                        try:
                            self._pending += self.child.read_nonblocking(READ_SIZE, timeout=0)
                        except pexpect.TIMEOUT:
                            pass
                        continue
                n = self.child.send(data[:WRITE_CHUNK])
                data = data[n:]

    def _exit_note(self) -> str:
        child = self.child
        if isinstance(child, pexpect.spawn):
            try:
                child.close()
            except Exception:
                pass
            if child.signalstatus is not None:
                return f"; signal {child.signalstatus}"
            if child.exitstatus is not None:
                return f"; exit status {child.exitstatus}"
        return ""


def _possible_marker_start(data: bytes, prefix: bytes) -> int:
    """How many bytes at the end of ``data`` could begin a marker (so must wait for more)."""
    i = data.rfind(b"\x1b")
    if i < 0:
        return 0
    tail = data[i:]
    if len(tail) < len(prefix):
        return len(tail) if prefix.startswith(tail) else 0
    if tail.startswith(prefix) and b"\x07" not in tail and len(tail) < MARKER_MAX + len(prefix) + 4:
        return len(tail)
    return 0


TEXT_MIMES = ("text/", "application/javascript", "image/svg+xml")


def display_bundle(fields: list[bytes]) -> dict:
    """A display marker's ``mime;base64`` pairs as a Jupyter MIME bundle: text types decoded, JSON
    parsed, binary types (PNG, JPEG...) left as base64, as Jupyter sends them."""
    bundle: dict = {}
    for mime_raw, b64 in zip(fields[0::2], fields[1::2]):
        mime = mime_raw.decode("ascii", "replace").strip()
        if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", mime):
            continue
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            continue
        if mime == "application/json" or mime.endswith("+json"):
            try:
                bundle[mime] = json.loads(raw)
            except ValueError:
                continue
        elif mime.startswith(TEXT_MIMES):
            bundle[mime] = raw.decode("utf-8", "replace")
        else:
            bundle[mime] = b64.decode("ascii")
    return bundle


def _int(raw: bytes) -> Optional[int]:
    try:
        return int(raw)
    except ValueError:
        return None


def _b64decode(raw: bytes) -> str:
    try:
        return base64.b64decode(raw).decode("utf-8", "replace")
    except ValueError:
        return ""


def _tail(data, n: int = 2000) -> str:
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return (data or "")[-n:]
