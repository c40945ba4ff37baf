"""One HTTP/1.1 conversation seen by a proxy, with faults applied per request.

:class:`HttpSession` is shared by the two links of a proxied connection. The upstream
link feeds it the client's bytes (:meth:`HttpSession.client_data`), the downstream link
the server's (:meth:`HttpSession.server_data`). It keeps a queue of *slots*, one per
request in flight, so that whatever it does to a request the client still gets exactly
one response per request, in request order (keep-alive and pipelining stay usable):

- a *forwarded* slot sends the request upstream (held until a due time for a delay);
  its response passes to the client. A duplicated one also asks for ``copies - 1``
  copies on fresh upstream connections (:class:`CopyJob` in :attr:`Output.copies`, one
  after another once the first answer is in, or all at once with the original held
  back until their connections are open); its answer is held, and every byte for the
  client behind it, until each copy is answered or lost (:meth:`HttpSession.copy_done`);
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

from pytest_chaos.toxics._http_framing import RequestScanner, splitters
from pytest_chaos.toxics._http_parse import Piece, RequestInfo

__all__ = ["CopyJob", "HttpRule", "HttpSession", "Output", "Plan", "build_response"]

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
    together: bool = False  # the copies go at the same moment as the original
    applied: list[str] = field(default_factory=list)  # names of the rules that acted


class HttpRule(Protocol):
    """A fault that decides, from a request's head, what happens to the request."""

    def plan(self, request: RequestInfo, plan: Plan, rng: random.Random) -> None:
        """Amend ``plan`` for ``request``; draw randomness only from ``rng``."""


@dataclass(slots=True)
class Output:
    """What one call produced: bytes for the server (each with a due time, in order),
    bytes for the client, and whether the connection must be closed after them."""

    to_server: list[tuple[float, bytes]] = field(default_factory=list)
    to_client: bytes = b""
    close: bool = False
    copies: list[CopyJob] = field(default_factory=list)  # deliver these on fresh connections
    end_held: bool = False  # server_eof: the end waits behind held answers
    end: bool = False  # copy_done: the held end of the server's stream may pass now


@dataclass(eq=False)
class CopyJob:
    """Copies of one request to deliver on fresh upstream connections."""

    request: RequestInfo
    data: bytes
    copies: int
    together: bool


class _Slot:
    """One request in flight. The defaults are class attributes: a plain forwarded
    request sets four attributes, not seventeen."""

    copies: int = 1
    due: float = 0.0
    copy: bytearray | None = None  # duplicated: the raw request, kept to send it again
    answer: bytes = b""  # synthetic: the response, written once the request is read
    complete: bool = False  # synthetic: the request ended and the response is ready
    close: bool = False
    responses: int = 0  # forwarded: responses completed so far
    streaming: bool = False  # duplicated: the first answer was too big to hold
    together: bool = False  # duplicated: copies go with the original, at once
    pending: int = 0  # duplicated: copies not yet answered or lost
    data: bytes | None = None  # duplicated: the whole request, until its copies are asked for
    answered: bool = False  # the upstream connection's answer is complete

    def __init__(
        self,
        request: RequestInfo,
        kind: Literal["forward", "synthetic"],
        *,
        copies: int = 1,
        close: bool = False,
    ) -> None:
        self.request = request
        self.kind = kind
        self.out = bytearray()  # synthetic bytes not yet written
        self.held = bytearray()  # duplicated: the first answer
        if copies != 1:
            self.copies = copies
        if close:
            self.close = close

    def __repr__(self) -> str:
        return f"<_Slot {self.kind} {self.request.method} {self.request.target!r}>"


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


class _Splitter(Protocol):
    passthrough_reason: str | None

    @property
    def held(self) -> int: ...


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
        self._expect: deque[RequestInfo] = deque()  # one entry per response to come
        self._requests, self._responses = splitters(self._expect)
        self._slots: deque[_Slot] = deque()
        self._current: _Slot | None = None  # the request being read from the client
        self._floor = -math.inf  # due times to the server never go backwards
        # Client-bound bytes behind an answer that waits for its copies (a slot), in
        # order; "close" and "eof" mark where the stream ends.
        self._queue: deque[bytes | _Slot | str] = deque()
        # Bytes for the server held back until the copies of a concurrent duplicate
        # have their connections open (None: nothing held).
        self._up_held: list[bytes] | None = None
        self._up_waiting = 0
        self._reported = False
        self._saved: dict[str, Callable[..., None] | None] = {}  # callbacks while quiet
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
        return len(self._slots) + sum(isinstance(x, _Slot) for x in self._queue)

    # -- the proxy's passive request counter --------------------------------------------

    def request_position(self) -> tuple[str, int, bytes] | None:
        """Where the client's stream stands, for a request counter resuming there (see
        ``RequestScanner.position``); None if that cannot be told (passthrough, or the
        h11 backend)."""
        requests = self._requests
        return requests.position() if isinstance(requests, RequestScanner) else None

    def follow_requests(self, on: bool) -> RequestScanner | None:
        """Keep (or stop keeping) what the client sends from a switch to passthrough
        on; returns the request scanner that keeps it (its ``pending_tail`` is set
        once there is a tail, ``tail()`` takes it), None if off or this backend cannot."""
        requests = self._requests
        if not isinstance(requests, RequestScanner):
            return None
        requests.follow(on)
        return requests if on else None

    @property
    def gated(self) -> bool:
        """Whether bytes for the client wait for the copies of a duplicated request."""
        return bool(self._queue)

    def quiet(self, upstream: bool, on: bool) -> None:
        """Stop (``on``) or resume counting the requests (``upstream``) or the responses
        this session parses, and reporting a switch to passthrough: while no HTTP toxic
        is live in that direction the session only keeps its framing in step (the
        proxy's passive counter counts the requests meanwhile). A switch that happened
        while quiet is reported when the last direction speaks again."""
        saved = self._saved
        name = "_on_request" if upstream else "_on_response"
        if on:
            if name not in saved:
                saved[name] = getattr(self, name)
                setattr(self, name, None)
            if "_on_passthrough" not in saved:
                saved["_on_passthrough"] = self._on_passthrough
                self._on_passthrough = None
            return
        if name in saved:
            setattr(self, name, saved.pop(name))
        if saved.keys() == {"_on_passthrough"}:
            self._on_passthrough = saved.pop("_on_passthrough")
            for side, splitter in (("client", self._requests), ("server", self._responses)):
                self._report(side, splitter)

    def let_go(self) -> None:
        """What a removed toxic held went on at once (a healed delay): the rest of the
        requests in flight, and the requests after them, are no longer held back to the
        old due times."""
        self._floor = -math.inf
        for slot in self._slots:
            slot.due = 0.0

    def _report(self, side: str, splitter: _Splitter) -> None:
        if (
            not self._reported
            and splitter.passthrough_reason is not None
            and "_on_passthrough" not in self._saved
        ):
            self._reported = True
            if self._on_passthrough is not None:
                self._on_passthrough(side, splitter.passthrough_reason)

    # -- client -> server ---------------------------------------------------------------

    def client_data(self, data: bytes, now: float) -> Output:
        """The client sent ``data`` at ``now``: what goes where."""
        out = Output()
        requests = self._requests
        if self._responses.passthrough_reason is not None and requests.passthrough_reason is None:
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
        if requests.passthrough_reason is not None:
            self._report("client", requests)
        slots = self._slots
        if slots and slots[0].kind == "synthetic":
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
            slot = _Slot(request, "forward", copies=plan.copies if plan.copies > 1 else 1)
            slot.due = now + plan.delay if plan.delay > 0.0 else now
            self._expect.append(request)  # copies are answered on their own connections
            if slot.copies > 1:
                slot.copy = bytearray()
                slot.pending = slot.copies - 1
                slot.together = plan.together
        self._slots.append(slot)
        self._current = slot
        self._continue(raw, False, now, out)

    def _continue(self, raw: bytes, end: bool, now: float, out: Output) -> None:
        slot = self._current
        if slot is None:  # bytes between messages (stray CRLF)
            self._send(out, raw, now)
            return
        if slot.kind == "forward":
            if slot.copy is None or not slot.together:
                self._send(out, raw, now if now > slot.due else slot.due)
            if slot.copy is not None:
                slot.copy += raw
                if len(slot.copy) > MAX_COPY_BYTES:
                    if slot.together:  # held back so far: it goes now, alone
                        self._send(out, bytes(slot.copy), max(now, slot.due))
                    self._give_up_copies(slot)
                elif end:
                    slot.data = bytes(slot.copy)
                    slot.copy = None
                    if slot.together:
                        # The original waits for its copies' connections (copies_ready),
                        # so that all of them reach the server at the same moment.
                        self._up_waiting += 1
                        self._up_held = [*(self._up_held or []), slot.data]
                    self._ask_copies(slot, out)
        elif end:
            slot.out += slot.answer
            slot.complete = True
        if end:
            self._current = None

    def _give_up_copies(self, slot: _Slot) -> None:
        # Too big to hold: deliver this request once (its copies count as lost).
        slot.copies = 1
        slot.pending = 0
        slot.copy = None
        if self._on_oversized is not None:
            self._on_oversized(slot.request)

    def _ask_copies(self, slot: _Slot, out: Output) -> None:
        # Sequential copies go once the first answer is in (so they follow the original
        # as they did on one connection); concurrent ones as soon as the request is read.
        if slot.data is None or not (slot.together or slot.answered):
            return
        out.copies.append(CopyJob(slot.request, slot.data, slot.copies - 1, slot.together))
        slot.data = None

    def copies_ready(self, job: CopyJob, now: float) -> Output:
        """The connections of a concurrent ``job`` are open (or failed): what the server
        gets now (the held original, and what queued behind it)."""
        out = Output()
        self._up_waiting -= 1
        if self._up_waiting <= 0 and self._up_held is not None:
            held, self._up_held = self._up_held, None
            self._up_waiting = 0
            for data in held:
                self._send(out, data, now)
        return out

    def copy_done(self, job: CopyJob) -> Output:
        """One copy of ``job`` was answered or lost: what the client gets now."""
        for entry in [*self._slots, *self._queue]:
            if isinstance(entry, _Slot) and entry.request is job.request and entry.pending:
                entry.pending -= 1
                break
        out = Output()
        self._drain_queue(out)
        return out

    def _drain_queue(self, out: Output) -> None:
        queue = self._queue
        while queue:
            head = queue[0]
            if isinstance(head, _Slot):
                if head.pending > 0:
                    return
                out.to_client += bytes(head.held)
                head.held.clear()
            elif head == "close":
                out.close = True
                queue.clear()
                return
            elif head == "eof":
                out.end = True
            elif isinstance(head, bytes):
                out.to_client += head
            queue.popleft()

    def _client(self, out: Output, data: bytes | bytearray) -> None:
        if not data:
            return
        if self._queue:
            self._queue.append(bytes(data))
        else:
            out.to_client += data

    def _send(self, out: Output, data: bytes, due: float) -> None:
        if not data:
            return
        if self._up_held is not None:
            self._up_held.append(data)
            return
        if due < self._floor:
            due = self._floor
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
        # Answers cut short by the close: the client gets what came.
        for slot in self._slots:
            self._release(slot, out)
        if self._queue:
            self._queue.append("eof")
            out.end_held = True
        return out

    def _release(self, slot: _Slot, out: Output) -> None:
        if slot.held:
            self._client(out, slot.held)
            slot.held.clear()

    def finishing(self, upstream: bool) -> bool:
        """Whether a link's HTTP stage must outlive its toxic's removal to keep the
        stream consistent: upstream while it drops or repeats the request being read,
        downstream while an extra answer is to be consumed or an injected one written;
        either while its parser holds bytes it has not handed on (an unfinished head or
        chunk line: they would be lost with the stage)."""
        if upstream:
            if self._requests.held:
                return True
            slot = self._current
            return self._up_held is not None or (
                slot is not None and (slot.kind == "synthetic" or slot.copy is not None)
            )
        if self._responses.held:
            return True
        return bool(self._queue) or any(
            slot.kind == "synthetic" or slot.copies > 1 for slot in self._slots
        )

    def _server_pieces(self, pieces: list[Piece], out: Output) -> None:
        for piece in pieces:
            kind, raw = piece.kind, piece.raw
            slots = self._slots
            slot = slots[0] if slots and slots[0].kind == "forward" else self._first_forwarded()
            if kind == "raw" or slot is None:
                self._client(out, raw)
                continue
            if slot.copies > 1 and kind != "interim" and not slot.streaming:
                # Held until every copy is answered: when the client's call returns,
                # the effects of all copies are visible upstream.
                slot.held += raw
                if len(slot.held) > MAX_COPY_BYTES:
                    self._release(slot, out)
                    slot.streaming = True
            else:
                self._client(out, raw)
            if kind == "end":
                self.responses += 1
                if self._on_response is not None:
                    self._on_response()
                slot.responses += 1
                slot.answered = True
                self._slots.remove(slot)
                if slot.pending > 0:
                    self._queue.append(slot)  # what follows waits behind its copies
                    self._ask_copies(slot, out)
                else:
                    self._release(slot, out)
                if slots and slots[0].kind == "synthetic":
                    self._flush_synthetic(out)
        if self._responses.passthrough_reason is not None:
            if self._slots:
                # The server left HTTP (101, CONNECT or garbage): nothing to swallow any more.
                for slot in self._slots:
                    self._release(slot, out)
                self._slots.clear()
            self._report("server", self._responses)

    def _first_forwarded(self) -> _Slot | None:
        for slot in self._slots:
            if slot.kind == "forward":
                return slot
        return None

    def _flush_synthetic(self, out: Output) -> None:
        # Synthetic answers go out only when every earlier response is complete.
        while self._slots and self._slots[0].kind == "synthetic":
            slot = self._slots[0]
            if slot.out:
                self._client(out, slot.out)
                slot.out.clear()
            if not slot.complete:
                return
            self._slots.popleft()
            self.responses += 1
            if self._on_response is not None:
                self._on_response()
            if slot.close:
                if self._queue:
                    self._queue.append("close")
                else:
                    out.close = True
                self._slots.clear()
                return

    def __repr__(self) -> str:
        mode = "passthrough" if self.passthrough else "http"
        return (
            f"<HttpSession {mode} requests={self.requests} responses={self.responses} "
            f"in_flight={len(self._slots)}>"
        )
