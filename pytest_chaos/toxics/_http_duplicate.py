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
    """Sends each matching request ``copies`` times upstream, back to back on the same
    connection, byte for byte (chunked bodies included). The client gets the first
    response once every copy has been answered (so when the client's call returns, the
    effects of all copies are visible upstream); the proxy reads and drops the other
    responses, so the connection stays in step. Removing the toxic waits for the
    answers in flight.

    The first copy is streamed as it arrives; the others follow once the request is
    complete, so the proxy holds one copy of each duplicated request in memory.
    A request that asks the server to close the connection is answered once: the server
    closes before it reads the copies.
    """

    type_name = "http_duplicate"
    attributes = (
        *MATCH_ATTRIBUTES,
        Attribute("copies", default=2, minimum=2, doc="deliveries of each matching request"),
    )

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
        plan.applied.append(self.type_name)
