"""Run one of the shop's services with waitress: ``python -m example_suite.shop.serve``.

::

    python -m example_suite.shop.serve orders   [--port N] [--threads N]
    python -m example_suite.shop.serve payments [--port N]

The server binds 127.0.0.1 (port 0 by default: the kernel picks a free one) and prints
``<service> listening on http://127.0.0.1:<port>`` once it listens, which is how the
test harness (``chaos_services.process`` with a ready pattern) learns the address
without racing for a port. A restart passes the same port back with ``--port``.
SIGTERM stops it at once: the listening socket is closed and the process exits without
the interpreter's shutdown (0.1 s of module teardown for the order API, paid at the end
of every test; in-flight requests end with the process either way).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from waitress.server import create_server  # type: ignore[import-untyped]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, bind, announce the port, serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m example_suite.shop.serve")
    parser.add_argument("service", choices=("orders", "payments"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    if args.service == "orders":
        from example_suite.shop.api import create_app

        app = create_app()
    else:
        from example_suite.shop.provider import create_provider

        app = create_provider()

    server = create_server(app, host=args.host, port=args.port, threads=args.threads)
    port = int(server.effective_port)
    print(f"{args.service} listening on http://{args.host}:{port}", flush=True)

    def _stop(signum: int, frame: FrameType | None) -> None:
        server.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, _stop)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
