"""Every notebook in notebooks/ executed with nbclient, with assertions on its outputs."""
from __future__ import annotations

import os
import re

import nbformat
import pytest
from jupyter_client.kernelspec import find_kernel_specs
from nbclient import NotebookClient

from magics_fixtures import APP, ROOT, api, sample  # noqa: F401  (fixtures)

NOTEBOOKS = ROOT / "notebooks"


def execute(name: str, manifold, timeout: int = 120) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=nb.metadata.kernelspec.name,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    saved = os.environ.get("DYNO_HOME")
    os.environ["DYNO_HOME"] = str(manifold.home)
    try:
        client.execute()
    finally:
        if saved is None:
            os.environ.pop("DYNO_HOME", None)
        else:
            os.environ["DYNO_HOME"] = saved
    return nb


def text(cell, name: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == name)


def result(cell) -> str:
    return "".join(o.data.get("text/plain", "") for o in cell.outputs if o.output_type == "execute_result")


def widgets(cell) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell.outputs)


def by_source(nb, start: str):
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(start))


def test_magics_notebook(sample):
    nb = execute("magics.ipynb", sample)
    assert all(o.output_type != "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    migrate = by_source(nb, "%dynorun rake db:migrate")
    assert re.search(r"Running rake db:migrate on \u2b22 sampleapp\.\.\. up, run\.\d+", text(migrate, "stderr"))
    assert "CreateWidgets: migrated" in text(migrate) or "create_table(:widgets)" in text(migrate)
    assert "do-work: Hello World" in text(by_source(nb, "%dynorun bin/do-work"))
    assert text(by_source(nb, "%dynorun myworker 42")) == "dowork: working on 42\n"
    assert re.match(r"hello from run\.\d+\n", text(by_source(nb, "%%dynorun python")))
    assert widgets(by_source(nb, "r = %dynorun --detach")) == 1
    assert result(by_source(nb, "r.wait(")) == "(0, 0)"
    assert "total: 5" in text(by_source(nb, "print(r.output)"))
    assert result(by_source(nb, "s = %dynorun")) in ("143", "137")
    assert widgets(by_source(nb, "%dynops")) == 1
    assert widgets(by_source(nb, "%dynologs")) == 1
    worker = [d for d in api(sample).ps() if d["type"] == "run" and "worker.py" in d["command"]]
    assert worker and worker[0]["state"] == "up"


def _needs(kernel: str) -> None:
    if kernel not in find_kernel_specs():
        pytest.skip(f"the {kernel} kernelspec is not installed (python -m dynokernel.kernel.install)")


def test_quickstart_notebook(sample):
    _needs("dyno_bash")
    os.environ["DYNO_APP"] = APP
    try:
        nb = execute("quickstart.ipynb", sample)
    finally:
        os.environ.pop("DYNO_APP", None)
    outputs = {c.source: text(c) for c in nb.cells if c.cell_type == "code"}
    assert "Procfile" in outputs["ls"]
    assert outputs['echo "Hi there"'].strip() == "Hi there"
    assert "do-work: Hello World" in outputs["bin/do-work"]
    assert "Hello World" in outputs["rake output_greeting"]


def test_rails_notebook(sample):
    _needs("dyno_rails")
    os.environ["DYNO_APP"] = APP
    try:
        nb = execute("rails.ipynb", sample)
    finally:
        os.environ.pop("DYNO_APP", None)
    assert "=> [\"sprocket\"]" in text(by_source(nb, "Widget.pluck"))  # irb shows the value
