"""Fixtures of the cache tests: a real Redis-compatible server (:mod:`infermux.sandbox.redis_server`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..conftest import redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as srv:
        yield srv.url
