"""The common half of the HTTP toxics: request matching and the per-link stages.

An HTTP toxic acts on whole requests, so it needs both directions of a connection: the
upstream stage reads requests (and may answer them itself), the downstream stage reads
responses (and consumes the extra answers to a duplicated request). Every HTTP stage of
a connection, in both links, shares one :class:`~._http_session.HttpSession`, kept in
the connection's ``shared`` dict, so several HTTP toxics on one proxy compose (one
parse, one queue of requests in flight). A toxic type therefore sets
``both_links = True``: the proxy starts its stage in both links of every connection,
whichever stream it was added on, and rolls its toxicity once per connection.

Traffic that is not HTTP passes through untouched; the session notes it once per
connection (``http_passthrough``).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, ClassVar

from pytest_chaos.toxics._base import (
    Attribute,
    Deliver,
    End,
    Item,
    LinkContext,
    Piece,
    Reply,
    Stage,
    Toxic,
    ToxicConfigError,
)
from pytest_chaos.toxics._http_framing import splitters
from pytest_chaos.toxics._http_parse import RequestInfo
from pytest_chaos.toxics._http_session import CopyJob, HttpSession, Output, Plan

__all__ = ["HttpStage", "HttpToxic"]

#: Attributes every HTTP toxic has.
MATCH_ATTRIBUTES = (
    Attribute(
        "method", kind=str, default="", minimum=None, doc="only requests with this method "
        "(comma-separated list allowed, case-insensitive); empty: every method"
    ),
    Attribute(
        "path_prefix", kind=str, default="", minimum=None,
        doc="only requests whose path starts with this; empty: every path",
    ),
    Attribute(
        "rate", kind=float, default=1.0, minimum=0,
        doc="share of matching requests affected, drawn from the proxy's seeded RNG",
    ),
)  # fmt: skip


class _Conversation:
    """The HTTP state of one connection, shared by every HTTP stage in both links.

    All HTTP toxics of a proxy act through one :class:`HttpSession` per connection, so
    that they compose: the first live HTTP stage of each link does the parsing, with
    the toxics of the upstream link's HTTP stages as its rules (in chain order); later
    HTTP stages in the same link pass items on. A stage stops being live when its chain
    is rebuilt (``drain``).
    """

    __slots__ = ("members", "release", "session", "skip", "watches")

    def __init__(self, session: HttpSession) -> None:
        self.session = session
        self.members: dict[bool, list[HttpStage]] = {True: [], False: []}
        # Bytes a removed HTTP stage handed back (already parsed) that the chain will
        # feed again: the next parsing stage passes them on without parsing them twice.
        self.skip: dict[bool, int] = {True: 0, False: 0}
        # While a link has no HTTP stage: what keeps the session's framing in step.
        self.watches: dict[bool, _Watch | None] = {True: None, False: None}
        # A toxic that holds requests left the link in the chain rebuild under way: the
        # stages that stay let what they carry go at once (reset by detach).
        self.release: dict[bool, bool] = {True: False, False: False}

    def __repr__(self) -> str:
        up, down = len(self.members[True]), len(self.members[False])
        return f"<HTTP conversation stages={up}+{down} {self.session!r}>"

    def attach(self, upstream: bool) -> int:
        """An HTTP stage joins a link that had none: the link's watch stops; returns the
        bytes the watch was still to skip (parsed, held in the chain, fed to it again)."""
        watch = self.watches[upstream]
        if watch is None:
            return 0
        self.watches[upstream] = None
        watch.active = False
        self.session.quiet(upstream, False)
        return watch.skip

    def parser(self, upstream: bool) -> HttpStage | None:
        """The stage of a link that runs the session (None if the link has none)."""
        members = self.members[upstream]
        return members[0] if members else None

    def refresh_rules(self) -> None:
        # The same toxic added on both streams (``stream="both"``) acts once: an HTTP
        # toxic already spans both directions, and two draws would double its rate.
        rules: dict[str, HttpToxic] = {}
        for stage in self.members[True]:
            if stage.leaving:
                continue  # removed, kept only to finish the message in transfer
            key = f"{stage.toxic.type_name}:{sorted(stage.toxic.to_json().items())!r}"
            rules.setdefault(key, stage.toxic)
        self.session.rules = list(rules.values())


class _Watch:
    """Keeps the session's framing in step with the bytes a link writes while it has no
    HTTP stage (a `StreamWatch` the link feeds, see `Stage.detach`).

    When the last HTTP toxic leaves a link mid-message, the rest of the message and what
    follows pass unparsed; a session that resumed later would meet body bytes where it
    expects a head and give the connection up as not HTTP. So the session keeps reading
    the framing, with no rules and nothing counted: a toxic added again acts from the
    next message on. The first ``skip`` bytes written were parsed already (they were
    held in the chain behind the removed stage).
    """

    __slots__ = ("active", "conversation", "skip", "upstream")

    def __init__(self, conversation: _Conversation, upstream: bool, skip: int) -> None:
        self.conversation = conversation
        self.upstream = upstream
        self.skip = skip
        self.active = True

    def feed(self, data: bytes | memoryview) -> bool:
        """Bytes the link wrote; False once done (an HTTP stage is back, or the stream
        is not HTTP any more: it passes through untouched then, as before)."""
        if not self.active:
            return False
        skip = self.skip
        if skip:
            if len(data) <= skip:
                self.skip = skip - len(data)
                return True
            data = data[skip:]
            self.skip = 0
        session = self.conversation.session
        if self.upstream:
            session.client_data(bytes(data), 0.0)
        else:
            session.server_data(bytes(data), 0.0)
        if session.passthrough:
            self.active = False
        return self.active

    def __repr__(self) -> str:
        side = "upstream" if self.upstream else "downstream"
        return f"<HTTP watch {side} active={self.active} skip={self.skip}>"


_SHARED_KEY = "http"


class HttpToxic(Toxic):
    """Base of ``http_error``, ``http_delay`` and ``http_duplicate``.

    Subclasses add their attributes after :data:`MATCH_ATTRIBUTES` and implement
    :meth:`apply`.
    """

    #: The proxy starts this toxic's stage in both links (see the module docstring).
    both_links: ClassVar[bool] = True
    #: It holds requests (a delay): removing it lets every request held on the
    #: connection go at once, whichever HTTP stage holds it.
    holds: ClassVar[bool] = False

    def check(self) -> None:
        rate = self.values["rate"]
        assert isinstance(rate, float)
        if rate > 1.0:
            raise ToxicConfigError(
                f"attribute 'rate' of toxic type {self.type_name!r} is a share of requests "
                f"and must be between 0 and 1, got {rate!r}; use e.g. 0.25 for a quarter"
            )
        path = self.text("path_prefix")
        if path and not path.startswith("/"):
            raise ToxicConfigError(
                f"attribute 'path_prefix' of toxic type {self.type_name!r} must start with "
                f"'/', got {path!r}; use e.g. '/api' (or '' for every path)"
            )
        for method in self.methods():
            if not method.isascii() or not method.replace("-", "").isalnum():
                raise ToxicConfigError(
                    f"attribute 'method' of toxic type {self.type_name!r} must be HTTP "
                    f"methods like 'POST' or 'GET,PUT', got {self.values['method']!r}"
                )

    def text(self, name: str) -> str:
        """A string attribute."""
        value = self.values[name]
        assert isinstance(value, str)
        return value

    def number(self, name: str) -> float:
        """A float attribute."""
        value = self.values[name]
        assert isinstance(value, float | int)
        return float(value)

    def methods(self) -> list[str]:
        """The methods this toxic matches, upper case; empty means every method."""
        return [m.strip().upper() for m in self.text("method").split(",") if m.strip()]

    def _matcher(self) -> tuple[frozenset[str], str, float]:
        # The match attributes, read once per instance (instances never change).
        matcher: tuple[frozenset[str], str, float] | None = self.__dict__.get("_match")
        if matcher is None:
            matcher = (frozenset(self.methods()), self.text("path_prefix"), self.number("rate"))
            self.__dict__["_match"] = matcher
        return matcher

    def matches(self, request: RequestInfo) -> bool:
        """Whether ``request`` is one this toxic acts on (rate not applied)."""
        methods, prefix, _ = self._matcher()
        if methods and request.method.upper() not in methods:
            return False
        return not prefix or request.path.startswith(prefix)

    def plan(self, request: RequestInfo, plan: Plan, rng: random.Random) -> None:
        """Amend ``plan`` if ``request`` matches and the rate draw says so."""
        methods, prefix, rate = self._matcher()
        if methods and request.method.upper() not in methods:
            return
        if prefix and not request.path.startswith(prefix):
            return
        # Rate 1 and 0 draw nothing, so that other toxics' draws stay reproducible.
        if rate <= 0.0 or (rate < 1.0 and rng.random() >= rate):
            return
        self.apply(request, plan)

    def apply(self, request: RequestInfo, plan: Plan) -> None:
        """Change ``plan`` for a request this toxic acts on."""
        raise NotImplementedError

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        shared = link.connection.shared
        conversation = shared.get(_SHARED_KEY)
        if not isinstance(conversation, _Conversation):
            conversation = _Conversation(_new_session(link))
            shared[_SHARED_KEY] = conversation
        stage = HttpStage(conversation, link, self)
        if isinstance(previous, HttpStage):
            stage.adopt(previous, now if conversation.release[stage.upstream] else None)
        else:
            # A toxic being added: nothing is handed back in such a change, so a count
            # left from an earlier removal (with no HTTP stage to consume it) is stale;
            # what the link's watch has still to skip is not (see _Watch).
            conversation.skip[stage.upstream] = conversation.attach(stage.upstream)
        conversation.members[stage.upstream].append(stage)
        conversation.refresh_rules()
        return stage


def _new_session(link: LinkContext) -> HttpSession:
    connection = link.connection

    def on_request(request: RequestInfo, plan: Plan) -> None:
        connection.count("http_requests", 1)
        # Counters the proxy may not keep yet (unknown names are ignored by it).
        if plan.response is not None:
            connection.count("http_errors_injected", 1)
        if plan.delay > 0 and plan.response is None:
            connection.count("http_requests_delayed", 1)

    def on_response() -> None:
        connection.count("http_responses", 1)

    def on_oversized(request: RequestInfo) -> None:
        connection.count("http_duplicates_failed", 1)
        connection.note(
            "http_duplicate_skipped",
            {"proxy": connection.proxy, "connection": connection.id, "path": request.path,
             "reason": "request larger than 32 MiB, delivered once"},
        )  # fmt: skip

    def on_passthrough(side: str, reason: str) -> None:
        connection.count("http_passthrough_connections", 1)
        connection.note(
            "http_passthrough",
            {"proxy": connection.proxy, "connection": connection.id, "side": side,
             "reason": reason},
        )  # fmt: skip

    return HttpSession(
        rules=[],
        rng=link.rng,
        on_request=on_request,
        on_response=on_response,
        on_passthrough=on_passthrough,
        on_oversized=on_oversized,
    )


class _Answer:
    """Reads the answer to one copy of a duplicated request (see `Deliver`)."""

    def __init__(self, request: RequestInfo) -> None:
        self._splitter = splitters(deque([request]))[1]
        self._seen = False

    def _done(self, pieces: list[Any]) -> bool:
        self._seen = self._seen or bool(pieces)
        if any(piece.kind == "end" for piece in pieces):
            return True
        # Not HTTP: whatever came is the answer, the request was delivered.
        return self._splitter.passthrough and self._seen

    def feed(self, data: bytes) -> bool:
        return self._done(self._splitter.feed(data))

    def feed_eof(self) -> bool:
        return self._done(self._splitter.feed_eof()) or self._seen


class HttpStage(Stage):
    """One link's view of an :class:`HttpSession`."""

    def __init__(self, conversation: _Conversation, link: LinkContext, toxic: HttpToxic) -> None:
        super().__init__()
        self.conversation = conversation
        self.session = conversation.session
        self.link = link
        self.upstream = link.direction == "upstream"
        self.toxic = toxic
        # What this stage held when its chain was rebuilt (see drain), with due times.
        self._carry: list[tuple[float, Item]] = []
        self._handed = 0  # bytes on_remove handed back (see detach)
        self.leaving = False  # the toxic is removed; the stage finishes a message first

    @property
    def parsing(self) -> bool:
        """Whether this stage is the one of its link that runs the session."""
        members = self.conversation.members[self.upstream]
        return bool(members) and members[0] is self

    def feed(self, item: Item, now: float) -> None:
        if type(item) is Piece:
            # The usual case first: bytes for the stage that parses its link.
            members = self.conversation.members[self.upstream]
            if members and members[0] is self and not self.conversation.skip[self.upstream]:
                session = self.session
                data = item.data
                out = (
                    session.client_data(data, now)
                    if self.upstream
                    else session.server_data(data, now)
                )
                self._emit_output(out, now, stamp=item.stamp)
                return
        if isinstance(item, Reply | Deliver) or not self.parsing:
            self.emit(item, now)
            return
        if isinstance(item, End):
            if item.kind == "eof":
                session = self.session
                out = session.client_eof(now) if self.upstream else session.server_eof(now)
                self._emit_output(out, now, stamp=now)
                if out.end_held:
                    return  # the end follows the answers that wait for their copies
            self.emit(item, now)
            return
        data = item.data
        skip = self.conversation.skip
        if skip[self.upstream]:
            n = min(skip[self.upstream], len(data))
            skip[self.upstream] -= n
            self.emit(Piece(data[:n], item.stamp), now)
            data = data[n:]
            if not data:
                return
        if self.upstream:
            out = self.session.client_data(data, now)
        else:
            out = self.session.server_data(data, now)
        self._emit_output(out, now, stamp=item.stamp)

    def take(self, data: bytes, now: float) -> bytes | None:
        # The usual case without a queue: the session's output is due now and is all
        # there is, so it goes straight back to the link.
        conversation = self.conversation
        upstream = self.upstream
        members = conversation.members[upstream]
        if (
            self.ended
            or self._out
            or not members
            or members[0] is not self
            or conversation.skip[upstream]
        ):
            return super().take(data, now)
        session = self.session
        if upstream:
            out = session.client_data(data, now)
            if not (out.to_client or out.copies or out.close or out.end):
                sends = out.to_server
                if not sends:
                    return b""
                if len(sends) == 1:
                    if sends[0][0] <= now:
                        return sends[0][1]
                elif all(due <= now for due, _ in sends):
                    return b"".join([chunk for _, chunk in sends])
        else:
            out = session.server_data(data, now)
            if not (out.to_server or out.copies or out.close or out.end):
                return out.to_client
        self._emit_output(out, now, stamp=now)
        return None

    def _emit_output(self, out: Output, now: float, *, stamp: float) -> None:
        for due, data in out.to_server:
            self.emit(Piece(data, stamp), due)
        if not (out.to_client or out.copies or out.close or out.end):
            return
        if out.to_client:
            if self.upstream:
                self.emit(Reply(out.to_client), now)
            else:
                self.emit(Piece(out.to_client, stamp), now)
        for job in out.copies:
            self.emit(self._deliver(job), now)
        if out.close:
            self.ended = True
            self.emit(End("close"), now)
        if out.end:
            self.emit(End("eof"), now)

    def _deliver(self, job: CopyJob) -> Deliver:
        conversation = self.conversation
        connection = self.link.connection
        request = job.request

        def ready(now: float) -> None:
            out = conversation.session.copies_ready(job, now)
            stage = conversation.parser(True)
            if stage is not None:
                stage._emit_output(out, now, stamp=now)

        def done(ok: bool, now: float) -> None:
            connection.count("http_duplicates_sent" if ok else "http_duplicates_failed", 1)
            if not ok:
                connection.note(
                    "http_duplicate_failed",
                    {"proxy": connection.proxy, "connection": connection.id,
                     "method": request.method, "path": request.path,
                     "reason": "the copy could not be delivered upstream"},
                )  # fmt: skip
            out = conversation.session.copy_done(job)
            stage = conversation.parser(False)
            if stage is not None:
                stage._emit_output(out, now, stamp=now)

        return Deliver(job.data, job.copies, job.together, lambda: _Answer(request), ready, done)

    def finishing(self) -> bool:
        # Asked only when this stage's toxic is being removed: while it finishes the
        # message in transfer, the toxic no longer decides for the requests after it.
        if not (self.parsing and self.session.finishing(self.upstream)):
            return False
        if not self.leaving:
            self.leaving = True
            self.conversation.refresh_rules()
        return True

    def request_source(self) -> HttpSession | None:
        # Only the upstream stage that parses, with nothing handed back to pass on: it
        # then sees every byte as it is read (the link asks only its first stage).
        if self.upstream and self.parsing and not self.conversation.skip[True]:
            return self.session
        return None

    def drain(self) -> list[Item]:
        """The chain is being rebuilt. What this stage holds (delayed requests) has been
        parsed already: rather than hand it back to be fed through the new chain (and
        parsed twice), keep it for this toxic's next stage (:meth:`adopt`), or release
        it in :meth:`on_remove` if the toxic is gone."""
        members = self.conversation.members[self.upstream]
        if self in members:
            members.remove(self)
            self.conversation.refresh_rules()
        self._carry = list(self._out)
        self.cancel_pending()
        return []

    def adopt(self, previous: HttpStage, release: float | None = None) -> None:
        """Take over what this toxic's stage held before the chain was rebuilt (due at
        ``release`` if given: a delay was healed)."""
        for due, item in previous._carry:
            self.emit(item, due if release is None else release)
        previous._carry = []
        self.ended = previous.ended

    def on_remove(self) -> list[Item]:
        """The toxic is gone: what it held goes on now (a healed delay lets go)."""
        items = [item for _, item in self._carry]
        self._carry = []
        handed = sum(len(item.data) for item in items if isinstance(item, Piece))
        self.conversation.skip[self.upstream] += handed
        self._handed = handed
        if self.upstream and self.toxic.holds:
            self.session.let_go()
            self.conversation.release[True] = True
        return items

    def detach(self, seen: int) -> _Watch | None:
        """Called by the link after a rebuild that removed this stage; ``seen``: bytes
        held in the chain at and behind this stage when it left (already parsed, the
        first to be written). If no HTTP stage of the connection is left in this link,
        the session must keep its framing in step with what the link writes from now on:
        returns the watch the link feeds (see :class:`_Watch`)."""
        conversation = self.conversation
        upstream = self.upstream
        conversation.release[upstream] = False  # the rebuild is over
        if conversation.members[upstream]:
            return None  # another HTTP stage parses on (skip tells it what was handed back)
        # Parsed bytes handed back by earlier changes and not consumed yet come next.
        earlier = conversation.skip[upstream] - self._handed
        self._handed = 0
        watch = conversation.watches[upstream]
        if watch is not None and watch.active:
            # Another HTTP stage removed in the same rebuild: the one first in the chain
            # is called last and saw the most.
            watch.skip = max(watch.skip, seen + max(earlier, 0))
            return watch
        conversation.skip[upstream] = 0
        watch = _Watch(conversation, upstream, seen + max(earlier, 0))
        conversation.watches[upstream] = watch
        conversation.session.quiet(upstream, True)
        return watch

    def __repr__(self) -> str:
        side = "upstream" if self.upstream else "downstream"
        role = "parsing" if self.parsing else "passing"
        return (
            f"<HttpStage {self.toxic.type_name} {side} {role} {self.session!r} "
            f"buffered={self.buffered}>"
        )
