"""Dyno Bash vs bash_kernel (the anchor) vs ipykernel `!cmd`, same run, same machine.

    pip install bash_kernel==0.10.0 && python -m bash_kernel.install --sys-prefix   # optional
    python3 bench/kernel_bench.py [--lines 1000000] [--anchor-lines 100000]

Rows: start -> kernel_info and -> first cell done; `echo hi` round trip; first output of
`echo -n x; sleep 2`; `seq 1 N` wall time, IOPub stream messages and lines received; interrupt of
`sleep 30` -> reply status and time. The Dyno kernel runs against a fresh local manifold in a temporary
$DYNO_HOME with its output budget raised (--DynoKernel.output_budget), so all N lines reach the client.
bash_kernel gets --anchor-lines (it needs ~146 s per million lines). The last column is the
reference measurement of bash_kernel 0.10 from shared/reference/kernel-anchors.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.kernelspec import find_kernel_specs
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"kernel_info": "2.58 s", "first_cell": "-", "echo_p50": "105 ms", "first_output": "2.06 s",
             "seq": "146 s (1M)", "seq_messages": "997,757", "seq_lines": "lossy", "interrupt": "3 ms abort"}


def _shell(name: str, code: str) -> str:
    return "!" + code if name == "python3" else code


def measure(name: str, lines: int, extra: list[str]) -> dict:
    started = time.perf_counter()
    manager = KernelManager(kernel_name=name)
    manager.start_kernel(extra_arguments=extra)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    row = {"kernel_info": time.perf_counter() - started, "lines": lines}
    client.execute_interactive(_shell(name, "echo ready"), timeout=120, output_hook=lambda m: None)
    row["first_cell"] = time.perf_counter() - started
    trips = []
    for _ in range(30):
        t0 = time.perf_counter()
        client.execute_interactive(_shell(name, "echo hi"), timeout=30, output_hook=lambda m: None)
        trips.append(time.perf_counter() - t0)
    row["echo_p50"] = statistics.median(trips)
    first = []

    def first_stream(msg):
        if msg["msg_type"] == "stream" and not first:
            first.append(time.perf_counter())
    t0 = time.perf_counter()
    client.execute_interactive(_shell(name, "echo -n x; sleep 2"), timeout=30, output_hook=first_stream)
    row["first_output"] = (first[0] if first else time.perf_counter()) - t0
    streams, text = [0], []

    def count(msg):
        if msg["msg_type"] == "stream":
            streams[0] += 1
            text.append(msg["content"]["text"])
    t0 = time.perf_counter()
    client.execute_interactive(_shell(name, f"seq 1 {lines}"), timeout=900, output_hook=count)
    row["seq_time"], row["seq_messages"] = time.perf_counter() - t0, streams[0]
    numbers = [int(line) for line in "".join(text).splitlines() if line.strip().isdigit()]
    row["seq_intact"] = numbers == list(range(1, lines + 1))
    row["seq_lines"] = len(numbers)
    msg_id = client.execute(_shell(name, "sleep 30"))
    while client.get_iopub_msg(timeout=30)["msg_type"] != "execute_input":
        pass
    t0 = time.perf_counter()
    manager.interrupt_kernel()
    while True:
        reply = client.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    row["interrupt"] = time.perf_counter() - t0
    row["interrupt_status"] = reply["content"]["status"]
    t0 = time.perf_counter()
    usable = client.execute_interactive(_shell(name, "echo after"), timeout=30, output_hook=lambda m: None)
    row["usable_after"] = usable["content"]["status"] == "ok"
    client.stop_channels()
    manager.shutdown_kernel(now=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--anchor-lines", type=int, default=100_000, help="seq length for bash_kernel")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kernelbench-"))
    app_dir = home / "benchapp"
    app_dir.mkdir()
    (app_dir / "README").write_text("bench\n")
    os.environ.update(DYNO_HOME=str(home / "home"), DYNO_APP="benchapp")
    dyno = [sys.executable, "-m", "dynokernel.cli.main"]
    subprocess.run([*dyno, "apps:create", "benchapp", "--dir", str(app_dir)], check=True, capture_output=True)
    subprocess.run([*dyno, "deploy", "-a", "benchapp"], check=True, capture_output=True)
    specs = find_kernel_specs()
    if "dyno_bash" not in specs:
        sys.exit("dyno_bash is not installed: python -m dynokernel.kernel.install --sys-prefix")
    plan = [("dyno_bash", args.lines, ["--DynoKernel.output_budget=100000000"])]
    if "bash" in specs:
        plan.append(("bash", args.anchor_lines, []))
    if "python3" in specs:
        plan.append(("python3", args.lines, []))
    results = {}
    for name, lines, extra in plan:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(name, lines, extra)
    subprocess.run([*dyno, "manifold:stop"], capture_output=True)
    labels = {"dyno_bash": "Dyno Bash", "bash": "bash_kernel 0.10", "python3": "ipykernel !cmd"}
    names = list(results)
    rows = [("start -> kernel_info", "kernel_info", lambda r: f"{r['kernel_info']:.2f} s"),
            ("start -> first cell done", "first_cell", lambda r: f"{r['first_cell']:.2f} s"),
            ("`echo hi` round trip p50", "echo_p50", lambda r: f"{r['echo_p50'] * 1000:.1f} ms"),
            ("first output of `echo -n x; sleep 2`", "first_output", lambda r: f"{r['first_output']:.2f} s"),
            ("`seq 1 N` wall time", "seq", lambda r: f"{r['seq_time']:.2f} s ({r['lines'] // 1000}k)"),
            ("  IOPub stream messages", "seq_messages", lambda r: f"{r['seq_messages']:,}"),
            ("  lines received intact", "seq_lines",
             lambda r: f"{'yes' if r['seq_intact'] else 'NO'} ({r['seq_lines']:,})"),
            ("interrupt `sleep 30` -> reply", "interrupt",
             lambda r: f"{r['interrupt'] * 1000:.0f} ms {r['interrupt_status']}"
                       f"{'' if r['usable_after'] else ', stuck'}")]
    header = ["metric", *(labels.get(n, n) for n in names), "bash_kernel (reference)"]
    table = [[label, *(fmt(results[n]) for n in names), REFERENCE[key]] for label, key, fmt in rows]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for line in table:
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
