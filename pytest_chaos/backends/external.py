"""The external backend: an existing Toxiproxy server (``--toxiproxy-url``).

Typically a shared staging server. pytest-chaos never touches proxies that are not its
own: every name it creates starts ``chaos-<run>-<worker>-``, and at start it removes only
leftovers of dead pytest-chaos runs (see ``pytest_chaos.experiment``).
"""

from __future__ import annotations

from pytest_chaos.backends import BackendOptions, register_backend
from pytest_chaos.client import ToxiproxyClient
from pytest_chaos.errors import ConfigurationError, ProxyAPIError
from pytest_chaos.experiment import dead_run_proxies

__all__ = ["ExternalBackend"]


class ExternalBackend:
    """Uses the server at ``options.url``; starts and stops nothing."""

    kind = "external"

    def __init__(self, options: BackendOptions) -> None:
        if not options.url:
            raise ConfigurationError(
                "--chaos-backend=external needs the server's URL; pass "
                "--toxiproxy-url=http://HOST:8474 (ini: chaos_toxiproxy_url)."
            )
        self.options = options
        self.url = options.url.rstrip("/")
        self.embedded = False
        self.removed_leftovers: list[str] = []

    def start(self) -> None:
        """Check the server answers, detect the embedded server, clean dead runs."""
        with ToxiproxyClient(self.url) as client:
            try:
                version = client.version()
            except ProxyAPIError as exc:
                raise ConfigurationError(
                    f"--toxiproxy-url={self.url}: no Toxiproxy API answers there ({exc.error}). "
                    "Start the server or fix the URL."
                ) from exc
            # a pytest-chaos embedded server run standalone keeps its extensions
            self.embedded = str(version.get("implementation", "")).startswith("pytest-chaos")
            for name in dead_run_proxies(client.proxies(), current_run=self.options.run_id):
                try:
                    client.delete_proxy(name)
                except ProxyAPIError as exc:
                    if exc.status != 404:  # another worker was quicker
                        raise
                self.removed_leftovers.append(name)

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""

    def __repr__(self) -> str:
        return f"<ExternalBackend {self.url} embedded={self.embedded}>"


register_backend("external", ExternalBackend)
