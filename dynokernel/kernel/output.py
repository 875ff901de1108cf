"""Cell output: from a pseudo-terminal's bytes to a few Jupyter stream messages.

Two layers:

- :class:`TerminalRenderer` turns bytes into text the way a terminal would show it: incremental
  UTF-8 decoding (a character split across reads is fine), ``\\r\\n`` split across reads, ``\\r``,
  backspace and in-line cursor moves overwrite the current line (a progress bar shows its final
  state), erase-in-line works, SGR colours are kept, every other control sequence (titles and other
  OSC strings, cursor positioning, modes) is dropped, and the alternate screen of full-screen programs
  (``ESC[?1049h``, ``ESC[?47h``, ``ESC[?1047h``) is reported and its contents dropped, as a terminal
  does when the program leaves it.
- :class:`Batcher` decides when text is sent (``emit``): at most once per ``interval`` (20 times a
  second by default) or when ``max_chunk`` bytes are waiting, and a partial line as soon as the
  interval allows, so ``echo -n x; sleep 2`` shows ``x`` at once. A partial line that is later
  overwritten is re-sent after ``\\r`` (padded with spaces), which Jupyter front ends apply as a
  terminal would; so the cell's visible output at the end equals what a terminal would show.
  Past the per-cell budget the head stays in the cell, the full output goes to a spill file, and
  the tail is shown at the end under a note naming the file. Nothing is dropped silently.

Example::

    chunks = []
    b = Batcher(chunks.append, clock=time.monotonic)
    b.feed(b"10%\\r50%\\r100%\\r\\n")
    b.close()
    "".join(chunks)   # -> "100%\\n"
"""
from __future__ import annotations

import codecs
import collections
import json
import math
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

__all__ = [
    "TerminalRenderer", "Batcher", "OutputLimits", "OutputStats",
    "DEFAULT_BUDGET", "DEFAULT_TAIL", "wire_size", "default_spill_dir",
]

Clock = Callable[[], float]

# One token of terminal output (after UTF-8 decoding). Incomplete sequences at the very end of the
# text (``inc``) are held back until more bytes come.
_TOKEN = re.compile(
    r"(?P<text>[^\x00-\x08\x0a-\x1f\x7f]+)"
    r"|(?P<nl>\r*\n)"
    r"|(?P<inc>\r+\Z|\x1b\[[0-?]*[ -/]*\Z|\x1b[\]P^_X][^\x07\x1b]*\x1b?\Z|\x1b[ -/]*\Z)"
    r"|(?P<cr>\r+)"
    r"|(?P<bs>\x08)"
    r"|(?P<csi>\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~]))"
    r"|(?P<str>\x1b[\]P^_X][^\x07\x1b]*(?:\x07|\x1b\\|(?=\x1b)))"
    r"|(?P<esc>\x1b[ -/]*[0-~])"
    r"|(?P<ctl>[\x00-\x1f\x7f])"
)
_SPECIAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but tab and newline after \r\n folding
_SGR_SPLIT = re.compile(r"(\x1b\[[0-9;:]*m)")
_SGR_ONLY = re.compile(r"\x1b\[[0-9;:]*m")
_ALT_SCREEN_MODES = {"?1049", "?47", "?1047"}
_RESET = "\x1b[0m"
_MAX_HELD = 64 * 1024   # an unterminated OSC/DCS string longer than this is dropped
_MAX_SGR_STATE = 512

_ERASED = ""  # a cell blanked by erase-in-line: a space before text, nothing at the end of a line


def _strip_sgr(text: str) -> str:
    return _SGR_ONLY.sub("", text) if "\x1b" in text else text


def wire_size(text: str) -> int:
    """Bytes ``text`` costs inside a Jupyter message (JSON-escaped UTF-8, without the quotes).

    Jupyter Server's IOPub data limit counts the serialized message, where ``\\n`` costs 2 bytes and
    ``ESC`` 6, so the budget is kept in these units.
    """
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def _sgr_after(state: str, seq: str, params: str) -> str:
    """The SGR state (concatenated sequences since the last reset) after ``seq``."""
    first = re.split(r"[;:]", params, 1)[0]
    if first in ("", "0"):
        state = seq if params not in ("", "0") else ""
    else:
        state += seq
    return state if len(state) <= _MAX_SGR_STATE else seq


def _transition(cur: str, new: str) -> str:
    """Escape codes that change the SGR state ``cur`` into ``new``."""
    if cur == new:
        return ""
    if new.startswith(cur):
        return new[len(cur):]
    return _RESET + new


class TerminalRenderer:
    """Bytes from a terminal program in, terminal-rendered text out.

    ``feed()`` bytes; ``take_lines()`` returns the lines completed since the last call (each ending in
    ``\\n``); ``partial()`` is the current, unterminated line as a terminal shows it now.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""                 # incomplete escape sequence or trailing \r
        self._done: list[str] = []      # completed, rendered lines
        self._done_chars = 0
        self._raw: list[str] = []       # fast mode: the line as received (text and SGR)
        self._cells: Optional[list[tuple[str, str]]] = None   # overwrite mode: (sgr state, char)
        self._col = 0
        self._sgr = ""                  # SGR state now
        self._line_sgr = ""             # SGR state at the start of the current line
        self.alt_screen = False         # the program is on the alternate screen now
        self.alt_screen_entered = 0     # how many times it switched to it

    # -- input -----------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Add bytes read from the terminal."""
        self._feed_text(self._decoder.decode(data))

    def finish(self) -> None:
        """End of output: flush the decoder; a trailing ``\\r`` takes effect, partial escapes drop."""
        text = self._decoder.decode(b"", final=True)
        self._feed_text(text)
        held, self._held = self._held, ""
        if held.startswith("\r"):
            self._carriage_return()

    def _feed_text(self, text: str) -> None:
        if self._held:
            text, self._held = self._held + text, ""
        if not text:
            return
        if "\r\n" in text:
            text = text.replace("\r\n", "\n")
        if self._cells is None and not self.alt_screen and not _SPECIAL.search(text):
            self._fast_text(text)
            return
        self._tokens(text)

    def _fast_text(self, text: str) -> None:
        """Plain text and newlines, cursor at the end of the line: no per-character work."""
        parts = text.split("\n")
        if len(parts) == 1:
            self._raw.append(text)
            return
        self._raw.append(parts[0])
        self._end_line()
        middle = parts[1:-1]
        if middle:
            block = "\n".join(middle) + "\n"
            self._done.append(block)
            self._done_chars += len(block)
        if parts[-1]:
            self._raw.append(parts[-1])

    def _tokens(self, text: str) -> None:
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "inc":
                if len(m.group()) <= _MAX_HELD:
                    self._held = m.group()
            elif self.alt_screen:
                if kind == "csi":
                    self._csi(m.group(), m.group("params"), m.group("final"))
            elif kind == "text":
                self._text(m.group())
            elif kind == "nl":
                self._end_line()
            elif kind == "cr":
                self._carriage_return()
            elif kind == "bs":
                self._move_to(self._cursor() - 1)
            elif kind == "csi":
                self._csi(m.group(), m.group("params"), m.group("final"))
            # str (OSC, DCS, ...), esc and ctl are dropped

    # -- the current line ------------------------------------------------------------------
    def _text(self, text: str) -> None:
        if self._cells is None:
            self._raw.append(text)
            return
        cells, col, sgr = self._cells, self._col, self._sgr
        if col > len(cells):
            cells.extend([("", _ERASED)] * (col - len(cells)))
        new = [(sgr, ch) for ch in text]
        cells[col:col + len(new)] = new
        self._col = col + len(new)

    def _cursor(self) -> int:
        return len(self._to_cells()) if self._cells is None else self._col

    def _to_cells(self) -> list[tuple[str, str]]:
        """Switch the current line from fast mode to overwrite mode (cursor stays at the end)."""
        if self._cells is None:
            cells: list[tuple[str, str]] = []
            state = self._line_sgr
            for piece in _SGR_SPLIT.split("".join(self._raw)):
                if piece.startswith("\x1b["):
                    state = _sgr_after(state, piece, piece[2:-1])
                else:
                    cells.extend((state, ch) for ch in piece)
            self._cells, self._raw, self._col = cells, [], len(cells)
        return self._cells

    def _move_to(self, col: int) -> None:
        self._to_cells()
        self._col = max(0, col)

    def _carriage_return(self) -> None:
        if self._cells is None and not self._raw:
            return
        self._move_to(0)

    def _erase_in_line(self, mode: str) -> None:
        cells = self._to_cells()
        col = self._col
        if mode in ("", "0"):
            del cells[col:]
        elif mode == "1":
            cells[:col + 1] = [("", _ERASED)] * min(col + 1, len(cells))
        elif mode == "2":
            cells[:] = [("", _ERASED)] * len(cells)

    def _csi(self, seq: str, params: str, final: str) -> None:
        if final in "hl" and params.startswith("?"):
            if any(p in _ALT_SCREEN_MODES for p in ("?" + x.lstrip("?") for x in params.split(";"))):
                self._alt_screen(final == "h")
            return
        if self.alt_screen:
            return
        if final == "m" and not params.startswith(("?", ">", "<", "=")):
            self._sgr = _sgr_after(self._sgr, seq, params)
            if self._cells is None:
                self._raw.append(seq)
        elif final == "K":
            self._erase_in_line(params)
        elif final in "CDG":
            n = int(params) if params.isdigit() else 1
            target = {"C": self._cursor() + max(n, 1), "D": self._cursor() - max(n, 1), "G": n - 1}[final]
            self._move_to(target)
        # everything else (cursor up/down, positioning, erase display, modes) is dropped

    def _alt_screen(self, on: bool) -> None:
        if on and not self.alt_screen:
            self.alt_screen_entered += 1
        self.alt_screen = on

    def _render(self) -> str:
        if self._cells is None:
            return "".join(self._raw)
        out: list[str] = []
        cur = self._line_sgr
        cells = self._cells
        end = len(cells)
        while end and cells[end - 1][1] == _ERASED:
            end -= 1
        for state, ch in cells[:end]:
            if state != cur:
                out.append(_transition(cur, state))
                cur = state
            out.append(ch or " ")
        out.append(_transition(cur, self._sgr))
        return "".join(out)

    def _end_line(self) -> None:
        line = self._render() + "\n"
        self._done.append(line)
        self._done_chars += len(line)
        self._raw, self._cells, self._col = [], None, 0
        self._line_sgr = self._sgr

    # -- output ----------------------------------------------------------------------------
    @property
    def pending_chars(self) -> int:
        """Characters of completed lines not yet taken."""
        return self._done_chars

    def take_lines(self) -> str:
        """The lines completed since the last call, rendered, each ending in ``\\n``."""
        text = "".join(self._done)
        self._done, self._done_chars = [], 0
        return text

    def partial(self) -> str:
        """The current unterminated line as a terminal shows it now (SGR codes included)."""
        return self._render()

    def take_partial(self) -> str:
        """Remove and return the current unterminated line (e.g. a prompt answered elsewhere)."""
        text = self._render()
        self._raw, self._cells, self._col = [], None, 0
        self._line_sgr = self._sgr
        return text


def default_spill_dir() -> Path:
    """Where spill files go unless configured: ``$DYNO_HOME/output`` (``/tmp`` if that fails)."""
    try:
        from dynokernel.paths import dyno_home
        path = dyno_home() / "output"
    except Exception:  # pragma: no cover - no writable home
        path = Path(tempfile.gettempdir()) / "dynokernel-output"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


# Jupyter Server forwards IOPub stream output only while, in a 3 s window that restarts every time the
# kernel goes idle, the messages stay under 1,000/s and the serialized stream messages under
# 1,000,000 bytes/s, i.e. 3,000,000 bytes in the window. See DEFAULT_BUDGET.
DEFAULT_BUDGET = 2_000_000
DEFAULT_TAIL = 200_000


@dataclass(frozen=True)
class OutputLimits:
    """How a cell's output is batched and bounded.

    ``budget`` (default :data:`DEFAULT_BUDGET` = 2,000,000) is the most a cell shows, in
    :func:`wire_size` bytes (JSON-escaped UTF-8, the unit Jupyter Server counts); ``tail`` of it
    (default 200,000) is kept for the end of the output when the cell spills.

    Why 2,000,000: a stock Jupyter Server drops stream output once the serialized IOPub stream
    messages in a 3 s window exceed 3,000,000 bytes (1 MB/s averaged over 3 s; the window restarts
    when the kernel goes idle, i.e. per cell) or the messages exceed 3,000 (1,000/s). Within a cell
    everything we send in any window is at most

    - the visible text: at most ``budget`` in total (head, notes and tail), however fast it comes;
    - re-sent partial lines (a ``\\r`` progress bar is re-sent whole): at most one per flush, at most
      ``reemit_limit`` (4 KiB) each, at most 1/``interval`` = 20 flushes/s: 60 x 4 KiB = 246 KB;
    - message envelopes (header, parent header, signature, ~1-2 KB each): 20 interval flushes/s
      plus one per ``max_chunk`` of text (2 MB / 128 KiB = 16) plus a few notes: < 80 x 2 KB = 160 KB;

    2,000,000 + 246,000 + 160,000 = 2.4 MB < 3 MB, so nothing is ever dropped, with 20 % to spare for
    larger headers. Messages: <= 80 per 3 s, far below 3,000. A cell that prints slowly for hours
    spills only when its total passes the budget, which also keeps notebooks a sensible size. Raise
    ``budget`` (and the server's ``ServerApp.iopub_data_rate_limit``) to keep more in the cell.

    ``max_chunk`` is 128 KiB rather than 64 KiB so that ``seq 1 1000000`` (6.9 MB) with a raised budget
    stays within 100 messages (64 KiB would need 106).
    """

    interval: float = 0.05
    max_chunk: int = 128 * 1024
    budget: int = DEFAULT_BUDGET
    tail: int = DEFAULT_TAIL
    reemit_limit: int = 4096
    spill_dir: Optional[Path] = None
    hold_prompt: float = 0.0    # keep a prompt-like partial line back this long (stdin detection)

    @property
    def head(self) -> int:
        return max(0, self.budget - self.tail)


@dataclass
class OutputStats:
    """What a cell's output came to."""

    messages: int = 0            # emit() calls
    wire_bytes: int = 0          # wire_size() of everything emitted
    lines: int = 0               # completed lines seen
    chars: int = 0               # characters of rendered output (completed lines and the last partial)
    spill_path: Optional[Path] = None
    omitted_lines: int = 0
    omitted_bytes: int = 0
    alt_screen: bool = False


class _Spill:
    """Output past the head: all of it goes to ``file``; the last ``budget`` characters stay in ``tail``."""

    def __init__(self, path: Path, file, budget: int) -> None:
        self.path, self.file, self.budget = path, file, budget
        self.tail: collections.deque[str] = collections.deque()   # blocks of whole lines
        self.tail_chars = 0
        self.lines = 0        # lines (and a final partial line) past the head
        self.bytes = 0        # their UTF-8 size

    def add(self, text: str, to_file: bool = True) -> None:
        if not text:
            return
        if to_file:
            self.file.write(text)
        self.lines += text.count("\n")
        self.bytes += len(text.encode("utf-8", "surrogateescape"))
        if len(text) > self.budget:
            cut = text.find("\n", len(text) - self.budget - 1)
            text = text[cut + 1:] if 0 <= cut < len(text) - 1 else text[-self.budget:]
            self.tail.clear()
            self.tail_chars = 0
        self.tail.append(text)
        self.tail_chars += len(text)
        while len(self.tail) > 1 and self.tail_chars - len(self.tail[0]) >= self.budget:
            self.tail_chars -= len(self.tail.popleft())

    def tail_text(self, wire_budget: int) -> str:
        """The last lines, within ``wire_budget`` wire bytes (a huge last line: its end)."""
        text = "".join(self.tail)
        while text and wire_size(text) > wire_budget:
            cut = text.find("\n", len(text) // 4)
            text = text[cut + 1:] if 0 <= cut < len(text) - 1 else text[len(text) // 4 + 1:]
        return text


class Batcher:
    """Collects a cell's output and hands it to ``emit`` in a few well-sized pieces.

    The owner feeds bytes with :meth:`feed` and calls :meth:`tick` when :meth:`deadline` passes
    (e.g. as the timeout of its read), then :meth:`close` at the end. Time comes from ``clock`` so
    tests need no sleeps.

    Example::

        b = Batcher(print_to_cell, clock=time.monotonic)
        while running:
            data = read(timeout=b.deadline() - time.monotonic() if b.deadline() else None)
            b.feed(data) if data else b.tick()
        stats = b.close()
    """

    def __init__(self, emit: Callable[[str], None], *, clock: Clock = time.monotonic,
                 limits: OutputLimits = OutputLimits(),
                 looks_like_prompt: Optional[Callable[[str], bool]] = None,
                 name: str = "cell") -> None:
        self._emit_fn = emit
        self._clock = clock
        self.limits = limits
        self._is_prompt = looks_like_prompt
        self._name = name
        self.term = TerminalRenderer()
        self.stats = OutputStats()
        self._last_flush = -math.inf
        self._last_feed = -math.inf
        self._dirty = False
        self._shown = ""            # what the front end shows of the current line
        self._line_len = 0          # its length there (with padding from rewrites)
        self._log: list[str] = []   # finalized text, kept until a spill file is needed
        self._spill: Optional[_Spill] = None
        self._bol = True            # the last thing sent ended a line
        self._closed = False

    # -- feeding and timing ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Add bytes of output; sends at once if the interval allows or ``max_chunk`` is waiting."""
        if not data:
            return
        self.term.feed(data)
        now = self._clock()
        self._last_feed = now
        self._dirty = True
        if self.term.pending_chars >= self.limits.max_chunk or now >= self._next_flush():
            self.flush()

    def note(self, text: str) -> None:
        """Show a message from the kernel itself (after the output so far, on its own line)."""
        self.flush()
        prefix = "" if self._bol else "\n"
        if not self._spill:
            self.term.take_partial()     # shown already; later output starts a new line
        self._shown, self._line_len = "", 0
        self._record(prefix + text)
        self._send(prefix + text)

    def _next_flush(self) -> float:
        due = self._last_flush + self.limits.interval
        if not self.term.pending_chars and self._holding():
            due = max(due, self._last_feed + self.limits.hold_prompt)
        return due

    def _holding(self) -> bool:
        """Is a fresh prompt-like partial line being kept back (it may become an input prompt)?"""
        if not (self.limits.hold_prompt and self._is_prompt):
            return False
        if self._clock() >= self._last_feed + self.limits.hold_prompt:
            return False
        partial = self.term.partial()
        return bool(partial) and partial != self._shown and self._is_prompt(_strip_sgr(partial))

    def deadline(self) -> Optional[float]:
        """When :meth:`tick` should next run (``None``: nothing waiting)."""
        return self._next_flush() if self._dirty else None

    def tick(self) -> None:
        """Send what is waiting if its time has come."""
        if self._dirty and self._clock() >= self._next_flush():
            self.flush()

    @property
    def last_feed(self) -> float:
        """When output last came (``clock`` time; -inf before any)."""
        return self._last_feed

    @property
    def quiet_for(self) -> float:
        """Seconds since output last came."""
        return self._clock() - self._last_feed

    @property
    def alt_screen(self) -> bool:
        return self.term.alt_screen_entered > 0

    def take_partial(self) -> str:
        """Take the current unterminated line out of the output (it becomes an input prompt).

        Returns the line's text without SGR codes. If part of it was already sent, the cell's line
        is ended so later output starts on a new line.
        """
        self.flush_lines()
        text = self.term.take_partial()
        if self._line_len:
            self._shown, self._line_len = "", 0
            self._send("\n")
        self._dirty = False
        return _strip_sgr(text)

    def partial_text(self) -> str:
        """The current unterminated line (plain text, nothing taken)."""
        return _strip_sgr(self.term.partial())

    # -- flushing ----------------------------------------------------------------------------
    def flush_lines(self) -> None:
        """Send completed lines now, whatever the interval."""
        lines = self.term.take_lines()
        if lines:
            self._emit_lines(lines)

    def flush(self, final: bool = False) -> None:
        """Send everything waiting now: completed lines and the current partial line (unless it is
        a prompt being held back, see ``hold_prompt``)."""
        self._dirty = False
        self.flush_lines()
        if self._spill:
            return
        if not final and self._holding():
            self._dirty = True
            return
        partial = self.term.partial()
        if partial == self._shown:
            return
        if self._appendable(partial):
            grow = partial[len(self._shown):]
            self._shown = self._line_len_set(partial)
            self._send_counted(grow, partial_line=True)
        elif len(partial) <= self.limits.reemit_limit:
            self._send(self._rewrite(partial))
        else:
            self._dirty = True   # a long overwritten line waits for its newline

    def _appendable(self, new: str) -> bool:
        """Can the front end's current line become ``new`` by appending?"""
        return self._line_len == len(self._shown) and new.startswith(self._shown)

    def _line_len_set(self, new: str) -> str:
        self._line_len = len(new)
        return new

    def _rewrite(self, new: str) -> str:
        """``\r`` + ``new``, padded to cover what the front end's line shows now (it overwrites
        character by character, escape codes included, as JupyterLab and the classic notebook do)."""
        pad = " " * max(0, self._line_len - len(new))
        self._line_len = max(self._line_len, len(new))
        self._shown = new
        return "\r" + new + pad

    def _emit_lines(self, lines: str) -> None:
        self.stats.lines += lines.count("\n")
        self.stats.chars += len(lines)
        if self._spill:
            self._spill.add(lines)
            return
        first, _, rest = lines.partition("\n")
        if not self._line_len or self._appendable(first):
            text = first[len(self._shown):] + "\n" + rest
        else:
            self._send(self._rewrite(first) + "\n")
            text = rest
        self._shown, self._line_len = "", 0
        self._record(lines)
        self._send_counted(text)

    def _send_counted(self, text: str, partial_line: bool = False) -> None:
        """Send ``text`` within the head budget; what does not fit starts the spill."""
        if not text:
            return
        room = self.limits.head - self.stats.wire_bytes
        size = wire_size(text)
        if size <= room:
            self._send(text, size)
            return
        fit = self._fitting_prefix(text, room, partial_line)
        if fit:
            self._send(fit)
        self._start_spill(text[len(fit):], partial_line)

    @staticmethod
    def _fitting_prefix(text: str, room: int, partial_line: bool) -> str:
        """The longest run of whole lines of ``text`` (a part of a partial line) within ``room``."""
        if room <= 0:
            return ""
        if partial_line:
            lo, hi = 0, len(text)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if wire_size(text[:mid]) <= room:
                    lo = mid
                else:
                    hi = mid - 1
            return text[:lo]
        used, end = 0, 0
        for line in text.splitlines(keepends=True):
            used += wire_size(line)
            if used > room:
                break
            end += len(line)
        return text[:end]

    def _send(self, text: str, size: Optional[int] = None) -> None:
        if not text:
            return
        self.stats.messages += 1
        self._bol = text.endswith("\n")
        self.stats.wire_bytes += wire_size(text) if size is None else size
        self._last_flush = self._clock()
        self._emit_fn(text)

    # -- spilling ----------------------------------------------------------------------------
    def _record(self, text: str) -> None:
        if self._spill:
            self._spill.file.write(text)
        else:
            self._log.append(text)

    def _start_spill(self, rest: str, partial_line: bool) -> None:
        """Open the spill file with everything so far; ``rest`` (unsent) starts the tail."""
        directory = Path(self.limits.spill_dir or default_spill_dir())
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = directory / f"{self._name}-{stamp}-{secrets.token_hex(3)}.log"
        fh = open(path, "w", encoding="utf-8", errors="surrogateescape", newline="")
        os.chmod(path, 0o600)
        fh.write("".join(self._log))
        self._log = []
        self._spill = _Spill(path, fh, self.limits.tail)
        self.stats.spill_path = path
        if not partial_line:
            self._spill.add(rest, to_file=False)   # already in the file with its lines
        # an unfinished line stays in the renderer and reaches the spill when it ends
        self._shown, self._line_len = "", 0
        lead = "" if self._bol else "\n"
        self._send(f"{lead}{_RESET}... output is over this cell's budget ({self.limits.budget:,} bytes); "
                   f"all of it goes to {path}; the end is shown when the cell finishes ...\n")

    # -- the end -----------------------------------------------------------------------------
    def close(self) -> OutputStats:
        """Flush everything (with the tail and a note if the cell spilled) and return the stats."""
        if self._closed:
            return self.stats
        self._closed = True
        self.term.finish()
        self.flush(final=True)
        self.stats.alt_screen = self.alt_screen
        if self._spill:
            partial = self.term.take_partial()
            self.stats.chars += len(partial)
            if partial:
                self.stats.lines += 1
                self._spill.add(partial)
                self._spill.lines += 1
            self._finish_spill()
        else:
            self.stats.chars += len(self.term.partial())
            self._log = []
        return self.stats

    def _finish_spill(self) -> None:
        spill = self._spill
        spill.file.close()
        tail = spill.tail_text(self.limits.tail)
        tail_lines = tail.count("\n") + (0 if tail.endswith("\n") or not tail else 1)
        self.stats.omitted_lines = max(0, spill.lines - tail_lines)
        self.stats.omitted_bytes = max(0, spill.bytes - len(tail.encode("utf-8", "surrogateescape")))
        lead = "" if self._bol else "\n"
        self._send(f"{lead}{_RESET}... {self.stats.omitted_lines:,} lines ({self.stats.omitted_bytes:,} bytes) "
                   f"omitted; full output: {spill.path} ...\n")
        self._send(tail)
