"""The Toxiproxy 2.12 HTTP admin API over a :class:`ProxyManager`.

Routing, request-shape validation and the exact statuses, messages and bodies of
/work/shared/toxiproxy-api.md live here; the proxies, their toxics and the checks of
toxic attributes live in the manager (``_core``). Every handler runs on the manager's
event loop; mutating handlers hold one lock so that a populate or reset is never
interleaved with another change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest_chaos.proxy._body as _body
from pytest_chaos.proxy._body import BodyError
from pytest_chaos.proxy._errors import ApiError, BadRequest
from pytest_chaos.proxy._http import Request, Response, error_response, json_response

if TYPE_CHECKING:
    from pytest_chaos.proxy._core import ProxyManager

__all__ = ["TOXIPROXY_API_VERSION", "AdminApi", "PopulateError"]

log = logging.getLogger("pytest_chaos.proxy.api")

#: The Toxiproxy version whose API this server speaks (clients pick verbs by it).
TOXIPROXY_API_VERSION = "2.12.0"
IMPLEMENTATION = "pytest-chaos embedded proxy"

_PROXY_FIELDS: dict[str, _body.Kind] = {
    "name": "string",
    "listen": "string",
    "upstream": "string",
    "enabled": "bool",
}
_TOXIC_FIELDS: dict[str, _body.Kind] = {
    "name": "string",
    "type": "string",
    "stream": "string",
    "toxicity": "number",
    "attributes": "object",
}
_TOXIC_UPDATE_FIELDS: dict[str, _body.Kind] = {
    "toxicity": "number",
    "attributes": "object",
}

_ENDPOINTS = (
    "the API has /proxies, /proxies/{name}, /proxies/{name}/toxics, "
    "/proxies/{name}/toxics/{toxic}, /proxies/{name}/stats, /populate, /reset and /version "
    "(without a trailing slash)"
)

Endpoint = Callable[[Request, list[str]], Awaitable[Response]]


class PopulateError(Exception):
    """A populate that failed: ``status``, ``message`` and the proxies done so far."""

    def __init__(self, status: int, message: str, done: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.done = done


class AdminApi:
    """Maps HTTP requests to :class:`ProxyManager` calls, Toxiproxy-exactly."""

    def __init__(self, manager: ProxyManager) -> None:
        self.manager = manager
        self._lock = asyncio.Lock()
        # (path pattern, {method: endpoint}); "*" matches one non-empty segment.
        self._routes: list[tuple[tuple[str, ...], dict[str, Endpoint]]] = [
            (("reset",), {"POST": self._reset}),
            (("version",), {"GET": self._version}),
            (("populate",), {"POST": self._populate}),
            (("proxies",), {"GET": self._proxy_index, "POST": self._proxy_create}),
            (
                ("proxies", "*"),
                {
                    "GET": self._proxy_show,
                    "POST": self._proxy_update,
                    "PATCH": self._proxy_update,
                    "DELETE": self._proxy_delete,
                },
            ),
            (
                ("proxies", "*", "toxics"),
                {"GET": self._toxic_index, "POST": self._toxic_create},
            ),
            (
                ("proxies", "*", "toxics", "*"),
                {
                    "GET": self._toxic_show,
                    "POST": self._toxic_update,
                    "PATCH": self._toxic_update,
                    "DELETE": self._toxic_delete,
                },
            ),
            (("proxies", "*", "stats"), {"GET": self._proxy_stats}),
        ]

    def __repr__(self) -> str:
        return f"<AdminApi proxies={len(self.manager.names())} busy={self._lock.locked()}>"

    async def handle(self, request: Request) -> Response:
        """Answer one request; never raises for anything a client can send."""
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            # Stops a web page in a browser from driving the API (as Toxiproxy does).
            return Response(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        path = request.path
        segments = path.split("/")[1:] if path.startswith("/") else None
        if segments is None:
            return error_response(
                404, f"no endpoint at {path!r}: paths start with '/'; {_ENDPOINTS}"
            )
        for pattern, methods in self._routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            endpoint = methods.get(request.method)
            if endpoint is None:
                allowed = ", ".join(methods)
                return Response(
                    405,
                    _error_body(
                        405, f"method {request.method} is not allowed on {path}; use {allowed}"
                    ),
                    headers=[("allow", allowed)],
                )
            try:
                return await endpoint(request, params)
            except ApiError as exc:
                return error_response(exc.status, exc.message)
            except BodyError as exc:
                return error_response(400, str(exc))
        return error_response(404, f"no endpoint at {path}; {_ENDPOINTS}")

    # -- proxies ---------------------------------------------------------------------

    async def _proxy_index(self, request: Request, params: list[str]) -> Response:
        manager = self.manager
        return json_response(200, {name: manager.get(name).to_json() for name in manager.names()})

    async def _proxy_create(self, request: Request, params: list[str]) -> Response:
        given = _body.fields(_body.decode(request.body), _PROXY_FIELDS)
        name = given.get("name", "")
        if not name:
            raise BadRequest("missing required field: name")
        upstream = given.get("upstream", "")
        if not upstream:
            raise BadRequest("missing required field: upstream")
        async with self._lock:
            proxy = await self.manager.create(
                name, given.get("listen", ""), upstream, enabled=given.get("enabled", True)
            )
            return json_response(201, proxy.to_json())

    async def _proxy_show(self, request: Request, params: list[str]) -> Response:
        return json_response(200, self.manager.get(params[0]).to_json())

    async def _proxy_update(self, request: Request, params: list[str]) -> Response:
        self.manager.get(params[0])  # 404 before looking at the body, as Toxiproxy
        given = _body.fields(_body.decode(request.body), _PROXY_FIELDS)
        async with self._lock:
            proxy = await self.manager.update(
                params[0],
                listen=given.get("listen"),
                upstream=given.get("upstream"),
                enabled=given.get("enabled"),
            )
            return json_response(200, proxy.to_json())

    async def _proxy_delete(self, request: Request, params: list[str]) -> Response:
        async with self._lock:
            await self.manager.delete(params[0])
        return Response(204)

    async def _proxy_stats(self, request: Request, params: list[str]) -> Response:
        return json_response(200, self.manager.stats(params[0]))

    # -- toxics ----------------------------------------------------------------------

    async def _toxic_index(self, request: Request, params: list[str]) -> Response:
        proxy = self.manager.get(params[0])
        return json_response(200, proxy.to_json()["toxics"])

    async def _toxic_create(self, request: Request, params: list[str]) -> Response:
        self.manager.get(params[0])
        given = _body.fields(_body.decode(request.body), _TOXIC_FIELDS)
        async with self._lock:
            toxic = self.manager.add_toxic(
                params[0],
                type=given.get("type", ""),
                name=given.get("name", ""),
                stream=given.get("stream", "downstream"),
                toxicity=float(given.get("toxicity", 1.0)),
                attributes=_body.lower_keys(given.get("attributes", {})),
            )
            return json_response(200, toxic.to_json())

    async def _toxic_show(self, request: Request, params: list[str]) -> Response:
        return json_response(200, self.manager.get_toxic(params[0], params[1]).to_json())

    async def _toxic_update(self, request: Request, params: list[str]) -> Response:
        # Unknown proxy, then unknown toxic, then the body: Toxiproxy's order.
        self.manager.get_toxic(params[0], params[1])
        given = _body.fields(_body.decode(request.body), _TOXIC_UPDATE_FIELDS)
        toxicity = given.get("toxicity")
        async with self._lock:
            toxic = self.manager.update_toxic(
                params[0],
                params[1],
                attributes=_body.lower_keys(given.get("attributes", {})),
                toxicity=None if toxicity is None else float(toxicity),
            )
            return json_response(200, toxic.to_json())

    async def _toxic_delete(self, request: Request, params: list[str]) -> Response:
        async with self._lock:
            self.manager.remove_toxic(params[0], params[1])
        return Response(204)

    # -- server-wide -----------------------------------------------------------------

    async def _reset(self, request: Request, params: list[str]) -> Response:
        async with self._lock:
            await self.manager.reset()
        return Response(204)

    async def _version(self, request: Request, params: list[str]) -> Response:
        from pytest_chaos.version import __version__

        return json_response(
            200,
            {
                "version": TOXIPROXY_API_VERSION,
                "implementation": IMPLEMENTATION,
                "implementation_version": __version__,
            },
        )

    async def _populate(self, request: Request, params: list[str]) -> Response:
        try:
            try:
                items = _body.decode(request.body)
            except BodyError as exc:  # Toxiproxy answers this one with proxies too
                raise PopulateError(400, str(exc), []) from None
            done = await self.populate(items)
        except PopulateError as exc:
            body = {"error": exc.message, "status": exc.status, "proxies": exc.done or None}
            return json_response(exc.status, body)
        # Toxiproxy builds this list by appending to a nil Go slice: no proxy is null.
        return json_response(201, {"proxies": done or None})

    async def populate(self, items: Any) -> list[dict[str, Any]]:
        """Create or replace the proxies of a populate array; returns their JSON.

        Validates every item before changing anything. An item whose listen and
        upstream equal an existing proxy's keeps that proxy (toxics and enabled state
        included); any other existing proxy of that name is replaced. Raises
        :class:`PopulateError` (with the proxies done so far) on the first failure.
        """
        if items is None:  # Go decodes null into an empty slice: nothing to do
            items = []
        if not isinstance(items, list):
            raise PopulateError(
                400,
                f"bad request body: expected a JSON array of proxies, got {_body.json_type(items)}",
                [],
            )
        wanted: list[dict[str, Any]] = []
        for number, item in enumerate(items, start=1):
            try:
                given = _body.fields(item, _PROXY_FIELDS, where=f" at proxy {number}")
            except BodyError as exc:
                raise PopulateError(400, str(exc), []) from None
            for required in ("name", "upstream"):
                if not given.get(required):
                    raise PopulateError(
                        400, f"missing required field: {required} at proxy {number}", []
                    )
            wanted.append(given)
        done: list[dict[str, Any]] = []
        async with self._lock:
            for given in wanted:
                try:
                    done.append(await self._populate_one(given))
                except ApiError as exc:
                    raise PopulateError(exc.status, exc.message, done) from None
        return done

    async def _populate_one(self, given: dict[str, Any]) -> dict[str, Any]:
        name: str = given["name"]
        listen: str = given.get("listen", "")
        upstream: str = given["upstream"]
        if name in self.manager.names():
            current = self.manager.get(name).to_json()
            if current["listen"] == listen and current["upstream"] == upstream:
                return current
            await self.manager.delete(name)
        proxy = await self.manager.create(
            name, listen, upstream, enabled=given.get("enabled", True)
        )
        return proxy.to_json()


def _match(pattern: tuple[str, ...], segments: list[str]) -> list[str] | None:
    if len(pattern) != len(segments):
        return None
    params: list[str] = []
    for want, got in zip(pattern, segments, strict=True):
        if want == "*":
            if not got:
                return None
            params.append(unquote(got, errors="replace"))
        elif want != got:
            return None
    return params


def _error_body(status: int, message: str) -> bytes:
    return error_response(status, message).body
