"""Split one direction of an HTTP/1.1 byte stream into messages, keeping the raw bytes.

A proxy that injects HTTP faults must know where each request and response starts and
ends, but it must not rewrite what it forwards: the upstream should receive the bytes
the client sent (header casing, chunk sizes, chunk extensions and all). The splitters
here therefore parse with h11 and hand back the *raw* bytes of every event, attributed
to the message they belong to, so the caller can forward, drop, hold or repeat whole
messages byte for byte.

h11 is a state machine for one side of a conversation. Each message gets a fresh
``h11.Connection``: the request side does not have to wait for the response (pipelining
keeps flowing) and the response side is told the method of the request it answers
(a ``HEAD`` response has no body). The number of raw bytes an event consumed is the
drop in the size of h11's receive buffer.

Anything that is not HTTP (Redis, PostgreSQL, TLS, garbage) is detected on the first
line, before h11 would wait for a blank line that never comes, and the splitter turns
into a pass-through: every byte from then on is returned as :attr:`Piece.kind` ``raw``,
unchanged and in order.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import h11

__all__ = ["Piece", "RequestInfo", "RequestSplitter", "ResponseSplitter"]

PieceKind = Literal["head", "interim", "body", "end", "raw"]

# A head larger than this is not a request we want to hold in memory; it is passed
# through instead (h11's own default is 16 KiB).
MAX_HEAD_BYTES = 64 * 1024

_TCHAR = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]"
_VCHAR = rb"[\x21-\x7e]"
# Every prefix of a valid request line ("GET /x HTTP/1.1\r\n") matches this, and
# nothing that cannot become one does: a Redis "*1\r\n" or a TLS 0x16 fails at once.
_REQUEST_LINE_PREFIX = re.compile(
    _TCHAR + rb"{1,64}(?: (?:" + _VCHAR + rb"+(?: (?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.(?:[0-9]"
    rb"(?:\r?\n?)?)?)?)?)?)?)?)?)?)?)?)?\Z"
)
_STATUS_LINE_PREFIX = re.compile(
    rb"(?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.(?:[0-9](?: (?:[0-9](?:[0-9](?:[0-9]"
    rb"(?:[ \t][^\r\n]*)?(?:\r?\n?)?)?)?)?)?)?)?)?)?)?)?)?)?\Z"
)


@dataclass(frozen=True)
class RequestInfo:
    """What the fault rules of a proxy need to know about one request."""

    method: str
    target: str
    http_version: str
    headers: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        """The target without its query string (``/a/b`` for ``/a/b?x=1``); for an
        absolute-form target (``http://host/a/b``, sent to HTTP proxies) its path."""
        target = self.target
        if target[:1] != "/" and "://" in target:
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        return target.split("?", 1)[0].split("#", 1)[0]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key == lname:
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        """Whether the client expects the connection to stay open after the response."""
        tokens = {t.strip() for t in (self.header("connection") or "").lower().split(",")}
        if self.http_version == "1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @property
    def expects_continue(self) -> bool:
        """Whether the client waits for ``100 Continue`` before sending the body."""
        return (self.header("expect") or "").lower() == "100-continue"

    @property
    def switches_protocol(self) -> bool:
        """Whether the request may turn the connection into something that is not HTTP."""
        return self.method == "CONNECT" or self.header("upgrade") is not None


class Piece(NamedTuple):
    """A run of raw bytes and what it is.

    ``head`` is a request or final response head (``request`` or ``status`` set),
    ``interim`` a 1xx response head, ``body`` part of a body, ``end`` the bytes that
    complete the message (possibly empty), ``raw`` bytes of a stream that is not (or no
    longer) HTTP. A named tuple: several are made per message, and it makes them at
    half the cost of a frozen dataclass.
    """

    kind: PieceKind
    raw: bytes
    request: RequestInfo | None = None
    status: int | None = None


def _buffered(conn: h11.Connection) -> int:
    # h11 keeps what it has not parsed yet in _receive_buffer; its length is all we
    # need, and trailing_data would copy the buffer on every event.
    buf = getattr(conn, "_receive_buffer", None)
    if buf is not None:
        return len(buf)
    return len(conn.trailing_data[0])


def _strs(headers: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)


class _Splitter:
    """Shared machinery: a fresh h11 connection per message, raw-byte accounting."""

    _role: type[h11.CLIENT] | type[h11.SERVER]
    _line_prefix: re.Pattern[bytes]

    def __init__(self) -> None:
        self._conn: h11.Connection | None = None
        self._unattributed = bytearray()  # fed to self._conn, not yet returned
        self._between = bytearray()  # bytes waiting for the next message to start
        self.passthrough_reason: str | None = None
        self.messages = 0

    @property
    def passthrough(self) -> bool:
        """True once the stream is known not to be HTTP (or left HTTP)."""
        return self.passthrough_reason is not None

    @property
    def held(self) -> int:
        """Bytes fed but not handed on yet (an unfinished head or chunk line)."""
        return len(self._unattributed) + len(self._between)

    def __repr__(self) -> str:
        mode = f"passthrough ({self.passthrough_reason})" if self.passthrough else "http"
        state = "in a message" if self._conn is not None else "between messages"
        return f"<{type(self).__name__} {mode} messages={self.messages} {state}>"

    def switch_to_passthrough(self, reason: str) -> bytes:
        """Stop parsing; return every byte held so far (to be forwarded unchanged)."""
        if self.passthrough_reason is None:
            self.passthrough_reason = reason
        held = bytes(self._unattributed) + bytes(self._between)
        self._unattributed.clear()
        self._between.clear()
        self._conn = None
        return held

    def _expecting(self) -> bool:
        """Whether a message may start now (a response needs a request to answer)."""
        return True

    def _new_connection(self) -> h11.Connection:
        raise NotImplementedError

    def _event_piece(self, event: object, raw: bytes) -> Piece | None:
        raise NotImplementedError

    def _switching(self) -> bool:
        """Whether the message that just ended asked to leave HTTP (Upgrade, CONNECT)."""
        return False

    def feed(self, data: bytes) -> list[Piece]:
        """Parse ``data``; return the pieces it completes, in stream order."""
        if not data:
            return []  # h11 reads an empty receive_data() as the peer's close
        if self.passthrough:
            return [Piece("raw", data)] if data else []
        pieces: list[Piece] = []
        if self._conn is None:
            self._between += data
        else:
            self._unattributed += data
            self._conn.receive_data(data)
        self._run(pieces)
        return pieces

    def feed_eof(self) -> list[Piece]:
        """The peer closed its side: finish a body that runs until close, if any."""
        pieces: list[Piece] = []
        if self.passthrough:
            return pieces
        if self._conn is not None:
            self._conn.receive_data(b"")
            self._run(pieces, eof=True)
        if self._between:
            # The start of a message that will never be complete: hand it on as is.
            pieces.append(Piece("raw", bytes(self._between)))
            self._between.clear()
        return pieces

    def _run(self, pieces: list[Piece], *, eof: bool = False) -> None:
        while not self.passthrough:
            if self._conn is None:
                if not self._start_message(pieces):
                    return
                continue
            conn = self._conn
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if eof:
                    # Closed mid-message: hand on what is left, as a direct link would.
                    if self._unattributed:
                        pieces.append(Piece("raw", bytes(self._unattributed)))
                        self._unattributed.clear()
                    self._conn = None
                    return
                held = self.switch_to_passthrough(f"not HTTP/1.1: {exc}")
                if held:
                    pieces.append(Piece("raw", held))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if event is h11.PAUSED and conn.their_state is h11.SWITCHED_PROTOCOL:
                    # CONNECT accepted or 101: what follows is another protocol.
                    held = self.switch_to_passthrough("switched protocol")
                    if held:
                        pieces.append(Piece("raw", held))
                return
            if isinstance(event, h11.ConnectionClosed):
                return
            consumed = len(self._unattributed) - _buffered(conn)
            raw = bytes(self._unattributed[:consumed])
            del self._unattributed[:consumed]
            if isinstance(event, h11.EndOfMessage):
                pieces.append(Piece("end", raw))
                self.messages += 1
                if self._switching():
                    held = self.switch_to_passthrough("protocol switch requested")
                    if held:
                        pieces.append(Piece("raw", held))
                    return
                if self._conn is conn:
                    # The leftover is the start of the next (pipelined) message.
                    self._between = self._unattributed
                    self._unattributed = bytearray()
                    self._conn = None
                continue
            piece = self._event_piece(event, raw)
            if piece is not None:
                pieces.append(piece)

    def _start_message(self, pieces: list[Piece]) -> bool:
        """Open a parser for the next message once its first line looks like HTTP."""
        buf = self._between
        # Stray CRLFs between messages are tolerated by servers but not by h11.
        skip = 0
        while skip < len(buf) and buf[skip] in (0x0D, 0x0A):
            skip += 1
        if skip:
            pieces.append(Piece("raw", bytes(buf[:skip])))
            del buf[:skip]
        if not buf:
            return False
        if not self._expecting():
            pieces.append(Piece("raw", self.switch_to_passthrough("unsolicited data")))
            return False
        newline = buf.find(b"\n")
        first = bytes(buf[: newline + 1] if newline >= 0 else buf[:MAX_HEAD_BYTES])
        if not self._line_prefix.match(first):
            held = self.switch_to_passthrough(f"not HTTP/1.1: starts with {bytes(buf[:16])!r}")
            pieces.append(Piece("raw", held))
            return False
        if newline < 0:
            if len(buf) >= MAX_HEAD_BYTES:
                pieces.append(Piece("raw", self.switch_to_passthrough("first line too long")))
            return False
        conn = self._new_connection()
        self._conn = conn
        self._unattributed = self._between
        self._between = bytearray()
        conn.receive_data(bytes(self._unattributed))
        return True


class RequestSplitter(_Splitter):
    """Splits a client's byte stream into requests (pipelined requests included).

    >>> s = RequestSplitter()
    >>> [p.kind for p in s.feed(b"GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /b HT")]
    ['head', 'end']
    >>> pieces = s.feed(b"TP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    >>> [(p.kind, p.request.path if p.request else None) for p in pieces]
    [('head', '/b'), ('end', None)]
    """

    _role = h11.SERVER
    _line_prefix = _REQUEST_LINE_PREFIX
    _last: RequestInfo | None = None

    def _switching(self) -> bool:
        return self._last is not None and self._last.switches_protocol

    def _new_connection(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    def _event_piece(self, event: object, raw: bytes) -> Piece | None:
        if isinstance(event, h11.Request):
            info = RequestInfo(
                method=event.method.decode("ascii"),
                target=event.target.decode("latin-1"),
                http_version=event.http_version.decode("ascii"),
                headers=_strs(event.headers),
            )
            self._last = info
            return Piece("head", raw, request=info)
        if isinstance(event, h11.Data):
            return Piece("body", raw)
        return Piece("body", raw) if raw else None


_END = h11.EndOfMessage()
_STAND_INS: dict[str, h11.Request] = {}


def _stand_in(request: RequestInfo) -> h11.Request:
    """The request a response parser is told it sent (h11 events are immutable, so
    plain requests share one per method: building and validating one costs more than
    parsing a small response)."""
    upgrade = request.header("upgrade")
    if upgrade is None and request.method != "CONNECT":
        cached = _STAND_INS.get(request.method)
        if cached is not None:
            return cached
    headers = [("Host", "proxy")]
    if upgrade is not None:
        # Tell h11 about the proposal so that a 101 answer switches it over.
        headers += [("Connection", "upgrade"), ("Upgrade", upgrade)]
    # The target only matters for CONNECT (h11 needs a proposal to switch on 2xx).
    event = h11.Request(method=request.method, target=request.target or "/", headers=headers)
    if upgrade is None and request.method != "CONNECT" and len(_STAND_INS) < 64:
        _STAND_INS[request.method] = event
    return event


class ResponseSplitter(_Splitter):
    """Splits a server's byte stream into responses.

    ``expected`` holds the requests the coming responses answer, in order (the owner
    appends one entry per response it expects); the splitter takes one as each
    response starts (its method decides whether a body follows). Bytes that arrive
    while it is empty are unsolicited (the server speaks first, or answers a request
    the proxy did not parse): the splitter passes everything through from then on.
    """

    _role = h11.CLIENT
    _line_prefix = _STATUS_LINE_PREFIX

    def __init__(self, expected: deque[RequestInfo]) -> None:
        super().__init__()
        self.expected = expected

    def _new_connection(self) -> h11.Connection:
        request = self.expected.popleft()  # _expecting() said there is one
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        conn.send(_stand_in(request))
        conn.send(_END)
        return conn

    def _expecting(self) -> bool:
        return bool(self.expected)

    def _event_piece(self, event: object, raw: bytes) -> Piece | None:
        if isinstance(event, h11.InformationalResponse):
            return Piece("interim", raw, status=event.status_code)
        if isinstance(event, h11.Response):
            return Piece("head", raw, status=event.status_code)
        if isinstance(event, h11.Data):
            return Piece("body", raw)
        return Piece("body", raw) if raw else None
