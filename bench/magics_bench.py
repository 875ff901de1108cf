"""Benchmarks of the magics and panels, in a real IPython kernel against a fresh local manifold.

    python3 bench/magics_bench.py [--runs 20] [--changes 10] [--idle 5]

1. `%dynorun echo hi` end to end vs `!echo hi` in the same kernel (target: within 50 ms).
2. Widget update latency: a dyno's state change (its `heroku[...]: State changed` log line) to the
   ps panel's comm message on IOPub (target: p50 <= 200 ms).
3. Kernel CPU while a ps and a logs panel sit idle (target: ~0).
"""
from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_APP = ROOT / "examples" / "sampleapp"


def dyno(env: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dynokernel.cli.main", *args], env=env, capture_output=True,
                          text=True, cwd=str(SAMPLE_APP))
    if done.returncode:
        raise SystemExit(f"dyno {' '.join(args)} failed: {done.stderr}")


class Kernel:
    def __init__(self, env: dict) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(SAMPLE_APP))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.comms: list[tuple[float, str]] = []  # (wall time, state) of widget updates seen

    def execute(self, code: str) -> float:
        """Seconds from the request to its reply; also drains IOPub (keeping widget updates)."""
        start = time.perf_counter()
        msg_id = self.kc.execute(code)
        while True:
            reply = self.kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.perf_counter() - start
        if reply["content"]["status"] != "ok":
            raise SystemExit(f"{code!r} failed: {reply['content']}")
        self.drain(0)
        return elapsed

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()) or 0.001)
            except queue.Empty:
                return
            if msg["msg_type"] == "comm_msg":
                self.comms.append((time.time(), repr(msg["content"]["data"].get("state", {}))))

    def wait_comm(self, text: str, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for wall, state in self.comms:
                if text in state:
                    self.comms.clear()
                    return wall
            self.drain(0.05)
        raise TimeoutError(f"no widget update with {text!r}")

    def cpu_seconds(self) -> float:
        pid = self.km.provisioner.process.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_run(kernel: Kernel, runs: int) -> None:
    for _ in range(3):  # warm up: the app object, connections, page cache
        kernel.execute("%dynorun echo hi")
        kernel.execute("!echo hi")
    dyno_times, shell_times = [], []
    for _ in range(runs):
        dyno_times.append(kernel.execute("%dynorun echo hi"))
        shell_times.append(kernel.execute("!echo hi"))
    d, s = statistics.median(dyno_times) * 1000, statistics.median(shell_times) * 1000
    print(f"%dynorun echo hi   median {d:7.1f} ms   p90 {pct(dyno_times, .9) * 1000:7.1f} ms")
    print(f"!echo hi           median {s:7.1f} ms   p90 {pct(shell_times, .9) * 1000:7.1f} ms")
    print(f"difference         median {d - s:7.1f} ms   (target <= 50 ms)  {'OK' if d - s <= 50 else 'MISSED'}")


def bench_widget(kernel: Kernel, changes: int) -> None:
    from dynokernel.platform.app import App
    app = App("sampleapp")
    kernel.execute("p = %dynops\np")
    kernel.drain(0.5)
    kernel.comms.clear()
    latencies = []
    for _ in range(changes):
        run = app.run("sleep 0.3", detach=True)
        up_seen = kernel.wait_comm(">up<")
        done_seen = kernel.wait_comm(">complete<")
        stamps = {}
        for line in app.logs(dyno=run.name, source="heroku"):
            for state in ("up", "complete"):
                if line.endswith(f"to {state}"):
                    stamps[state] = datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
        latencies += [up_seen - stamps["up"], done_seen - stamps["complete"]]
    ms = [x * 1000 for x in latencies]
    p50 = statistics.median(ms)
    print(f"widget update      p50 {p50:7.1f} ms   p90 {pct(ms, .9):7.1f} ms   max {max(ms):7.1f} ms   "
          f"({len(ms)} state changes; target p50 <= 200 ms)  {'OK' if p50 <= 200 else 'MISSED'}")


def bench_idle(kernel: Kernel, seconds: float) -> None:
    kernel.execute("l = %dynologs --tail\nl")
    kernel.drain(1.0)
    before, start = kernel.cpu_seconds(), time.monotonic()
    kernel.drain(seconds)
    used = kernel.cpu_seconds() - before
    share = 100 * used / (time.monotonic() - start)
    print(f"idle kernel CPU    {share:7.2f} %   ({used * 1000:.0f} ms CPU in {seconds:g} s with a ps and a logs panel "
          f"open; target ~0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dyno-bench-") as home:
        env = dict(os.environ, DYNO_HOME=home)
        env.pop("DYNO_APP", None)
        env.pop("DYNO_API_URL", None)
        os.environ.update(DYNO_HOME=home)
        dyno(env, "manifold:start")
        kernel = None
        try:
            dyno(env, "apps:create", "sampleapp", "--dir", str(SAMPLE_APP))
            dyno(env, "deploy", "-a", "sampleapp")
            kernel = Kernel(env)
            kernel.execute("%load_ext dynokernel")
            bench_run(kernel, args.runs)
            bench_widget(kernel, args.changes)
            bench_idle(kernel, args.idle)
        finally:
            if kernel is not None:
                kernel.stop()
            dyno(env, "manifold:stop")


if __name__ == "__main__":
    main()
