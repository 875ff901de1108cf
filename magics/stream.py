"""Stream an attached run into the cell: output as it comes, input from the notebook, Ctrl-C.

Output goes to `sys.stdout` (ipykernel's stream batches it into IOPub messages, so a chatty
command does not flood the frontend). When input is allowed, a partial last line followed by
a quiet moment is taken as a prompt: it becomes an `input_request`, and the reply (or EOF) is
sent to the dyno.
"""
from __future__ import annotations

import codecs
import sys
import time

from ..platform.app import Run, RunTimeout

PROMPT_QUIET = 0.3  # seconds of silence after a partial line before it is taken as a prompt
STOP_WAIT = 3.0  # seconds to wait for the dyno to end after an interrupt


def stream(run: Run, *, kernel=None, allow_stdin: bool = False, timeout: float | None = None,
           out=None) -> int | None:
    """Relay until the run ends; returns its exit code. KeyboardInterrupt stops the dyno."""
    out = out or sys.stdout
    session = run.attach()
    if not allow_stdin:
        session.close_stdin()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = ""  # a partial line held back while it may be a prompt
    try:
        while not session.done:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if pending:
                wait = PROMPT_QUIET if wait is None else min(wait, PROMPT_QUIET)
            data = session.read(wait)
            if data is None:
                if deadline is not None and time.monotonic() >= deadline:
                    out.write(pending)
                    out.flush()
                    run._timed_out(timeout)
                if pending:
                    prompt, pending = pending, ""
                    _answer(session, kernel, prompt)
                continue
            text = decoder.decode(data, final=session.done)
            if allow_stdin:
                head, newline, pending = (pending + text).rpartition("\n")
                text = head + newline
            if text:
                out.write(text)
        out.write(pending + decoder.decode(b"", final=True))
    except KeyboardInterrupt:
        _interrupted(run, out)
        raise
    finally:
        out.flush()
    return run.exit_code


def _answer(session, kernel, prompt: str) -> None:
    try:
        reply = kernel.raw_input(prompt)
    except EOFError:
        session.close_stdin()
        return
    except Exception:  # the frontend cannot answer input requests: EOF
        session.close_stdin()
        sys.stdout.write(prompt)
        return
    session.send((reply + "\n").encode())


def _interrupted(run: Run, out) -> None:
    """Ctrl-C: stop the dyno (SIGTERM, then SIGKILL after the grace period) and say so."""
    out.flush()
    try:
        run.stop()
        if run.session is not None:
            deadline = time.monotonic() + STOP_WAIT
            while not run.session.done and time.monotonic() < deadline:
                data = run.session.read(max(0.0, deadline - time.monotonic()))
                if data:
                    out.write(data.decode("utf-8", errors="replace"))
    except Exception:  # best effort: the interrupt itself must go through
        pass
    finally:
        if run.session is not None:
            run.session.close()
    code = "" if run._exit_code is None else f" (exit code {run._exit_code})"
    print(f"Stopped {run.name}{code}", file=sys.stderr, flush=True)


__all__ = ["stream", "RunTimeout"]
