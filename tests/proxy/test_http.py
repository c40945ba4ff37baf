"""The admin API's HTTP behaviour: routing, statuses, keep-alive, bad HTTP."""

from __future__ import annotations

import socket

from .conftest import ApiUnderTest


def _raw(api: ApiUnderTest, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes or 2 s of silence."""
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        sock.sendall(data)
        sock.settimeout(2)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_unknown_path_is_404_with_a_json_error(api: ApiUnderTest) -> None:
    status, body, _ = api.request("GET", "/nope")
    assert status == 404
    assert body["status"] == 404 and "/nope" in body["error"]


def test_trailing_slash_is_a_different_path(api: ApiUnderTest) -> None:
    assert api.request("GET", "/proxies")[0] == 200
    assert api.request("GET", "/proxies/")[0] == 404
    assert api.request("GET", "/version/")[0] == 404


def test_wrong_method_on_a_known_path_is_405_and_names_the_allowed_ones(
    api: ApiUnderTest,
) -> None:
    status, body, headers = api.request("PUT", "/proxies")
    assert status == 405
    assert headers["allow"] == "GET, POST"
    assert "PUT" in body["error"] and "GET, POST" in body["error"]
    assert api.request("DELETE", "/reset")[0] == 405
    assert api.request("GET", "/populate")[0] == 405
    assert api.request("POST", "/proxies/x/stats")[0] == 405


def test_head_gets_headers_without_a_body_and_the_connection_survives(api: ApiUnderTest) -> None:
    reply = _raw(
        api,
        b"HEAD /version HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 405")
    assert reply.count(b"HTTP/1.1 ") == 2
    assert reply.endswith(b"}")
    assert b'"version":"2.12.0"' in reply


def test_browsers_are_refused(api: ApiUnderTest) -> None:
    status, body, _ = api.request(
        "GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    )
    assert status == 403
    assert body.strip() == b"User agent not allowed"
    assert api.request("GET", "/proxies", headers={"User-Agent": "curl/8.0"})[0] == 200


def test_keep_alive_serves_several_requests_on_one_connection(api: ApiUnderTest) -> None:
    import http.client

    conn = http.client.HTTPConnection(api.host, api.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/version")
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
        # an error answer keeps the connection usable too
        conn.request("POST", "/proxies", body=b"{")
        resp = conn.getresponse()
        assert resp.status == 400
        resp.read()
        conn.request("GET", "/proxies")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert api.http.requests_served == 5


def test_garbage_instead_of_http_gets_400_and_the_server_keeps_serving(api: ApiUnderTest) -> None:
    reply = _raw(api, b"\x00\xff\xfe not http at all\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    reply = _raw(api, b"GET /version HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    assert api.request("GET", "/version")[0] == 200


def test_an_oversized_body_is_413_without_reading_it(api: ApiUnderTest) -> None:
    reply = _raw(api, b"POST /populate HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n[]")
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"limit" in reply
    assert api.request("GET", "/version")[0] == 200


def test_chunked_request_bodies_are_read(api: ApiUnderTest) -> None:
    body = b'{"name":"c","upstream":"127.0.0.1:1"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = _raw(
        api,
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunked,
    )
    assert reply.startswith(b"HTTP/1.1 201")
    assert "c" in api.manager.proxies


def test_query_strings_are_ignored_and_names_are_percent_decoded(api: ApiUnderTest) -> None:
    api.request("POST", "/proxies", {"name": "a b", "upstream": "127.0.0.1:1"})
    status, body, _ = api.request("GET", "/proxies/a%20b?verbose=1")
    assert status == 200 and body["name"] == "a b"


def test_a_client_that_disconnects_mid_request_leaves_nothing_behind(api: ApiUnderTest) -> None:
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert api.request("GET", "/version")[0] == 200
    assert repr(api.http).startswith("<HttpServer listening on")


def test_expect_100_continue_is_answered_before_the_body(api: ApiUnderTest) -> None:
    body = b'{"name":"e","upstream":"127.0.0.1:1"}'
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        sock.sendall(
            b"POST /proxies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 201")


def test_absolute_form_targets_are_routed_by_their_path(api: ApiUnderTest) -> None:
    reply = _raw(
        api,
        b"GET http://127.0.0.1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200") and b'"2.12.0"' in reply
    reply = _raw(api, b"GET http://h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404")
