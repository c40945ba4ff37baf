"""Blast-radius violations stop an injection before anything reaches the server."""

from __future__ import annotations

import pytest

from pytest_chaos.client import ToxiproxyClient


def test_each_violation_errors_before_anything_is_injected(
    chaos_pytester: pytest.Pytester, external_server: tuple[str, ToxiproxyClient]
) -> None:
    url, _ = external_server
    chaos_pytester.makepyfile(
        """
        import pytest
        from pytest_chaos import BlastRadius, BlastRadiusError

        def _no_toxics(toxiproxy, *proxies):
            for p in proxies:
                assert toxiproxy.client.get_proxy(p.server_name)["toxics"] == []

        def test_no_marker(chaos, echo, toxiproxy):
            redis = chaos.proxy("redis", upstream=echo.address)
            with pytest.raises(BlastRadiusError) as info:
                redis.latency(100)
            assert "has no @pytest.mark.chaos marker" in str(info.value)
            assert "Add @pytest.mark.chaos(blast_radius=['redis'])" in str(info.value)
            _no_toxics(toxiproxy, redis)

        @pytest.mark.chaos(blast_radius=["redis"])
        def test_outside(chaos, echo, toxiproxy):
            pg = chaos.proxy("postgres", upstream=echo.address)
            with pytest.raises(BlastRadiusError) as info:
                pg.down()
            assert str(info.value) == (
                "blast_radius does not include 'postgres'; this test may fault ['redis']. "
                "Add 'postgres' to @pytest.mark.chaos(blast_radius=...) or fault a target in "
                "the radius."
            )
            assert toxiproxy.client.get_proxy(pg.server_name)["enabled"]
            assert chaos.timeline.events == []

        @pytest.mark.chaos(blast_radius=BlastRadius(targets=["*"], exclude=["postgres"]))
        def test_excluded(chaos, echo, toxiproxy):
            pg = chaos.proxy("postgres", upstream=echo.address)
            redis = chaos.proxy("redis", upstream=echo.address)
            with pytest.raises(BlastRadiusError, match="blast_radius excludes 'postgres'"):
                chaos.partition([redis], [pg])
            assert toxiproxy.client.get_proxy(redis.server_name)["enabled"]
            redis.latency(1).heal()

        @pytest.mark.chaos(blast_radius=BlastRadius(targets=["redis"], max_concurrent_faults=1))
        def test_too_many(chaos, echo, toxiproxy):
            redis = chaos.proxy("redis", upstream=echo.address)
            first = redis.latency(100)
            with pytest.raises(BlastRadiusError) as info:
                redis.bandwidth(10)
            assert "max_concurrent_faults=1 reached" in str(info.value)
            assert "Heal one first" in str(info.value)
            toxics = toxiproxy.client.get_proxy(redis.server_name)["toxics"]
            assert [t["type"] for t in toxics] == ["latency"]
            first.heal()
            redis.bandwidth(10).heal()   # allowed again once healed
        """
    )
    result = chaos_pytester.runpytest("-p", "no:cacheprovider", f"--toxiproxy-url={url}")
    result.assert_outcomes(passed=4)


def test_safety_timer_heals_an_old_fault(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makepyfile(
        """
        import time
        import pytest
        from pytest_chaos import BlastRadius

        @pytest.mark.chaos(blast_radius=BlastRadius(targets=["echo"], max_fault_seconds=0.2))
        def test_it(chaos, echo, toxiproxy):
            proxy = chaos.proxy("echo", upstream=echo.address)
            fault = proxy.latency(1000)
            deadline = time.monotonic() + 30
            while fault.active and time.monotonic() < deadline:
                time.sleep(0.02)
            assert fault.healed_by == "safety_timer"
            assert toxiproxy.client.get_proxy(proxy.server_name)["toxics"] == []
            heal = chaos.timeline.of_kind("heal")
            assert [e.data["by"] for e in heal] == ["safety_timer"]
            assert heal[0].data["duration"] >= 0.2
            assert echo.rtt(proxy.address) < 0.9
            assert fault.heal() is False   # healing again is a no-op
        """
    )
    chaos_pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
