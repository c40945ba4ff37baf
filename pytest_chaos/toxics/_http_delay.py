"""http_delay: hold matching requests before they reach the upstream."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute
from pytest_chaos.toxics._http_parse import RequestInfo
from pytest_chaos.toxics._http_session import Plan
from pytest_chaos.toxics._http_toxic import MATCH_ATTRIBUTES, HttpToxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["HttpDelayToxic"]


@register_toxic
class HttpDelayToxic(HttpToxic):
    """Holds each matching request ``delay`` milliseconds (from when its head was read)
    before sending it upstream. Requests behind it on the same connection wait too, so
    order is kept; other connections are not affected. Several delays add up.
    """

    type_name = "http_delay"
    holds = True
    attributes = (
        *MATCH_ATTRIBUTES,
        Attribute("delay", unit="ms", doc="how long each matching request is held"),
    )

    def apply(self, request: RequestInfo, plan: Plan) -> None:
        plan.delay += self.int("delay") / 1000.0
        plan.applied.append(self.type_name)
