"""How dead runs are recognised: owner tokens of live and dead processes."""

from __future__ import annotations

import os
import subprocess

from pytest_chaos.services import _owner as owner_module


def test_a_live_process_is_not_dead() -> None:
    assert not owner_module.owner_is_dead(owner_module.owner_token())


def test_a_finished_process_is_dead() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    token = owner_module.owner_token().split(":")[0] + f":{proc.pid}:123"
    assert owner_module.owner_is_dead(token)


def test_a_reused_pid_is_dead() -> None:
    host, pid, _ = owner_module.owner_token().split(":")
    assert pid == str(os.getpid())
    assert owner_module.owner_is_dead(f"{host}:{pid}:not-my-start-time")


def test_another_host_or_garbage_is_never_judged() -> None:
    assert not owner_module.owner_is_dead("some-other-host:1:1")
    assert not owner_module.owner_is_dead("")
