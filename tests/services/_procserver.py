"""A tiny TCP echo server run by the process-service tests (executed, never imported).

    python _procserver.py [--port N] [--child PIDFILE] [--exit-before-ready CODE]
                          [--silent] [--say TEXT]

Binds 127.0.0.1:N (0: the kernel picks), prints ``LISTENING on 127.0.0.1:<port>``
and answers each line with ``echo:<line>``. ``--child`` forks a child that ignores
SIGTERM and sleeps, writing its pid to PIDFILE (to check that children are reaped);
``--exit-before-ready`` prints a complaint and exits with CODE before listening;
``--silent`` listens without printing the ready line; ``--say`` prints TEXT to stderr
first.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time


def _serve(conn: socket.socket) -> None:
    with conn, conn.makefile("rb") as lines:
        for line in lines:
            conn.sendall(b"echo:" + line)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--child")
    parser.add_argument("--exit-before-ready", type=int)
    parser.add_argument("--silent", action="store_true")
    parser.add_argument("--say")
    args = parser.parse_args()
    if args.say:
        print(args.say, file=sys.stderr, flush=True)
    if args.exit_before_ready is not None:
        print("cannot open the frobnicator: no such device", file=sys.stderr, flush=True)
        return int(args.exit_before_ready)
    if args.child:
        pid = os.fork()
        if pid == 0:  # the child: outlives a SIGTERM to its parent
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            with open(args.child + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(args.child + ".tmp", args.child)
            while True:
                time.sleep(60)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(64)
    if not args.silent:
        print(f"LISTENING on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
