"""The confirmation that destructive commands ask for, as the Heroku CLI asks it."""
from __future__ import annotations

import sys

from ..platform.errors import PlatformError


def confirm_destructive(app: str, confirm: str | None, warning: str) -> None:
    """Heroku's guard on destructive commands: --confirm APP, or APP typed at the prompt."""
    if confirm == app:
        return
    if confirm is not None:
        raise PlatformError(f"Confirmation {confirm} did not match {app}. Aborted.")
    if not sys.stdin.isatty():
        raise PlatformError(f"Confirmation needed: re-run with --confirm {app}")
    print(f" \u203a   Warning: Destructive Action\n \u203a   {warning}", file=sys.stderr)
    if input(f" \u203a   To proceed, type {app} or re-run this command with --confirm {app}\n\n> ") != app:
        raise PlatformError(f"Confirmation did not match {app}. Aborted.")
