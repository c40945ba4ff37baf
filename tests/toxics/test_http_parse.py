"""The splitters of every parser backend (h11, the hand-written scanner): raw bytes kept
exactly, messages found at any split."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest

from pytest_chaos.toxics._http_framing import splitters
from pytest_chaos.toxics._http_parse import Piece, RequestInfo

pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("http_parser")


def RequestSplitter() -> Any:
    """The request splitter of the backend under test (as the session picks it)."""
    return splitters(deque())[0]


def ResponseSplitter(expected: deque[RequestInfo]) -> Any:
    return splitters(expected)[1]


CHUNKED = (
    b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
)
GET = b"GET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
HEAD_WITH_LENGTH = b"HEAD /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
PIPELINE = CHUNKED + GET + HEAD_WITH_LENGTH


def split_requests(chunks: list[bytes]) -> tuple[list[Piece], Any]:
    splitter = RequestSplitter()
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += splitter.feed(chunk)
    return pieces, splitter


def messages(pieces: list[Piece]) -> list[tuple[str, bytes]]:
    """(path, raw bytes of the whole request) per request."""
    out: list[tuple[str, bytes]] = []
    current: list[bytes] = []
    path = ""
    for p in pieces:
        if p.kind == "head":
            assert p.request is not None
            path, current = p.request.path, [p.raw]
        elif p.kind in ("body", "end"):
            current.append(p.raw)
            if p.kind == "end":
                out.append((path, b"".join(current)))
    return out


def test_pipelined_requests_come_out_whole_and_in_order() -> None:
    pieces, splitter = split_requests([PIPELINE])
    assert messages(pieces) == [("/upload", CHUNKED), ("/b", GET), ("/c", HEAD_WITH_LENGTH)]
    assert b"".join(p.raw for p in pieces) == PIPELINE
    assert not splitter.passthrough


def test_every_split_point_gives_the_same_messages() -> None:
    expected = messages(split_requests([PIPELINE])[0])
    for i in range(len(PIPELINE) + 1):
        pieces, splitter = split_requests([PIPELINE[:i], PIPELINE[i:]])
        assert messages(pieces) == expected, i
        assert b"".join(p.raw for p in pieces) == PIPELINE, i
        assert not splitter.passthrough, i


def test_byte_by_byte_keeps_chunk_extensions_and_trailers() -> None:
    pieces, _ = split_requests([PIPELINE[i : i + 1] for i in range(len(PIPELINE))])
    assert messages(pieces)[0] == ("/upload", CHUNKED)


def test_request_info() -> None:
    pieces, _ = split_requests(
        [b"PUT /a/b?x=1 HTTP/1.0\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"]
    )
    info = pieces[0].request
    assert info is not None
    assert (info.method, info.target, info.path, info.http_version) == (
        "PUT",
        "/a/b?x=1",
        "/a/b",
        "1.0",
    )
    assert info.header("HOST") == "h"
    assert info.expects_continue and not info.keep_alive


def test_stray_crlf_between_requests_is_tolerated() -> None:
    stream = GET + b"\r\n" + GET
    pieces, splitter = split_requests([stream])
    assert [m[0] for m in messages(pieces)] == ["/b", "/b"]
    assert b"".join(p.raw for p in pieces) == stream and not splitter.passthrough


def test_non_http_is_passed_through_at_once() -> None:
    for stream in (
        b"*1\r\n$4\r\nPING\r\n",
        b"\x16\x03\x01\x02\x00",
        b"\x00\x00\x00\x08\x04\xd2\x16/",
    ):
        pieces, splitter = split_requests([stream])
        assert [p.kind for p in pieces] == ["raw"]
        assert pieces[0].raw == stream
        assert splitter.passthrough and "not HTTP" in (splitter.passthrough_reason or "")
        assert splitter.feed(b"more") == [Piece("raw", b"more")]


def test_garbage_after_a_valid_request_passes_through_unchanged() -> None:
    stream = GET + b"HELLO THERE\r\n\r\n"
    pieces, splitter = split_requests([stream])
    assert b"".join(p.raw for p in pieces) == stream
    assert [p.kind for p in pieces][-1] == "raw" and splitter.passthrough


def test_malformed_framing_passes_through_unchanged() -> None:
    for stream in (
        b"POST / HTTP/1.1\r\nContent-Length: 2, 3\r\n\r\nab",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nab",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ):
        pieces, splitter = split_requests([stream])
        assert b"".join(p.raw for p in pieces) == stream
        assert splitter.passthrough and "not HTTP" in (splitter.passthrough_reason or "")


def test_folded_header_lines_are_joined() -> None:
    pieces, _ = split_requests([b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n"])
    info = pieces[0].request
    assert info is not None and info.header("x-a") == "one two"


def test_upgrade_switches_to_passthrough_after_the_request() -> None:
    req = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    pieces, splitter = split_requests([req + b"\x81\x05hello"])
    assert [p.kind for p in pieces] == ["head", "end", "raw"]
    assert pieces[-1].raw == b"\x81\x05hello"
    assert splitter.passthrough_reason == "protocol switch requested"


def _responses(methods: list[str], chunks: list[bytes], eof: bool = False) -> list[Piece]:
    splitter = ResponseSplitter(deque(RequestInfo(m, "/", "1.1", ()) for m in methods))
    out: list[Piece] = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    if eof:
        out += splitter.feed_eof()
    return out


RESPONSES = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"  # answer to HEAD: no body
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    b"HTTP/1.0 200 OK\r\n\r\nuntil close"
)


def test_responses_follow_the_request_methods_at_every_split() -> None:
    for i in range(len(RESPONSES) + 1):
        out = _responses(["POST", "HEAD", "GET", "GET"], [RESPONSES[:i], RESPONSES[i:]], eof=True)
        kinds = [(p.kind, p.status) for p in out if p.kind != "body"]
        assert kinds == [
            ("interim", 100), ("head", 200), ("end", None), ("head", 200), ("end", None),
            ("head", 201), ("end", None), ("head", 200), ("end", None),
        ], i  # fmt: skip
        assert b"".join(p.raw for p in out) == RESPONSES, i


def test_unsolicited_or_non_http_responses_pass_through() -> None:
    assert [p.kind for p in _responses([], [b"HTTP/1.1 408 Timeout\r\n\r\n"])] == ["raw"]
    out = _responses(["GET"], [b"-ERR unknown command 'GET'\r\n"])
    assert [(p.kind, p.raw) for p in out] == [("raw", b"-ERR unknown command 'GET'\r\n")]


_tokens = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
_paths = st.from_regex(r"/[a-z0-9/]{0,12}(\?[a-z=&]{0,8})?", fullmatch=True)


@st.composite
def _request(draw: st.DrawFn) -> tuple[str, bytes]:
    method, path = draw(_tokens), draw(_paths)
    body = draw(st.binary(max_size=40))
    head = f"{method} {path} HTTP/1.1\r\nHost: h\r\n".encode()
    if draw(st.booleans()):
        sizes = draw(st.lists(st.integers(1, 9), max_size=5))
        chunks, rest = [], body
        for n in sizes:
            part, rest = rest[:n], rest[n:]
            if part:
                chunks.append(b"%x\r\n%s\r\n" % (len(part), part))
        if rest:
            chunks.append(b"%x\r\n%s\r\n" % (len(rest), rest))
        raw = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(chunks) + b"0\r\n\r\n"
    else:
        raw = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    return path.split("?")[0], raw


@settings(max_examples=150, deadline=None)
@given(st.lists(_request(), min_size=1, max_size=5), st.data())
def test_any_pipeline_at_any_cuts_is_split_exactly(
    requests: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(raw for _, raw in requests)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    pieces, splitter = split_requests(chunks)
    assert messages(pieces) == requests
    assert b"".join(p.raw for p in pieces) == stream
    assert not splitter.passthrough


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=30),
            st.sampled_from([GET, CHUNKED, HEAD_WITH_LENGTH, b"\r\n", b"HTTP/1.1 200 OK\r\n"]),
        ),
        max_size=8,
    ),
    st.data(),
)
def test_any_bytes_come_out_unchanged_and_in_order(parts: list[bytes], data: st.DataObject) -> None:
    """Garbage, truncated and valid messages mixed: the splitters never raise and never
    lose, add or reorder a byte."""
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    pieces, splitter = split_requests(chunks)
    pieces += splitter.feed_eof()
    assert b"".join(p.raw for p in pieces) == stream
    expected: deque[RequestInfo] = deque(RequestInfo("GET", "/", "1.1", ()) for _ in range(20))
    responses = ResponseSplitter(expected)
    out: list[Piece] = []
    for chunk in chunks:
        out += responses.feed(chunk)
    out += responses.feed_eof()
    assert b"".join(p.raw for p in out) == stream


def test_path_of_origin_and_absolute_form_targets() -> None:
    def path(target: str) -> str:
        return RequestInfo("GET", target, "1.1", ()).path

    assert path("/a/b?x=1") == "/a/b"
    assert path("http://host:80/a/b?x") == "/a/b"
    assert path("http://host") == "/"
    assert path("*") == "*"


def test_an_unfinished_first_line_is_handed_on_at_eof() -> None:
    splitter = RequestSplitter()
    assert splitter.feed(b"GET /a") == []
    assert splitter.feed_eof() == [Piece("raw", b"GET /a")]
