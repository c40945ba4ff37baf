"""Fixtures of the process-service tests: echo servers started through ``chaos_services``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _proctools import READY, echo_argv

from pytest_chaos.services import ChaosServices, Service


@pytest.fixture
def start_echo(chaos_services: ChaosServices) -> Iterator[Callable[..., Service]]:
    """Start echo servers (``argv`` extras as arguments); each removed at teardown."""
    started: list[Service] = []

    def start(*extra: str, name: str | None = None, **kwargs: Any) -> Service:
        kwargs.setdefault("ready", READY)
        argv = kwargs.pop("argv", None) or echo_argv(*extra)
        service = chaos_services.process(
            argv, name=name or f"echo-{uuid.uuid4().hex[:6]}", **kwargs
        )
        started.append(service)
        return service

    yield start
    for service in started:
        service.remove()
