"""``python -m pytest_chaos.proxy``: the embedded proxy as a standalone server.

Takes toxiproxy-server's flags in both spellings (``-host`` and ``--host``, ``-port``,
``-config FILE``, ``-seed N``), prints the address it listens on, and exits 0 on
SIGINT or SIGTERM after closing every proxy and connection. A bad config file exits
2 with a message naming the file and the problem; an unusable API address exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

log = logging.getLogger("pytest_chaos.proxy")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_chaos.proxy",
        description=(
            "pytest-chaos's embedded fault proxy, speaking the Toxiproxy 2.12 HTTP API. "
            "Flags follow toxiproxy-server; both -flag and --flag work."
        ),
    )
    parser.add_argument(
        "-host", "--host", default="127.0.0.1", help="admin API host (default 127.0.0.1)"
    )
    parser.add_argument(
        "-port",
        "--port",
        type=_port,
        default=8474,
        help="admin API port (default 8474; 0 picks a free port)",
    )
    parser.add_argument(
        "-config",
        "--config",
        metavar="FILE",
        default=None,
        help="JSON file with a populate array of proxies to create at start",
    )
    parser.add_argument(
        "-seed", "--seed", type=int, default=None, help="seed for toxicity rolls (an integer)"
    )
    parser.add_argument(
        "-v",
        "-verbose",
        "--verbose",
        action="store_true",
        help="log every API request (method, path, status, time) to stderr",
    )
    for flag in ("proxy-metrics", "runtime-metrics"):
        # Accepted so that command lines written for toxiproxy-server work unchanged.
        parser.add_argument(
            f"-{flag}",
            f"--{flag}",
            action="store_true",
            help="accepted for toxiproxy-server compatibility; no /metrics endpoint is served",
        )
    parser.add_argument(
        "-version",
        "--version",
        action="store_true",
        help="print the Toxiproxy API version this server speaks and exit",
    )
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; use 0-65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range; use 0-65535")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGINT or SIGTERM; returns the process exit status."""
    from pytest_chaos.proxy._api import TOXIPROXY_API_VERSION

    args = _parser().parse_args(argv)
    if args.version:
        print(TOXIPROXY_API_VERSION)
        return 0
    # A handler of our own (not basicConfig) so that calling main() in a process
    # that already configured logging neither loses these lines nor changes the root.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    level, log.level = log.level, logging.DEBUG if args.verbose else logging.INFO
    try:
        return _run(args)
    finally:
        log.removeHandler(handler)
        log.level = level


def _run(args: argparse.Namespace) -> int:
    from pytest_chaos.errors import ConfigurationError
    from pytest_chaos.proxy._server import is_loopback, load_config, non_loopback_message

    if not is_loopback(args.host):
        log.warning("%s", non_loopback_message(args.host))
    if args.proxy_metrics or args.runtime_metrics:
        log.warning(
            "-proxy-metrics and -runtime-metrics are accepted but ignored: this server has no "
            "/metrics endpoint; per-proxy counters are at GET /proxies/{name}/stats"
        )
    config: list[dict[str, Any]] | None = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigurationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        return asyncio.run(_serve(args.host, args.port, args.seed, config, args.config))
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc}; pick another -port "
            "(0 picks a free one) or stop what holds it",
            file=sys.stderr,
        )
        return 1


async def _serve(
    host: str,
    port: int,
    seed: int | None,
    config: list[dict[str, Any]] | None,
    config_path: str | None,
) -> int:
    from pytest_chaos.proxy._api import TOXIPROXY_API_VERSION
    from pytest_chaos.proxy._server import ServerCore

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    core = await ServerCore.open(
        host,
        port,
        seed=seed,
        config=config,
        config_name=f"config file {config_path!r}",
    )
    try:
        bound_host, bound_port = core.http.address
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        if config:
            log.info("populated %d proxies from %s", len(config), config_path)
        print(
            f"pytest-chaos proxy (Toxiproxy API {TOXIPROXY_API_VERSION}) listening on "
            f"http://{shown}:{bound_port}",
            flush=True,
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        await core.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


if __name__ == "__main__":
    sys.exit(main())
