"""Mid-stream failover between two REAL llama.cpp servers (xllamacpp + SmolLM2-135M), each in its own process on
127.0.0.1, with greedy decoding (temperature 0): the server streaming the answer is killed with SIGKILL (a dead
server), or frozen with SIGSTOP (a stalled server whose connection stays open), after a few text deltas; the
group's other server continues the answer from the delivered text (llama.cpp continues a partial assistant turn).
The caller's one stream must be the uninterrupted answer: the delivered prefix, then the rest, nothing twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

import infermux
from infermux.fleet import GroupConfig
from infermux.local import LocalLlamaServer
from infermux.resilience.retry import RetryPolicy
from infermux.types import StreamEvent, StreamResumed, TextDelta
from tests.conftest import require_local_server

pytestmark = [
    pytest.mark.realserver,
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("error::ResourceWarning"),
]

PROMPT = "Write three sentences about the history of Paris."
MAX_TOKENS = 60
RETRY = RetryPolicy(max_retries=2, initial_delay=0.05, deadline=60)


@pytest.fixture
def doomed() -> Iterator[LocalLlamaServer]:
    """A llama.cpp server of this test only (it gets killed or frozen); ``close`` copes with either."""
    require_local_server()
    server = LocalLlamaServer()
    server.start()
    try:
        yield server
    finally:
        if server.pid is not None and server.running:
            os.kill(server.pid, signal.SIGCONT)
        server.close()


async def answer(client: infermux.AsyncClient) -> str:
    """The uninterrupted greedy answer, from the surviving server."""
    return (await client.chat(PROMPT, endpoint="b", temperature=0, max_tokens=MAX_TOKENS)).text


async def stream_and_hit(
    client: infermux.AsyncClient, server: LocalLlamaServer, sig: signal.Signals, after: int
) -> tuple[list[StreamEvent], infermux.ChatResponse]:
    """Stream the answer through the group; send ``sig`` to the serving server after ``after`` text deltas."""
    events: list[StreamEvent] = []
    deltas = 0
    assert server.pid is not None
    async with client.stream(PROMPT, model="g", temperature=0, max_tokens=MAX_TOKENS) as s:
        async for ev in s:
            events.append(ev)
            if isinstance(ev, TextDelta):
                deltas += 1
                if deltas == after:
                    os.kill(server.pid, sig)
        return events, await s.final_response()


def check_one_stream(events: list[StreamEvent], final: infermux.ChatResponse, reference: str) -> StreamResumed:
    seam = next(i for i, e in enumerate(events) if isinstance(e, StreamResumed) and e.to_endpoint == "b")
    resumed = events[seam]
    assert isinstance(resumed, StreamResumed) and resumed.from_endpoint == "a"
    delivered = "".join(e.text for e in events[:seam] if isinstance(e, TextDelta))
    rest = "".join(e.text for e in events[seam:] if isinstance(e, TextDelta))
    assert len(delivered) >= 8 and resumed.delivered_chars == len(delivered)
    assert final.text == delivered + rest and final.text.startswith(delivered)
    assert not rest.lstrip().startswith(delivered.strip())  # b did not start the answer over
    # greedy decoding: the continuation is exactly the rest of the uninterrupted answer (no gap, no repeat)
    assert final.text == reference
    assert [(h.endpoint, h.reason) for h in final.route] == [("a", "failover mid-stream"), ("b", None)]
    assert final.endpoint == "b" and final.finish_reason in ("stop", "length")
    # usage adds both parts: a's cut part (one token per delta, it never reported usage) and b's
    assert final.usage is not None and final.usage.output_tokens == MAX_TOKENS
    return resumed


async def test_sigkill_of_the_serving_server_fails_over_to_the_other(
    doomed: LocalLlamaServer, llama_server: LocalLlamaServer
) -> None:
    eps = [doomed.endpoint_config("a", retry=RETRY), llama_server.endpoint_config("b", retry=RETRY)]
    async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
        reference = await answer(c)
        started = time.monotonic()
        events, final = await stream_and_hit(c, doomed, signal.SIGKILL, after=4)
        took = time.monotonic() - started
        resumed = check_one_stream(events, final, reference)
        assert resumed.reason == "APIConnectionError"
        assert not doomed.running
        st = c.stats()["a"]
        # the dead server's counters (and breaker) saw both failures: the cut, and the refused resume on it
        assert sum(st["attempt_failures"].values()) == 2 and sum(st["failures"].values()) == 1
        assert took < 20, took
        print(f"SIGKILL failover: {took:.2f}s for {MAX_TOKENS} tokens, load {os.getloadavg()}")


async def test_stalled_server_is_left_after_the_idle_timeout(
    doomed: LocalLlamaServer, llama_server: LocalLlamaServer
) -> None:
    eps = [doomed.endpoint_config("a", retry=RETRY), llama_server.endpoint_config("b", retry=RETRY)]
    group = GroupConfig("g", ("a", "b"), stream_idle_timeout=1.0)
    async with infermux.AsyncClient(eps, groups=[group], trust_env=False) as c:
        reference = await answer(c)
        started = time.monotonic()
        events, final = await stream_and_hit(c, doomed, signal.SIGSTOP, after=4)  # frozen: connection stays open
        took = time.monotonic() - started
        resumed = check_one_stream(events, final, reference)
        assert resumed.reason == "StreamIdleTimeoutError"
        assert [e.to_endpoint for e in events if isinstance(e, StreamResumed)] == ["b"]  # not resumed on a stall
        assert c.stats()["a"]["attempt_failures"] == {"StreamIdleTimeoutError": 1}
        assert 1.0 <= took < 20, took
        print(f"stall failover: {took:.2f}s for {MAX_TOKENS} tokens, load {os.getloadavg()}")
