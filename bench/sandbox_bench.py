"""Dyno start time per sandbox and slug size: prepare + spawn → the dyno's first output byte.

    python bench/sandbox_bench.py                      # 1 MB, 100 MB, 1 GB slugs; linux vs copy
    python bench/sandbox_bench.py --runs 21 --sizes 1M,100M --sandboxes linux

The floor is a bare `subprocess.Popen(["echo", ...])`.  Each dyno runs `echo ready` and is
cleaned up after it exits (cleanup time is shown apart).  Slugs are written once into a
temporary folder (`--dir` to choose where; it is removed at the end).  Prints medians (p50)
and p90 over `--runs` runs; the copy sandbox gets fewer runs for big slugs (`--copy-budget`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dynokernel.manifold.sandbox import SANDBOXES, DynoSpec, Sandbox  # noqa: E402

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
ARGV = ["echo", "ready"]


def parse_size(text: str) -> int:
    return int(text[:-1]) * UNITS[text[-1].upper()] if text[-1].upper() in UNITS else int(text)


def make_slug(path: Path, size: int) -> None:
    """A slug of about `size` bytes: a Procfile and up to 1,000 data files in 10 folders."""
    path.mkdir(parents=True)
    (path / "Procfile").write_text("web: echo ready\n")
    files = max(1, min(1000, size // (64 << 10)))
    chunk = os.urandom(size // files)
    for i in range(files):
        folder = path / f"d{i % 10}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.bin").write_bytes(chunk)


def run_to_end(start: float, proc: subprocess.Popen, read: int) -> float:
    """Seconds from `start` to the first byte on `read`; then drain the output and reap the process."""
    try:
        if not os.read(read, 1):
            raise RuntimeError("the process exited without output")
        first = time.perf_counter() - start
        while os.read(read, 65536):
            pass
    finally:
        os.close(read)
    if proc.wait() != 0:
        raise RuntimeError(f"the process exited with status {proc.returncode}")
    return first


def bare_spawn(workdir: Path) -> tuple[float, float]:
    """The floor: a plain Popen of the same command."""
    start = time.perf_counter()
    read, write = os.pipe()
    try:
        proc = subprocess.Popen(ARGV, stdin=subprocess.DEVNULL, stdout=write, stderr=write, cwd=workdir)
    finally:
        os.close(write)
    return run_to_end(start, proc, read), 0.0


def dyno_start(sandbox: Sandbox, slug: Path, dynos: Path) -> tuple[float, float]:
    """One dyno: seconds to its first output byte, and seconds its cleanup took."""
    dyno_id = str(uuid.uuid4())
    spec = DynoSpec(dyno_id=dyno_id, name="run.1", slug_dir=slug, work_dir=dynos / dyno_id, argv=ARGV,
                    env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"})
    start = time.perf_counter()
    launch = sandbox.prepare(spec)
    read, write = os.pipe()
    try:
        proc = sandbox.spawn(launch, subprocess.DEVNULL, write, write, tty=False)
    finally:
        os.close(write)
    started = run_to_end(start, proc, read)
    start = time.perf_counter()
    sandbox.cleanup(spec)
    return started, time.perf_counter() - start


def measure(run, runs: int) -> tuple[float, float, float, int]:
    """p50 and p90 start (ms), p50 cleanup (ms), runs; the first run only warms caches."""
    run()
    samples = [run() for _ in range(runs)]
    starts = sorted(s for s, _ in samples)
    return (statistics.median(starts) * 1000, starts[int(0.9 * (len(starts) - 1))] * 1000,
            statistics.median(c for _, c in samples) * 1000, len(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="1M,100M,1G")
    parser.add_argument("--sandboxes", default="linux,copy")
    parser.add_argument("--copy-budget", default="2G", help="bytes the copy sandbox may copy per row")
    parser.add_argument("--dir", default=None, help="where to write the slugs (default: a temp folder)")
    args = parser.parse_args()
    sizes = [(label, parse_size(label)) for label in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-", dir=args.dir) as tmp:
        base = Path(tmp)
        for label, size in sizes:
            make_slug(base / "slugs" / label, size)
        rows = [("bare Popen(echo)", "-", *measure(lambda: bare_spawn(base), args.runs))]
        for name in args.sandboxes.split(","):
            cls = SANDBOXES[name]
            if not cls.available():
                print(f"# {name}: not available on this machine", file=sys.stderr)
                continue
            sandbox = cls(base / "home")
            for label, size in sizes:
                runs = args.runs if name != "copy" else max(3, min(args.runs, parse_size(args.copy_budget) // size))
                run = lambda: dyno_start(sandbox, base / "slugs" / label, base / "home" / "dynos")  # noqa: E731
                rows.append((sandbox.name, label, *measure(run, runs)))
    print(f"{'sandbox':<18} {'slug':>5} {'runs':>4} {'start p50 ms':>12} {'start p90 ms':>12} {'cleanup p50 ms':>14}")
    for name, label, p50, p90, cleanup, runs in rows:
        print(f"{name:<18} {label:>5} {runs:>4} {p50:>12.1f} {p90:>12.1f} {cleanup:>14.1f}")


if __name__ == "__main__":
    main()
