"""The backend registry, the built-in backends and the end-of-session rollback."""

from __future__ import annotations

import pytest

from pytest_chaos import ConfigurationError, ToxiproxyClient
from pytest_chaos.backends import BackendOptions, get_backend, register_backend


def test_builtin_backends_load_lazily_by_name() -> None:
    from pytest_chaos.backends.embedded import EmbeddedBackend
    from pytest_chaos.backends.external import ExternalBackend

    assert get_backend("embedded") is EmbeddedBackend
    assert get_backend("external") is ExternalBackend


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_backend("nope")
    assert "unknown chaos backend 'nope'" in str(info.value)
    assert "'embedded'" in str(info.value) and "'external'" in str(info.value)


def test_a_plugin_can_register_a_backend() -> None:
    class Mine:
        kind = "mine-for-test"
        url = "http://127.0.0.1:1"
        embedded = False

        def __init__(self, options: BackendOptions) -> None:
            self.options = options

        def start(self) -> None: ...

        def stop(self) -> None: ...

    register_backend("mine-for-test", Mine)
    backend = get_backend("mine-for-test")(BackendOptions(seed=3))
    assert isinstance(backend, Mine) and backend.options.seed == 3


def test_embedded_backend_starts_a_server_that_answers_and_stops() -> None:
    backend = get_backend("embedded")(BackendOptions(seed=1))
    backend.start()
    try:
        with ToxiproxyClient(backend.url, embedded=True) as client:
            assert client.version()["version"] == "2.12.0"
        assert "running" in repr(backend)
    finally:
        backend.stop()
        backend.stop()  # idempotent
    assert "stopped" in repr(backend)


def test_external_backend_needs_a_url() -> None:
    with pytest.raises(ConfigurationError, match="--toxiproxy-url=http://HOST:8474"):
        get_backend("external")(BackendOptions())
