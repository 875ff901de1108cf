"""Unit tests of dynokernel.kernel.output: terminal rendering and batching, with an injected clock."""
import json
import math
import random
import re

import pytest

from dynokernel.kernel.output import (
    DEFAULT_BUDGET, DEFAULT_TAIL, Batcher, OutputLimits, TerminalRenderer, wire_size,
)


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, dt):
        self.t += dt


def visible(text):
    """What a Jupyter front end shows for a stream: JupyterLab's carriage-return handling
    (``fixCarriageReturn``: ``\\r`` overwrites the line character by character), trailing blanks dropped."""
    text = re.sub(r"\r+\n", "\n", text)
    out = []
    for line in text.split("\n"):
        cur = ""
        for part in line.split("\r"):
            cur = part + cur[len(part):]
        out.append(cur.rstrip(" "))
    return "\n".join(out)


def render(*chunks, **kw):
    """Feed chunks to a Batcher (time frozen), close it, return the emitted text."""
    out = []
    b = Batcher(out.append, clock=Clock(), limits=OutputLimits(**kw))
    for c in chunks:
        b.feed(c)
    b.close()
    return "".join(out)


# -- terminal rendering --------------------------------------------------------------------------
def test_utf8_split_across_reads_byte_by_byte():
    text = "héllo wörld ✓ 😀 日本\n"
    assert render(*[bytes([b]) for b in text.encode()]) == text


def test_invalid_utf8_is_replaced_not_fatal():
    assert render(b"a\xff\xfeb\n") == "a\ufffd\ufffdb\n"


def test_crlf_split_across_reads():
    assert render(b"a\r", b"\nb\r", b"\n", b"c\r\r\n") == "a\nb\nc\n"


def test_carriage_return_keeps_only_the_final_state():
    assert render(b"10%\r50%\r100%\r\n") == "100%\n"


def test_carriage_return_overwrites_character_by_character():
    assert render(b"hello\rab\n") == "abllo\n"


def test_trailing_carriage_return_at_end_of_output():
    assert visible(render(b"work\r")) == "work"


def test_erase_in_line():
    assert render(b"abcdef\r\x1b[Kxy\n") == "xy\n"
    assert render(b"abcdef\r\x1b[2Kxy\n") == "xy\n"
    assert render(b"abcdef\x1b[3D\x1b[0Kz\n") == "abcz\n"


def test_backspace_spinner():
    assert render(b"|\x08/\x08-\x08\\\x08done\n") == "done\n"


def test_cursor_column_moves():
    assert render(b"abcdef\x1b[1Gxy\n") == "xycdef\n"
    assert render(b"ab\x1b[3Cc\n") == "ab   c\n"


def test_osc_title_is_stripped_even_split_across_reads():
    assert render(b"\x1b]0;my title\x07hello\n") == "hello\n"
    assert render(b"\x1b]0;ti", b"tle\x1b", b"\\hi\n") == "hi\n"
    assert render(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n") == "link\n"


def test_cursor_and_mode_sequences_are_stripped():
    assert render(b"\x1b[2J\x1b[H\x1b[?25lhello\x1b[?25h\x1b[5A\x1b[?2004h\x1b=\x1b(B\n") == "hello\n"


def test_sgr_colours_are_kept_even_split():
    assert render(b"\x1b[31mred\x1b[0m plain\n") == "\x1b[31mred\x1b[0m plain\n"
    assert render(b"\x1b", b"[1;3", b"2mgreen\x1b[m\n") == "\x1b[1;32mgreen\x1b[m\n"


def test_coloured_progress_overwrite_keeps_colour_of_final_state():
    out = render(b"\x1b[32m 10%\x1b[0m\r\x1b[32m100%\x1b[0m\n")
    assert re.sub(r"\x1b\[[0-9;]*m", "", out) == "100%\n"
    assert out.startswith("\x1b[32m") and "\x1b[0m" in out


def test_other_controls_dropped_tab_kept():
    assert render(b"a\x07b\x00c\td\n") == "abc\td\n"


def test_alternate_screen_is_detected_and_its_content_dropped():
    term = TerminalRenderer()
    term.feed(b"before\n\x1b[?1049h\x1b[Hvim stuff\n~\n")
    assert term.alt_screen and term.alt_screen_entered == 1
    term.feed(b"\x1b[?1049lafter\n")
    assert not term.alt_screen
    assert term.take_lines() == "before\nafter\n"


@pytest.mark.parametrize("seq", [b"\x1b[?47h", b"\x1b[?1047h", b"\x1b[?1049h", b"\x1b[?1;1049h"])
def test_alternate_screen_variants(seq):
    term = TerminalRenderer()
    term.feed(seq)
    assert term.alt_screen


def test_batcher_reports_alt_screen():
    b = Batcher(lambda t: None, clock=Clock())
    b.feed(b"\x1b[?1049")
    assert not b.alt_screen
    b.feed(b"h")
    assert b.alt_screen
    assert b.close().alt_screen


# -- streaming and batching ----------------------------------------------------------------------
def test_partial_line_is_shown_at_once():
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock)
    b.feed(b"x")
    assert out == ["x"]                   # first output: no waiting for a newline
    clock.advance(2.0)
    b.feed(b"y\n")
    assert out == ["x", "y\n"]


def test_output_inside_the_interval_waits_for_the_deadline():
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock)
    b.feed(b"a\n")
    clock.advance(0.01)
    b.feed(b"b")
    assert out == ["a\n"]
    assert b.deadline() == pytest.approx(clock.t - 0.01 + 0.05)
    clock.advance(0.02)
    b.tick()
    assert out == ["a\n"]
    clock.advance(0.02)
    b.tick()
    assert out == ["a\n", "b"]
    assert b.deadline() is None


def test_at_most_twenty_messages_a_second():
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock)
    for i in range(10_000):               # 10,000 lines over 2 s, ticking as a reader would
        b.feed(b"line %d\n" % i)
        clock.advance(0.0002)
        if b.deadline() is not None and clock.t >= b.deadline():
            b.tick()
    b.close()
    assert len(out) <= 2.0 / 0.05 + 2
    assert "".join(out) == "".join("line %d\n" % i for i in range(10_000))


def test_max_chunk_flushes_early():
    out = []
    b = Batcher(out.append, clock=Clock(), limits=OutputLimits(max_chunk=1000))
    b.feed(b"first\n")
    b.feed(b"x" * 600 + b"\n")
    assert len(out) == 1
    b.feed(b"y" * 600 + b"\n")
    assert len(out) == 2 and out[1].endswith("y\n")


def test_progress_bar_is_rerendered_with_carriage_return_and_padding():
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock)
    b.feed(b"downloading 100 files")
    clock.advance(0.1)
    b.feed(b"\r\x1b[Kdone")
    clock.advance(0.1)
    b.tick()
    b.feed(b"\n")
    b.close()
    assert out[1].startswith("\rdone") and out[1].endswith(" ")
    assert visible("".join(out)) == "done\n"


def test_growing_partial_line_is_sent_as_suffixes():
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock)
    for ch in b"abc":
        b.feed(bytes([ch]))
        clock.advance(0.1)
        b.tick()
    b.feed(b"\n")
    b.close()
    assert out == ["a", "b", "c", "\n"]


@pytest.mark.parametrize("seed", range(60))
def test_streamed_output_looks_like_a_terminal_at_the_end(seed):
    """Random text with \\r, \\n, SGR, erase, backspace and OSC, cut at random byte offsets and fed
    with random timing, shows the same as the whole output rendered at once."""
    rng = random.Random(seed)
    pieces = ["ab", "héllo", "✓", " ", "12345", "\r", "\n", "\r\n", "\x1b[31m", "\x1b[0m",
              "\x1b[K", "\b", "\x1b]0;t\x07", "\x1b[2C", "\x1b[1G", "progress 10%", "\t"]
    data = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 120))).encode()
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 30)))) if len(data) > 1 else []
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock)
    prev = 0
    for cut in cuts + [len(data)]:
        b.feed(data[prev:cut])
        prev = cut
        clock.advance(rng.choice([0, 0.001, 0.03, 0.06, 0.2]))
        if rng.random() < 0.5:
            b.tick()
    b.close()
    assert visible("".join(out)) == visible(render(data))


# -- stdin prompts -------------------------------------------------------------------------------
def test_prompt_like_partial_line_is_held_and_can_be_taken():
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock, limits=OutputLimits(hold_prompt=0.6),
                looks_like_prompt=lambda line: line.endswith(": "))
    b.feed(b"hello\n")
    clock.advance(0.1)
    b.feed(b"\x1b[1mName:\x1b[0m ")
    clock.advance(0.3)
    b.tick()
    assert out == ["hello\n"]
    assert b.take_partial() == "Name: "
    b.feed(b"hi Bob\n")
    b.close()
    assert "".join(out) == "hello\nhi Bob\n"


def test_held_prompt_is_shown_after_the_hold():
    out = []
    clock = Clock()
    b = Batcher(out.append, clock=clock, limits=OutputLimits(hold_prompt=0.6),
                looks_like_prompt=lambda line: line.endswith(": "))
    b.feed(b"Building: ")
    assert out == []
    clock.advance(0.7)
    b.tick()
    assert out == ["Building: "]


# -- budget and spill ----------------------------------------------------------------------------
def test_wire_size_is_the_json_encoding():
    for s in ["abc", "a\nb", "\x1b[31m", "é✓", 'q"\\', "\t\r"]:
        assert wire_size(s) == len(json.dumps(s, ensure_ascii=False).encode()) - 2


def test_default_budget_cannot_trip_jupyter_servers_rate_limit():
    limits = OutputLimits()
    window = 3.0
    reemits = window / limits.interval * limits.reemit_limit
    envelopes = (window / limits.interval + limits.budget / limits.max_chunk + 4) * 2000
    assert limits.budget + reemits + envelopes < 1_000_000 * window
    assert (window / limits.interval + limits.budget / limits.max_chunk + 4) < 1000 * window
    assert DEFAULT_BUDGET == limits.budget and DEFAULT_TAIL == limits.tail < limits.budget


def test_over_budget_keeps_head_spills_everything_and_shows_tail(tmp_path):
    out = []
    clock = Clock()
    limits = OutputLimits(budget=20_000, tail=4_000, spill_dir=tmp_path)
    b = Batcher(out.append, clock=clock, limits=limits)
    lines = "".join(f"{i}\n" for i in range(1, 100_001))
    data = lines.encode()
    for i in range(0, len(data), 4096):
        b.feed(data[i:i + 4096])
        clock.advance(0.001)
        b.tick()
    stats = b.close()
    text = "".join(out)
    assert stats.spill_path and stats.spill_path.parent == tmp_path
    assert stats.spill_path.read_text() == lines                  # the file has everything
    assert stats.wire_bytes <= limits.budget + 1000               # the cell stays within budget (+ notes)
    m = re.search(r"\.\.\. ([\d,]+) lines \(([\d,]+) bytes\) omitted; full output: (\S+) \.\.\.\n", text)
    assert m and m.group(3) == str(stats.spill_path)
    head, _, tail = text.partition(m.group(0))
    head_lines = [x for x in head.splitlines() if x.isdigit()]
    tail_lines = tail.splitlines()
    assert head_lines == [str(i) for i in range(1, len(head_lines) + 1)]
    assert tail_lines == [str(i) for i in range(100_001 - len(tail_lines), 100_001)]
    omitted = int(m.group(1).replace(",", ""))
    assert len(head_lines) + omitted + len(tail_lines) == 100_000
    assert stats.omitted_lines == omitted
    assert "output is over this cell's budget" in head


def test_within_budget_nothing_spills(tmp_path):
    out = []
    b = Batcher(out.append, clock=Clock(), limits=OutputLimits(spill_dir=tmp_path))
    b.feed(b"".join(b"%d\n" % i for i in range(50_000)))
    stats = b.close()
    assert stats.spill_path is None and list(tmp_path.iterdir()) == []
    assert "".join(out).count("\n") == 50_000


def test_one_huge_line_spills_and_shows_its_end(tmp_path):
    out = []
    b = Batcher(out.append, clock=Clock(), limits=OutputLimits(budget=10_000, tail=1_000, spill_dir=tmp_path))
    line = "".join(str(i % 10) for i in range(100_000))
    b.feed(line.encode())
    stats = b.close()
    assert stats.spill_path.read_text() == line
    text = "".join(out)
    assert text.endswith(line[-500:])
    assert wire_size(text) < 10_000 + 1000


def jupyter_server_would_drop(messages, window=3.0, data_limit=1_000_000, msg_limit=1_000, envelope=1_500):
    """Jupyter Server's ZMQChannelsHandler._limit_rate, replayed over (time, text) stream messages."""
    queue = []
    count = size = 0
    for t, text in messages:
        while queue and t >= queue[0][0]:
            size -= queue.pop(0)[1]
            count -= 1
        nbytes = wire_size(text) + envelope
        queue.append((t + window, nbytes))
        count += 1
        size += nbytes
        if count / window > msg_limit or size / window > data_limit:
            return True
    return False


@pytest.mark.parametrize("rate", [2e5, 7e6, 1e9])   # bytes per second the program prints
def test_seq_a_million_through_the_default_budget_is_never_rate_limited(rate, tmp_path):
    clock = Clock()
    sent = []
    b = Batcher(lambda text: sent.append((clock.t, text)), clock=clock,
                limits=OutputLimits(spill_dir=tmp_path))
    data = "".join(f"{i}\n" for i in range(1, 1_000_001)).encode()
    step = 65536
    for i in range(0, len(data), step):
        b.feed(data[i:i + step])
        clock.advance(step / rate)
        b.tick()
    stats = b.close()
    assert not jupyter_server_would_drop(sent)
    assert stats.spill_path.read_text().count("\n") == 1_000_000


def test_raised_budget_keeps_a_million_lines_in_few_messages():
    clock = Clock()
    out = []
    b = Batcher(out.append, clock=clock, limits=OutputLimits(budget=10**9))
    data = "".join(f"{i}\n" for i in range(1, 1_000_001)).encode()
    for i in range(0, len(data), 65536):
        b.feed(data[i:i + 65536])
        clock.advance(1.0 / 107)             # the whole output in one second
        b.tick()
    stats = b.close()
    assert "".join(out) == data.decode()
    assert stats.messages <= 100 and stats.lines == 1_000_000


def test_notes_start_on_their_own_line():
    out = []
    b = Batcher(out.append, clock=Clock())
    b.feed(b"partial")
    b.note("[note]\n")
    b.feed(b"more\n")
    b.close()
    assert "".join(out) == "partial\n[note]\nmore\n"


def test_deadline_is_none_when_idle_and_close_is_idempotent():
    b = Batcher(lambda t: None, clock=Clock())
    assert b.deadline() is None
    assert b.close() is b.close()
    assert math.isinf(-b.last_feed)
