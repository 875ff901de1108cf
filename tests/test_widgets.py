"""The ps, logs and run panels in a real IPython kernel: live updates as comm messages, the Stop
button, the error banner while the manifold is down, and no threads left behind."""
from __future__ import annotations

import time

from magics_fixtures import APP, Kernel, api, comm_state_text, kernel, sample  # noqa: F401  (fixtures)

THREADS = "sum(t.name.startswith('dynokernel-') for t in __import__('threading').enumerate())"
WAIT_FOR = ("def wait_for(cond, timeout=10):\n"
            "    import time\n"
            "    deadline = time.monotonic() + timeout\n"
            "    while not cond():\n"
            "        assert time.monotonic() < deadline, 'condition not met in time'\n"
            "        time.sleep(0.02)\n"
            "    return True\n")


def click(kernel: Kernel, model_id: str) -> None:
    """What the browser sends when an ipywidgets Button is clicked."""
    msg = kernel.kc.session.msg("comm_msg", {"comm_id": model_id,
                                             "data": {"method": "custom", "content": {"event": "click"}}})
    kernel.kc.shell_channel.send(msg)


def test_ps_panel_updates_live_and_stops_a_dyno(kernel, sample):
    shown = kernel.run("p = %dynops\np")
    assert shown.status == "ok", shown.error
    app = api(sample)
    started = time.monotonic()
    run = app.run("sleep 60", detach=True)
    row = kernel.wait_iopub(lambda m: f">{run.name}<" in comm_state_text(m), timeout=5)
    assert row["t"] - started < 1.0  # listed within a second, nobody asked
    kernel.wait_iopub(lambda m: ">up<" in comm_state_text(m), timeout=5)
    assert kernel.value(f"p.dynos[{run.name!r}]['shown_state']") == "up"
    click(kernel, kernel.value(f"p._rows[{run.name!r}].button.model_id"))
    kernel.wait_iopub(lambda m: ">stopped<" in comm_state_text(m), timeout=10)
    state, code = kernel.value(f"(p.dynos[{run.name!r}]['shown_state'], p.dynos[{run.name!r}]['exit_code'])")
    assert state == "stopped" and code in (143, 137)  # SIGTERM (or SIGKILL after the grace period)
    assert run.name not in sample.dyno("ps", "-a", APP).stdout
    assert kernel.value(f"p._rows[{run.name!r}].button.disabled") is True
    # filters: a state filter hides the stopped row
    kernel.run("p.state_filter.value = 'up'")
    assert kernel.value("len(p.table.children)") == 0
    kernel.run("p.state_filter.value = 'all'; p.close()")


def test_ps_panel_groups_dynos_as_dyno_ps_does(kernel, sample):
    shown = kernel.run("g = %dynops\ng")
    assert shown.status == "ok", shown.error
    run = api(sample).run("sleep 60", detach=True)
    assert sample.dyno("ps:scale", "worker=1", "-a", APP).returncode == 0
    try:
        kernel.wait_iopub(lambda m: "=== worker (Basic): python3 worker.py (1)" in comm_state_text(m), timeout=10)
        kernel.wait_iopub(lambda m: ">worker.1<" in comm_state_text(m), timeout=10)
        order = kernel.value("[c.value if 'dyno-ps-group' in c._dom_classes else c.children[0].value "
                             "for c in g.table.children]")
        groups = [i for i, text in enumerate(order) if text.startswith("<b>=== ")]
        assert order[groups[0]].startswith("<b>=== run: one-off processes (")
        assert order[groups[1]] == "<b>=== worker (Basic): python3 worker.py (1)</b>"
        assert any(run.name in text for text in order[groups[0]:groups[1]])
        assert "worker.1" in order[groups[1] + 1]
    finally:
        assert sample.dyno("ps:scale", "worker=0", "-a", APP).returncode == 0
        run.stop()
        kernel.run("g.close()")


def test_logs_panel_tails_filters_pauses_and_loads_earlier(kernel, sample):
    kernel.run(WAIT_FOR)
    assert kernel.run("l = %dynologs --tail -n 5\nl").status == "ok"
    app = api(sample)
    started = time.monotonic()
    app.run("echo LOG-MARKER-1", detach=True)
    seen = kernel.wait_iopub(lambda m: "LOG-MARKER-1" in comm_state_text(m), timeout=5)
    assert seen["t"] - started < 1.0
    # search (in the kernel) and a source filter (a new session on the manifold)
    kernel.run("l.search.value = 'marker-1'")
    assert kernel.value("wait_for(lambda: 'app[run.' in l.view.value and 'State changed' not in l.view.value)")
    kernel.run("l.search.value = ''; l.source.value = 'heroku'")
    assert kernel.value("wait_for(lambda: 'app[run.' not in l.view.value and 'heroku[' in l.view.value)")
    # paused: lines are counted, not shown
    kernel.run("l.source.value = 'all'\nwait_for(lambda: 'LOG-MARKER-1' in l.view.value)\nl.pause.value = True")
    app.run("echo LOG-MARKER-2", detach=True)
    assert kernel.value("wait_for(lambda: l.new_while_paused > 0 and 'new lines' in l.status.value)")
    assert kernel.value("'LOG-MARKER-2' in l.view.value") is False
    kernel.run("l.pause.value = False")
    assert kernel.value("wait_for(lambda: 'LOG-MARKER-2' in l.view.value)")
    # bounded: the newest `limit` lines only, until "load earlier"
    kernel.run("from dynokernel.widgets import LogsPanel\nb = LogsPanel(lines=3, limit=3)")
    app.run("for i in 1 2 3 4 5 6; do echo many-$i; done", detach=True)
    assert kernel.value("wait_for(lambda: any('many-6' in x for x in b.lines))")
    assert kernel.value("len(b.lines)") == 3
    kernel.run("b.earlier.click()")
    assert kernel.value("wait_for(lambda: any('many-1' in x for x in b.lines)) and b.limit") == 503
    kernel.run("b.download.click()")
    assert kernel.value("'base64,' in b.link.value and 'sampleapp.log' in b.link.value")
    kernel.run("l.close(); b.close()")


def test_run_panel_shows_state_output_and_exit_code(kernel):
    kernel.run(WAIT_FOR)
    kernel.run("r = %dynorun --detach bash -c 'echo working; sleep 0.5; exit 3'")
    kernel.wait_iopub(lambda m: "exit code <b>3</b>" in comm_state_text(m), timeout=10)
    panel = "r_panel = [w for w in __import__('dynokernel.widgets.base', fromlist=['x'])._all if w.kind == 'run' " \
            "and w.run is r][0]"
    kernel.run(panel)
    assert kernel.value("(r_panel.state, r_panel.exit_code, r.exit_code, 'working' in r_panel.output.value)") == \
        ("complete", 3, 3, True)
    # a finished run's panel has stopped its threads by itself
    assert kernel.value("wait_for(lambda: all(not t.is_alive() for t in r_panel._threads))")


def test_panels_stop_their_threads_when_closed_or_re_run(kernel):
    kernel.run(WAIT_FOR + "from dynokernel.widgets import close_all\nclose_all()")
    assert kernel.value(THREADS) == 0
    cell = "p = %dynops\nl = %dynologs --tail\nr = %dynorun --detach sleep 30\n"
    assert kernel.run(cell, cell_id="panels-cell").status == "ok"
    one_run = kernel.value(THREADS)
    assert one_run == 5  # ps: 1, logs: follow + render, run: follow + clock
    for _ in range(2):  # re-running the cell closes the panels it made before
        assert kernel.run(cell, cell_id="panels-cell").status == "ok"
        assert kernel.value(THREADS) == one_run
    kernel.run("p.close(); l.close(); r.stop()")
    assert kernel.value(f"wait_for(lambda: {THREADS} == 0)")


def test_ps_panel_banner_while_the_manifold_is_down(kernel, sample):
    """Last in this module: it restarts the manifold."""
    kernel.run("p = %dynops\np")
    stopped = sample.dyno("manifold:stop", timeout=90)
    assert stopped.returncode == 0, stopped.stderr
    kernel.wait_iopub(lambda m: "Cannot reach the dyno manifold" in comm_state_text(m), timeout=10)
    assert "Cannot reach" in kernel.value("p.error")
    sample.start()
    kernel.wait_iopub(lambda m: m["msg_type"] == "comm_msg" and
                      m["content"]["data"].get("state") == {"display": "none"}, timeout=10)
    assert kernel.value("p.error") is None
    run = api(sample).run("sleep 30", detach=True)  # the panel follows the restarted manifold
    kernel.wait_iopub(lambda m: f">{run.name}<" in comm_state_text(m), timeout=5)
    run.stop()
    kernel.run("p.close()")
