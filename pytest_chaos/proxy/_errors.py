"""Errors of the embedded proxy's admin surface.

:class:`ApiError` carries the HTTP status and the message that the Toxiproxy API puts in
its error body, ``{"error": message, "status": status}``. The data path and the
:class:`~pytest_chaos.proxy._core.ProxyManager` raise the subclasses; the HTTP layer turns
any :class:`ApiError` into a response without knowing which one it is.
"""

from __future__ import annotations

__all__ = ["ApiError", "BadRequest", "BindError", "Conflict", "NotFound"]


class ApiError(Exception):
    """An error the admin API answers with ``status`` and ``message``."""

    status: int = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, object]:
        """The Toxiproxy error body."""
        return {"error": self.message, "status": self.status}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class NotFound(ApiError):
    """404: no proxy or toxic of that name (``proxy not found``, ``toxic not found``)."""

    status = 404


class Conflict(ApiError):
    """409: the name is taken (``proxy already exists``, ``toxic already exists``)."""

    status = 409


class BadRequest(ApiError):
    """400: the request is malformed or asks for something the proxy refuses."""

    status = 400


class BindError(ApiError):
    """500: the listener could not bind; the message carries the OS error like Go does."""

    status = 500
