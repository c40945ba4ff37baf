"""Request bodies decoded the way Toxiproxy's Go decoder reads them.

Toxiproxy decodes JSON into Go structs, which gives its API these rules: object keys
match field names case-insensitively (the last duplicate wins), unknown keys are
ignored, ``null`` leaves the default, and a value of the wrong JSON type (a string or
a float where an integer belongs, an object where a string belongs) is a 400
``bad request body: ...``. Only the first JSON value of the body is read, as Go's
``json.Decoder.Decode`` does. Everything here raises :class:`BodyError`, whose message
already carries the ``bad request body: `` prefix.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

__all__ = ["BodyError", "Kind", "decode", "fields", "json_type", "lower_keys"]

Kind = Literal["string", "bool", "number", "integer", "object"]

_decoder = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name))


class BodyError(ValueError):
    """A body that is not the JSON the endpoint expects; ``str()`` is the API message."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"bad request body: {detail}")


def _reject_constant(name: str) -> Any:
    raise BodyError(f"{name} is not valid JSON; send a finite number")


def decode(body: bytes) -> Any:
    """The first JSON value in ``body``; raises :class:`BodyError` with the reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(
            f"the body is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start}); "
            "send JSON encoded as UTF-8"
        ) from None
    text = text.lstrip(" \t\r\n")
    if not text:
        raise BodyError("EOF (the body is empty; send a JSON object)")
    try:
        value, _end = _decoder.raw_decode(text)
    except BodyError:
        raise
    except json.JSONDecodeError as exc:
        raise BodyError(f"invalid JSON: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise BodyError("JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal with more digits than Python allows
        raise BodyError(f"invalid JSON: {exc}") from None
    return value


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _describe(value: Any) -> str:
    text = json.dumps(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{json_type(value)} {text}"


def _check(key: str, value: Any, kind: Kind, where: str) -> Any:
    ok: bool
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and _finite(value)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, dict)
    if not ok:
        want = {
            "string": "a string",
            "bool": "true or false",
            "number": "a number",
            "integer": "an integer",
            "object": "a JSON object",
        }[kind]
        raise BodyError(f'field "{key}"{where} must be {want}, got {_describe(value)}')
    return value


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def fields(obj: Any, schema: dict[str, Kind], *, where: str = "") -> dict[str, Any]:
    """Pick the fields of ``schema`` out of a JSON object, Go-style.

    Returns only the keys present with a non-null value, under their lower-case names.
    ``where`` is appended to messages (for example ``" at proxy 2"``).
    """
    if obj is None:
        # Go decodes a null body into the struct as "no fields given", not an error.
        return {}
    if not isinstance(obj, dict):
        raise BodyError(f"expected a JSON object{where}, got {_describe(obj)}")
    picked: dict[str, Any] = {}
    for key, value in obj.items():
        name = key.lower()
        kind = schema.get(name)
        if kind is None:
            continue
        if value is None:
            # null keeps the default, but a later null still overrides an earlier
            # duplicate of the same key the way Go's decoder sees it: it does nothing.
            continue
        picked[name] = _check(name, value, kind, where)
    return picked


def lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with lower-cased keys (the last duplicate wins), nulls dropped."""
    return {key.lower(): value for key, value in obj.items() if value is not None}
