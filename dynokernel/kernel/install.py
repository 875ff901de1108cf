"""Install the Dyno kernelspecs: `python -m dynokernel.kernel.install [--user|--sys-prefix|--prefix P]`."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

SPECS = Path(__file__).resolve().parents[2] / "kernelspec"
NAMES = ("dyno_bash", "dyno_python", "dyno_irb", "dyno_rails", "dyno_node")


def spec_dir(name: str) -> Path:
    """The kernelspec folder shipped with the package (source tree or installed data)."""
    for base in (SPECS, Path(sys.prefix) / "share" / "dynokernel" / "kernelspec"):
        if (base / name / "kernel.json").exists():
            return base / name
    raise FileNotFoundError(f"kernelspec {name} not found next to the package")


def install(user: bool = False, prefix: str | None = None) -> list[str]:
    """Install every Dyno kernelspec, pointing it at this Python; returns where they went."""
    manager = KernelSpecManager()
    installed = []
    for name in NAMES:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / name
            shutil.copytree(spec_dir(name), target)
            spec = json.loads((target / "kernel.json").read_text())
            spec["argv"][0] = sys.executable
            (target / "kernel.json").write_text(json.dumps(spec, indent=1))
            installed.append(manager.install_kernel_spec(str(target), name, user=user, prefix=prefix))
    return installed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynokernel.kernel.install", description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (e.g. a venv)")
    where.add_argument("--prefix", help="install under this prefix")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    for path in install(user=args.user, prefix=prefix):
        print(f"Installed {Path(path).name} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
