"""Choosing endpoints for a call and falling back across them.

The router picks candidates (by endpoint name, else the endpoints that serve the model, else all, in the
configured order) and tries them in turn. A failure moves on to the next endpoint unless it is the
caller's fault (invalid input), so an outage, an open breaker, a full queue or exhausted keys on one
endpoint do not fail the call while another endpoint can serve it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .endpoint import Endpoint
from .errors import (
    AllEndpointsFailedError,
    BadRequestError,
    ConfigurationError,
    InfermuxError,
    UnprocessableEntityError,
)

__all__ = ["Router", "can_fall_back"]

T = TypeVar("T")


def can_fall_back(error: InfermuxError) -> bool:
    """Whether another endpoint may succeed where this one failed (not when the input itself is invalid)."""
    return not isinstance(error, (ConfigurationError, BadRequestError, UnprocessableEntityError))


class Router:
    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        if not endpoints:
            raise ConfigurationError("a client needs at least one endpoint")
        self.endpoints = list(endpoints)
        self._by_name = {e.name: e for e in self.endpoints}

    def get(self, name: str) -> Endpoint:
        ep = self._by_name.get(name)
        if ep is None:
            raise ConfigurationError(f"unknown endpoint {name!r}; configured: {', '.join(self._by_name)}")
        return ep

    def candidates(self, *, model: str | None = None, endpoint: str | None = None) -> list[Endpoint]:
        if endpoint is not None:
            return [self.get(endpoint)]
        if model is not None:
            serving = [e for e in self.endpoints if model in e.config.models or model == e.config.model]
            if serving:
                return serving
        return list(self.endpoints)

    async def run(self, candidates: Sequence[Endpoint], fn: Callable[[Endpoint], Awaitable[T]]) -> T:
        errors: list[InfermuxError] = []
        for ep in candidates:
            try:
                return await fn(ep)
            except InfermuxError as e:
                errors.append(e)
                if not can_fall_back(e):
                    raise
        raise self.all_failed(errors)

    @staticmethod
    def all_failed(errors: list[InfermuxError]) -> InfermuxError:
        if len(errors) == 1:
            return errors[0]
        summary = "; ".join(f"{e.endpoint}: {type(e).__name__}" for e in errors)
        return AllEndpointsFailedError(
            f"all {len(errors)} endpoints failed ({summary})",
            errors=errors,
            request_id=errors[-1].request_id,
            model=errors[-1].model,
        )
