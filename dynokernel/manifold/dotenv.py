"""`.env` parsing as honcho and foreman read it: KEY=VALUE lines, quotes, `#` comments.

    >>> parse_dotenv('A=1\\nexport B="two words"  # note\\n')
    {'A': '1', 'B': 'two words'}
"""
from __future__ import annotations

import re

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class DotenvError(ValueError):
    """A `.env` line that is not KEY=VALUE."""


def parse_dotenv(text: str, name: str = ".env") -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise DotenvError(f"{name} line {number}: expected KEY=VALUE, got {raw!r}")
        key, rest = match.groups()
        try:
            values[key] = _value(rest)
        except DotenvError as exc:
            raise DotenvError(f"{name} line {number}: {exc}") from None
    return values


def _value(rest: str) -> str:
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = _closing_quote(rest, quote)
        trailing = rest[end + 1:].strip()
        if trailing and not trailing.startswith("#"):
            raise DotenvError(f"unexpected text after the closing quote: {trailing!r}")
        body = rest[1:end]
        return _unescape(body) if quote == '"' else body
    return re.split(r"\s+#", rest, maxsplit=1)[0].strip()


def _closing_quote(rest: str, quote: str) -> int:
    index = 1
    while index < len(rest):
        if rest[index] == "\\" and quote == '"':
            index += 2
            continue
        if rest[index] == quote:
            return index
        index += 1
    raise DotenvError(f"unterminated {quote} quote")


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
