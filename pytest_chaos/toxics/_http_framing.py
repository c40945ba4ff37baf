"""A hand-written incremental scanner for HTTP/1.x framing, and the choice of parser.

The HTTP toxics need only the framing of each message: the request line or status
line, the headers, and where the body ends (Content-Length, chunked, until close, or
none for ``HEAD``/1xx/204/304). :class:`RequestScanner` and :class:`ResponseScanner`
find exactly that, with the interface and the pieces of the h11 splitters in
:mod:`._http_parse` (raw bytes kept, non-HTTP streams passed through), at a fraction
of their cost: a Content-Length body is sliced, never inspected, and a chunked body is
read one chunk-size line per chunk.

Measured (bench/RESULTS.md, 2026-12-05): a small GET and its answer cost ~78 µs
through the h11 splitters and ~26 µs through the session with these, sans-IO, on the
2-core bench machine; ~20 µs through both HTTP stages since a whole head is taken in
one pass. The h11 splitters stay available for comparison and as a fallback:
``PYTEST_CHAOS_HTTP_PARSER=h11`` (read when a connection's HTTP session starts).
"""

from __future__ import annotations

import os
import re
from collections import deque

from pytest_chaos.toxics._http_parse import (
    _REQUEST_LINE_PREFIX,
    _STATUS_LINE_PREFIX,
    _TCHAR,
    _VCHAR,
    MAX_HEAD_BYTES,
    Piece,
    RequestInfo,
    RequestSplitter,
    ResponseSplitter,
)

__all__ = ["PARSERS", "RequestScanner", "ResponseScanner", "parser_name", "splitters"]

_BLANK = re.compile(rb"\n\r?\n")
_REQUEST_LINE = re.compile(b"(" + _TCHAR + rb"+) (" + _VCHAR + rb"+) HTTP/([0-9]\.[0-9])")
_STATUS_LINE = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?:[ \t][^\r\n]*)?")
_HEADER = re.compile(b"(" + _TCHAR + rb"+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,20})[ \t]*(?:;[^\r\n]*)?\r?\n")

# The fast path of a head that arrived whole (see _Scanner._whole_head): the first line
# with its CR (a method of at most 64 characters, as _REQUEST_LINE_PREFIX allows), every
# header line checked by one match (the lines _HEADER accepts, with their CR and LF;
# an obsolete folded line fails it and takes the slow path), then the pairs.
_REQUEST_LINE_CR = re.compile(
    b"(" + _TCHAR + rb"{1,64}) (" + _VCHAR + rb"+) HTTP/([0-9]\.[0-9])\r?"
)
_STATUS_LINE_CR = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?:[ \t][^\r\n]*)?\r?")
_HEADER_LINES = re.compile(b"(?:" + _TCHAR + rb"+:[^\x00-\x08\x0a-\x1f\x7f]*\r?\n)*")
_HEADER_TEXT = re.compile("(" + _TCHAR.decode() + "+):([^\r\n]*)")
_FRAMING_PAIR = re.compile(rb"^(content-length|transfer-encoding):([^\r\n]*)", re.I | re.M)

# Scanner states.
_IDLE, _HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _CLOSE = range(7)


def _cursor(state: int, left: int, held: bytes) -> tuple[str, int, bytes] | None:
    """A scanner state as :meth:`_Scanner.position` describes it."""
    if state in (_IDLE, _HEAD):
        return ("head", 0, held)
    if state == _LENGTH:
        return ("body", left, held)
    if state == _CHUNK_SIZE:
        return ("chunk", 0, held)
    if state == _CHUNK_DATA:
        return ("skip", left + 2, held)
    if state == _CHUNK_END:
        return ("skip", 2, held)
    return None  # until close: responses only


class _Bad(Exception):
    """The head or a chunk line is not HTTP/1.x."""


def _headers(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[-1:] == b"\r":
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):  # obsolete line folding, as h11 accepts it
            if not out:
                raise _Bad("continuation line before the first header")
            name, value = out[-1]
            out[-1] = (name, (value + b" " + line.strip(b" \t")).strip(b" \t"))
            continue
        match = _HEADER.fullmatch(line)
        if match is None:
            raise _Bad(f"illegal header line {line[:40]!r}")
        out.append((match.group(1).lower(), match.group(2)))
    return out


def _framing(headers: list[tuple[bytes, bytes]]) -> int | None:
    """-1 for chunked, the Content-Length, or None when neither header is there."""
    length: bytes | None = None
    chunked = False
    for name, value in headers:
        if name == b"content-length":
            if b"," in value:
                values = {v.strip() for v in value.split(b",")}
                if len(values) != 1:
                    raise _Bad("conflicting Content-Length headers")
                one = values.pop()
            else:
                one = value.strip()
            if not one.isdigit() or len(one) > 20 or (length is not None and one != length):
                raise _Bad(f"bad Content-Length {value!r}")
            length = one
        elif name == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                raise _Bad(f"unsupported Transfer-Encoding {value!r}")
            chunked = True
    if chunked:
        return -1
    return None if length is None else int(length)


class _Scanner:
    """Shared machinery: one buffer, a state, raw bytes handed on as they are framed."""

    _line_prefix: re.Pattern[bytes]

    def __init__(self) -> None:
        self._buf = bytearray()  # received, not yet handed on
        self._state = _IDLE
        self._left = 0  # body bytes still to come (Content-Length, chunk data)
        self.passthrough_reason: str | None = None
        self.messages = 0
        # Followed by the proxy's passive request counter (see position()): from the
        # switch to passthrough on, where the stream stood and every byte since.
        self._follow = False
        #: bytes from the switch to passthrough on (while followed), see tail()
        self.pending_tail: bytearray | None = None
        self._tail_at: tuple[int, int] = (_IDLE, 0)

    def position(self) -> tuple[str, int, bytes] | None:
        """Where the stream stands after what was fed, for a request counter taking
        over from here: ``("head", 0, held)`` (between messages or in a head, ``held``
        not yet framed), ``("body", n, b"")`` (``n`` bytes of a Content-Length body to
        come), ``("chunk", 0, held)`` (at a chunk-size line or the trailers), ``("skip",
        n, held)`` (``n`` bytes of chunk data and its CRLF to come); None in passthrough
        (see :meth:`follow`)."""
        if self.passthrough_reason is not None:
            return None
        return _cursor(self._state, self._left, bytes(self._buf))

    def follow(self, on: bool) -> None:
        """Keep (``on``) or stop keeping what :meth:`tail` returns."""
        self._follow = on
        if not on:
            self.pending_tail = None

    def tail(self) -> tuple[str, int, bytes] | None:
        """Once the stream went passthrough while followed: the position (as
        :meth:`position` gives it) of the switch and every byte from there on; following
        stops. None while the stream is parsed or not followed."""
        tail = self.pending_tail
        if tail is None:
            return None
        self.follow(False)
        state, left = self._tail_at
        kind, n, _ = _cursor(state, left, b"") or ("head", 0, b"")
        return kind, n, bytes(tail)

    def _keep_tail(self, state: int, left: int, first: bytes) -> None:
        if self._follow and self.pending_tail is None:
            self._tail_at = (state, left)
            self.pending_tail = bytearray(first)

    @property
    def passthrough(self) -> bool:
        """True once the stream is known not to be HTTP (or left HTTP)."""
        return self.passthrough_reason is not None

    @property
    def held(self) -> int:
        """Bytes fed but not handed on yet (an unfinished head or chunk line)."""
        return len(self._buf)

    def __repr__(self) -> str:
        mode = f"passthrough ({self.passthrough_reason})" if self.passthrough else "http"
        state = "between messages" if self._state == _IDLE else "in a message"
        return f"<{type(self).__name__} {mode} messages={self.messages} {state}>"

    def switch_to_passthrough(self, reason: str) -> bytes:
        """Stop parsing; return every byte held so far (to be forwarded unchanged)."""
        held = bytes(self._buf)
        if self.passthrough_reason is None:
            self.passthrough_reason = reason
            if self._follow:
                self._keep_tail(self._state, self._left, held)
        self._buf.clear()
        self._state = _IDLE
        return held

    def _expecting(self) -> bool:
        return True

    def _start(self) -> None:
        """A message starts (its first line looks like HTTP)."""

    def _head(self, lines: list[bytes], raw: bytes, pieces: list[Piece]) -> None:
        raise NotImplementedError

    def _done(self, pieces: list[Piece]) -> None:
        self.messages += 1
        self._state = _IDLE

    def _whole_head(
        self, buf: bytes | bytearray, pos: int, nl: int, last: int, stop: int, pieces: list[Piece]
    ) -> bool:
        """Take the head ``buf[pos:stop]`` (first line ending at ``nl``, last header
        line at ``last``) if it is a plain one, exactly as the slow path would; False
        leaves it to the slow path (which then finds what is wrong or unusual)."""
        return False

    def _body(self, framing: int | None, until_close: bool, pieces: list[Piece]) -> None:
        if framing == -1:
            self._state = _CHUNK_SIZE
        elif framing:
            self._state, self._left = _LENGTH, framing
        elif framing is None and until_close:
            self._state = _CLOSE
        else:
            pieces.append(Piece("end", b""))
            self._done(pieces)

    def feed(self, data: bytes) -> list[Piece]:
        """Parse ``data``; return the pieces it completes, in stream order."""
        if not data:
            return []
        if self.passthrough_reason is not None:
            if self.pending_tail is not None:
                self.pending_tail += data
            return [Piece("raw", data)]
        pieces: list[Piece] = []
        # Fast paths while nothing is held: a body whose length is known or that runs
        # until close, and whole heads at the start of ``data`` (no copy into the buffer).
        while not self._buf:
            state = self._state
            if state == _CLOSE:
                pieces.append(Piece("body", data))
                return pieces
            if state == _LENGTH:
                n = self._left
                if len(data) < n:
                    self._left = n - len(data)
                    pieces.append(Piece("body", data))
                    return pieces
                self._left = 0
                pieces.append(Piece("end", data[:n]))
                self._done(pieces)
            elif state == _IDLE and data[0] not in (0x0D, 0x0A) and self._expecting():
                nl = data.find(b"\n")
                if nl < 0:
                    break
                blank = _BLANK.search(data, nl)
                if blank is None or not self._whole_head(
                    data, 0, nl, blank.start(), blank.end(), pieces
                ):
                    break
                n = blank.end()
            else:
                break
            data = data[n:]
            if self.passthrough_reason is not None:
                if self._follow:
                    self._keep_tail(self._state, self._left, data)
                if data:
                    pieces.append(Piece("raw", data))
                return pieces
            if not data:
                return pieces
        self._buf += data
        self._run(pieces)
        return pieces

    def feed_eof(self) -> list[Piece]:
        """The peer closed its side: finish a body that runs until close, if any."""
        if self.passthrough:
            return []
        pieces: list[Piece] = []
        if self._state == _CLOSE:
            pieces.append(Piece("end", b""))
            self._done(pieces)
        if self._buf:
            # The start of a message that will never be complete: hand it on as is.
            pieces.append(Piece("raw", bytes(self._buf)))
            self._buf.clear()
        self._state = _IDLE
        return pieces

    def _switch(self, reason: str) -> None:
        if self.passthrough_reason is None:
            self.passthrough_reason = reason

    def _run(self, pieces: list[Piece]) -> None:
        buf = self._buf
        pos, end = 0, len(buf)
        while pos < end and not self.passthrough:
            state = self._state
            if state in (_LENGTH, _CHUNK_DATA):
                n = min(self._left, end - pos)
                raw = bytes(buf[pos : pos + n])
                pos += n
                self._left -= n
                if self._left:
                    pieces.append(Piece("body", raw))
                elif state == _LENGTH:
                    pieces.append(Piece("end", raw))
                    self._done(pieces)
                else:
                    pieces.append(Piece("body", raw))
                    self._state = _CHUNK_END
            elif state == _CLOSE:
                pieces.append(Piece("body", bytes(buf[pos:end])))
                pos = end
            elif state == _CHUNK_END:
                if end - pos < 2:
                    if buf[pos] != 0x0D:
                        self._switch("not HTTP/1.1: malformed chunk end")
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    self._switch("not HTTP/1.1: malformed chunk end")
                    break
                pieces.append(Piece("body", b"\r\n"))
                pos += 2
                self._state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if end - pos > MAX_HEAD_BYTES:
                        self._switch("not HTTP/1.1: chunk line too long")
                    break
                match = _CHUNK.fullmatch(buf, pos, nl + 1)
                if match is None:
                    self._switch(f"not HTTP/1.1: bad chunk line {bytes(buf[pos:nl])[:40]!r}")
                    break
                size = int(match.group(1), 16)
                if size:
                    pieces.append(Piece("body", bytes(buf[pos : nl + 1])))
                    pos = nl + 1
                    self._state, self._left = _CHUNK_DATA, size
                    continue
                # The last chunk: the message ends after the trailers' blank line.
                after = nl + 1
                if buf[after : after + 1] == b"\n":
                    stop = after + 1
                elif buf[after : after + 2] == b"\r\n":
                    stop = after + 2
                else:
                    blank = _BLANK.search(buf, after) if end - after >= 2 else None
                    if blank is None:
                        if end - pos > MAX_HEAD_BYTES:
                            self._switch("not HTTP/1.1: trailers too long")
                        break
                    stop = blank.end()
                pieces.append(Piece("end", bytes(buf[pos:stop])))
                pos = stop
                self._done(pieces)
            elif state == _IDLE:
                start = pos
                while pos < end and buf[pos] in (0x0D, 0x0A):
                    pos += 1  # stray CRLFs between messages are tolerated by servers
                if pos > start:
                    pieces.append(Piece("raw", bytes(buf[start:pos])))
                    continue
                if not self._expecting():
                    self._switch("unsolicited data")
                    break
                nl = buf.find(b"\n", pos)
                if nl >= 0:
                    # The usual case, a whole head in the buffer: one pass, no states.
                    blank = _BLANK.search(buf, nl)
                    if blank is not None and self._whole_head(
                        buf, pos, nl, blank.start(), blank.end(), pieces
                    ):
                        pos = blank.end()
                        continue
                first = bytes(buf[pos : nl + 1] if nl >= 0 else buf[pos : pos + MAX_HEAD_BYTES])
                if not self._line_prefix.match(first):
                    self._switch(f"not HTTP/1.1: starts with {bytes(buf[pos : pos + 16])!r}")
                    break
                if nl < 0:
                    if end - pos >= MAX_HEAD_BYTES:
                        self._switch("first line too long")
                    break
                self._start()
                self._state = _HEAD
            else:  # _HEAD
                blank = _BLANK.search(buf, pos)
                if blank is None:
                    if end - pos > MAX_HEAD_BYTES:
                        self._switch("not HTTP/1.1: head too long")
                    break
                lines = bytes(buf[pos : blank.start()]).split(b"\n")
                try:
                    self._head(lines, bytes(buf[pos : blank.end()]), pieces)
                except _Bad as exc:
                    self._switch(f"not HTTP/1.1: {exc}")
                    break
                pos = blank.end()
        if self.passthrough:
            rest = bytes(buf[pos:])
            if self._follow:
                self._keep_tail(self._state, self._left, rest)
            buf.clear()
            self._state = _IDLE
            if rest:
                pieces.append(Piece("raw", rest))
        elif pos:
            del buf[:pos]


def _first_line(lines: list[bytes]) -> bytes:
    first = lines[0]
    return first[:-1] if first[-1:] == b"\r" else first


class RequestScanner(_Scanner):
    """Splits a client's byte stream into requests (pipelined requests included).

    >>> s = RequestScanner()
    >>> [p.kind for p in s.feed(b"GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /b HT")]
    ['head', 'end']
    >>> pieces = s.feed(b"TP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    >>> [(p.kind, p.request.path if p.request else None) for p in pieces]
    [('head', '/b'), ('end', None)]
    """

    _line_prefix = _REQUEST_LINE_PREFIX
    _last: RequestInfo | None = None
    _switches = False  # the last request asks to leave HTTP (its switches_protocol)

    def _head(self, lines: list[bytes], raw: bytes, pieces: list[Piece]) -> None:
        match = _REQUEST_LINE.fullmatch(_first_line(lines))
        if match is None:
            raise _Bad(f"bad request line {lines[0][:40]!r}")
        method, target, version = match.groups()
        headers = _headers(lines[1:])
        framing = _framing(headers)
        info = RequestInfo(
            method=method.decode("ascii"),
            target=target.decode("latin-1"),
            http_version=version.decode("ascii"),
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers),
        )
        self._last = info
        self._switches = info.switches_protocol
        pieces.append(Piece("head", raw, request=info))
        self._body(framing, False, pieces)

    def _whole_head(
        self, buf: bytes | bytearray, pos: int, nl: int, last: int, stop: int, pieces: list[Piece]
    ) -> bool:
        line = _REQUEST_LINE_CR.fullmatch(buf, pos, nl)
        if line is None:
            return False
        if last > nl:
            if _HEADER_LINES.fullmatch(buf, nl + 1, last + 1) is None:
                return False
            pairs = _FRAMING_PAIR.findall(buf, nl + 1, last + 1)
            # Decoded once, split by one search (the lines are known to be headers).
            text = buf[nl + 1 : last + 1].decode("latin-1")
            headers = tuple([(k.lower(), v.strip(" \t")) for k, v in _HEADER_TEXT.findall(text)])
        else:
            pairs, headers = [], ()
        try:
            framing = _framing([(k.lower(), v.strip(b" \t")) for k, v in pairs]) if pairs else None
        except _Bad:
            return False
        self._start()
        method, target, version = line.groups()
        info = RequestInfo(
            method=method.decode("ascii"),
            target=target.decode("latin-1"),
            http_version=version.decode("ascii"),
            headers=headers,
        )
        self._last = info
        switches = method == b"CONNECT"
        for name, _ in headers:
            if name == "upgrade":
                switches = True
        self._switches = switches
        pieces.append(Piece("head", bytes(buf[pos:stop]), request=info))
        self._body(framing, False, pieces)
        return True

    def _done(self, pieces: list[Piece]) -> None:
        super()._done(pieces)
        if self._switches:
            self._switch("protocol switch requested")


class ResponseScanner(_Scanner):
    """Splits a server's byte stream into responses; ``expected`` as for
    :class:`~._http_parse.ResponseSplitter` (one request per response to come)."""

    _line_prefix = _STATUS_LINE_PREFIX

    def __init__(self, expected: deque[RequestInfo]) -> None:
        super().__init__()
        self.expected = expected
        self._request: RequestInfo | None = None

    def _expecting(self) -> bool:
        return bool(self.expected)

    def _start(self) -> None:
        self._request = self.expected.popleft()  # _expecting() said there is one

    def _head(self, lines: list[bytes], raw: bytes, pieces: list[Piece]) -> None:
        match = _STATUS_LINE.fullmatch(_first_line(lines))
        if match is None:
            raise _Bad(f"bad status line {lines[0][:40]!r}")
        status = int(match.group(2))
        headers = _headers(lines[1:])
        if status < 200:
            pieces.append(Piece("interim", raw, status=status))
            if status == 101:
                self._switch("switched protocol")
            return  # the final response follows (state stays _HEAD)
        self._final(status, _framing(headers), raw, pieces)

    def _whole_head(
        self, buf: bytes | bytearray, pos: int, nl: int, last: int, stop: int, pieces: list[Piece]
    ) -> bool:
        line = _STATUS_LINE_CR.fullmatch(buf, pos, nl)
        if line is None:
            return False
        status = int(line.group(2))
        if status < 200:
            return False  # interim heads take the slow path
        if last > nl:
            if _HEADER_LINES.fullmatch(buf, nl + 1, last + 1) is None:
                return False
            pairs = _FRAMING_PAIR.findall(buf, nl + 1, last + 1)
            headers = [(k.lower(), v.strip(b" \t")) for k, v in pairs]
        else:
            headers = []
        try:
            framing = _framing(headers)
        except _Bad:
            return False
        self._start()
        self._final(status, framing, bytes(buf[pos:stop]), pieces)
        return True

    def _final(self, status: int, framing: int | None, raw: bytes, pieces: list[Piece]) -> None:
        pieces.append(Piece("head", raw, status=status))
        method = self._request.method if self._request is not None else "GET"
        if method == "CONNECT" and status < 300:
            self._switch("switched protocol")
        elif method == "HEAD" or status in (204, 304):
            pieces.append(Piece("end", b""))
            self._done(pieces)
        else:
            self._body(framing, True, pieces)


#: The parser backends by name: (request splitter, response splitter).
PARSERS: dict[
    str, tuple[type[RequestScanner | RequestSplitter], type[ResponseScanner | ResponseSplitter]]
] = {
    "scan": (RequestScanner, ResponseScanner),
    "h11": (RequestSplitter, ResponseSplitter),
}


def parser_name() -> str:
    """The backend new HTTP sessions use: ``PYTEST_CHAOS_HTTP_PARSER``, else ``scan``."""
    name = os.environ.get("PYTEST_CHAOS_HTTP_PARSER", "") or "scan"
    return name if name in PARSERS else "scan"


def splitters(
    expected: deque[RequestInfo], name: str | None = None
) -> tuple[RequestScanner | RequestSplitter, ResponseScanner | ResponseSplitter]:
    """A request splitter and a response splitter reading ``expected``."""
    requests, responses = PARSERS[name or parser_name()]
    return requests(), responses(expected)
