"""http_error: answer a share of matching requests without reaching the upstream."""

from __future__ import annotations

import h11

from pytest_chaos.toxics._base import Attribute, ToxicConfigError
from pytest_chaos.toxics._http_parse import RequestInfo
from pytest_chaos.toxics._http_session import Plan, build_response
from pytest_chaos.toxics._http_toxic import MATCH_ATTRIBUTES, HttpToxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["HttpErrorToxic"]

#: Added to every injected response so that a reader of logs can tell it from a real one.
MARKER_HEADER = ("X-Chaos-Fault", "http_error")


@register_toxic
class HttpErrorToxic(HttpToxic):
    """Answers matching requests with ``status``, ``headers`` and ``body``.

    The request (body included) is read and dropped: the upstream never sees it. The
    answer is framed by Content-Length, so a keep-alive connection stays usable; a
    request that asked to close the connection gets ``Connection: close`` and the close.
    """

    type_name = "http_error"
    attributes = (
        *MATCH_ATTRIBUTES,
        Attribute("status", default=500, minimum=100, doc="HTTP status of the answer"),
        Attribute("body", kind=str, default="", minimum=None, doc="body of the answer"),
        Attribute(
            "headers", kind=dict, default={}, minimum=None,
            doc="extra response headers, name -> value",
        ),
    )  # fmt: skip

    def check(self) -> None:
        super().check()
        status = self.int("status")
        if not 200 <= status <= 599:
            raise ToxicConfigError(
                f"attribute 'status' of toxic type 'http_error' must be a final HTTP "
                f"status between 200 and 599, got {status}; use e.g. 503"
            )
        headers = self.values["headers"]
        assert isinstance(headers, dict)
        items = []
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ToxicConfigError(
                    "bad request body: attribute 'headers' of toxic type 'http_error' "
                    f"must map header names to string values, got {name!r}: {value!r}"
                )
            items.append((name, value))
        try:
            h11.Response(status_code=status, headers=items)
        except h11.LocalProtocolError as exc:
            raise ToxicConfigError(
                f"attribute 'headers' of toxic type 'http_error' is not valid HTTP: {exc}; "
                "use token names like 'Retry-After' and printable values"
            ) from None
        self._answers = {
            head: build_response(
                status,
                body=self.text("body").encode("utf-8"),
                headers=[*items, MARKER_HEADER],
                head_only=head,
            )
            for head in (False, True)
        }

    def apply(self, request: RequestInfo, plan: Plan) -> None:
        if plan.response is not None:
            return
        head_only = request.method == "HEAD"
        if request.keep_alive and request.http_version == "1.0":
            # An HTTP/1.0 client keeps the connection only if the answer says so.
            plan.response = build_response(
                self.int("status"),
                body=self.text("body").encode("utf-8"),
                headers=[*self._header_items(), MARKER_HEADER, ("Connection", "keep-alive")],
                head_only=head_only,
            )
        elif request.keep_alive:
            plan.response = self._answers[head_only]
        else:
            plan.response = build_response(
                self.int("status"),
                body=self.text("body").encode("utf-8"),
                headers=[*self._header_items(), MARKER_HEADER],
                head_only=head_only,
                close=True,
            )
            plan.close = True
        plan.applied.append(self.type_name)

    def _header_items(self) -> list[tuple[str, str]]:
        headers = self.values["headers"]
        assert isinstance(headers, dict)
        return [(str(k), str(v)) for k, v in headers.items()]
