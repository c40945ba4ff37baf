"""A small e-commerce system built to be tested with pytest-chaos.

Two HTTP services, each in its own process:

- the order API (:mod:`example_suite.shop.api`): products, orders and payment of orders,
  backed by PostgreSQL (orders and inventory, the truth) and Redis (cache and idempotency
  keys, an optimisation it can live without);
- the payment provider (:mod:`example_suite.shop.provider`): records charges, deduplicates
  them by ``Idempotency-Key``, and can be asked which charges it made.

Every address comes from the environment (:class:`~example_suite.shop.config.ShopConfig`),
so a test puts a fault proxy in front of each dependency. ``SHOP_FRAGILE=1`` builds the
same system the naive way (no timeouts, no breaker, no idempotency keys, retries without
backoff, commits not durable) so that the chaos suite can show what it catches;
``SHOP_FRAGILE=breaker,timeouts`` removes only the protections named.
"""
