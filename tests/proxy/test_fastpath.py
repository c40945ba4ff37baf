"""The task-free accept path on asyncio's selector loop."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import pytest

from pytest_chaos.proxy import _fastpath
from pytest_chaos.proxy._fastpath import FastListener, is_fast_loop


class _Flaky(socket.socket):
    """A listening socket whose accept() fails with EMFILE a few times."""

    failures = 2

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_out_of_descriptors_backs_off_then_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fastpath, "_RETRY_DELAY", 0.05)

    async def main() -> tuple[list[OSError], int]:
        loop = asyncio.get_running_loop()
        assert is_fast_loop(loop)
        sock = _Flaky(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        errors: list[OSError] = []
        accepted: list[socket.socket] = []
        listener = FastListener(loop, sock, lambda s, peer: accepted.append(s), errors.append)
        client = socket.socket()
        client.setblocking(False)
        try:
            await loop.sock_connect(client, sock.getsockname())
            for _ in range(200):
                if accepted:
                    break
                await asyncio.sleep(0.01)
            return errors, len(accepted)
        finally:
            listener.close()
            client.close()
            for s in accepted:
                s.close()

    errors, accepted = asyncio.run(main())
    assert [e.errno for e in errors] == [errno.EMFILE, errno.EMFILE]
    assert accepted == 1


def test_other_loops_take_the_public_path() -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        assert not is_fast_loop(loop)
    finally:
        loop.close()
