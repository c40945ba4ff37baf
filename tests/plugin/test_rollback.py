"""Every fault is undone, whatever the test does; teardown checks the server.

The inner runs use a server started outside them (``--toxiproxy-url``), so the outer
test can look at the server after the inner run ended.
"""

from __future__ import annotations

import pytest

from pytest_chaos.client import ToxiproxyClient

PATHS = """
import pytest

@pytest.mark.chaos(blast_radius=["a", "b"])
def test_assertion_failure(chaos, echo):
    a = chaos.proxy("a", upstream=echo.address)
    with a.latency(50):
        a.down()
        assert False, "the system did not cope"

@pytest.mark.chaos(blast_radius=["a", "b"])
def test_exception(chaos, echo):
    a = chaos.proxy("a", upstream=echo.address)
    b = chaos.proxy("b", upstream=echo.address)
    a.reset_peer(stream="both")
    chaos.partition([a], [b])
    raise RuntimeError("crash in the middle of an experiment")

@pytest.mark.chaos(blast_radius=["a"])
def test_healed_twice(chaos, echo):
    a = chaos.proxy("a", upstream=echo.address)
    fault = a.latency(10)
    assert fault.heal() is True
    assert fault.heal() is False
    with fault:
        pass
    assert [e.kind for e in chaos.timeline.events] == ["inject", "heal"]

@pytest.mark.chaos(blast_radius=["a"])
def test_deleted_behind_the_plugins_back(chaos, echo, toxiproxy):
    from pytest_chaos import InjectionError
    a = chaos.proxy("a", upstream=echo.address)
    a.latency(10)
    toxiproxy.client.delete_proxy(a.server_name)
    with pytest.raises(InjectionError) as info:
        a.timeout()
    assert "no longer exists" in str(info.value)
    assert "deleted it" in str(info.value)
"""


def test_each_rollback_path_leaves_the_server_clean(
    chaos_pytester: pytest.Pytester, external_server: tuple[str, ToxiproxyClient]
) -> None:
    url, client = external_server
    chaos_pytester.makepyfile(PATHS)
    result = chaos_pytester.runpytest("-p", "no:cacheprovider", "-rA", f"--toxiproxy-url={url}")
    result.assert_outcomes(passed=2, failed=1, errors=1)  # test_exception: a RuntimeError
    result.stdout.fnmatch_lines(
        [
            "*chaos rollback*",
            "*proxy 'a' (chaos-*-a) was already gone from http://*: something outside "
            "pytest-chaos deleted it; nothing left to undo.",
        ]
    )
    assert client.proxies() == {}


def test_something_left_on_the_server_fails_teardown_loudly(
    chaos_pytester: pytest.Pytester, external_server: tuple[str, ToxiproxyClient]
) -> None:
    url, client = external_server
    chaos_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["a"])
        def test_it(chaos, echo):
            chaos.proxy("a", upstream=echo.address)
            # simulate a rollback that silently did nothing
            chaos._delete_proxy = lambda name, on_server: None
        """
    )
    result = chaos_pytester.runpytest("-p", "no:cacheprovider", f"--toxiproxy-url={url}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*RollbackError: rollback of *::test_it was incomplete on http://*",
            "*still on the server: chaos-*-a",
        ]
    )
    # the plugin removed the leftover after reporting it
    assert client.proxies() == {}


def test_keyboard_interrupt_still_rolls_back(
    chaos_pytester: pytest.Pytester, external_server: tuple[str, ToxiproxyClient]
) -> None:
    url, client = external_server
    chaos_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["a"])
        def test_it(chaos, echo):
            a = chaos.proxy("a", upstream=echo.address)
            a.down()
            a.latency(100)
            raise KeyboardInterrupt
        """
    )
    result = chaos_pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--toxiproxy-url={url}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert client.proxies() == {}
