"""Fixtures: a fresh in-process sandbox per test (127.0.0.1, port 0) and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from infermux.sandbox import Sandbox, SandboxThread


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(host="127.0.0.1", port=0) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(host="127.0.0.1", port=0) as sandbox:
        yield sandbox


@pytest.fixture
def sync_sb(sbt: SandboxThread) -> Iterator[SandboxThread]:
    sbt.reset()
    yield sbt
    sbt.reset()
