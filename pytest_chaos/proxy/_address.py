"""Addresses as Toxiproxy (Go) writes them: parsing, binding, comparing.

Error texts follow Go's ``net`` package, because clients and users compare them with
what Toxiproxy answers (``listen tcp 127.0.0.1:3310: bind: address already in use``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from pytest_chaos.proxy._errors import BindError

__all__ = ["BACKLOG", "bind_listener", "canonical_listen", "format_address", "split_hostport"]

#: Listen backlog: a thousand clients connecting at once must not be refused.
BACKLOG = 4096


def split_hostport(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); ValueError with Go's wording."""
    if address.startswith("["):
        host, sep, rest = address[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"address {address}: missing port in address")
        port_text = rest[1:]
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise ValueError(f"address {address}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {address}: too many colons in address")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"address {address}: invalid port")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 host, as Go prints addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listener(listen: str) -> socket.socket:
    """A listening socket for ``listen``, or BindError worded like Go's net.Listen."""
    try:
        host, port = split_hostport(listen)
    except ValueError as exc:
        raise BindError(f"listen tcp: {exc}") from None
    family = socket.AF_INET
    addr = host
    if host in ("", "::", "[::]"):
        family, addr = socket.AF_INET6, "::"
    else:
        try:
            ip = ipaddress.ip_address(host)
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        except ValueError:
            # A name: Go prefers IPv4 for localhost-like names; so do we.
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror:
                raise BindError(f"listen tcp: lookup {host}: no such host") from None
            infos.sort(key=lambda info: info[0] != socket.AF_INET)
            family, addr = infos[0][0], str(infos[0][4][0])
    # IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY only
    # on sockets whose proto says TCP (without it, a reply written in two parts waits
    # for the peer's delayed ACK, ~40 ms).
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        if family == socket.AF_INET6 and host in ("", "::"):
            family, addr = socket.AF_INET, "0.0.0.0"
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        else:
            raise BindError(f"listen tcp {listen}: socket: {os_text(exc)}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and addr == "::":
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((addr, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise BindError(f"listen tcp {listen}: bind: {os_text(exc)}") from None
    return sock


def canonical_listen(listen: str) -> str:
    """``localhost:80`` and ``127.0.0.1:80`` compare equal; unparsable text stays as is."""
    try:
        host, port = split_hostport(listen)
    except ValueError:
        return listen
    if host in ("", "::"):
        return f"[::]:{port}"
    try:
        return format_address(str(ipaddress.ip_address(host)), port)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return listen
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return format_address(str(infos[0][4][0]), port)


def os_text(exc: OSError) -> str:
    """The OS error text the way Go words it (``address already in use``)."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
