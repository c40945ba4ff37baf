"""Real bytes through chaos.proxy: faults a client on loopback can observe."""

from __future__ import annotations

import pytest


def test_latency_is_observed_by_a_client_and_healed(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["echo"])
        def test_it(chaos, echo):
            proxy = chaos.proxy("echo", upstream=echo.address)
            assert proxy.address == f"{proxy.host}:{proxy.port}"
            base = echo.rtt(proxy.address)
            with proxy.latency(300) as fault:
                assert "latency" in repr(proxy)
                slow = echo.rtt(proxy.address)
            assert not fault.active and "toxics=[]" in repr(proxy)
            healed = echo.rtt(proxy.address)
            # generous: the fault adds ~0.3 s; the healed path is back to normal
            assert slow >= 0.25, slow
            assert healed < slow - 0.1, (base, slow, healed)
            stats = proxy.stats()
            assert stats["connections_accepted"] == 3
            assert stats["bytes_upstream"] == stats["bytes_downstream"] == 12
            kinds = [(e.kind, e.name) for e in chaos.timeline.events]
            assert kinds == [("inject", "latency"), ("heal", "latency")]
        """
    )
    result = chaos_pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_down_refuses_connections_and_heal_reopens_the_same_port(
    chaos_pytester: pytest.Pytester,
) -> None:
    chaos_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["echo"])
        def test_it(chaos, echo):
            proxy = chaos.proxy("echo", upstream=echo.address)
            port = proxy.port
            fault = proxy.down()
            assert "disabled" in repr(proxy)
            with pytest.raises(OSError):
                echo.rtt(proxy.address)
            fault.heal()
            assert proxy.port == port
            echo.rtt(proxy.address)
        """
    )
    chaos_pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_every_fault_method_applies_and_heals(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makepyfile(
        """
        import pytest
        from pytest_chaos import BlastRadius

        @pytest.mark.chaos(blast_radius=BlastRadius(targets=["a", "b"]))
        def test_it(chaos, echo, toxiproxy):
            a = chaos.proxy("a", upstream=echo.address)
            host, port = echo.address.split(":")
            b = chaos.proxy("b", upstream=(host, int(port)))
            faults = [
                a.latency(10, jitter=5),
                a.bandwidth(1000, stream="upstream"),
                a.slow_close(10),
                a.timeout(0, toxicity=0.5),
                a.reset_peer(50),
                a.slicer(average_size=4, size_variation=1, delay_us=10),
                a.limit_data(1000, stream="both"),
                a.toxic("noop"),
            ]
            on_server = toxiproxy.client.get_proxy(a.server_name)["toxics"]
            # stream="both" makes two toxics
            assert len(on_server) == len(faults) + 1
            part = chaos.partition([a], [b])
            assert not toxiproxy.client.get_proxy(b.server_name)["enabled"]
            for f in faults + [part]:
                f.heal()
            assert toxiproxy.client.get_proxy(a.server_name)["toxics"] == []
            assert toxiproxy.client.get_proxy(b.server_name)["enabled"]
            echo.rtt(b.address)
        """
    )
    chaos_pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_bad_fault_arguments_name_the_value_and_the_fix(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makepyfile(
        """
        import pytest
        from pytest_chaos import ConfigurationError

        @pytest.mark.chaos(blast_radius=["echo"])
        @pytest.mark.parametrize("call, words", [
            (lambda p: p.latency(0.3), "whole number of milliseconds"),
            (lambda p: p.latency(-1), "negative"),
            (lambda p: p.bandwidth(0), "timeout()"),
            (lambda p: p.latency(10, stream="sideways"), "'downstream'"),
            (lambda p: p.latency(10, toxicity=2), "0.0 to 1.0"),
            (lambda p: p.slicer(average_size=0), ">= 1 byte"),
        ])
        def test_it(chaos, echo, call, words):
            proxy = chaos.proxy("echo", upstream=echo.address)
            with pytest.raises(ConfigurationError, match=".*") as info:
                call(proxy)
            assert words in str(info.value)
            assert chaos.active_faults == []

        def test_bad_upstream(chaos):
            with pytest.raises(ConfigurationError, match="'host:port'"):
                chaos.proxy("x", upstream="nowhere")
        """
    )
    chaos_pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=7)
