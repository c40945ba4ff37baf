"""http_duplicate: deliver matching requests several times upstream."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, ToxicConfigError
from pytest_chaos.toxics._http_parse import RequestInfo
from pytest_chaos.toxics._http_session import Plan
from pytest_chaos.toxics._http_toxic import MATCH_ATTRIBUTES, HttpToxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["MAX_COPIES", "HttpDuplicateToxic"]

#: More copies than this is a load test, not a duplicated delivery.
MAX_COPIES = 100


@register_toxic
class HttpDuplicateToxic(HttpToxic):
    """Delivers each matching request ``copies`` times upstream, byte for byte (chunked
    bodies included): the original on the client's connection, every copy on a fresh
    upstream connection, so that a copy arrives whatever the connection does
    (``Connection: close``, HTTP/1.0, an upstream that closes after answering).

    By default the copies go one after another once the original is answered (the
    order a client retrying after a lost answer produces); with ``concurrent`` the
    original is held until every copy's connection is open, then all of them are
    written at the same moment (two deliveries of one key racing each other). The
    client gets the original's answer once every copy has been answered or lost (so
    when the client's call returns, the effects of all copies are visible upstream);
    the copies' answers are read and dropped. The stats count each copy as
    ``http_duplicates_sent`` once it is answered, or ``http_duplicates_failed`` (with
    an ``http_duplicate_failed`` note) when it could not be delivered.

    The proxy holds one copy of each duplicated request in memory; a request larger
    than 32 MiB is delivered once (its copies count as failed).
    """

    type_name = "http_duplicate"
    attributes = (
        *MATCH_ATTRIBUTES,
        Attribute("copies", default=2, minimum=2, doc="deliveries of each matching request"),
        Attribute(
            "concurrent", kind=bool, default=False, minimum=None,
            doc="send the copies at the same moment as the original, each on its own "
            "connection; false: one after another once the original is answered",
        ),
    )  # fmt: skip

    def check(self) -> None:
        super().check()
        if self.int("copies") > MAX_COPIES:
            raise ToxicConfigError(
                f"attribute 'copies' of toxic type 'http_duplicate' must be at most "
                f"{MAX_COPIES}, got {self.int('copies')}; use 2 for a duplicated delivery"
            )

    def apply(self, request: RequestInfo, plan: Plan) -> None:
        if plan.response is not None:
            return
        # Two duplicate toxics (e.g. stream="both") mean "duplicated", not copies squared.
        plan.copies = max(plan.copies, self.int("copies"))
        plan.together = plan.together or bool(self.values["concurrent"])
        plan.applied.append(self.type_name)
