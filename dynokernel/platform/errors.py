"""Typed errors of the platform client; the CLI prints their message and exits non-zero."""
from __future__ import annotations


class PlatformError(Exception):
    """Something the user can act on; `str(error)` is a one-line message."""


class ApiError(PlatformError):
    """The API answered with an error (Heroku shape: id and message)."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status, self.id, self.message = status, error_id, message


class ManifoldUnavailable(PlatformError):
    """The manifold could not be reached or started."""
