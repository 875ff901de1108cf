"""One-off dynos through the real `dyno` CLI and a real manifold process."""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys

import pexpect
import pytest

from conftest import AppDir, Manifold


def test_seed_session_slug_is_copied_per_dyno(app: AppDir):
    first = app.dyno("run", "bash", input="ls; rm Procfile; ls; exit\n")
    assert first.returncode == 0, first.stderr
    listings = first.stdout.split("README\n")
    assert "Procfile" in listings[0] and "Procfile" not in listings[1]
    second = app.dyno("run", "ls")
    assert "Procfile" in second.stdout.split()  # the app is unchanged
    assert re.search(rf"Running ls on {app.name}\.\.\. up, run\.\d+", second.stderr)


def test_process_type_substitution_with_args(app: AppDir):
    done = app.dyno("run", "myworker", "42")
    assert done.stdout.strip() == "dowork: 42"


def test_exit_codes_by_default(app: AppDir):
    failed = app.dyno("run", "exit 3")
    assert failed.returncode == 3
    assert "Error: Process exited with code 3" in failed.stderr
    assert app.dyno("run", "--no-exit-code", "exit 3").returncode == 0
    assert app.dyno("run", "true").returncode == 0


def test_dyno_environment(app: AppDir):
    assert app.dyno("config:set", "FROM_CONFIG=yes", "GREETING=from config").returncode == 0
    script = 'echo "$DYNO|$PORT|$HOME|$PWD|$HEROKU_APP_NAME|$HEROKU_RELEASE_VERSION|$FROM_CONFIG|$A|$B|$GREETING"'
    done = app.dyno("run", "--env", "A=1;B=two words", script)
    dyno, port, home, pwd, app_name, release, from_config, a, b, greeting = done.stdout.strip().split("|")
    assert re.fullmatch(r"run\.\d+", dyno) and port.isdigit() and home == pwd
    assert (app_name, release, from_config, a, b) == (app.name, "v2", "yes", "1", "two words")
    assert greeting == "from config"  # .profile.d ran after the config vars and kept them


def test_profile_d_sets_defaults(app: AppDir):
    assert app.dyno("run", "echo $GREETING").stdout.strip() == "from profile.d"


def test_detached_run_logs_and_lifecycle(app: AppDir):
    started = app.dyno("run:detached", "echo detached output; exit 4")
    assert started.returncode == 0, started.stderr
    name = re.search(r"done, (run\.\d+)", started.stderr).group(1)
    assert started.stdout.strip() == f"Run dyno logs --app {app.name} --dyno {name} to view the output."
    assert app.api().dyno(name) and _wait(app, name) == 4
    logs = app.dyno("logs", "-d", name).stdout.splitlines()
    messages = [line.split(": ", 1)[1] for line in logs]
    assert messages == [
        "Starting process with command `echo detached output; exit 4`",
        "State changed from starting to up",
        "detached output",
        "Process exited with status 4",
        "State changed from up to complete",
    ]
    assert re.match(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{6}}\+00:00 heroku\[{name}\]: ", logs[0])
    assert f"app[{name}]: detached output" in logs[2]


def _wait(app: AppDir, name: str) -> int | None:
    from dynokernel.platform.app import Run
    api = app.api()
    return Run(api, api.dyno(name)).wait(timeout=30)


def test_ps_format_json_and_stop(app: AppDir):
    started = app.dyno("run:detached", "sleep 300")
    name = re.search(r"done, (run\.\d+)", started.stderr).group(1)
    ps = app.dyno("ps")
    assert ps.stdout.startswith("=== run: one-off processes (1)\n\n")
    assert re.search(rf"^{name} \(Basic\): up \d{{4}}/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{{4}} \(~ \d+s ago\): sleep 300$",
                     ps.stdout, re.M)
    as_json = json.loads(app.dyno("ps", "--json").stdout)
    assert [(d["name"], d["state"], d["command"]) for d in as_json] == [(name, "up", "sleep 300")]
    stopped = app.dyno("ps:stop", name)
    assert stopped.returncode == 0 and f"Stopping dyno {name}" in stopped.stderr
    assert _wait(app, name) == 143
    assert app.dyno("ps").stdout.strip() == f"No dynos on {app.name}"
    assert "Stopping all processes with SIGTERM" in app.dyno("logs", "-d", name).stdout


def test_stop_by_type_and_with_flag(app: AppDir):
    names = [re.search(r"done, (run\.\d+)", app.dyno("run:detached", "sleep 300").stderr).group(1)
             for _ in range(2)]
    assert app.dyno("ps:kill", "-d", names[0]).returncode == 0
    assert _wait(app, names[0]) == 143
    assert app.dyno("ps:stop", "-p", "run").returncode == 0
    assert _wait(app, names[1]) == 143


def test_ignored_sigterm_gets_r12_and_sigkill(app: AppDir):
    started = app.dyno("run:detached", "trap '' TERM; echo ready; while :; do sleep 0.1; done")
    name = re.search(r"done, (run\.\d+)", started.stderr).group(1)
    _wait_for_line(app, name, "ready")
    app.dyno("ps:stop", name)
    assert _wait(app, name) == 137
    messages = [line.split(": ", 1)[1] for line in app.dyno("logs", "-d", name, "-s", "heroku").stdout.splitlines()]
    assert messages[-5:] == [
        "Stopping all processes with SIGTERM",
        "Error R12 (Exit timeout) -> At least one process failed to exit within 1 seconds of SIGTERM",
        "Stopping remaining processes with SIGKILL",
        "Process exited with status 137",
        "State changed from up to complete",
    ]


def _wait_for_line(app: AppDir, name: str, text: str) -> None:
    for line in app.api().logs(dyno=name, tail=True, lines=100):
        if line.endswith(text):
            return


def test_children_do_not_outlive_the_dyno(app: AppDir):
    marker = "317.5317"
    done = app.dyno("run", f"sleep {marker} & disown; setsid sleep {marker} & echo forked")
    assert done.stdout.strip() == "forked"
    survivors = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert survivors.stdout == ""


def test_binary_output_attached_and_detached(app: AppDir):
    payload = bytes(b for b in range(256) if b != 4) * 4  # \x04 is end-of-input in the protocol
    done = app.dyno("run", "--no-tty", "cat", input=payload)
    assert done.stdout == payload
    started = app.dyno("run:detached", r"printf 'ok \377\376 end\n'")
    name = re.search(r"done, (run\.\d+)", started.stderr).group(1)
    assert _wait(app, name) == 0
    assert "app[%s]: ok \\xff\\xfe end" % name in app.dyno("logs", "-d", name).stdout


def test_a_hundred_megabytes_of_output(app: AppDir):
    done = app.dyno("run", "--no-tty", "head -c 100000000 /dev/zero", input=b"", timeout=120)
    assert done.returncode == 0
    assert len(done.stdout) == 100_000_000 and not done.stdout.strip(b"\0")


def test_tty_ctrl_c_reaches_the_foreground_job(app: AppDir):
    child = pexpect.spawn(sys.executable, ["-m", "dynokernel.cli.main", "run", "-a", app.name, "bash"],
                          env=app.manifold.env, timeout=20)
    child.expect(r"up, run\.\d+")
    child.sendline("PS1='dyno> '")
    child.expect("dyno> ")
    child.sendline("""python3 -c "print('fore' 'ground', flush=True); import time; time.sleep(30)" """)
    child.expect("foreground")  # printed by the foreground job itself: ^C cannot race its start
    child.sendcontrol("c")
    child.expect("dyno> ")
    child.sendline("exit 5")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5


def test_input_and_disconnect_hangs_up(app: AppDir):
    child = pexpect.spawn(sys.executable, ["-m", "dynokernel.cli.main", "run", "-a", app.name,
                                           "read -p 'name? ' n; echo hello $n; sleep 300"],
                          env=app.manifold.env, timeout=20)
    child.expect("name\\? ")
    child.sendline("dyno")
    child.expect("hello dyno")
    name = re.search(r"run\.\d+", child.before.decode() + child.after.decode() + str(child.buffer))
    child.close(force=True)  # the client goes away
    name = _latest_run(app)
    messages = _wait_messages(app, name, "State changed from up to complete")
    assert "Client connection closed. Sending SIGHUP to all processes" in messages
    assert "Process exited with status 129" in messages


def _latest_run(app: AppDir) -> str:
    names = re.findall(r"heroku\[(run\.\d+)\]", app.dyno("logs", "-s", "heroku").stdout)
    return names[-1]


def _wait_messages(app: AppDir, name: str, last: str) -> list[str]:
    messages = []
    for line in app.api().logs(dyno=name, tail=True, lines=1000):
        messages.append(line.split(": ", 1)[1])
        if messages[-1] == last:
            return messages
    return messages


def test_idle_timeout_hangs_up_and_r16_when_ignored(app: AppDir):
    api = app.api()
    from dynokernel.platform.rendezvous import connect
    run = api.start("trap '' HUP; echo trapped; sleep 300", tty=True, idle_timeout=0.5)
    sock, early = connect(run.attach_url, api.client.endpoint.ca_file)
    sock.settimeout(20)
    received = early
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break  # the manifold closed the idle connection
        received += chunk
    assert b"trapped" in received
    messages = _wait_messages(app, run.name, "Error R16 (Detached) -> An attached process is not responding to "
                              "SIGHUP after its external connection was closed.")
    assert messages.count("Client connection closed. Sending SIGHUP to all processes") == 3
    assert run.state == "up"  # a process that traps SIGHUP keeps running
    run.stop()
    assert _wait(app, run.name) == 143


def test_rendezvous_secret_is_single_use_and_expires(app: AppDir):
    api = app.api()
    from dynokernel.platform.rendezvous import AttachError, connect
    run = api.start("echo once", tty=False)
    sock, early = connect(run.attach_url, api.client.endpoint.ca_file)
    with pytest.raises(AttachError):
        connect(run.attach_url, api.client.endpoint.ca_file)
    sock.close()
    never = api.start("echo never attached")
    messages = _wait_messages(app, never.name, "State changed from starting to complete")
    assert "Error R13 (Attach error) -> Failed to attach to process" in messages


def test_logs_filters_and_tail(app: AppDir):
    for text in ("first", "second"):
        name = re.search(r"done, (run\.\d+)", app.dyno("run:detached", f"echo {text}").stderr).group(1)
        _wait(app, name)
    app_lines = app.dyno("logs", "-s", "app", "-p", "run").stdout.splitlines()
    assert [line.split(": ", 1)[1] for line in app_lines if "app[run" in line] == ["first", "second"]
    assert len(app.dyno("logs", "-n", "3").stdout.splitlines()) == 3
    tail = subprocess.Popen([sys.executable, "-m", "dynokernel.cli.main", "logs", "-t", "-a", app.name, "-n", "1"],
                            env=app.manifold.env, stdout=subprocess.PIPE, bufsize=0)
    try:
        assert read_line(tail.stdout, 20)  # the newest stored line: the tail is connected
        app.dyno("run:detached", "echo tailed-line")
        lines = []
        while not (lines and lines[-1].endswith("tailed-line")):
            lines.append(read_line(tail.stdout, 20))
        assert "app[run." in lines[-1]
    finally:
        tail.kill()
        tail.wait()


def read_line(stream, timeout: float) -> str:
    """The next line of an unbuffered pipe, failing after `timeout` seconds instead of hanging."""
    line = b""
    while not line.endswith(b"\n"):
        if not select.select([stream], [], [], timeout)[0]:
            raise AssertionError(f"no line within {timeout} s (got {line!r})")
        byte = stream.read(1)
        if not byte:
            break
        line += byte
    return line.decode().rstrip("\n")


needs_cgroups = pytest.mark.skipif(
    not __import__("dynokernel.manifold.sandbox.limits", fromlist=["x"]).cgroup_parents(),
    reason="memory accounting needs writable cgroups (root, or a delegated subtree)")


@needs_cgroups
def test_memory_over_quota_logs_r14_then_r15(app: AppDir):
    hold = "import time; a = b'x' * (700 << 20); print('allocated', flush=True); time.sleep(60)"
    name = re.search(r"done, (run\.\d+)", app.dyno("run:detached", f'python3 -c "{hold}"').stderr).group(1)
    messages = _wait_messages(app, name, "Error R14 (Memory quota exceeded)")
    assert re.fullmatch(r"Process running mem=\d+MB\(1\d\d\.\d%\)", messages[-2])
    app.dyno("ps:stop", name)
    hog = "a = b'x' * (1500 << 20)"
    name = re.search(r"done, (run\.\d+)", app.dyno("run:detached", f'python3 -c "{hog}"').stderr).group(1)
    messages = _wait_messages(app, name, "State changed from up to complete")
    assert messages[-4:] == ["Error R15 (Memory quota vastly exceeded)", "Stopping process with SIGKILL",
                             "Process exited with status 137", "State changed from up to complete"]
