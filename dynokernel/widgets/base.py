"""What every panel shares: its background threads, the log-stream follower, the error banner,
and being closed when it is closed or its cell is run again.

A panel learns about changes from the app's log stream (SSE: the manifold pushes a
`heroku[...]` line on every dyno state change) — no polling. While the manifold cannot be
reached the panel shows a banner and retries with a short back-off; it recovers by itself
when the manifold is back (also on a new port after a restart).
"""
from __future__ import annotations

import html
import threading
import weakref
from typing import Callable

import ipywidgets as W

from ..platform.app import App, LogTail
from ..platform.errors import PlatformError

RETRY_FIRST, RETRY_MAX = 0.25, 2.0

_by_cell: dict[str, list[weakref.ref]] = {}
_all: "weakref.WeakSet[Panel]" = weakref.WeakSet()
_hooked: set[int] = set()


def current_cell_id() -> str | None:
    """The id of the notebook cell being executed (from the execute request's metadata)."""
    try:
        from IPython import get_ipython
        kernel = getattr(get_ipython(), "kernel", None)
        parent = kernel.get_parent("shell") if kernel is not None else None
        return ((parent or {}).get("metadata") or {}).get("cellId")
    except Exception:
        return None


def _pre_run_cell(info=None) -> None:
    cell_id = getattr(info, "cell_id", None) or current_cell_id()
    for ref in _by_cell.pop(cell_id, []) if cell_id else []:
        panel = ref()
        if panel is not None:
            panel.close()


def _adopt(panel: "Panel") -> None:
    _all.add(panel)
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except Exception:
        shell = None
    if shell is None:
        return
    if id(shell) not in _hooked:
        shell.events.register("pre_run_cell", _pre_run_cell)
        _hooked.add(id(shell))
    cell_id = current_cell_id()
    if cell_id:
        _by_cell.setdefault(cell_id, []).append(weakref.ref(panel))


def close_all() -> None:
    for panel in list(_all):
        panel.close()


def resolve_app(app: App | str | None) -> App:
    """A private, thread-safe App for a panel."""
    return (app if isinstance(app, App) else App(app)).for_threads()


class Panel(W.VBox):
    """A VBox with background threads that end when the panel is closed (or its cell re-run)."""

    kind = "panel"

    def __init__(self, app: App | str | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.app = resolve_app(app)
        self.add_class("dyno-panel")
        self._stopping = threading.Event()
        self._lock = threading.RLock()  # guards widget updates from several threads
        self._tail: LogTail | None = None
        self._threads: list[threading.Thread] = []
        self.banner = W.HTML(layout=W.Layout(display="none"))
        self.banner.add_class("dyno-banner")
        self.error: str | None = None
        _adopt(self)

    # threads ---------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=self._guarded, args=(target,), daemon=True,
                                  name=f"dynokernel-{self.kind}-{name}")
        self._threads.append(thread)
        thread.start()

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:  # a panel never throws into the kernel; it says what broke
            if not self._stopping.is_set():
                self._show_error(f"This panel stopped: {type(exc).__name__}: {exc}")

    @property
    def closed(self) -> bool:
        return self._stopping.is_set()

    def close(self) -> None:
        """Stop the background work and close the widgets."""
        self._stopping.set()
        with self._lock:
            tail = self._tail
        if tail is not None:
            tail.close()
        self._wake()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        _all.discard(self)
        for child in self._descendants():
            child.close()
        super().close()

    def _descendants(self) -> list[W.Widget]:
        found, todo = [], list(self.children)
        while todo:
            widget = todo.pop()
            found.append(widget)
            todo.extend(getattr(widget, "children", ()))
        return found

    def _wake(self) -> None:
        """Subclasses with their own waits wake them here."""

    # following the log -------------------------------------------------------------
    def _follow(self, make_tail: Callable[[], LogTail], on_lines: Callable[[list[str]], None],
                on_connect: Callable[[], None] = lambda: None, until: Callable[[], bool] = lambda: False) -> None:
        """Follow a log tail until closed; reconnect after failures, start afresh after `_restart_tail`."""
        delay = RETRY_FIRST
        while not self._stopping.is_set() and not until():
            try:
                # a fresh session, not tail.resume(): the manifold sends no response headers to a
                # Last-Event-ID resume until a new line arrives (panels re-read what they need anyway)
                tail = make_tail()
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self._tail = tail
                tail.open()
                on_connect()
                self._show_error(None)
                delay = RETRY_FIRST
                for batch in tail.batches():
                    on_lines(batch)
                    if until():
                        return
            except (PlatformError, OSError) as exc:
                if self._stopping.is_set():
                    return
                self._show_error(f"Cannot reach the dyno manifold ({exc}). Retrying…")
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RETRY_MAX)
                try:
                    self.app.reconnect()
                except PlatformError:
                    pass

    def _restart_tail(self) -> None:
        with self._lock:
            tail = self._tail
        if tail is not None:
            tail.close()

    # the banner --------------------------------------------------------------------
    def _show_error(self, message: str | None) -> None:
        with self._lock:
            if message == self.error:
                return
            self.error = message
            if message is None:
                self.banner.layout.display = "none"
                self.banner.value = ""
            else:
                self.banner.value = (f'<div style="background:#fdecea;color:#611a15;border:1px solid #f5c6cb;'
                                     f'padding:4px 8px;border-radius:3px">⚠ {html.escape(message)}</div>')
                self.banner.layout.display = ""


def cell(text: str, width: str, cls: str | None = None, bold: bool = False) -> W.HTML:
    widget = W.HTML(_cell_html(text, bold), layout=W.Layout(width=width, overflow="hidden"))
    if cls:
        widget.add_class(cls)
    return widget


def _cell_html(text: str, bold: bool = False) -> str:
    escaped = html.escape(text)
    return f"<b>{escaped}</b>" if bold else f'<span title="{escaped}">{escaped}</span>'


def set_cell(widget: W.HTML, text: str) -> None:
    value = _cell_html(text)
    if widget.value != value:
        widget.value = value
