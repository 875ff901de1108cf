"""Manifold benchmarks (issue 2): dyno start, `dyno ps`, log ingest and tail, 100 dynos.

Each figure is printed beside its anchor from the same run:
  start:  API create -> the dyno's first instruction, vs subprocess spawning the same command
  ps:     `dyno ps` wall time, vs `heroku ps` (the real CLI, if scripts/install-heroku-cli.sh ran)
  ingest: 1,000,000 lines from a detached dyno, all stored, lines/s
  tail:   `dyno logs --tail` latency from the dyno's write to the CLI's print
  scale:  100 concurrent one-off dynos: all up, API p95 while they run, manifold RSS

    python3 bench/manifold_bench.py [--runs 200] [--sandbox copy|linux|auto]
"""
from __future__ import annotations

import argparse
import os
import re
import select
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


class Bench:
    def __init__(self, home: Path, sandbox: str) -> None:
        self.home = home
        self.env = dict(os.environ, DYNO_HOME=str(home), DYNO_SANDBOX=sandbox, DYNO_LOG_RETENTION="3000000")
        os.environ.update(DYNO_HOME=str(home), DYNO_SANDBOX=sandbox, DYNO_LOG_RETENTION="3000000")
        self.app_dir = home / "benchapp"
        self.app_dir.mkdir(parents=True)
        (self.app_dir / "Procfile").write_text("worker: sleep 1000\n")
        self.dyno("apps:create", "benchapp", "--dir", str(self.app_dir))
        self.dyno("deploy", "-a", "benchapp")
        from dynokernel.platform.app import App
        self.app = App("benchapp")

    def dyno(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dynokernel.cli.main", *args], env=self.env,
                              capture_output=True, text=True, check=True)

    def start_times(self, runs: int) -> tuple[list[float], list[float], str]:
        """Seconds from the create request to the dyno's first instruction ($EPOCHREALTIME)."""
        created = {}
        for _ in range(runs):
            before = time.time()
            run = self.app.start("echo START $EPOCHREALTIME", attach=False)
            created[run.name] = before
        self.wait_ended(list(created))
        ours = []
        for line in self.app.logs(lines=runs * 8, source="app"):
            match = re.search(r"app\[(run\.\d+)\]: START (\d+\.\d+)", line)
            if match and match.group(1) in created:
                ours.append(float(match.group(2)) - created[match.group(1)])
        floor = []
        for _ in range(runs):
            before = time.time()
            out = subprocess.run(["bash", "-c", "echo START $EPOCHREALTIME"], capture_output=True, text=True).stdout
            floor.append(float(out.split()[1]) - before)
        sandbox = self.app.client.request("GET", "/manifold")["sandbox"]
        return ours, floor, sandbox

    def wait_ended(self, names: list[str]) -> None:
        pending = set(names)
        for line in self.app.logs(lines=len(names) * 8, source="heroku", tail=True):
            match = re.search(r"heroku\[(run\.\d+)\]: State changed from up to complete", line)
            if match:
                pending.discard(match.group(1))
            if not pending:
                return

    def ps_times(self, runs: int) -> tuple[list[float], list[float] | None]:
        ours = []
        for _ in range(runs):
            before = time.perf_counter()
            self.dyno("ps", "-a", "benchapp")
            ours.append(time.perf_counter() - before)
        heroku = ROOT / ".cache" / "heroku" / "node_modules" / "heroku" / "bin" / "run.js"
        if not heroku.exists():
            return ours, None
        env = dict(self.env)
        for line in self.dyno("heroku-env").stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'\"")
        theirs = []
        for _ in range(max(3, runs // 4)):
            before = time.perf_counter()
            subprocess.run(["node", str(heroku), "ps", "-a", "benchapp"], env=env, capture_output=True, check=True)
            theirs.append(time.perf_counter() - before)
        return ours, theirs

    def ingest(self, count: int) -> tuple[float, int, bool]:
        """Lines/s from the dyno's start to its last line stored, and whether all arrived in order."""
        run = self.app.start(f"seq 1 {count}", attach=False)
        self.wait_ended([run.name])
        db = sqlite3.connect(f"file:{self.home / 'state.db'}?mode=ro", uri=True)
        rows = db.execute("SELECT ts, message FROM logs WHERE dyno = ? AND source = 'app' ORDER BY id",
                          (run.name,)).fetchall()
        first = db.execute("SELECT ts FROM logs WHERE dyno = ? AND message LIKE 'Starting process%'",
                           (run.name,)).fetchone()[0]
        intact = [int(m) for _, m in rows] == list(range(1, count + 1))
        elapsed = _epoch(rows[-1][0]) - _epoch(first)
        return count / elapsed, len(rows), intact

    def tail_latency(self, lines: int) -> list[float]:
        tail = subprocess.Popen([sys.executable, "-m", "dynokernel.cli.main", "logs", "-t", "-n", "1", "-s", "app",
                                 "-a", "benchapp"], env=self.env, stdout=subprocess.PIPE, bufsize=0)
        try:
            _read_until(tail.stdout, b"\n")  # the newest stored line: the tail is connected
            self.app.start(f"for i in $(seq {lines}); do echo LAT $EPOCHREALTIME; sleep 0.02; done", attach=False)
            latencies = []
            while len(latencies) < lines:
                line = _read_until(tail.stdout, b"\n")
                match = re.search(rb"LAT (\d+\.\d+)", line)
                if match:
                    latencies.append(time.time() - float(match.group(1)))
            return latencies
        finally:
            tail.kill()
            tail.wait()

    def scale(self, count: int) -> tuple[float, list[float], int]:
        before = time.perf_counter()
        for _ in range(count):
            self.app.start("sleep 600", attach=False)
        up = sum(1 for d in self.app.ps() if d["state"] == "up")
        all_up = time.perf_counter() - before
        latencies = []
        for _ in range(200):
            t0 = time.perf_counter()
            self.app.ps()
            latencies.append(time.perf_counter() - t0)
        pid = self.app.client.request("GET", "/manifold")["pid"]
        rss = _rss_kb(pid)
        assert up == count, f"only {up} of {count} dynos up"
        self.app.client.request("DELETE", f"{self.app.path}/dynos")
        return all_up, latencies, rss


def _epoch(stamp: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(stamp).timestamp()


def _read_until(stream, marker: bytes, timeout: float = 30) -> bytes:
    data = b""
    while marker not in data:
        if not select.select([stream], [], [], timeout)[0]:
            raise TimeoutError(f"no {marker!r} within {timeout} s")
        byte = stream.read(1)
        if not byte:
            break
        data += byte
    return data


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.sandbox)
        try:
            report(bench, args)
        finally:
            subprocess.run([sys.executable, "-m", "dynokernel.cli.main", "manifold:stop"], env=bench.env,
                           capture_output=True)


def report(bench: Bench, args) -> None:
    ours, floor, sandbox = bench.start_times(args.runs)
    print(f"dyno start ({args.runs} runs, sandbox {sandbox}): API create -> first instruction")
    print(f"  manifold    p50 {ms(pct(ours, 50))}  p95 {ms(pct(ours, 95))}")
    print(f"  subprocess  p50 {ms(pct(floor, 50))}  p95 {ms(pct(floor, 95))}   (floor)")
    print(f"  difference  p50 {ms(pct(ours, 50) - pct(floor, 50))}   (target <= 20 ms)")
    ps, heroku = bench.ps_times(20)
    print(f"dyno ps wall time: median {ms(statistics.median(ps))}   (target <= 150 ms)")
    if heroku:
        print(f"heroku ps wall time: median {ms(statistics.median(heroku))}   (anchor: the Node CLI)")
    rate, stored, intact = bench.ingest(args.lines)
    print(f"log ingest: {stored:,} of {args.lines:,} lines stored, in order: {intact}; {rate:,.0f} lines/s"
          "   (target >= 100,000)")
    latency = bench.tail_latency(50)
    print(f"dyno logs --tail latency: p50 {ms(pct(latency, 50))}  p95 {ms(pct(latency, 95))}   (target p50 <= 50 ms)")
    all_up, api, rss = bench.scale(100)
    print(f"100 concurrent dynos: all up after {all_up:.2f} s; GET dynos p50 {ms(pct(api, 50))} "
          f"p95 {ms(pct(api, 95))} (target p95 <= 50 ms); manifold RSS {rss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
