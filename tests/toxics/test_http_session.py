"""The HTTP toxics' sans-IO half: both links of one connection, driven by hand.

Each test builds the upstream and downstream chains of one connection from the real
toxic classes (as the proxy does), feeds client and server bytes and looks at what
each side would receive.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence

import pytest

from pytest_chaos.toxics import (
    Chain,
    ConnectionContext,
    Deliver,
    End,
    LinkContext,
    Piece,
    Reply,
    Toxic,
    ToxicConfigError,
    get_toxic_class,
)
from pytest_chaos.toxics._http_parse import RequestInfo, RequestSplitter, ResponseSplitter

pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("http_parser")


def toxic(type_name: str, **attributes: object) -> Toxic:
    cls = get_toxic_class(type_name)
    assert cls is not None
    return cls.from_attributes(attributes)


class Wire:
    """One proxied connection with the given toxics in both links.

    Copies a duplicate toxic asks for (`Deliver`) land in ``copies`` and are answered at
    once (``auto``), or wait in ``deliveries`` for :meth:`finish`, as the data path's
    extra connections would."""

    def __init__(self, *toxics: Toxic, seed: int = 1, auto: bool = True) -> None:
        self.auto = auto
        self.deliveries: list[Deliver] = []
        self.copies: list[bytes] = []
        self.eof_to_client = False
        self.counts: dict[str, int] = {}
        self.notes: list[tuple[str, Mapping[str, object]]] = []
        self.context = ConnectionContext(
            1, "web", count=self._count, note=lambda label, data: self.notes.append((label, data))
        )
        rng = random.Random(seed)
        self.now = 0.0
        up = LinkContext("upstream", self.context, rng)
        down = LinkContext("downstream", self.context, rng)
        self.up = Chain([t.start(up, 0.0, None) for t in toxics])
        self.down = Chain([t.start(down, 0.0, None) for t in toxics])
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.closed = False

    def _count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def _collect(self, items: Sequence[object], forward: bytearray) -> None:
        for item in items:
            if isinstance(item, Piece):
                forward += item.data
            elif isinstance(item, Reply):
                self.to_client += item.data
            elif isinstance(item, End) and item.kind == "close":
                self.closed = True
            elif isinstance(item, End) and item.kind == "eof" and forward is self.to_client:
                self.eof_to_client = True
            elif isinstance(item, Deliver):
                self.copies += [item.data] * item.copies
                self.deliveries.append(item)

    def pump(self) -> None:
        self._collect(self.up.poll(self.now), self.to_server)
        self._collect(self.down.poll(self.now), self.to_client)
        while self.auto and self.deliveries:
            item = self.deliveries.pop(0)
            if item.together:
                item.ready(self.now)
            for _ in range(item.copies):
                item.done(True, self.now)
            self._collect(self.up.poll(self.now), self.to_server)
            self._collect(self.down.poll(self.now), self.to_client)

    def ready(self, item: Deliver) -> None:
        """The copies' connections of a concurrent delivery are open."""
        item.ready(self.now)
        self.pump()

    def finish(self, item: Deliver, ok: bool = True) -> None:
        """One copy of ``item`` was answered (``ok``) or lost."""
        item.done(ok, self.now)
        self.pump()

    def client(self, data: bytes) -> None:
        self.up.feed(Piece(data, self.now), self.now)
        self.pump()

    def server(self, data: bytes) -> None:
        self.down.feed(Piece(data, self.now), self.now)
        self.pump()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.pump()

    def take(self) -> tuple[bytes, bytes]:
        out = bytes(self.to_server), bytes(self.to_client)
        self.to_server.clear()
        self.to_client.clear()
        return out


def req(method: str, path: str, body: bytes = b"", *extra: str) -> bytes:
    headers = "".join(f"{h}\r\n" for h in extra)
    return (
        f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def resp(body: bytes, status: int = 200) -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


def test_error_answers_without_reaching_the_server_and_keeps_the_connection() -> None:
    wire = Wire(toxic("http_error", status=503, body="busy", headers={"Retry-After": "1"}))
    wire.client(req("POST", "/pay", b"x" * 10))
    to_server, to_client = wire.take()
    assert to_server == b""
    assert to_client.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"retry-after: 1\r\n" in to_client.lower() and to_client.endswith(b"\r\n\r\nbusy")
    assert not wire.closed
    wire.client(req("GET", "/next"))  # the same connection goes on
    assert wire.take()[1].endswith(b"busy")
    assert wire.counts == {"http_requests": 2, "http_responses": 2, "http_errors_injected": 2}


def test_matching_by_method_and_path_prefix() -> None:
    wire = Wire(toxic("http_error", status=500, method="post,PUT", path_prefix="/api"))
    for method, path, hit in [
        ("POST", "/api/x", True), ("PUT", "/api", True), ("GET", "/api/x", False),
        ("POST", "/other", False), ("POST", "/ap", False), ("POST", "/api?x=1", True),
    ]:  # fmt: skip
        wire.client(req(method, path))
        to_server, to_client = wire.take()
        if hit:
            assert (to_server, to_client[:12]) == (b"", b"HTTP/1.1 500"), (method, path)
        else:
            assert to_server == req(method, path) and to_client == b"", (method, path)
            wire.server(resp(b"ok"))
            assert wire.take()[1] == resp(b"ok")


def test_pipelined_error_waits_for_earlier_responses() -> None:
    wire = Wire(toxic("http_error", status=418, path_prefix="/b"))
    wire.client(req("GET", "/a") + req("GET", "/b") + req("GET", "/c"))
    to_server, to_client = wire.take()
    assert to_server == req("GET", "/a") + req("GET", "/c")
    assert to_client == b""  # /a is not answered yet: the 418 must wait
    wire.server(resp(b"A"))
    to_client = wire.take()[1]
    assert to_client.startswith(resp(b"A") + b"HTTP/1.1 418 ")
    wire.server(resp(b"C"))
    assert wire.take()[1] == resp(b"C")


def test_duplicate_sends_copies_on_fresh_connections_after_the_answer() -> None:
    wire = Wire(toxic("http_duplicate", copies=3), auto=False)
    chunked = (
        b"POST /pay HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    wire.client(chunked[:40])
    wire.client(chunked[40:])
    to_server, _ = wire.take()
    assert to_server == chunked  # the original, on the client's connection
    assert wire.deliveries == []  # the copies follow its answer
    wire.server(resp(b"first"))
    assert wire.take()[1] == b""  # held until every copy is answered
    [copies] = wire.deliveries
    assert (copies.data, copies.copies, copies.together) == (chunked, 2, False)
    wire.finish(copies)
    assert wire.take()[1] == b""
    wire.finish(copies)
    assert wire.take()[1] == resp(b"first")
    wire.deliveries.clear()
    wire.auto = True
    wire.client(req("GET", "/n"))
    assert wire.take()[0] == req("GET", "/n")
    wire.server(resp(b"n1"))
    assert wire.take()[1] == resp(b"n1")
    assert wire.copies == [chunked] * 2 + [req("GET", "/n")] * 2
    assert wire.counts == {"http_requests": 2, "http_responses": 2, "http_duplicates_sent": 4}
    assert not wire.notes  # all of it was HTTP


def test_duplicate_with_100_continue_passes_one_interim_response() -> None:
    wire = Wire(toxic("http_duplicate"))
    wire.client(req("PUT", "/f", b"data", "Expect: 100-continue"))
    assert wire.take()[0] == req("PUT", "/f", b"data", "Expect: 100-continue")
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    wire.server(cont + resp(b"1"))
    assert wire.take()[1] == cont + resp(b"1")
    assert wire.copies == [req("PUT", "/f", b"data", "Expect: 100-continue")]


def test_error_on_expect_continue_sends_100_then_the_error() -> None:
    wire = Wire(toxic("http_error", status=500))
    head = b"PUT /f HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    wire.client(head)
    assert wire.take()[1] == b"HTTP/1.1 100 Continue\r\n\r\n"
    wire.client(b"data")
    to_server, to_client = wire.take()
    assert to_server == b"" and to_client.startswith(b"HTTP/1.1 500")


def test_error_on_a_closing_request_closes_after_the_answer() -> None:
    wire = Wire(toxic("http_error", status=502))
    wire.client(req("GET", "/", b"", "Connection: close"))
    to_client = wire.take()[1]
    assert b"connection: close" in to_client.lower()
    assert wire.closed


def test_head_request_gets_an_error_without_body() -> None:
    wire = Wire(toxic("http_error", status=503, body="nope"))
    wire.client(req("HEAD", "/"))
    to_client = wire.take()[1]
    assert to_client.endswith(b"\r\n\r\n") and b"content-length: 4" in to_client.lower()


def test_delay_holds_matching_requests_and_keeps_order() -> None:
    wire = Wire(toxic("http_delay", delay=200, path_prefix="/slow"))
    wire.client(req("GET", "/fast"))
    assert wire.take()[0] == req("GET", "/fast")
    wire.client(req("GET", "/slow") + req("GET", "/fast2"))
    assert wire.take()[0] == b""  # /fast2 queues behind /slow
    wire.advance(0.15)
    assert wire.take()[0] == b""
    wire.advance(0.06)
    assert wire.take()[0] == req("GET", "/slow") + req("GET", "/fast2")


def test_error_rate_is_a_seeded_share() -> None:
    def errors(seed: int) -> list[bool]:
        wire = Wire(toxic("http_error", rate=0.25), seed=seed)
        out = []
        for _ in range(400):
            wire.client(req("GET", "/"))
            to_server, to_client = wire.take()
            out.append(bool(to_client))
            if to_server:
                wire.server(resp(b""))
                wire.take()
        return out

    first = errors(5)
    assert first == errors(5)
    # Binomial(400, 0.25): mean 100, sd ~8.7; +-5 sd.
    assert 57 <= sum(first) <= 143


def test_two_http_toxics_compose_in_one_session() -> None:
    wire = Wire(
        toxic("http_duplicate", path_prefix="/dup"),
        toxic("http_error", status=500, path_prefix="/err"),
    )
    wire.client(req("POST", "/dup") + req("GET", "/err") + req("GET", "/ok"))
    to_server, to_client = wire.take()
    assert to_server == req("POST", "/dup") + req("GET", "/ok")
    wire.server(resp(b"d1") + resp(b"ok"))
    to_client = wire.take()[1]
    assert to_client.startswith(resp(b"d1") + b"HTTP/1.1 500")
    assert to_client.endswith(resp(b"ok"))
    assert wire.copies == [req("POST", "/dup")]


def test_non_http_traffic_passes_through_and_is_noted_once() -> None:
    wire = Wire(toxic("http_error"), toxic("http_duplicate"))
    wire.client(b"*1\r\n$4\r\nPING\r\n")
    wire.server(b"+PONG\r\n")
    wire.client(b"*1\r\n$4\r\nPING\r\n")
    assert wire.take() == (b"*1\r\n$4\r\nPING\r\n" * 2, b"+PONG\r\n")
    assert [label for label, _ in wire.notes] == ["http_passthrough"]
    assert "not HTTP" in str(wire.notes[0][1]["reason"])
    assert wire.counts == {"http_passthrough_connections": 1}


def test_server_speaking_first_passes_through() -> None:
    wire = Wire(toxic("http_delay", delay=100))
    wire.server(b"220 smtp ready\r\n")
    wire.client(b"EHLO x\r\n")
    wire.advance(0.0)
    assert wire.take() == (b"EHLO x\r\n", b"220 smtp ready\r\n")


@pytest.mark.parametrize(
    ("type_name", "attributes", "word"),
    [
        ("http_error", {"status": 99}, "status"),
        ("http_error", {"status": 600}, "status"),
        ("http_error", {"rate": 1.5}, "rate"),
        ("http_error", {"path_prefix": "api"}, "path_prefix"),
        ("http_error", {"method": "GET /"}, "method"),
        ("http_error", {"headers": {"Bad Name": "x"}}, "headers"),
        ("http_error", {"headers": ["x"]}, "headers"),
        ("http_duplicate", {"copies": 1}, "copies"),
        ("http_duplicate", {"copies": 1000}, "copies"),
        ("http_delay", {"delay": -1}, "delay"),
        ("http_delay", {"delay": 1.5}, "delay"),
    ],
)
def test_bad_attributes_name_the_attribute(
    type_name: str, attributes: dict[str, object], word: str
) -> None:
    with pytest.raises(ToxicConfigError, match=word):
        toxic(type_name, **attributes)


def test_attributes_json_lists_every_attribute() -> None:
    assert toxic("http_error").to_json() == {
        "method": "", "path_prefix": "", "rate": 1.0, "status": 500, "body": "", "headers": {},
    }  # fmt: skip
    assert toxic("http_delay", delay=5).to_json()["delay"] == 5
    assert toxic("http_duplicate").to_json()["copies"] == 2


def test_a_request_too_big_to_hold_is_delivered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_chaos.toxics import _http_session

    monkeypatch.setattr(_http_session, "MAX_COPY_BYTES", 1000)
    wire = Wire(toxic("http_duplicate"))
    big = req("POST", "/big", b"b" * 5000)
    wire.client(big[:3000])
    wire.client(big[3000:] + req("POST", "/small", b"s"))
    assert wire.take()[0] == big + req("POST", "/small", b"s")
    wire.server(resp(b"big") + resp(b"s1"))
    assert wire.take()[1] == resp(b"big") + resp(b"s1")
    assert wire.copies == [req("POST", "/small", b"s")]
    assert [label for label, _ in wire.notes] == ["http_duplicate_skipped"]
    assert wire.counts["http_duplicates_failed"] == 1


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=120, deadline=None)
@given(
    paths=st.lists(
        st.sampled_from(["/err/a", "/dup/b", "/ok/c", "/slow/d"]), min_size=1, max_size=8
    ),
    methods=st.lists(st.sampled_from(["GET", "POST", "HEAD"]), min_size=8, max_size=8),
    client_cuts=st.lists(st.integers(0, 10_000), max_size=6),
    server_cuts=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_every_request_gets_one_answer_in_order_at_any_split(
    paths: list[str], methods: list[str], client_cuts: list[int], server_cuts: list[int]
) -> None:
    """Pipelined requests through error, duplicate and delay toxics at once: the server
    gets each forwarded request the right number of times, the client exactly one
    answer per request, in request order, whatever the packet boundaries."""
    wire = Wire(
        toxic("http_error", status=503, path_prefix="/err"),
        toxic("http_duplicate", copies=3, path_prefix="/dup"),
        toxic("http_delay", delay=50, path_prefix="/slow"),
    )
    sent = [(m, p) for m, p in zip(methods, paths, strict=False)]
    stream = b"".join(req(m, p, b"body" if m == "POST" else b"") for m, p in sent)
    for chunk in _cut(stream, client_cuts):
        wire.client(chunk)
    wire.advance(0.1)  # past every delay
    to_server, early = wire.take()
    # What the server received, parsed independently.
    splitter = RequestSplitter()
    received = [(p.request.method, p.request.path) for p in splitter.feed(to_server) if p.request]
    assert received == [(m, p) for m, p in sent if not p.startswith("/err")]
    # The server answers each request it got, naming it; in arbitrary packets.
    answers = b"".join(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), b"" if m == "HEAD" else body)
        for i, (m, p) in enumerate(received)
        for body in [f"{p}#{i}".encode()]
    )
    for chunk in _cut(answers, server_cuts):
        wire.server(chunk)
    got = early + wire.take()[1]
    # The client parses one answer per request it sent.
    queue = deque(RequestInfo(m, p, "1.1", ()) for m, p in sent)
    pieces = ResponseSplitter(queue).feed(got)
    heads = [p for p in pieces if p.kind == "head"]
    assert len(heads) == len(sent)
    bodies: list[bytes] = []
    for piece in pieces:
        if piece.kind == "head":
            bodies.append(b"")
        elif piece.kind == "body":
            bodies[-1] += piece.raw
    for (m, p), head, body in zip(sent, heads, bodies, strict=True):
        if p.startswith("/err"):
            assert head.status == 503
        else:
            assert head.status == 200
            if m != "HEAD":
                assert body.startswith(p.encode() + b"#")
    assert wire.counts["http_responses"] == len(sent)
    copied = [
        (p.request.method, p.request.path)
        for c in wire.copies
        for p in RequestSplitter().feed(c)
        if p.request
    ]
    assert copied == [(m, p) for m, p in sent if p.startswith("/dup") for _ in range(2)]


def test_the_same_toxic_on_both_streams_acts_once() -> None:
    """ChaosProxy(stream="both") adds two identical toxics: rate and copies stay as asked."""
    wire = Wire(toxic("http_duplicate", copies=2), toxic("http_duplicate", copies=2))
    wire.client(req("POST", "/x"))
    wire.server(resp(b""))
    assert wire.take() == (req("POST", "/x"), resp(b""))
    assert wire.copies == [req("POST", "/x")]

    def share(n_toxics: int) -> int:
        wire = Wire(*[toxic("http_error", rate=0.3) for _ in range(n_toxics)], seed=3)
        hits = 0
        for _ in range(300):
            wire.client(req("GET", "/"))
            to_server, to_client = wire.take()
            hits += bool(to_client) and not to_server
            if to_server:
                wire.server(resp(b""))
                wire.take()
        return hits

    assert share(2) == share(1)  # same seed, same draws: one rule, not two


def test_removal_waits_for_the_answers_in_flight() -> None:
    """A stage of a removed toxic stays while it still has answers to consume, so a
    keep-alive client never reads an extra copy's answer as its next response."""
    wire = Wire(toxic("http_duplicate"), auto=False)
    up, down = wire.up.stages[0], wire.down.stages[0]
    assert not up.finishing() and not down.finishing()
    wire.client(req("POST", "/a", b"x", "Expect: 100-continue")[:-1])
    assert up.finishing()  # mid-request: the copy is not complete yet
    wire.client(req("POST", "/a", b"x", "Expect: 100-continue")[-1:])
    assert not up.finishing() and down.finishing()
    wire.server(resp(b"1"))
    assert down.finishing()  # the answer waits for its copy
    wire.finish(wire.deliveries[0])
    assert not down.finishing()
    assert wire.take()[1] == resp(b"1")


def test_a_server_that_closes_after_answering_still_gets_every_copy() -> None:
    """``Connection: close`` (or HTTP/1.0): the server closes after its answer. The
    copies go on their own connections, and the answer and the close wait for them."""
    wire = Wire(toxic("http_duplicate", copies=3), auto=False)
    wire.client(req("GET", "/", b"", "Connection: close"))
    wire.server(resp(b"only"))
    wire.down.feed(End("eof"), wire.now)
    wire.pump()
    assert wire.take()[1] == b"" and not wire.eof_to_client
    [copies] = wire.deliveries
    assert copies.copies == 2 and copies.data == req("GET", "/", b"", "Connection: close")
    wire.finish(copies, ok=False)  # lost
    wire.finish(copies)
    assert wire.take()[1] == resp(b"only") and wire.eof_to_client
    assert wire.counts["http_duplicates_sent"] == 1
    assert wire.counts["http_duplicates_failed"] == 1
    assert [label for label, _ in wire.notes] == ["http_duplicate_failed"]


def test_concurrent_copies_hold_the_original_until_their_connections_are_open() -> None:
    wire = Wire(toxic("http_duplicate", copies=3, concurrent=True, method="POST"), auto=False)
    wire.client(req("POST", "/pay", b"1") + req("GET", "/next"))
    assert wire.take()[0] == b""  # the original waits for its copies
    [copies] = wire.deliveries
    assert copies.together and copies.copies == 2
    wire.ready(copies)  # both connections open: everything goes at once
    assert wire.take()[0] == req("POST", "/pay", b"1") + req("GET", "/next")
    wire.finish(copies)
    wire.server(resp(b"paid") + resp(b"next"))
    assert wire.take()[1] == b""  # one copy still unanswered
    wire.finish(copies)
    assert wire.take()[1] == resp(b"paid") + resp(b"next")


def test_pipelined_answers_wait_behind_an_answer_that_waits_for_its_copies() -> None:
    wire = Wire(toxic("http_duplicate", path_prefix="/dup"), auto=False)
    wire.client(req("POST", "/dup") + req("GET", "/other"))
    wire.server(resp(b"d") + resp(b"o"))
    assert wire.take()[1] == b""
    wire.finish(wire.deliveries[0])
    assert wire.take()[1] == resp(b"d") + resp(b"o")


def test_a_toxic_joining_mid_answer_leaves_the_connection_alone() -> None:
    """Added while a response was on its way (a pooled keep-alive connection): the
    answer is unsolicited for the new stage, so it stops acting on that connection
    rather than risk consuming the wrong answers."""
    wire = Wire(toxic("http_duplicate"))
    wire.server(resp(b"answer to a request sent before the toxic"))
    wire.client(req("POST", "/pay"))
    to_server, to_client = wire.take()
    assert to_server == req("POST", "/pay")  # once
    assert to_client == resp(b"answer to a request sent before the toxic")
    assert [label for label, _ in wire.notes] == ["http_passthrough"]


_client_parts = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([req("GET", "/a"), req("POST", "/b", b"xyz"), req("HEAD", "/c"), b"\r\n"]),
)
_server_parts = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([resp(b"ok"), resp(b""), b"HTTP/1.1 100 Continue\r\n\r\n", b"-ERR x\r\n"]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.booleans(), max_size=12),
    st.lists(_client_parts, max_size=6),
    st.lists(_server_parts, max_size=6),
)
def test_a_toxic_that_matches_nothing_never_changes_a_byte(
    order: list[bool], client: list[bytes], server: list[bytes]
) -> None:
    """Valid HTTP, garbage, truncated messages, any interleaving: through HTTP toxics
    that match no request, both directions arrive exactly as sent."""
    wire = Wire(
        toxic("http_error", path_prefix="/nomatch"),
        toxic("http_duplicate", method="PATCH"),
    )
    pending = {True: list(client), False: list(server)}
    for from_client in order:
        if pending[from_client]:
            part = pending[from_client].pop(0)
            wire.client(part) if from_client else wire.server(part)
    for part in pending[True]:
        wire.client(part)
    for part in pending[False]:
        wire.server(part)
    wire.up.feed(End("eof"), wire.now)
    wire.down.feed(End("eof"), wire.now)
    wire.pump()
    to_server, to_client = wire.take()
    assert to_server == b"".join(client)
    assert to_client == b"".join(server)


def test_http_1_0_keep_alive_client_is_told_the_connection_stays() -> None:
    wire = Wire(toxic("http_error", status=500))
    wire.client(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    to_client = wire.take()[1]
    assert b"connection: keep-alive" in to_client.lower() and not wire.closed
    wire.client(b"GET / HTTP/1.0\r\n\r\n")
    assert b"connection: close" in wire.take()[1].lower() and wire.closed
