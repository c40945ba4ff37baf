"""--toxiproxy-url: an existing server, shared names and leftovers of dead runs."""

from __future__ import annotations

import os

import pytest

from pytest_chaos.client import ToxiproxyClient
from pytest_chaos.experiment._names import new_run_id, server_name


def test_external_server_runs_the_tests_and_cleans_only_dead_runs(
    chaos_pytester: pytest.Pytester, external_server: tuple[str, ToxiproxyClient]
) -> None:
    url, client = external_server
    # a run from another host long ago, a dead pid on this host, a live run (this
    # process), someone else's proxy and a name that only looks like ours
    dead = server_name("1.0000.7ffffffe", "gw0", "redis")
    live = server_name(new_run_id(pid=os.getpid()), "gw1", "redis")
    dead_same_host = server_name(new_run_id(now=1, pid=0x7FFFFFFE), "master", "pg")
    for name in (dead, live, dead_same_host, "someone-elses-proxy", "chaos-not-a-run-x"):
        client.create_proxy(name, upstream="127.0.0.1:9", enabled=False)
    chaos_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["echo"])
        def test_it(chaos, echo, toxiproxy):
            assert toxiproxy.backend == "external"
            proxy = chaos.proxy("echo", upstream=echo.address)
            with proxy.latency(100):
                assert echo.rtt(proxy.address) >= 0.09
        """
    )
    result = chaos_pytester.runpytest("-p", "no:cacheprovider", f"--toxiproxy-url={url}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"chaos: backend=external seed=* url={url}"])
    left = set(client.proxies())
    # the other host's very old run and this host's dead pid are gone; the rest stays
    assert left == {live, "someone-elses-proxy", "chaos-not-a-run-x"}


def test_unreachable_server_is_a_clear_error(chaos_pytester: pytest.Pytester) -> None:
    import socket

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chaos_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["x"])
        @pytest.mark.parametrize("i", range(3))
        def test_it(chaos, i):
            pass
        """
    )
    result = chaos_pytester.runpytest(
        "-p", "no:cacheprovider", f"--toxiproxy-url=http://127.0.0.1:{port}"
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [f"*--toxiproxy-url=http://127.0.0.1:{port}: no Toxiproxy API answers there*"]
    )
