"""Small wire-level pieces: the exit-status marker, log line splitting, CLI argument joining."""
from __future__ import annotations

import pytest

from dynokernel.cli.commands import heroku_join, parse_env
from dynokernel.manifold.logplex import MAX_LINE_BYTES, LineSplitter
from dynokernel.platform.errors import PlatformError
from dynokernel.platform.exitstatus import ExitStatusFilter

MARKER = "\uFFFF heroku-command-exit-status: 42\r\n".encode()


@pytest.mark.parametrize("cut", range(0, len(MARKER) + 1))
def test_exit_marker_split_anywhere(cut):
    stream = b"output\r\n" + MARKER
    split_at = len(b"output\r\n") + cut
    status = ExitStatusFilter()
    shown = status.feed(stream[:split_at]) + status.feed(stream[split_at:]) + status.flush()
    assert shown == b"output\r\n"
    assert status.status == 42


def test_exit_filter_passes_lookalikes_through():
    status = ExitStatusFilter()
    data = "caf\u00e9 \uFFFF not a marker\n".encode()
    assert status.feed(data) + status.flush() == data
    assert status.status is None


def test_line_splitter_handles_binary_crlf_and_long_lines():
    splitter = LineSplitter()
    lines = splitter.feed(b"ok\r\nbad \xff\xfe\x00 bytes\npartial")
    assert lines == ["ok", "bad \\xff\\xfe\\x00 bytes"]
    assert splitter.feed(b" line\n") == ["partial line"]
    long = splitter.feed(b"x" * (MAX_LINE_BYTES * 2 + 5) + b"\n")
    assert [len(line) for line in long] == [MAX_LINE_BYTES, MAX_LINE_BYTES, 5]
    assert splitter.feed(b"no newline") == [] and splitter.flush() == ["no newline"]


def test_heroku_join_quotes_like_the_heroku_cli():
    assert heroku_join(["echo hi; ls"]) == "echo hi; ls"
    assert heroku_join(["echo", "two words", 'say "x"']) == 'echo "two words" "say \\"x\\""'


def test_parse_env():
    assert parse_env("A=1;B=two words; C=x=y") == {"A": "1", "B": "two words", "C": "x=y"}
    with pytest.raises(PlatformError, match="Invalid --env"):
        parse_env("A=1;oops")


def test_logplex_keeps_the_newest_lines_up_to_its_retention(tmp_path):
    from dynokernel.manifold.logplex import Logplex
    from dynokernel.manifold.store import LogRow, Store
    store = Store(tmp_path / "state.db")
    logplex = Logplex(store, retention=1000)
    for start in range(0, 5000, 500):
        logplex.append("app-1", [LogRow("app", "run.1", str(n)) for n in range(start, start + 500)])
    logplex.append("app-2", [LogRow("app", "run.1", "other app")])
    kept = [int(row["message"]) for row in store.read_logs("app-1", last=10_000)]
    assert kept[-1] == 4999 and 1000 <= len(kept) <= 2000  # pruned in batches, newest kept
    assert kept == list(range(kept[0], 5000))
    assert [row["message"] for row in store.read_logs("app-2", last=10)] == ["other app"]
