"""%dynorun and friends, and the Python API, through a real IPython kernel (jupyter_client)."""
from __future__ import annotations

import re
import time

from magics_fixtures import APP, api, kernel, sample  # noqa: F401  (fixtures)

STATUS = re.compile(r"Running (?P<cmd>.+) on \u2b22 sampleapp\.\.\. up, (?P<dyno>run\.\d+)\n")


def test_streams_output_as_it_is_produced(kernel):
    result = kernel.run("%dynorun bash -c 'echo first; sleep 1.2; echo second'")
    assert result.status == "ok", result.error
    assert STATUS.search(result.text("stderr")), result.text("stderr")
    chunks = [(m["t"], m["content"]["text"]) for m in result.of_type("stream") if m["content"]["name"] == "stdout"]
    first = next(t for t, text in chunks if "first" in text)
    second = next(t for t, text in chunks if "second" in text)
    assert second - first > 0.8, chunks  # "first" reached the notebook while the command still ran
    assert result.text() == "first\nsecond\n"
    status_at = next(m["t"] for m in result.of_type("stream") if "up, run." in m["content"]["text"])
    assert status_at <= first


def test_non_zero_exit_raises_with_the_code(kernel):
    result = kernel.run("%dynorun bash -c 'echo partial; exit 3'")
    assert result.status == "error"
    assert result.error["ename"] == "DynoExitError"
    assert "Process exited with code 3" in result.error["evalue"]
    assert len(result.error["traceback"]) == 1  # one line, no Python traceback
    assert result.text() == "partial\n"
    caught = kernel.run("try:\n    %dynorun -- bash -c 'exit 7'\nexcept Exception as e:\n    print(e.exit_code, e.returncode)")
    assert caught.text().splitlines()[-1] == "7 7"


def test_procfile_types_env_and_size(kernel):
    result = kernel.run("%dynorun myworker 42")
    assert result.text() == "dowork: working on 42\n", result.text("stderr")
    result = kernel.run('%dynorun -a sampleapp --env "GREETING=Hola;X=1" --size standard-2x bin/do-work')
    assert result.status == "ok", result.error
    assert "do-work: Hola" in result.text()
    assert STATUS.search(result.text("stderr")).group("cmd") == "bin/do-work"


def test_cell_scripts_in_each_language(kernel):
    body = {"python": 'import os\nprint("hello from", os.environ["DYNO"])',
            "ruby": 'puts "hello from #{ENV["DYNO"]}"',
            "node": 'console.log("hello from", process.env.DYNO)',
            "": 'echo "hello from $DYNO"\nfalse || echo "it\'s bash"'}
    for kind, code in body.items():
        result = kernel.run(f"%%dynorun {kind}\n{code}")
        assert result.status == "ok", (kind, result.error, result.text("stderr"))
        assert re.match(r"hello from run\.\d+\n", result.text()), (kind, result.text())
    assert "it's bash" in result.text()
    failing = kernel.run("%%dynorun python\nraise SystemExit(5)")
    assert failing.error["ename"] == "DynoExitError" and "code 5" in failing.error["evalue"]


def test_interrupt_stops_the_dyno(kernel, sample):
    msg_id = kernel.send("%dynorun bash -c 'echo ready; sleep 60'")
    started = kernel.wait_iopub(lambda m: m["parent_header"].get("msg_id") == msg_id and
                                m["msg_type"] == "stream" and "up, run." in m["content"]["text"])
    name = re.search(r"run\.\d+", started["content"]["text"]).group(0)
    kernel.wait_iopub(lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream"
                      and "ready" in m["content"]["text"])
    interrupted = time.monotonic()
    kernel.km.interrupt_kernel()
    result = kernel.collect(msg_id, timeout=20)
    assert result.error["ename"] == "KeyboardInterrupt"
    assert f"Stopped {name}" in result.text("stderr")
    assert time.monotonic() - interrupted < 5
    record = api(sample).dyno(name)
    assert record["state"] not in ("up", "starting"), record
    ps = sample.dyno("ps", "-a", APP)
    assert name not in ps.stdout


def test_input_comes_from_the_notebook(kernel):
    code = "%dynorun python3 -c \"print('hello', input('Name? '))\""
    prompts = []
    result = kernel.run(code, allow_stdin=True, stdin=lambda prompt: prompts.append(prompt) or "ada")
    assert result.status == "ok", result.error
    assert prompts == ["Name? "]
    assert result.text() == "hello ada\n"
    # a frontend without stdin: the command reads EOF
    result = kernel.run(code, allow_stdin=False)
    assert result.error["ename"] == "DynoExitError"
    assert "EOFError" in result.text()
    result = kernel.run("%dynorun --no-stdin bash -c 'cat; echo done'", allow_stdin=True)
    assert result.text() == "done\n"


def test_detached_runs_return_a_run_with_its_exit_code(kernel):
    result = kernel.run("r = %dynorun --detach bash -c 'echo out; sleep 0.3; exit 4'")
    assert result.status == "ok", result.error
    assert re.search(r"Running bash -c 'echo out; sleep 0\.3; exit 4' on \u2b22 sampleapp\.\.\. done, run\.\d+",
                     result.text("stderr"))
    views = [m for m in result.of_type("display_data")
             if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert views, "the run panel is displayed"
    assert kernel.value("(r.wait(30), r.exit_code, r.output)") == (4, 4, "out\n")
    # another run: exit_code asked of the API after the end, without wait()
    kernel.run("r2 = %dynorun --detach true")
    assert kernel.value("r2.wait(30)") == 0


def test_dynostop(kernel, sample):
    kernel.run("s = %dynorun --detach sleep 120")
    name = kernel.value("s.name")
    result = kernel.run(f"%dynostop {name}")
    assert result.status == "ok", result.error
    assert result.text("stderr") == f"Stopping dyno {name} on \u2b22 sampleapp... done\n"
    assert kernel.value("s.wait(20)") == 143
    assert name not in sample.dyno("ps", "-a", APP).stdout


def test_one_line_errors(kernel):
    cases = {
        "%dynorun --bogus echo hi": "Unknown flag --bogus",
        "%dynorun -a no-such-app echo hi": "Couldn't find that app",
        "%dynorun": "a command to run is required",
        '%dynorun --env "NOEQUALS" echo': "Invalid --env",
        "%dynorun --ttl soon echo": "--ttl expects a whole number",
        "%%dynorun cobol\nDISPLAY 'HI'.": "bash, python, ruby or node",
        "%dynostop": "Please specify a process type or dyno name",
        "%dynostop -a no-such-app run.1": "Couldn't find that app",
        "%dynologs --source nope": "invalid choice",
    }
    for code, expected in cases.items():
        result = kernel.run(code)
        assert result.status == "error", code
        assert result.error["ename"] == "DynoError", (code, result.error)
        assert expected in result.error["evalue"], (code, result.error["evalue"])
        assert len(result.error["traceback"]) == 1 and "\n" not in result.error["evalue"], code


def test_python_api_in_the_kernel(kernel):
    code = ("from dynokernel.platform.app import App\n"
            "app = App()\n"
            "r = app.run('echo hi; exit 2')\n"
            "d = app.run('echo later', detach=True)\n"
            "print(repr((app.name, r.output, r.exit_code, d.wait(30), d.output, d.state)))")
    result = kernel.run(code)
    assert result.status == "ok", result.error
    assert result.text().strip() == repr(("sampleapp", "hi\n", 2, 0, "later\n", "down"))
    timed = kernel.run("try:\n    app.run('sleep 30', timeout=0.5)\nexcept TimeoutError as e:\n    print(type(e).__name__)")
    assert timed.text().strip() == "RunTimeout"


def test_extension_from_configuration(sample):
    """c.InteractiveShellApp.extensions = ["dynokernel"] works like %load_ext."""
    from magics_fixtures import Kernel
    k = Kernel(sample)
    try:
        result = k.run("get_ipython().extension_manager.load_extension('dynokernel')\n"
                       "print(sorted(m for m in get_ipython().magics_manager.magics['line'] if m.startswith('dyno')))")
        assert result.text().strip() == "['dynologs', 'dynops', 'dynorun', 'dynostop']"
    finally:
        k.stop()
