"""The exit-status line at the end of an attached run, as Heroku's `run -x` uses it.

The dyno's output ends with `\\uFFFF heroku-command-exit-status: N`; `ExitStatusFilter`
passes every other byte through unchanged and keeps N.

    >>> f = ExitStatusFilter()
    >>> f.feed(b"hi\\r\\n\\xef\\xbf\\xbf heroku-command-exit-") + f.feed(b"status: 3\\r\\n"), f.status
    (b'hi\\r\\n', 3)
"""
from __future__ import annotations

import re

HEROKU_SUFFIX = '; echo "\uFFFF heroku-command-exit-status: $?"'
_PREFIX = "\uFFFF heroku-command-exit-status: ".encode()
_LINE = re.compile(re.escape(_PREFIX) + rb"(\d+)\r?\n")
_END = re.compile(re.escape(_PREFIX) + rb"(\d+)\r?\n?$")
_HELD_TAIL = re.compile(rb"\d*\r?")


class ExitStatusFilter:
    """Feed output chunks in order; `status` is set once the marker line has passed."""

    def __init__(self) -> None:
        self.held = b""
        self.status: int | None = None

    def feed(self, data: bytes) -> bytes:
        data = self.held + data
        self.held = b""
        match = _LINE.search(data)
        if match:
            self.status = int(match.group(1))
            data = data[:match.start()] + data[match.end():]
        start = data.rfind(b"\xef", max(0, len(data) - len(_PREFIX) - 12))
        if start != -1 and self._could_be_marker(data[start:]):
            self.held = data[start:]
            return data[:start]
        return data

    def flush(self) -> bytes:
        """The end of the stream: a marker without its newline still counts."""
        data, self.held = self.held, b""
        match = _END.search(data)
        if match:
            self.status = int(match.group(1))
            return data[:match.start()]
        return data

    @staticmethod
    def _could_be_marker(tail: bytes) -> bool:
        if len(tail) <= len(_PREFIX):
            return _PREFIX.startswith(tail)
        return tail.startswith(_PREFIX) and bool(_HELD_TAIL.fullmatch(tail[len(_PREFIX):]))
