"""Every reactor behaviour test runs twice: in memory, and through the real broker with the reactor's own account."""
from __future__ import annotations

import contextlib

import pytest

from gateway.testing import BrokerReactorHarness, ReactorHarness


@pytest.fixture(params=["memory", pytest.param("mosquitto", marks=pytest.mark.integration)])
def harness_for(request):
    if request.param == "memory":
        @contextlib.asynccontextmanager
        async def memory(reactor):
            yield ReactorHarness(reactor)
        return memory
    stack = request.getfixturevalue("stack")

    def on_broker(reactor):
        return BrokerReactorHarness(reactor, port=stack.broker.port,
                                    reactor_password=stack.credentials.mqtt[reactor.name],
                                    admin_password=stack.credentials.mqtt["admin"])
    return on_broker
