"""Stage.take, the data path's shortcut: an HTTP stage hands a read straight back when
all it produced is due now, and schedules it as before otherwise."""

from __future__ import annotations

import random

from pytest_chaos.toxics import Chain, ConnectionContext, LinkContext, Reply, Toxic
from pytest_chaos.toxics._chain import pieces
from pytest_chaos.toxics._http_delay import HttpDelayToxic
from pytest_chaos.toxics._http_error import HttpErrorToxic

GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _links(toxic: Toxic) -> tuple[Chain, Chain]:
    connection = ConnectionContext(1, "p")
    rng = random.Random(1)
    up = Chain([toxic.start(LinkContext("upstream", connection, rng), 0.0, None)])
    down = Chain([toxic.start(LinkContext("downstream", connection, rng), 0.0, None)])
    return up, down


def test_requests_and_answers_that_match_nothing_come_straight_back() -> None:
    up, down = _links(HttpErrorToxic.from_attributes({"path_prefix": "/x"}))
    assert up.take(GET, 1.0) == GET
    assert up.take(POST[:40], 1.0) == b""  # an unfinished head stays in the parser
    assert up.take(POST[40:], 1.0) == POST
    assert down.take(ANSWER[:10], 1.0) == b""
    assert down.take(ANSWER[10:] + ANSWER, 1.0) == ANSWER + ANSWER
    assert up.deadline() is None and down.deadline() is None
    assert up.buffered() == 0 and down.buffered() == 0


def test_a_delayed_request_is_scheduled_and_an_answered_one_replied() -> None:
    up, _ = _links(HttpDelayToxic.from_attributes({"delay": 50}))
    assert up.take(GET, 1.0) is None
    assert up.poll(1.0) == [] and up.deadline() == 1.05
    assert pieces(up.poll(1.05)) == GET

    up, _ = _links(HttpErrorToxic.from_attributes({"path_prefix": "/a", "status": 503}))
    assert up.take(GET, 1.0) is None
    (reply,) = up.poll(1.0)
    assert isinstance(reply, Reply) and reply.data.startswith(b"HTTP/1.1 503 ")
