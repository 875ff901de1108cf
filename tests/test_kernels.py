"""The Dyno kernels as Jupyter runs them: jupyter_client, a real manifold, real REPLs in dynos."""
from __future__ import annotations

import os
import queue
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
    code_generate_error = "false"
    completion_samples = [{"text": "ech", "matches": {"echo"}}]
    complete_code_samples = ["echo hi", "if true; then echo x; fi"]
    incomplete_code_samples = ["if true; then", "echo 'unterminated"]


class DynoPythonTests(Booted):
    kernel_name = "dyno_python"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    complete_code_samples = ["x = 1", "def f():\n    return 1\n"]
    incomplete_code_samples = ["def f():", "x = (1,"]
    invalid_code_samples = ["x = = 1"]
    completion_samples = [{"text": "pri", "matches": {"print("}}]  # rlcompleter's form


@unittest.skipUnless(HAS_NODE, "node is not installed")
class DynoNodeTests(Booted):
    kernel_name = "dyno_node"
    language_name = "javascript"
    code_hello_world = "console.log('hello, world')"


@unittest.skipUnless(HAS_RUBY, "ruby is not installed")
class DynoIrbTests(Booted):
    kernel_name = "dyno_irb"
    language_name = "ruby"
    code_hello_world = "puts 'hello, world'"


class Kernel:
    """One kernel under test, with helpers that collect what a cell printed."""

    def __init__(self, name: str) -> None:
        self.manager, self.client = start_new_kernel(kernel_name=name)

    def run(self, code: str, stdin_answer: str | None = None, timeout: float = 120) -> tuple[dict, str]:
        out: list[str] = []

        def on_output(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(content["traceback"]))

        def on_stdin(msg):
            self.client.input(stdin_answer)

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=on_output,
                                                allow_stdin=stdin_answer is not None,
                                                stdin_hook=on_stdin if stdin_answer is not None else None)
        return reply["content"], "".join(out)

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


@pytest.mark.skipif(not HAS_RUBY, reason="ruby is not installed")
def test_rails_console_creates_a_widget():
    kernel = Kernel("dyno_rails")
    try:
        reply, out = kernel.run("ActiveRecord::MigrationContext.new('db/migrate', ActiveRecord::SchemaMigration)"
                                ".migrate; nil", timeout=180)
        assert reply["status"] == "ok", out
        reply, out = kernel.run("Widget.create name: 'Test'")
        assert re.search(r'=> #<Widget id: \d+, name: "Test"', out), out
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
