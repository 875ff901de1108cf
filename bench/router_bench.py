"""Router throughput and added latency: wrk through the app's router vs straight at its web dyno.

    python3 bench/router_bench.py [--runs 3] [--seconds 5] [--connections 16]

Starts a manifold in a temporary $DYNO_HOME, an app whose web process is a small asyncio HTTP/1.1
server (keep-alive, 2-byte body), scales web=1, then alternates wrk runs against the dyno's $PORT
(the anchor) and against the router's port, and prints medians side by side. Needs wrk
(`apt-get install wrk`). Targets: >= 5,000 req/s through the router, <= 1 ms added p50.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKEND = r'''
import asyncio, os
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
async def serve(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(os.environ["PORT"]))
    await server.serve_forever()
asyncio.run(main())
'''


def dyno(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DYNO_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "dynokernel.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float]:
    """(requests/s, p50 latency in ms)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def start_app(home: Path) -> tuple[int, int]:
    """The router's port and the web dyno's $PORT."""
    app_dir = home / "benchapp"
    app_dir.mkdir(parents=True)
    (app_dir / "server.py").write_text(BACKEND)
    (app_dir / "Procfile").write_text("web: python3 server.py\n")
    for args in (["manifold:start"], ["apps:create", "benchapp", "--dir", str(app_dir)], ["deploy", "-a", "benchapp"],
                 ["ps:scale", "web=1", "-a", "benchapp"]):
        done = dyno(home, *args)
        if done.returncode:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(d["state"] == "up" for d in json.loads(dyno(home, "ps", "--json", "-a", "benchapp").stdout)):
            break
        time.sleep(0.1)
    router = int(json.loads(dyno(home, "apps:info", "--json", "-a", "benchapp").stdout)["web_url"].rsplit(":", 1)[1]
                 .strip("/"))
    with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True) as db:  # the manifold's own record
        (web_port,) = db.execute("SELECT port FROM dynos WHERE name = 'web.1' AND state = 'up'").fetchone()
    return router, web_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    home = Path(tempfile.mkdtemp(prefix="router-bench-"))
    try:
        router, web = start_app(home)
        direct, routed = [], []
        for _ in range(args.runs):
            direct.append(wrk(f"http://127.0.0.1:{web}/", args.seconds, args.connections))
            routed.append(wrk(f"http://127.0.0.1:{router}/", args.seconds, args.connections))
        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.runs} runs each, medians")
        print(f"{'':24}{'req/s':>10}{'p50 ms':>10}")
        for label, rows in (("web dyno directly", direct), ("through the router", routed)):
            print(f"{label:24}{statistics.median(r for r, _ in rows):>10,.0f}"
                  f"{statistics.median(p for _, p in rows):>10.3f}")
        added = statistics.median(p for _, p in routed) - statistics.median(p for _, p in direct)
        print(f"router added p50: {added:.3f} ms (target <= 1 ms); router req/s target >= 5,000")
    finally:
        dyno(home, "manifold:stop")
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
