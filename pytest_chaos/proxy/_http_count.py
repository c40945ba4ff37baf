"""A passive HTTP/1.x request counter for the client-to-server bytes of a connection.

Every upstream link of the embedded server feeds what it reads from the client to a
:class:`RequestCounter`, which adds one to the proxy's ``http_requests`` per complete
request head, so ``retries(counter="http_requests")`` works on keep-alive clients with
no HTTP toxic on the proxy. It never changes, holds or delays a byte.

It is an incremental scanner, not a parser: request line, header lines (only
``Content-Length`` and ``Transfer-Encoding`` are read), then the body skipped by its
length or by its chunk sizes. At the first thing that is not HTTP/1.x (a Redis ``*1``,
a TLS record, a binary length prefix, a line too long, a header it does not follow) it
gives up and the link stops calling it: from then on the connection costs nothing.
Bodies cost O(1) per read.

While an HTTP toxic's session parses the same stream as it is read (it counts the
requests then), the link rests the counter: it hands over between two requests and
resumes it where the session stands when the toxic goes or the stream stops being
HTTP to the session (:meth:`RequestCounter.resume`).
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["RequestCounter"]

_TOKEN_CHARS = rb"!#$%&'*+.^_`|~0-9A-Za-z-"
# what an unfinished first line may start with: a method (a token) and a space
_METHOD_PREFIX = re.compile(rb"[" + _TOKEN_CHARS + rb"]{0,32}(?: |\r?\Z)")
_REQUEST_LINE = re.compile(rb"[" + _TOKEN_CHARS + rb"]{1,32} [\x21-\x7e]+ HTTP/1\.[01]")
_TOKEN = re.compile(rb"[" + _TOKEN_CHARS + rb"]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(rb"[0-9]{1,18}")

#: the bytes a request may start with (a method, or the blank line between requests)
_FIRST = frozenset(
    b"!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-\r\n"
)

MAX_LINE = 16 * 1024
MAX_HEAD = 64 * 1024

_LINE, _HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER = range(6)


class Counters(Protocol):
    """Where the count goes (the proxy's `ProxyStats`)."""

    http_requests: int


class RequestCounter:
    """Counts the HTTP/1.x requests in one client-to-server byte stream."""

    __slots__ = ("chunked", "head_bytes", "left", "length", "line", "state", "stats")

    def __init__(self, stats: Counters) -> None:
        self.stats = stats
        self.state = _LINE
        self.left = 0  # body or chunk bytes still to skip
        self.line = bytearray()  # an unfinished line
        self.head_bytes = 0
        self.length: int | None = None
        self.chunked = False

    def feed(self, data: bytes | memoryview) -> bool:
        """Scan ``data``; False once the stream is not HTTP/1.x (stop calling then)."""
        n = len(data)
        pos = 0
        raw: bytes | None = None
        while pos < n:
            state = self.state
            if state in (_BODY, _CHUNK_DATA):
                take = min(self.left, n - pos)
                self.left -= take
                pos += take
                if self.left == 0:
                    self.state = _LINE if state == _BODY else _CHUNK_SIZE
                continue
            if state == _LINE and not self.line and data[pos] not in _FIRST:
                return False  # binary, TLS, ...: given up on without copying a byte
            if raw is None:
                raw = bytes(data)
            end = raw.find(b"\n", pos)
            if end < 0:
                self.line += raw[pos : pos + MAX_LINE + 1]
                return self._partial_ok()
            if self.line:
                self.line += raw[pos:end]
                line = bytes(self.line)
                self.line.clear()
            else:
                line = raw[pos:end]
            pos = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not self._line(line):
                return False
        return True

    def between_requests(self) -> bool:
        """Whether the next byte starts a request (nothing of one is pending)."""
        return self.state == _LINE and not self.line

    def resume(self, kind: str, left: int) -> None:
        """Continue at a position an HTTP session that counted meanwhile describes
        (``head``, ``body``, ``chunk`` or ``skip``, see
        `pytest_chaos.toxics.RequestSource`); feed the bytes it held next."""
        self.line.clear()
        self.left = left
        if kind == "body":
            self.state = _BODY if left else _LINE
        elif kind == "chunk":
            self.state = _CHUNK_SIZE
        elif kind == "skip":
            self.state = _CHUNK_DATA if left else _CHUNK_SIZE
        else:
            self.state = _LINE
            self.left = 0

    def _partial_ok(self) -> bool:
        """Whether the unfinished line can still become what the state expects."""
        line = self.line
        if len(line) > MAX_LINE:
            return False
        if self.state == _LINE:
            return _METHOD_PREFIX.match(line) is not None
        return True

    def _line(self, line: bytes) -> bool:
        state = self.state
        if state == _LINE:
            if not line:
                return True  # a blank line between requests is tolerated
            if _REQUEST_LINE.fullmatch(line) is None:
                return False
            self.state = _HEAD
            self.head_bytes = len(line)
            self.length = None
            self.chunked = False
            return True
        if state == _HEAD:
            if not line:
                return self._head_done()
            self.head_bytes += len(line) + 2
            if self.head_bytes > MAX_HEAD or line[:1] in (b" ", b"\t"):
                return False  # too big, or an obsolete folded header
            name, colon, value = line.partition(b":")
            if not colon or _TOKEN.fullmatch(name) is None:
                return False
            if len(name) == 14 and name.lower() == b"content-length":
                value = value.strip()
                if _DIGITS.fullmatch(value) is None:
                    return False
                length = int(value)
                if self.length is not None and self.length != length:
                    return False
                self.length = length
            elif len(name) == 17 and name.lower() == b"transfer-encoding":
                if not value.strip().lower().endswith(b"chunked"):
                    return False  # a body delimited by the close: not followed
                self.chunked = True
            return True
        if state == _CHUNK_SIZE:
            size = line.split(b";", 1)[0].strip()
            if _HEX.fullmatch(size) is None:
                return False
            self.left = int(size, 16)
            if self.left == 0:
                self.state = _TRAILER
            else:
                self.left += 2  # the chunk's data and its CRLF
                self.state = _CHUNK_DATA
            return True
        # _TRAILER: header lines until a blank one
        if not line:
            self.state = _LINE
        return True

    def _head_done(self) -> bool:
        self.stats.http_requests += 1
        if self.chunked:
            self.state = _CHUNK_SIZE
        elif self.length:
            self.left = self.length
            self.state = _BODY
        else:
            self.state = _LINE
        return True

    def __repr__(self) -> str:
        return f"<RequestCounter state={self.state} left={self.left}>"
