"""`python -m dynokernel.kernel --profile bash -f CONNECTION_FILE`: start a Dyno kernel."""
from __future__ import annotations

import sys

from ipykernel.kernelapp import IPKernelApp

from .kernel import DynoKernel


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--profile" in argv:
        index = argv.index("--profile")
        argv[index:index + 2] = [f"--DynoKernel.profile_name={argv[index + 1]}"]
    IPKernelApp.launch_instance(argv=argv, kernel_class=DynoKernel)


main()
