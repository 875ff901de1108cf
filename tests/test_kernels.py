"""The Dyno kernels as Jupyter runs them: jupyter_client, a real manifold, real REPLs in dynos."""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import unittest
from pathlib import Path

import jupyter_kernel_test
import pytest
from jupyter_client.manager import start_new_kernel

from conftest import SAMPLE_APP, Manifold
from dynokernel.kernel.install import install

_TMP = Path(tempfile.mkdtemp(prefix="dynokernels-"))
MANIFOLD = Manifold(_TMP / "home")
APP_NAME = "kernels-app"
HAS_RUBY, HAS_NODE = bool(shutil.which("irb")), bool(shutil.which("node"))


@pytest.fixture(scope="module", autouse=True)
def kernel_environment():
    """This module's manifold, app and kernelspecs, in the environment the kernels inherit."""
    saved = {key: os.environ.get(key) for key in ("DYNO_HOME", "DYNO_APP", "JUPYTER_PATH")}
    MANIFOLD.start()
    directory = _TMP / APP_NAME
    shutil.copytree(SAMPLE_APP, directory)
    assert MANIFOLD.dyno("apps:create", APP_NAME, "--dir", str(directory)).returncode == 0
    assert MANIFOLD.dyno("deploy", "-a", APP_NAME).returncode == 0
    install(prefix=str(_TMP / "prefix"))
    os.environ.update(DYNO_HOME=str(MANIFOLD.home), DYNO_APP=APP_NAME,
                      JUPYTER_PATH=str(_TMP / "prefix/share/jupyter"))
    yield
    MANIFOLD.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(_TMP, ignore_errors=True)


class Booted(jupyter_kernel_test.KernelTests):
    """KernelTests on a kernel whose dyno has booted (the first cell shows the boot)."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.kc.execute_interactive("", timeout=120)


class DynoBashTests(Booted):
    kernel_name = "dyno_bash"
    language_name = "bash"
    file_extension = ".sh"
    code_hello_world = "echo 'hello, world'"
    code_display_data = [{"code": "echo '<b>hi</b>' | display -t text/html", "mime": "text/html"},
                         {"code": "printf '\\x89PNG\\r\\n' > p.png; display p.png", "mime": "image/png"}]
    code_generate_error = "false"  # exit status 1: one error message, DynoExitCode
    completion_samples = [{"text": "ech", "matches": {"echo"}}]
    complete_code_samples = ["echo hi", "if true; then echo x; fi"]
    incomplete_code_samples = ["if true; then", "echo 'unterminated", "echo \\"]
    invalid_code_samples = ["fi", "echo )"]
    code_inspect_sample = "echo"


class DynoPythonTests(Booted):
    kernel_name = "dyno_python"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    code_display_data = [{"code": "display(type('H', (), {'_repr_html_': lambda self: '<b>hi</b>'})())",
                          "mime": "text/html"}]
    complete_code_samples = ["x = 1", "def f():\n    return 1\n"]
    incomplete_code_samples = ["def f():", "x = (1,"]
    invalid_code_samples = ["x = = 1"]
    completion_samples = [{"text": "pri", "matches": {"print("}}]  # rlcompleter's form
    code_inspect_sample = "print"

    def test_dyno_python_input_without_stdin_is_eof(self) -> None:
        out: list[str] = []
        reply = self.kc.execute_interactive("try:\n    input('x? ')\nexcept EOFError:\n    print('eof')",
                                            timeout=30, allow_stdin=False,
                                            output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok" and "eof" in "".join(out)

    def test_dyno_python_inspection_calls_nothing(self) -> None:
        self.kc.execute_interactive("class Spy:\n    calls = 0\n    @property\n    def p(self):\n"
                                    "        Spy.calls += 1\n        return 1\nspy = Spy()",
                                    timeout=30, output_hook=lambda m: None)
        found = self.kc.inspect("spy.p", 5, reply=True, timeout=30)["content"]
        assert found["found"] and "spy.p: property" in found["data"]["text/plain"]
        out = []
        self.kc.execute_interactive("print(Spy.calls)", timeout=30,
                                    output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert "".join(out).strip() == "0"


@unittest.skipUnless(HAS_NODE, "node is not installed")
class DynoNodeTests(Booted):
    kernel_name = "dyno_node"
    language_name = "javascript"
    file_extension = ".js"
    code_hello_world = "console.log('hello, world')"
    code_stderr = "console.error('oops')"
    code_display_data = [{"code": "display('<b>hi</b>', 'text/html')", "mime": "text/html"},
                         {"code": "display({a: 1})", "mime": "application/json"}]
    completion_samples = [{"text": "console.lo", "matches": {"console.log"}}]
    complete_code_samples = ["let a = 1", "await Promise.resolve(1)"]
    incomplete_code_samples = ["function f() {", "[1, 2,"]
    invalid_code_samples = ["let = = 1"]
    code_inspect_sample = "Math.max"


@unittest.skipUnless(HAS_RUBY, "ruby is not installed")
class DynoIrbTests(Booted):
    kernel_name = "dyno_irb"
    language_name = "ruby"
    file_extension = ".rb"
    code_hello_world = "puts 'hello, world'"
    code_stderr = "$stderr.puts 'oops'"
    code_display_data = [{"code": "DynoKernel.display('<b>hi</b>', 'text/html')", "mime": "text/html"}]
    completion_samples = [{"text": "__dir", "matches": {"__dir__"}}]
    complete_code_samples = ["x = 1", "def f; 1; end"]
    incomplete_code_samples = ["def f", "[1, 2,"]
    invalid_code_samples = ["x = = 1"]
    code_inspect_sample = "puts"

    def test_dyno_irb_gets_with_and_without_stdin(self) -> None:
        out: list[str] = []
        hook = lambda m: out.append(m["content"].get("text", ""))  # noqa: E731
        reply = self.kc.execute_interactive("puts \"got #{gets}\"", timeout=30, allow_stdin=True, output_hook=hook,
                                            stdin_hook=lambda m: self.kc.input("dyno"))
        assert reply["content"]["status"] == "ok" and "got dyno" in "".join(out)
        out.clear()
        reply = self.kc.execute_interactive("p gets", timeout=30, allow_stdin=False, output_hook=hook)
        assert reply["content"]["status"] == "ok" and "nil" in "".join(out)

    def test_dyno_irb_error_reply(self) -> None:
        reply = self.kc.execute_interactive("raise ArgumentError, 'bad'", timeout=30, output_hook=lambda m: None)
        content = reply["content"]
        assert (content["status"], content["ename"], content["evalue"]) == ("error", "ArgumentError", "bad")


@unittest.skipUnless(HAS_RUBY, "ruby is not installed")
class DynoRailsTests(Booted):
    """The Rails console of the sample app: the seed's story against the app's database add-on."""

    kernel_name = "dyno_rails"
    language_name = "ruby"
    file_extension = ".rb"
    code_hello_world = "puts 'hello, world'"
    code_stderr = "$stderr.puts 'oops'"
    code_display_data = [{"code": "DynoKernel.display('<b>hi</b>', 'text/html')", "mime": "text/html"}]

    def test_dyno_rails_console_creates_a_widget_a_later_dyno_finds(self) -> None:
        migrated = MANIFOLD.dyno("run", "-a", APP_NAME, "--no-tty", "rake", "db:migrate", timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        out: list[str] = []
        hook = lambda m: out.append(m["content"].get("text", ""))  # noqa: E731
        reply = self.kc.execute_interactive("Widget.create name: 'Test'", timeout=60, output_hook=hook)
        assert reply["content"]["status"] == "ok", out
        created = re.search(r'=> #<Widget id: (\d+), name: "Test", ', "".join(out))
        assert created, out
        later = MANIFOLD.dyno("run", "-a", APP_NAME, "--no-tty",
                              "bin/rails runner 'puts Widget.where(name: \"Test\").pluck(:id).inspect'", timeout=120)
        assert f"{created.group(1)}" in later.stdout.strip().splitlines()[-1], later.stdout + later.stderr


class Kernel:
    """One kernel under test, with helpers that collect what a cell printed."""

    def __init__(self, name: str, extra_arguments: list[str] | None = None) -> None:
        self.manager, self.client = start_new_kernel(kernel_name=name, extra_arguments=extra_arguments or [])
        self.messages: list[dict] = []
        self.requests: list[dict] = []

    def run(self, code: str, stdin_answer: str | None = None, timeout: float = 120) -> tuple[dict, str]:
        out: list[str] = []
        self.messages, self.requests = [], []

        def on_output(msg):
            self.messages.append(msg)
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(content["traceback"]))

        def on_stdin(msg):
            self.requests.append(msg["content"])
            self.client.input(stdin_answer)

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=on_output,
                                                allow_stdin=stdin_answer is not None,
                                                stdin_hook=on_stdin if stdin_answer is not None else None)
        return reply["content"], "".join(out)

    def dyno_name(self) -> str:
        return re.search(r"run\.\d+", self.run("echo $DYNO")[1]).group(0)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


@pytest.fixture(scope="module")
def bash():
    kernel = Kernel("dyno_bash")
    yield kernel
    kernel.close()


def test_bash_cells_run_in_one_dyno_with_state(bash):
    reply, out = bash.run("pwd; ls; echo $DYNO")
    assert reply["status"] == "ok"
    assert "/app\n" in out and "Procfile" in out and re.search(r"run\.\d+", out)
    bash.run("greet() { echo hello $1; }; cd /tmp; sleep 300 & x=42")
    reply, out = bash.run("greet dyno; pwd; echo $x; jobs | wc -l")
    assert out.split("\n")[:4] == ["hello dyno", "/tmp", "42", "1"]


def test_bash_exit_status_is_an_error(bash):
    reply, out = bash.run("(exit 3)")
    assert (reply["status"], reply["ename"], reply["evalue"]) == ("error", "DynoExitCode", "exit status 3")
    assert bash.run("true")[0]["status"] == "ok"


def test_bash_stdin_with_and_without_a_frontend(bash):
    reply, out = bash.run("read -p 'name? ' n; echo hello $n", stdin_answer="dyno")
    assert "hello dyno" in out
    reply, out = bash.run("read n || echo got-eof")
    assert "got-eof" in out


def test_bash_interrupt(bash):
    bash.client.execute("sleep 30")
    started = time.monotonic()
    _wait_busy(bash)
    bash.manager.interrupt_kernel()
    reply = bash.client.get_shell_msg(timeout=20)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 10
    assert bash.run("echo still-here")[1].strip() == "still-here"


def _wait_busy(kernel: Kernel) -> None:
    while True:
        msg = kernel.client.get_iopub_msg(timeout=20)
        if msg["msg_type"] == "execute_input":
            return


def test_bash_dyno_stopped_from_elsewhere_starts_a_new_one(bash):
    name = re.search(r"run\.\d+", bash.run("echo $DYNO")[1]).group(0)
    assert MANIFOLD.dyno("ps:stop", "-a", APP_NAME, name).returncode == 0
    _wait_ended(name)
    reply, out = bash.run("echo $DYNO", timeout=120)
    assert f"{name} ended (it exited, or was stopped from elsewhere" in out  # a clear message, then
    if reply["status"] == "error":  # the cell that met the end says so; the next runs in a new dyno
        reply, out = bash.run("echo $DYNO")
    assert reply["status"] == "ok" and re.fullmatch(r"run\.\d+", out.strip().splitlines()[-1])
    assert out.strip().splitlines()[-1] != name


def _wait_ended(name: str) -> None:
    from dynokernel.platform.app import App, Run
    app = App(APP_NAME)
    Run(app, app.dyno(name)).wait(timeout=30)


def test_kernel_magic_dyno(bash):
    reply, out = bash.run("%dyno")
    assert reply["status"] == "ok"
    assert f"app: {APP_NAME}" in out and re.search(r"dyno: run\.\d+", out) and "state: up" in out


def test_python_kernel_exceptions_and_input():
    kernel = Kernel("dyno_python")
    try:
        reply, out = kernel.run("import os; print(os.getcwd(), os.environ['DYNO'][:4]); 6 * 7")
        assert "/app run." in out and "42" in out
        reply, out = kernel.run("raise ValueError('bad')")
        assert reply["status"] == "error" and reply["ename"] == "ValueError" and "ValueError: bad" in out
        reply, out = kernel.run("print('got', input('name? '))", stdin_answer="dyno")
        assert "got dyno" in out
    finally:
        kernel.close()


def test_shutdown_stops_the_dyno():
    kernel = Kernel("dyno_bash")
    name = re.search(r"run\.\d+", kernel.run("echo $DYNO")[1]).group(0)
    kernel.close()
    _wait_ended(name)
    from dynokernel.platform.app import App
    assert App(APP_NAME).dyno(name)["state"] == "down"


def test_idle_dyno_is_culled_with_sighup_and_replaced():
    manager, client = start_new_kernel(kernel_name="dyno_bash", extra_arguments=["--DynoKernel.idle_timeout=1"])
    kernel = Kernel.__new__(Kernel)
    kernel.manager, kernel.client = manager, client
    try:
        name = re.search(r"run\.\d+", kernel.run("echo $DYNO")[1]).group(0)
        _wait_ended(name)  # no input, no output for 1 s: the manifold hangs up, as Heroku does
        from dynokernel.platform.app import App
        messages = [line.split(": ", 1)[1] for line in App(APP_NAME).logs(dyno=name, source="heroku")]
        assert "Client connection closed. Sending SIGHUP to all processes" in messages
        reply, out = kernel.run("echo $DYNO")
        assert reply["status"] == "ok"
        assert f"{name} was idle for 1 s and got SIGHUP, as Heroku culls idle one-off dynos." in out
        assert re.fullmatch(r"run\.\d+", out.strip().splitlines()[-1]) and out.strip().splitlines()[-1] != name
    finally:
        kernel.close()


# -- more of a terminal's behaviour, in the shared Dyno Bash kernel ------------------------------
def test_kernel_info_at_once_first_cell_shows_the_deploy_and_boot():
    """An app with no release yet, whose dyno takes 3 s to start (.profile.d): kernel_info answers at
    once; the first cell waits, showing the deploy and the boot; the next cell shows neither."""
    directory = _TMP / "slow-app"
    (directory / ".profile.d").mkdir(parents=True)
    (directory / ".profile.d" / "slow.sh").write_text("sleep 3\n")
    (directory / "README").write_text("a slow-starting app\n")
    assert MANIFOLD.dyno("apps:create", "slow-app", "--dir", str(directory)).returncode == 0
    started = time.monotonic()
    manager, client = start_new_kernel(kernel_name="dyno_bash", env={**os.environ, "DYNO_APP": "slow-app"})
    kernel = Kernel.__new__(Kernel)
    kernel.manager, kernel.client = manager, client
    try:
        assert time.monotonic() - started < 3  # kernel_info did not wait for the dyno
        reply, out = kernel.run("echo booted")
        assert reply["status"] == "ok" and out.endswith("booted\n")
        assert "Starting a one-off dyno for Dyno Bash..." in out and "Deployed slow-app: v" in out
        assert re.search(r"Running Dyno Bash on \u2b22 slow-app\.\.\. up, run\.\d+", out), out
        assert kernel.run("echo again")[1] == "again\n"
    finally:
        kernel.close()


def test_bash_password_prompt_is_a_password_request(bash):
    reply, out = bash.run("read -s -p 'Password: ' pw; echo; echo length ${#pw}", stdin_answer="s3cret")
    assert reply["status"] == "ok" and "length 6" in out and "s3cret" not in out
    assert bash.requests == [{"prompt": "Password: ", "password": True}]


def test_bash_interrupt_an_output_flood(bash):
    msg_id = bash.client.execute("yes flood")
    seen = 0
    while seen < 3:  # the flood is reaching us
        msg = bash.client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            seen += 1
    bash.manager.interrupt_kernel()
    while True:
        reply = bash.client.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert bash.run("echo calm")[1].strip().endswith("calm")


def test_bash_prompt_spoofing_does_not_end_a_cell(bash):
    # PS1 holds the real (invisible) prompt with the last cell's nonce: printing it must not end this cell
    reply, out = bash.run("printf '%b' \"$PS1\"; declare -p PS1 >/dev/null; sleep 0.3; echo after-spoof")
    assert reply["status"] == "ok" and "after-spoof" in out
    assert bash.run("echo next")[1].strip() == "next"


def test_bash_custom_prompt_settings_do_not_break_the_kernel(bash):
    reply, out = bash.run("PS1='\\u@\\h \\w $ '; PS2='> '; PROMPT_COMMAND='echo hook'; PS0='zero'")
    assert reply["status"] == "ok"
    reply, out = bash.run("echo still")
    assert reply["status"] == "ok" and out.strip() == "still"


def test_bash_utf8_split_across_reads(bash):
    reply, out = bash.run(r"printf '\xc3'; sleep 0.3; printf '\xa9t\xc3\xa9\xe2\x82'; sleep 0.3; printf '\xac\n'")
    assert reply["status"] == "ok" and out == "été€\n"


def test_bash_carriage_return_progress(bash):
    reply, out = bash.run(r"for i in 1 2 3; do printf '\r%d%%' $((i * 33)); sleep 0.1; done; echo; echo done")
    assert reply["status"] == "ok"
    shown = [line.rsplit("\r", 1)[-1] for line in out.split("\n")]  # as a notebook renders \r
    assert shown[:2] == ["99%", "done"], out


def test_bash_full_screen_program_is_refused(bash):
    started = time.monotonic()
    reply, out = bash.run(r"printf '\e[?1049h'; sleep 30")
    assert reply["status"] == "error" and reply["ename"] == "FullScreenProgram"
    assert "full-screen programs" in out and time.monotonic() - started < 15
    assert bash.run("echo back")[1].strip() == "back"


def test_bash_completion_runs_nothing(bash):
    for code in ("ls `touch /tmp/pwned-a`", "ls $(touch /tmp/pwned-b)", "ls ${x:=$(touch /tmp/pwned-c)}"):
        bash.client.complete(code, len(code), reply=True, timeout=30)
    reply, out = bash.run("ls /tmp/pwned-* 2>/dev/null | wc -l")
    assert out.strip() == "0"
    found = bash.client.complete("ls /a", 5, reply=True, timeout=30)["content"]
    assert "/app/" in found["matches"]


def test_bash_inspection(bash):
    bash.run("greet2() { echo hi; }; export DK_X=42")
    found = bash.client.inspect("greet2", 6, reply=True, timeout=30)["content"]
    assert found["found"] and "greet2 is a function" in found["data"]["text/plain"]
    found = bash.client.inspect("echo $DK_X", 10, reply=True, timeout=30)["content"]
    assert found["found"] and 'DK_X="42"' in found["data"]["text/plain"]
    assert not bash.client.inspect("echo `id`", 9, reply=True, timeout=30)["content"]["found"]


def test_kernel_magics_ps_and_logs_show_widget_panels(bash):
    for magic in ("%ps", "%logs"):
        reply, out = bash.run(magic)
        assert reply["status"] == "ok"
        kinds = [m["msg_type"] for m in bash.messages]
        assert "comm_open" in kinds  # ipywidgets models, through the kernel's comm manager
        views = [m["content"]["data"] for m in bash.messages if m["msg_type"] == "display_data"]
        assert len(views) == 1 and "application/vnd.jupyter.widget-view+json" in views[0]


def test_the_app_comes_from_the_notebook_directory():
    env = {key: value for key, value in os.environ.items() if key != "DYNO_APP"}
    manager, client = start_new_kernel(kernel_name="dyno_bash", cwd=str(_TMP / APP_NAME), env=env)
    kernel = Kernel.__new__(Kernel)
    kernel.manager, kernel.client = manager, client
    try:
        reply, out = kernel.run("%dyno")
        assert reply["status"] == "ok" and f"app: {APP_NAME}\n" in out, out
    finally:
        kernel.close()


def test_kernel_magic_restart_gives_a_new_dyno(bash):
    old = bash.dyno_name()
    reply, out = bash.run("%restart")
    assert reply["status"] == "ok" and f"Stopping {old}" in out
    new = bash.dyno_name()
    assert new != old
    _wait_ended(old)


def test_jupyter_restart_gives_a_fresh_dyno():
    kernel = Kernel("dyno_bash")
    try:
        old = kernel.dyno_name()
        kernel.run("x=before")
        kernel.manager.restart_kernel(now=False)
        kernel.client.wait_for_ready(timeout=60)
        new = kernel.dyno_name()
        assert new != old and kernel.run("echo x=$x")[1].strip() == "x="
        _wait_ended(old)
        from dynokernel.platform.app import App
        assert App(APP_NAME).dyno(old)["state"] == "down"
    finally:
        kernel.close()


def test_idle_timeout_comes_from_the_kernelspec():
    from dynokernel.kernel.kernel import kernelspec_idle_timeout
    spec_dir = _TMP / "prefix/share/jupyter/kernels/dyno_python"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["metadata"]["cull_idle_timeout"] == 3600 and spec["interrupt_mode"] == "message"
    assert kernelspec_idle_timeout("dyno_python") == 3600
    spec["metadata"]["cull_idle_timeout"] = 120
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    try:
        assert kernelspec_idle_timeout("dyno_python") == 120
    finally:
        spec["metadata"]["cull_idle_timeout"] = 3600
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
    assert kernelspec_idle_timeout("no_such_kernel") == 3600


# -- a million lines ---------------------------------------------------------------------------
MILLION = 1_000_000


def _numbers(text: str) -> list[int]:
    return [int(line) for line in text.splitlines() if line.isdigit()]


def test_seq_million_with_a_raised_budget_reaches_a_client_whole():
    kernel = Kernel("dyno_bash", ["--DynoKernel.output_budget=100000000"])
    try:
        kernel.run("true")
        reply, out = kernel.run(f"seq 1 {MILLION}", timeout=240)
        assert reply["status"] == "ok"
        streams = [m for m in kernel.messages if m["msg_type"] == "stream"]
        assert _numbers(out) == list(range(1, MILLION + 1))
        assert len(streams) <= 100, len(streams)
    finally:
        kernel.close()


def test_seq_million_through_a_real_jupyter_server_loses_nothing():
    """Stock Jupyter Server (IOPub rate limits on), a websocket client, the default budget: every line
    is in the cell or in the spill file the cell names."""
    import subprocess
    import sys
    import uuid

    from tornado import ioloop, websocket
    from tornado.httpclient import HTTPClient

    token = uuid.uuid4().hex
    base = _TMP / "server"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTER_DATA_DIR": str(base / "data")}
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--ip=127.0.0.1", "--port=0",
                               f"--IdentityProvider.token={token}", "--no-browser",
                               f"--ServerApp.root_dir={_TMP}", "--allow-root"],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in server.stderr:  # the server says where it listens (port 0: no race for a free port)
            listening = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if listening:
                port = int(listening.group(1))
                break
        else:
            raise AssertionError("jupyter server did not start")
        import threading
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()  # keep it draining
        http = HTTPClient()
        headers = {"Authorization": f"token {token}"}
        kernel = json.loads(http.fetch(f"http://127.0.0.1:{port}/api/kernels", method="POST", headers=headers,
                                       body=json.dumps({"name": "dyno_bash"})).body)

        async def run_cell() -> tuple[dict, list[dict]]:
            ws = await websocket.websocket_connect(
                f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels?token={token}",
                max_message_size=64 * 1024 * 1024)
            session, got, reply = uuid.uuid4().hex, [], None
            for code in ("true", f"seq 1 {MILLION}"):
                msg_id = uuid.uuid4().hex
                await ws.write_message(json.dumps({
                    "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                               "username": "test", "version": "5.3", "date": ""},
                    "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                    "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                "allow_stdin": False, "stop_on_error": True}}))
                got, reply, idle = [], None, False
                while reply is None or not idle:
                    msg = json.loads(await ws.read_message())
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    if msg["msg_type"] == "execute_reply":
                        reply = msg["content"]
                    elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                        idle = True
                    elif msg["channel"] == "iopub":
                        got.append(msg)
            ws.close()
            return reply, got

        reply, got = ioloop.IOLoop.current().run_sync(run_cell, timeout=240)
        http.fetch(f"http://127.0.0.1:{port}/api/kernels/{kernel['id']}", method="DELETE", headers=headers)
        assert reply["status"] == "ok"
        kinds = {m["msg_type"] for m in got}
        assert kinds <= {"stream", "execute_input", "status"}, kinds
        text = "".join(m["content"]["text"] for m in got if m["msg_type"] == "stream")
        assert "rate exceeded" not in text  # Jupyter Server's notice when it drops output
        spill = re.search(r"all of it goes to (\S+\.log)", text)
        assert spill, text[-2000:]
        head, _, rest = text.partition("... output is over this cell's budget")
        tail = rest.split("full output: ", 1)[1].split(" ...\n", 1)[1]
        shown_head, shown_tail = _numbers(head), _numbers(tail)
        assert shown_head == list(range(1, len(shown_head) + 1)) and len(shown_head) > 100_000
        assert shown_tail == list(range(MILLION - len(shown_tail) + 1, MILLION + 1)) and shown_tail
        assert _numbers(Path(spill.group(1)).read_text()) == list(range(1, MILLION + 1))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_kernels_own_idle_timer_hangs_up_like_heroku():
    """A platform that does not cull (here: the dyno's own idle_timeout is long): the kernel's timer
    hangs up the attach connection, and the dyno gets SIGHUP as on Heroku."""
    from dynokernel.kernel.connection import IDLE_GRACE, DynoConnection
    from dynokernel.kernel.profiles import BASH
    dyno = DynoConnection(BASH, APP_NAME, str(_TMP), idle_timeout=3600)
    dyno.boot()
    try:
        assert dyno.session is not None, dyno.error
        dyno.idle_timeout = 0.5  # the kernel's timer only; its first check is due at once
        assert dyno.closed.wait(IDLE_GRACE + 30)
        _wait_ended(dyno.run.name)
        from dynokernel.platform.app import App
        messages = [line.split(": ", 1)[1] for line in App(APP_NAME).logs(dyno=dyno.run.name, source="heroku")]
        assert "Client connection closed. Sending SIGHUP to all processes" in messages
    finally:
        dyno.stop()
