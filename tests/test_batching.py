"""Micro-batching: unit behaviour of MicroBatcher (lone requests go at once, queued ones leave together,
priority order, size limits, cancellation, bisection of a 4xx) and end to end through AsyncClient against the
TEI emulator (413 for an over-long input or an over-large batch) and the OVMS KServe v2 emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

import infermux
from infermux import EndpointConfig, Priority
from infermux.batching import BatchConfig, MicroBatcher
from infermux.errors import APIStatusError, BadRequestError, ConfigurationError, InternalServerError
from infermux.providers.kserve import Tensor
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Sandbox
from infermux.sandbox._tei import MAX_CLIENT_BATCH_SIZE

pytestmark = pytest.mark.timeout(30)


class Upstream:
    """A fake upstream that records each call and waits for the test to release it."""

    def __init__(self, fail: set[str] | None = None, error: type[Exception] = BadRequestError) -> None:
        self.calls: list[list[str]] = []
        self.events: list[asyncio.Event] = []
        self.open = False
        self.fail = fail or set()
        self.error = error

    def release_all(self) -> None:
        self.open = True
        for ev in self.events:
            ev.set()

    async def __call__(self, key: Hashable, payloads: list[str], priority: Priority) -> list[str]:
        self.calls.append(list(payloads))
        ev = asyncio.Event()
        self.events.append(ev)
        if self.open:
            ev.set()
        await ev.wait()
        if self.fail & set(payloads):
            raise self.error("bad input in batch", status_code=400 if self.error is BadRequestError else 500)
        return [p.upper() for p in payloads]


def _batcher(up: Upstream, **kw: object) -> MicroBatcher[str, str]:
    kw.setdefault("max_concurrent", 1)
    return MicroBatcher(BatchConfig(**kw), up, lambda p: (1, len(p)))  # type: ignore[arg-type]


async def test_lone_request_goes_at_once_and_queued_ones_leave_together() -> None:
    up = Upstream()
    b = _batcher(up)
    first = asyncio.ensure_future(b.submit("k", "a"))
    await asyncio.sleep(0)
    assert up.calls == [["a"]]  # sent before anything else happened: no added latency
    rest = [asyncio.ensure_future(b.submit("k", x)) for x in "bcde"]
    await asyncio.sleep(0)
    assert up.calls == [["a"]] and b.stats()["queued"] == 4
    up.release_all()
    assert await first == "A" and [await r for r in rest] == list("BCDE")
    assert up.calls == [["a"], ["b", "c", "d", "e"]]
    assert b.stats()["upstream_calls"] == 2 and b.stats()["max_batch"] == 4


async def test_priority_order_and_item_limit() -> None:
    up = Upstream()
    b = _batcher(up, max_items=2)
    blocker = asyncio.ensure_future(b.submit("k", "x"))
    await asyncio.sleep(0)
    low = asyncio.ensure_future(b.submit("k", "low", Priority.LOW))
    norm = asyncio.ensure_future(b.submit("k", "norm"))
    high = asyncio.ensure_future(b.submit("k", "high", Priority.HIGH))
    await asyncio.sleep(0)
    up.release_all()
    await asyncio.gather(blocker, low, norm, high)
    assert up.calls == [["x"], ["high", "norm"], ["low"]]


async def test_input_size_limit() -> None:
    up = Upstream()
    b = _batcher(up, max_input_chars=5)
    blocker = asyncio.ensure_future(b.submit("k", "x"))
    await asyncio.sleep(0)
    others = [asyncio.ensure_future(b.submit("k", w)) for w in ("abc", "de", "fgh")]
    await asyncio.sleep(0)
    up.release_all()
    await asyncio.gather(blocker, *others)
    assert up.calls == [["x"], ["abc", "de"], ["fgh"]]


async def test_other_keys_do_not_mix() -> None:
    up = Upstream()
    b = _batcher(up)
    up.release_all()
    assert await asyncio.gather(b.submit("k1", "a"), b.submit("k2", "b")) == ["A", "B"]
    assert sorted(map(tuple, up.calls)) == [("a",), ("b",)]


async def test_4xx_is_bisected_to_the_bad_input_only() -> None:
    up = Upstream(fail={"bad"})
    b = _batcher(up)
    blocker = asyncio.ensure_future(b.submit("k", "x"))
    await asyncio.sleep(0)
    futs = [asyncio.ensure_future(b.submit("k", w)) for w in ("a", "b", "bad", "c", "d")]
    await asyncio.sleep(0)
    up.release_all()
    res = await asyncio.gather(blocker, *futs, return_exceptions=True)
    assert res[:3] == ["X", "A", "B"] and res[4:] == ["C", "D"]
    assert isinstance(res[3], BadRequestError)
    assert b.stats()["bisections"] >= 2


async def test_5xx_reaches_every_member() -> None:
    up = Upstream(fail={"b"}, error=InternalServerError)
    b = _batcher(up)
    blocker = asyncio.ensure_future(b.submit("k", "x"))
    await asyncio.sleep(0)
    futs = [asyncio.ensure_future(b.submit("k", w)) for w in ("a", "b")]
    await asyncio.sleep(0)
    up.release_all()
    res = await asyncio.gather(*futs, return_exceptions=True)
    assert await blocker == "X" and all(isinstance(r, InternalServerError) for r in res)
    assert res[0] is not res[1]  # each caller gets its own error object


async def test_cancelled_callers() -> None:
    up = Upstream()
    b = _batcher(up)
    blocker = asyncio.ensure_future(b.submit("k", "x"))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(b.submit("k", "gone"))
    stay = asyncio.ensure_future(b.submit("k", "stay"))
    await asyncio.sleep(0)
    gone.cancel()  # cancelled while queued: dropped before the batch leaves
    await asyncio.sleep(0)
    up.release_all()
    assert await blocker == "X" and await stay == "STAY"
    assert up.calls == [["x"], ["stay"]]
    # cancelled while its batch is in flight: the others still get their results
    up2 = Upstream()
    b2 = _batcher(up2)
    blocker = asyncio.ensure_future(b2.submit("k", "y"))
    await asyncio.sleep(0)
    a, c = asyncio.ensure_future(b2.submit("k", "a")), asyncio.ensure_future(b2.submit("k", "c"))
    await asyncio.sleep(0)
    up2.events[0].set()
    assert await blocker == "Y"
    await asyncio.sleep(0)
    assert up2.calls == [["y"], ["a", "c"]]
    a.cancel()
    await asyncio.sleep(0)
    up2.events[1].set()
    assert await c == "C"
    with pytest.raises(asyncio.CancelledError):
        await a


async def test_batch_of_only_cancelled_callers_is_cancelled_upstream() -> None:
    up = Upstream()
    b = _batcher(up)
    blocker = asyncio.ensure_future(b.submit("k", "x"))
    await asyncio.sleep(0)
    a = asyncio.ensure_future(b.submit("k", "a"))
    await asyncio.sleep(0)
    up.events[0].set()
    await blocker
    await asyncio.sleep(0)
    assert up.calls[-1] == ["a"] and len(b._tasks) == 1
    a.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not b._tasks  # the upstream batch task was cancelled, not left hanging
    assert b.stats()["cancelled"] == 1


def test_bad_batch_config() -> None:
    with pytest.raises(ConfigurationError):
        BatchConfig(max_items=0)
    with pytest.raises(ConfigurationError):
        BatchConfig(max_wait=-1)


# --------------------------------------------------------------------------- through the client


async def test_client_batches_embeddings_on_tei_emulator_and_bisects_413() -> None:
    async with Sandbox(backends=("tei",)) as sb:
        cfg = EndpointConfig(
            name="tei", provider="tei", base_url=sb.base_url, model="bge", retry=RetryPolicy(max_retries=0)
        )
        async with infermux.AsyncClient([cfg], batching=BatchConfig(max_items=64)) as c:
            texts = [f"text number {i}" for i in range(40)]
            long_text = " ".join(["word"] * 600)  # TEI: 413 for inputs over 512 tokens
            jobs = [c.embed(t) for t in texts[:20]] + [c.embed(long_text)] + [c.embed(t) for t in texts[20:]]
            res = await asyncio.gather(*jobs, return_exceptions=True)
            bad = res.pop(20)
            assert isinstance(bad, APIStatusError) and bad.status_code == 413
            assert all(isinstance(r, infermux.EmbedResponse) and len(r.vectors) == 1 for r in res)
            alone = await c.embed(texts[7])
            assert res[7].vectors == alone.vectors  # the right vector went to the right caller
            st = c.stats()["batching"]["embeddings"]
            assert st["requests"] == 42 and st["upstream_calls"] < 20 and st["bisections"] >= 1
            assert st["max_batch"] <= MAX_CLIENT_BATCH_SIZE or st["bisections"] >= 1


async def test_client_batches_kserve_infer_on_ovms_emulator() -> None:
    async with Sandbox(backends=("ovms",)) as sb:
        cfg = EndpointConfig(name="ovms", provider="ovms", base_url=sb.base_url, model="argmax")
        async with infermux.AsyncClient([cfg], batching=BatchConfig()) as c:
            rows = [[float(i), float(10 - i), 0.0, float(i % 3)] for i in range(10)]
            jobs = [c.infer("argmax", [Tensor.from_nested("INPUT0", [r], "FP32")]) for r in rows]
            res = await asyncio.gather(*jobs)
            want = [max(range(4), key=r.__getitem__) for r in rows]
            assert [out.output("OUTPUT0").data[0] for out in res] == want
            assert all(out.output("OUTPUT0").shape == (1,) for out in res)
            st = c.stats()["batching"]["infer"]
            assert st["requests"] == 10 and st["upstream_calls"] == 3  # two alone (max_concurrent=2), eight together
        async with infermux.AsyncClient([cfg]) as plain:  # the same call without batching
            one = await plain.infer("argmax", [Tensor.from_nested("INPUT0", [rows[3]], "FP32")])
            assert one.output("OUTPUT0").data[0] == want[3]
