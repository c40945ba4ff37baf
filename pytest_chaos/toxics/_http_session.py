"""One HTTP/1.1 conversation seen by a proxy, with faults applied per request.

:class:`HttpSession` is shared by the two links of a proxied connection. The upstream
link feeds it the client's bytes (:meth:`HttpSession.client_data`), the downstream link
the server's (:meth:`HttpSession.server_data`). It keeps a queue of *slots*, one per
request in flight, so that whatever it does to a request the client still gets exactly
one response per request, in request order (keep-alive and pipelining stay usable):

- a *forwarded* slot sends the request upstream (``copies`` times for a duplicate, held
  until a due time for a delay); the first response passes to the client and the
  ``copies - 1`` extra responses are consumed;
- a *synthetic* slot never reaches upstream (its body is read and dropped); its
  response is written to the client when every earlier response is complete.

Bytes are forwarded raw (see :mod:`._http_parse`). If the traffic is not HTTP the
session passes it through unchanged and reports why once, through ``on_passthrough``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal, Protocol

import h11

from pytest_chaos.toxics._http_parse import Piece, RequestInfo, RequestSplitter, ResponseSplitter

__all__ = ["HttpRule", "HttpSession", "Output", "Plan", "build_response"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: A request to duplicate is held in memory until it is complete; past this size it is
#: delivered once instead (and ``on_oversized`` is told).
MAX_COPY_BYTES = 32 * 1024 * 1024


@dataclass
class Plan:
    """What the rules decided for one request (rules fill it in, in chain order)."""

    response: bytes | None = None  # answer with these bytes instead of forwarding
    close: bool = False  # close the connection after the synthetic response
    delay: float = 0.0  # seconds to hold the request before it goes upstream
    copies: int = 1  # how many times the request goes upstream
    applied: list[str] = field(default_factory=list)  # names of the rules that acted


class HttpRule(Protocol):
    """A fault that decides, from a request's head, what happens to the request."""

    def plan(self, request: RequestInfo, plan: Plan, rng: random.Random) -> None:
        """Amend ``plan`` for ``request``; draw randomness only from ``rng``."""


@dataclass
class Output:
    """What one call produced: bytes for the server (each with a due time, in order),
    bytes for the client, and whether the connection must be closed after them."""

    to_server: list[tuple[float, bytes]] = field(default_factory=list)
    to_client: bytes = b""
    close: bool = False


@dataclass(eq=False)
class _Slot:
    request: RequestInfo
    kind: Literal["forward", "synthetic"]
    copies: int = 1
    due: float = 0.0
    copy: bytearray | None = None  # duplicated: the raw request, kept to send it again
    answer: bytes = b""  # synthetic: the response, written once the request is read
    out: bytearray = field(default_factory=bytearray)  # synthetic bytes not yet written
    complete: bool = False  # synthetic: the request ended and the response is ready
    close: bool = False
    responses: int = 0  # forwarded: responses completed so far
    held: bytearray = field(default_factory=bytearray)  # duplicated: the first answer
    streaming: bool = False  # duplicated: the first answer was too big to hold


def build_response(
    status: int,
    *,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    head_only: bool = False,
    close: bool = False,
) -> bytes:
    """Serialize a complete HTTP/1.1 response with h11 (framing by Content-Length).

    ``head_only`` leaves the body out (the answer to a ``HEAD``), ``close`` adds
    ``Connection: close``.
    """
    conn = h11.Connection(h11.SERVER)
    method = b"HEAD" if head_only else b"GET"
    conn.receive_data(method + b" / HTTP/1.1\r\nHost: proxy\r\n\r\n")
    while conn.next_event() is not h11.NEED_DATA:
        pass
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    all_headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    all_headers.append(("Content-Length", str(len(body))))
    if close:
        all_headers = [(k, v) for k, v in all_headers if k.lower() != "connection"]
        all_headers.append(("Connection", "close"))
    out = conn.send(h11.Response(status_code=status, reason=reason, headers=all_headers)) or b""
    if body and not head_only:
        out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


class HttpSession:
    """The sans-IO HTTP state of one proxied connection (see the module docstring).

    ``rules`` are consulted at every request head; replace the list when a toxic is
    updated so that the change applies from the next request on.
    """

    def __init__(
        self,
        *,
        rules: Sequence[HttpRule],
        rng: random.Random,
        on_request: Callable[[RequestInfo, Plan], None] | None = None,
        on_response: Callable[[], None] | None = None,
        on_passthrough: Callable[[str, str], None] | None = None,
        on_oversized: Callable[[RequestInfo], None] | None = None,
    ) -> None:
        self.rules: list[HttpRule] = list(rules)
        self._rng = rng
        self._on_request = on_request
        self._on_response = on_response
        self._on_passthrough = on_passthrough
        self._on_oversized = on_oversized
        self._requests = RequestSplitter()
        self._expect: deque[RequestInfo] = deque()  # one entry per response to come
        self._responses = ResponseSplitter(self._expect)
        self._slots: deque[_Slot] = deque()
        self._current: _Slot | None = None  # the request being read from the client
        self._floor = -math.inf  # due times to the server never go backwards
        self._reported = False
        self.requests = 0
        self.responses = 0

    # -- state --------------------------------------------------------------------------

    @property
    def passthrough(self) -> bool:
        """True once either direction stopped being HTTP."""
        return self._requests.passthrough or self._responses.passthrough

    @property
    def in_flight(self) -> int:
        """Requests whose response has not been fully delivered yet."""
        return len(self._slots)

    def _report(self, side: str, splitter: RequestSplitter | ResponseSplitter) -> None:
        if not self._reported and splitter.passthrough_reason is not None:
            self._reported = True
            if self._on_passthrough is not None:
                self._on_passthrough(side, splitter.passthrough_reason)

    # -- client -> server ---------------------------------------------------------------

    def client_data(self, data: bytes, now: float) -> Output:
        """The client sent ``data`` at ``now``: what goes where."""
        out = Output()
        if self._responses.passthrough and not self._requests.passthrough:
            # Answers can no longer be told apart (the toxic joined mid-answer, or the
            # server is not HTTP): acting on requests now could desynchronize them.
            self._send(out, self._requests.switch_to_passthrough("answers not parsed"), now)
        for piece in self._requests.feed(data):
            if piece.kind == "head":
                assert piece.request is not None
                self._begin(piece.request, piece.raw, now, out)
            elif piece.kind == "raw":
                # Not HTTP (or no longer): forward untouched, after what is queued.
                slot = self._current
                if slot is not None and slot.kind == "synthetic":
                    self._slots.remove(slot)  # its request was cut short: no answer
                self._current = None
                self._send(out, piece.raw, now)
            else:
                self._continue(piece.raw, piece.kind == "end", now, out)
        self._report("client", self._requests)
        self._flush_synthetic(out)
        return out

    def client_eof(self, now: float) -> Output:
        """The client closed its side; nothing more will come."""
        out = Output()
        dropping = self._current is not None and self._current.kind == "synthetic"
        for piece in self._requests.feed_eof():
            if not dropping:  # the rest of a request the proxy answers itself stays here
                self._send(out, piece.raw, now)
        return out

    def _begin(self, request: RequestInfo, raw: bytes, now: float, out: Output) -> None:
        self.requests += 1
        plan = Plan()
        for rule in self.rules:
            rule.plan(request, plan, self._rng)
        if self._on_request is not None:
            self._on_request(request, plan)
        if plan.response is not None:
            slot = _Slot(request, "synthetic", close=plan.close or not request.keep_alive)
            if request.expects_continue:
                # The client waits for this before it sends the body we must read.
                slot.out += _CONTINUE
            slot.answer = plan.response
        else:
            slot = _Slot(request, "forward", copies=max(plan.copies, 1))
            slot.due = now + max(plan.delay, 0.0)
            self._expect.extend([request] * slot.copies)
            if slot.copies > 1:
                slot.copy = bytearray()
        self._slots.append(slot)
        self._current = slot
        self._continue(raw, False, now, out)

    def _continue(self, raw: bytes, end: bool, now: float, out: Output) -> None:
        slot = self._current
        if slot is None:  # bytes between messages (stray CRLF)
            self._send(out, raw, now)
            return
        if slot.kind == "forward":
            self._send(out, raw, max(now, slot.due))
            if slot.copy is not None:
                slot.copy += raw
                if len(slot.copy) > MAX_COPY_BYTES:
                    self._give_up_copies(slot)
                elif end:
                    for _ in range(slot.copies - 1):
                        self._send(out, bytes(slot.copy), max(now, slot.due))
                    slot.copy = None
        elif end:
            slot.out += slot.answer
            slot.complete = True
        if end:
            self._current = None

    def _give_up_copies(self, slot: _Slot) -> None:
        # Too big to hold: deliver this request once. Its copies' answers were expected
        # last (no later request is parsed before this one ends), so drop them there.
        for _ in range(slot.copies - 1):
            self._expect.pop()
        slot.copies = 1
        slot.copy = None
        if self._on_oversized is not None:
            self._on_oversized(slot.request)

    def _send(self, out: Output, data: bytes, due: float) -> None:
        if not data:
            return
        due = max(due, self._floor)
        self._floor = due
        out.to_server.append((due, data))

    # -- server -> client ---------------------------------------------------------------

    def server_data(self, data: bytes, now: float) -> Output:
        """The server sent ``data`` at ``now``: what the client gets."""
        out = Output()
        self._server_pieces(self._responses.feed(data), out)
        return out

    def server_eof(self, now: float) -> Output:
        """The server closed its side (ends a body that runs until close)."""
        out = Output()
        self._server_pieces(self._responses.feed_eof(), out)
        # Copies the server will never answer: the client still gets the first answer.
        chunks: list[bytes] = []
        for slot in self._slots:
            self._release(slot, chunks)
        out.to_client += b"".join(chunks)
        return out

    @staticmethod
    def _release(slot: _Slot, chunks: list[bytes]) -> None:
        if slot.held:
            chunks.append(bytes(slot.held))
            slot.held.clear()

    def finishing(self, upstream: bool) -> bool:
        """Whether a link's HTTP stage must outlive its toxic's removal to keep the
        stream consistent: upstream while it drops or repeats the request being read,
        downstream while an extra answer is to be consumed or an injected one written."""
        if upstream:
            slot = self._current
            return slot is not None and (slot.kind == "synthetic" or slot.copy is not None)
        return any(slot.kind == "synthetic" or slot.copies > 1 for slot in self._slots)

    def _server_pieces(self, pieces: list[Piece], out: Output) -> None:
        chunks: list[bytes] = []
        for piece in pieces:
            kind, raw = piece.kind, piece.raw
            slot = self._first_forwarded()
            if kind == "raw" or slot is None:
                chunks.append(raw)
                continue
            if slot.responses == 0:  # the first answer is the client's
                if slot.copies > 1 and kind != "interim" and not slot.streaming:
                    # Held until every copy is answered: when the client's call returns,
                    # the effects of all copies are visible upstream.
                    slot.held += raw
                    if len(slot.held) > MAX_COPY_BYTES:
                        chunks.append(bytes(slot.held))
                        slot.held.clear()
                        slot.streaming = True
                else:
                    chunks.append(raw)
            if kind == "end":
                if slot.responses == 0:
                    self.responses += 1
                    if self._on_response is not None:
                        self._on_response()
                slot.responses += 1
                if slot.responses >= slot.copies:
                    self._release(slot, chunks)
                    self._slots.remove(slot)
                    self._flush_synthetic_into(chunks, out)
        if self._responses.passthrough and self._slots:
            # The server left HTTP (101, CONNECT or garbage): nothing to swallow any more.
            for slot in self._slots:
                self._release(slot, chunks)
            self._slots.clear()
        self._report("server", self._responses)
        out.to_client += b"".join(chunks)

    def _first_forwarded(self) -> _Slot | None:
        for slot in self._slots:
            if slot.kind == "forward":
                return slot
        return None

    def _flush_synthetic(self, out: Output) -> None:
        chunks: list[bytes] = []
        self._flush_synthetic_into(chunks, out)
        out.to_client += b"".join(chunks)

    def _flush_synthetic_into(self, chunks: list[bytes], out: Output) -> None:
        # Synthetic answers go out only when every earlier response is complete.
        while self._slots and self._slots[0].kind == "synthetic":
            slot = self._slots[0]
            if slot.out:
                chunks.append(bytes(slot.out))
                slot.out.clear()
            if not slot.complete:
                return
            self._slots.popleft()
            self.responses += 1
            if self._on_response is not None:
                self._on_response()
            if slot.close:
                out.close = True
                self._slots.clear()
                return

    def __repr__(self) -> str:
        mode = "passthrough" if self.passthrough else "http"
        return (
            f"<HttpSession {mode} requests={self.requests} responses={self.responses} "
            f"in_flight={len(self._slots)}>"
        )
