"""Addresses parsed, bound and compared the way Toxiproxy (Go) does."""

from __future__ import annotations

import socket

import pytest

from pytest_chaos.proxy._address import (
    bind_listener,
    canonical_listen,
    format_address,
    split_hostport,
)
from pytest_chaos.proxy._errors import BindError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("localhost:0", ("localhost", 0)),
        (":8474", ("", 8474)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_split_hostport(text: str, expected: tuple[str, int]) -> None:
    assert split_hostport(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nohost", "address nohost: missing port in address"),
        ("::1:80", "address ::1:80: too many colons in address"),
        ("h:99999", "address h:99999: invalid port"),
        ("h:http", "address h:http: invalid port"),
        ("[::1]", "address [::1]: missing port in address"),
    ],
)
def test_split_hostport_errors_read_like_go(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        split_hostport(text)


def test_format_and_canonical_forms() -> None:
    assert format_address("::1", 5) == "[::1]:5"
    assert format_address("10.0.0.1", 5) == "10.0.0.1:5"
    assert canonical_listen("localhost:5") == "127.0.0.1:5"
    assert canonical_listen(":5") == "[::]:5"
    assert canonical_listen("not an address") == "not an address"


def test_bind_picks_ipv4_for_localhost_and_reports_go_errors() -> None:
    sock = bind_listener("localhost:0")
    try:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()
    with pytest.raises(BindError, match=r"^listen tcp: address nonsense: missing port"):
        bind_listener("nonsense")


def test_bind_ipv6_loopback_when_available() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    sock = bind_listener("[::1]:0")
    try:
        assert sock.family == socket.AF_INET6
    finally:
        sock.close()
