"""The embedded backend: pytest-chaos's own Toxiproxy-compatible server, in process.

One server per xdist worker, started on a free loopback port the first time a test
needs it and stopped at the end of the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chaos.backends import BackendOptions, register_backend

if TYPE_CHECKING:
    from pytest_chaos.proxy import EmbeddedServer

__all__ = ["EmbeddedBackend"]


class EmbeddedBackend:
    """Runs an :class:`~pytest_chaos.proxy.EmbeddedServer` on ``127.0.0.1:<free port>``."""

    kind = "embedded"
    embedded = True

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.url = ""
        self._server: EmbeddedServer | None = None

    def start(self) -> None:
        """Start the server (imports the asyncio proxy only now)."""
        if self._server is not None:
            return
        from pytest_chaos.proxy import EmbeddedServer

        self._server = EmbeddedServer(host="127.0.0.1", port=0, seed=self.options.seed).start()
        self.url = self._server.url

    def stop(self) -> None:
        """Stop the server and every proxy in it."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        return f"<EmbeddedBackend {self.url or '-'} {state}>"


register_backend("embedded", EmbeddedBackend)
