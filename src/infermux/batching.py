"""Micro-batching: compatible single requests merged into one upstream call when they queue.

A lane per compatibility key (same endpoints, model and parameters) holds waiting items in priority order.
A request that finds its lane idle goes at once, alone, from its own task: no added latency at low load.
Requests that arrive while ``max_concurrent`` batches of their lane are in flight wait, and leave together
as soon as a batch slot frees (after an optional ``max_wait`` linger), up to ``max_items`` items and
``max_input_chars`` characters of input, highest priority first.

Each caller gets its own result; an error of the whole batch reaches every member, except a client error
for the batch's input (400/413/422 by default): the batch is split in halves (bisection) until the
offending input is alone, and only its caller gets the typed error. A cancelled caller's item is dropped if
it has not left yet, or its result discarded; a batch whose callers are all gone is cancelled upstream.

:class:`MicroBatcher` is generic (any ``dispatch(payloads) -> results``); :func:`merge_embeddings` and
:func:`merge_infer` are the two strategies used by the client: embeddings (every embedding provider
infermux speaks takes a list of inputs: OpenAI-compatible ``/v1/embeddings``, vLLM, OVMS ``/v3/embeddings``,
TEI ``/embed``, Gemini ``batchEmbedContents``, Ollama ``/api/embed``) and KServe v2 infer (concatenation
along the first, batch dimension of every input tensor; outputs are split back by each caller's rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import heapq
import itertools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from .errors import BadRequestError, ConfigurationError, InfermuxError, MalformedResponseError, UnprocessableEntityError
from .providers.kserve import InferResult, Tensor
from .resilience.clock import SYSTEM_CLOCK, Clock
from .types import EmbedRequest, EmbedResponse, Priority

__all__ = ["BatchConfig", "InferCall", "MicroBatcher", "merge_embeddings", "merge_infer"]

P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """``max_items`` inputs and ``max_input_chars`` characters per upstream call; ``max_wait`` seconds of
    linger once a queued batch could leave (0: leave at once); ``max_concurrent`` upstream batches in flight
    per lane; ``bisect_statuses``: batch errors that mean "one of the inputs is bad"."""

    max_items: int = 64
    max_input_chars: int = 256_000
    max_wait: float = 0.0
    max_concurrent: int = 2
    bisect_statuses: tuple[int, ...] = (400, 413, 422)
    embeddings: bool = True
    infer: bool = True

    def __post_init__(self) -> None:
        if self.max_items < 1 or self.max_input_chars < 1 or self.max_concurrent < 1:
            raise ConfigurationError("BatchConfig: max_items, max_input_chars and max_concurrent must be >= 1")
        if not 0 <= self.max_wait <= 60:
            raise ConfigurationError(f"BatchConfig.max_wait must be within [0, 60] seconds, got {self.max_wait!r}")


@dataclass(eq=False, slots=True)
class _Item(Generic[P, R]):
    payload: P
    priority: Priority
    items: int
    chars: int
    future: asyncio.Future[R]
    batch: list[_Item[P, R]] | None = None
    task: asyncio.Task[None] | None = None
    gone: bool = False


@dataclass(slots=True)
class _Lane(Generic[P, R]):
    heap: list[tuple[int, int, _Item[P, R]]] = field(default_factory=list)
    in_flight: int = 0


class MicroBatcher(Generic[P, R]):
    """Batches ``submit(key, payload)`` calls per ``key`` through ``dispatch(payloads, priority)``, which must
    return one result per payload, in order. ``measure(payload) -> (items, chars)`` sizes a payload."""

    def __init__(
        self,
        config: BatchConfig,
        dispatch: Callable[[Hashable, list[P], Priority], Awaitable[list[R]]],
        measure: Callable[[P], tuple[int, int]],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self._dispatch = dispatch
        self._measure = measure
        self._clock = clock
        self._lanes: dict[Hashable, _Lane[P, R]] = {}
        self._seq = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters = {"requests": 0, "upstream_calls": 0, "batched_items": 0, "max_batch": 0, "bisections": 0}
        self.counters.update({"cancelled": 0, "alone": 0})

    def stats(self) -> dict[str, Any]:
        calls = self.counters["upstream_calls"]
        queued = sum(len(lane.heap) for lane in self._lanes.values())
        mean = self.counters["batched_items"] / calls if calls else None
        return {**self.counters, "mean_batch": mean, "queued": queued}

    async def submit(self, key: Hashable, payload: P, priority: Priority = Priority.NORMAL) -> R:
        items, chars = self._measure(payload)
        self.counters["requests"] += 1
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        item: _Item[P, R] = _Item(payload, priority, items, chars, fut)
        if lane.in_flight < self.config.max_concurrent and not lane.heap:
            self.counters["alone"] += 1
            lane.in_flight += 1  # idle lane: this caller sends its own request now, from its own task
            try:
                return (await self._send(key, [payload], priority))[0]
            finally:
                lane.in_flight -= 1
                self._kick(key, lane)
        heapq.heappush(lane.heap, (int(priority), next(self._seq), item))
        self._kick(key, lane)
        try:
            return await fut
        except asyncio.CancelledError:
            self._abandon(item)
            raise

    def _abandon(self, item: _Item[P, R]) -> None:
        item.gone = True
        self.counters["cancelled"] += 1
        batch, task = item.batch, item.task
        if batch is not None and task is not None and all(i.gone for i in batch):
            task.cancel()  # nobody waits for this batch any more

    async def _send(self, key: Hashable, payloads: list[P], priority: Priority) -> list[R]:
        self.counters["upstream_calls"] += 1
        self.counters["batched_items"] += len(payloads)
        self.counters["max_batch"] = max(self.counters["max_batch"], len(payloads))
        results = await self._dispatch(key, payloads, priority)
        if len(results) != len(payloads):
            raise MalformedResponseError(f"a batch of {len(payloads)} requests got {len(results)} results")
        return results

    def _kick(self, key: Hashable, lane: _Lane[P, R]) -> None:
        while lane.heap and lane.in_flight < self.config.max_concurrent:
            lane.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._drain(key, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if self.config.max_wait > 0:
                break  # the lingering task takes what has gathered when it wakes

    def _take(self, lane: _Lane[P, R]) -> list[_Item[P, R]]:
        batch: list[_Item[P, R]] = []
        items = chars = 0
        while lane.heap:
            item = lane.heap[0][2]
            if item.gone:
                heapq.heappop(lane.heap)
                continue
            if batch and (
                items + item.items > self.config.max_items or chars + item.chars > self.config.max_input_chars
            ):
                break
            heapq.heappop(lane.heap)
            batch.append(item)
            items += item.items
            chars += item.chars
        return batch

    async def _drain(self, key: Hashable, lane: _Lane[P, R]) -> None:
        try:
            if self.config.max_wait > 0 and sum(i.items for _, _, i in lane.heap) < self.config.max_items:
                await self._clock.sleep(self.config.max_wait)
            batch = self._take(lane)
            if batch:
                task = asyncio.current_task()
                for it in batch:
                    it.batch, it.task = batch, task
                await self._run(key, batch)
        finally:
            lane.in_flight -= 1
            self._kick(key, lane)

    async def _run(self, key: Hashable, batch: list[_Item[P, R]]) -> None:
        live = [i for i in batch if not i.gone]
        if not live:
            return
        priority = min((i.priority for i in live), default=Priority.NORMAL)
        try:
            results = await self._send(key, [i.payload for i in live], priority)
        except InfermuxError as e:
            if len(live) > 1 and self._is_input_error(e):
                self.counters["bisections"] += 1
                mid = len(live) // 2
                await self._run(key, live[:mid])
                await self._run(key, live[mid:])
                return
            for i in live:
                if not i.future.done():
                    i.future.set_exception(e if len(live) == 1 else copy.copy(e))
            return
        except asyncio.CancelledError:
            for i in live:
                i.future.cancel()
            raise
        for i, r in zip(live, results, strict=True):
            if not i.future.done():
                i.future.set_result(r)

    def _is_input_error(self, e: InfermuxError) -> bool:
        return isinstance(e, (BadRequestError, UnprocessableEntityError)) or (
            e.status_code is not None and e.status_code in self.config.bisect_statuses
        )

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, InfermuxError):
                await t


# --------------------------------------------------------------------------- strategies


def embed_key(req: EmbedRequest, candidates: Sequence[str]) -> Hashable:
    """Requests with the same key may share one upstream embedding call (same endpoints, model, dimensions,
    extra fields, extra headers (kept as a digest: they may carry credentials) and retry setting)."""
    extra = tuple(sorted((k, repr(v)) for k, v in req.extra.items()))
    headers = hashlib.sha256(repr(sorted(req.extra_headers.items())).encode()).hexdigest()
    return ("embed", tuple(candidates), req.model, req.dimensions, extra, headers, req.max_retries)


def measure_embed(req: EmbedRequest) -> tuple[int, int]:
    return len(req.inputs), sum(len(t) for t in req.inputs)


async def merge_embeddings(
    payloads: list[EmbedRequest], call: Callable[[EmbedRequest], Awaitable[EmbedResponse]]
) -> list[EmbedResponse]:
    """One call for all ``payloads`` (same model and parameters); each caller gets its own vectors. Usage is
    the batch's and is left to the endpoint counters (``usage`` is ``None`` on a batched answer)."""
    if len(payloads) == 1:
        return [await call(payloads[0])]
    first = payloads[0]
    merged = replace(first, inputs=tuple(t for p in payloads for t in p.inputs))
    resp = await call(merged)
    if len(resp.vectors) != len(merged.inputs):
        raise MalformedResponseError(
            f"embedding batch of {len(merged.inputs)} inputs got {len(resp.vectors)} vectors",
            provider=resp.provider,
            endpoint=resp.endpoint,
            request_id=resp.request_id,
        )
    out, pos = [], 0
    for p in payloads:
        n = len(p.inputs)
        out.append(replace(resp, vectors=resp.vectors[pos : pos + n], usage=None, raw=None))
        pos += n
    return out


@dataclass(frozen=True, slots=True)
class InferCall:
    """One KServe v2 infer request: ``inputs`` share their first (batch) dimension."""

    model: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[str, ...] = ()
    version: str | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigurationError("an infer call needs at least one input tensor")
        rows = {t.shape[0] if t.shape else None for t in self.inputs}
        if len(rows) != 1 or None in rows:
            raise ConfigurationError("batched infer: every input tensor needs the same first (batch) dimension")

    @property
    def rows(self) -> int:
        return self.inputs[0].shape[0]

    def key(self) -> Hashable:
        sig = tuple((t.name, t.datatype, t.shape[1:]) for t in self.inputs)
        return ("infer", self.model, self.version, sig, self.outputs)


def measure_infer(call: InferCall) -> tuple[int, int]:
    return call.rows, sum(len(t.data) for t in call.inputs)


async def merge_infer(
    payloads: list[InferCall], send: Callable[[InferCall], Awaitable[InferResult]]
) -> list[InferResult]:
    """Concatenate every input along dimension 0, send once, split every output by each caller's rows."""
    if len(payloads) == 1:
        return [await send(payloads[0])]
    first = payloads[0]
    merged_inputs = tuple(
        Tensor(
            t.name,
            (sum(p.rows for p in payloads), *t.shape[1:]),
            t.datatype,
            tuple(v for p in payloads for v in p.inputs[k].data),
        )
        for k, t in enumerate(first.inputs)
    )
    total = sum(p.rows for p in payloads)
    result = await send(replace(first, inputs=merged_inputs))
    for t in result.outputs:
        if not t.shape or t.shape[0] != total:
            raise MalformedResponseError(
                f"batched infer: output {t.name!r} has shape {list(t.shape)}, not {total} rows"
            )
    out, start = [], 0
    for p in payloads:
        parts = []
        for t in result.outputs:
            width = len(t.data) // total
            data = t.data[start * width : (start + p.rows) * width]
            parts.append(Tensor(t.name, (p.rows, *t.shape[1:]), t.datatype, data, t.parameters))
        out.append(replace(result, outputs=tuple(parts)))
        start += p.rows
    return out
