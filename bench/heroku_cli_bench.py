"""Per-command wall time: the real Heroku CLI (heroku@11.10.0) vs `dyno`, against one manifold.

    python3 bench/heroku_cli_bench.py [--repeat 5]

Both clients run the same commands against the same local manifold (a fresh $DYNO_HOME with
the sample app deployed): `run -- true` (attached, rendezvous over TLS), `ps`, `logs -n 100`,
`run:detached`. `node --version`/`heroku --version` show the Node start-up floor of the
Heroku column; `python -c pass` the interpreter floor of ours. Medians in milliseconds.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from heroku_fixtures import HerokuManifold  # installs the CLI under .cache/heroku if needed
    with tempfile.TemporaryDirectory(prefix="heroku-bench-") as tmp:
        hm = HerokuManifold(Path(tmp) / "home").start()
        try:
            app = hm.app
            cases = [
                ("floor", ["--version"], ["-c", "pass"]),
                ("run -- true", ["run", "-a", app, "--", "true"], ["run", "-a", app, "--", "true"]),
                ("run:detached", ["run:detached", "-a", app, "--", "true"], ["run:detached", "-a", app, "--", "true"]),
                ("ps", ["ps", "-a", app], ["ps", "-a", app]),
                ("logs -n 100", ["logs", "-a", app, "-n", "100"], ["logs", "-a", app, "-n", "100"]),
            ]
            print(f"{'command':<16}{'heroku (ms)':>14}{'dyno (ms)':>12}{'ratio':>8}")
            for label, heroku_args, dyno_args in cases:
                if label == "floor":
                    heroku_argv = hm.heroku_argv(tuple(heroku_args))
                    dyno_argv = [sys.executable, *dyno_args]
                else:
                    heroku_argv = hm.heroku_argv(tuple(heroku_args))
                    dyno_argv = [sys.executable, "-m", "dynokernel.cli.main", *dyno_args]
                h = _median(heroku_argv, hm.cli_env(), hm.home, args.repeat)
                d = _median(dyno_argv, hm.env, hm.home, args.repeat)
                name = "floor (startup)" if label == "floor" else label
                print(f"{name:<16}{h:>14.0f}{d:>12.0f}{h / d:>7.1f}x")
        finally:
            hm.stop()
    return 0


def _median(argv: list[str], env: dict, cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')[-300:]}")
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
