"""The payment provider: a separate HTTP service that records every charge it makes.

It behaves like the public payment APIs: ``POST /charges`` with an ``Idempotency-Key``
header makes at most one charge per key (a replay returns the first charge), without the
header every request is a new charge. ``GET /charges?order_id=N`` is the ledger a test
reads to count charges; it is the ground truth for "no double charge".
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

__all__ = ["Ledger", "create_provider"]


class Ledger:
    """The provider's charges, in memory, safe to use from the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.charges: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}
        self.requests = 0

    def __repr__(self) -> str:
        return f"<Ledger charges={len(self.charges)} requests={self.requests}>"

    def charge(
        self, order_id: int, amount_cents: int, key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Make a charge, or return the one already made for ``key``; ``(charge, created)``."""
        with self._lock:
            self.requests += 1
            if key is not None and key in self.by_key:
                return self.by_key[key], False
            charge = {
                "id": f"ch_{next(self._ids)}",
                "order_id": order_id,
                "amount_cents": amount_cents,
                "idempotency_key": key,
            }
            self.charges.append(charge)
            if key is not None:
                self.by_key[key] = charge
            return charge, True

    def for_order(self, order_id: int | None) -> list[dict[str, Any]]:
        """Charges of one order, or every charge."""
        with self._lock:
            return [c for c in self.charges if order_id is None or c["order_id"] == order_id]


def create_provider(ledger: Ledger | None = None) -> Flask:
    """The provider's Flask application."""
    app = Flask("payments")
    book = ledger or Ledger()

    @app.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok", charges=len(book.charges), requests=book.requests)

    @app.post("/charges")
    def charge() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="body must be a JSON object"), 400
        order_id, amount = body.get("order_id"), body.get("amount_cents")
        if not isinstance(order_id, int) or not isinstance(amount, int) or amount <= 0:
            return jsonify(
                error="order_id and a positive amount_cents (integers) are required"
            ), 400
        made, created = book.charge(order_id, amount, request.headers.get("Idempotency-Key"))
        response = jsonify(made)
        response.status_code = 201 if created else 200
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    @app.get("/charges")
    def charges() -> ResponseReturnValue:
        raw = request.args.get("order_id")
        try:
            order_id = None if raw is None else int(raw)
        except ValueError:
            return jsonify(error=f"order_id must be an integer, got {raw!r}"), 400
        return jsonify(charges=book.for_order(order_id))

    return app
