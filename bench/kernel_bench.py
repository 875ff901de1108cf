"""Dyno Bash vs bash_kernel (the anchor), same run, same machine.

    pip install bash_kernel==0.10.0 && python -m bash_kernel.install --sys-prefix
    python3 bench/kernel_bench.py [--lines 200000]

Rows: start -> kernel_info and -> first cell done; `echo hi` round trip; `seq 1 N` wall time,
IOPub stream messages and lines received; interrupt of `sleep 30` -> reply status and time.
The Dyno kernel runs against a fresh local manifold in a temporary $DYNO_HOME.
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


def measure(name: str, lines: int) -> dict:
    started = time.perf_counter()
    manager = KernelManager(kernel_name=name)
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    row = {"kernel_info": time.perf_counter() - started}
    client.execute_interactive("echo ready", timeout=120, output_hook=lambda m: None)
    row["first_cell"] = time.perf_counter() - started
    trips = []
    for _ in range(30):
        t0 = time.perf_counter()
        client.execute_interactive("echo hi", timeout=30, output_hook=lambda m: None)
        trips.append(time.perf_counter() - t0)
    row["echo_p50"] = statistics.median(trips)
    streams, text = [0], []

    def count(msg):
        if msg["msg_type"] == "stream":
            streams[0] += 1
            text.append(msg["content"]["text"])
    t0 = time.perf_counter()
    client.execute_interactive(f"seq 1 {lines}", timeout=900, output_hook=count)
    row["seq_time"], row["seq_messages"] = time.perf_counter() - t0, streams[0]
    row["seq_lines"] = sum(1 for line in "".join(text).splitlines() if line.strip().isdigit())
    msg_id = client.execute("sleep 30")
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
    client.stop_channels()
    manager.shutdown_kernel(now=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kernelbench-"))
    app_dir = home / "benchapp"
    app_dir.mkdir()
    (app_dir / "README").write_text("bench\n")
    os.environ.update(DYNO_HOME=str(home / "home"), DYNO_APP="benchapp")
    dyno = [sys.executable, "-m", "dynokernel.cli.main"]
    subprocess.run([*dyno, "apps:create", "benchapp", "--dir", str(app_dir)], check=True, capture_output=True)
    subprocess.run([*dyno, "deploy", "-a", "benchapp"], check=True, capture_output=True)
    kernels = [k for k in ("dyno_bash", "bash") if k in find_kernel_specs()]
    results = {name: measure(name, args.lines) for name in kernels}
    subprocess.run([*dyno, "manifold:stop"], capture_output=True)
    print(f"{'metric':44}" + "".join(f"{name:>22}" for name in kernels))
    rows = [("start -> kernel_info", lambda r: f"{r['kernel_info']:.2f} s"),
            ("start -> first cell done", lambda r: f"{r['first_cell']:.2f} s"),
            ("echo hi round trip p50", lambda r: f"{r['echo_p50'] * 1000:.1f} ms"),
            (f"seq 1 {args.lines} wall time", lambda r: f"{r['seq_time']:.2f} s"),
            ("  IOPub stream messages", lambda r: f"{r['seq_messages']}"),
            ("  lines in the cell", lambda r: f"{r['seq_lines']}"),
            ("interrupt sleep 30 -> reply", lambda r: f"{r['interrupt'] * 1000:.0f} ms {r['interrupt_status']}")]
    for label, fmt in rows:
        print(f"{label:44}" + "".join(f"{fmt(results[name]):>22}" for name in kernels))


if __name__ == "__main__":
    main()
