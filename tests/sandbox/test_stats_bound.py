"""The sandbox's request log is bounded (issue 8 item 8): a ring buffer of ``max_records`` with every request
still counted, so a standalone sandbox left running keeps bounded memory."""

from __future__ import annotations

import time

import aiohttp
import pytest

from infermux.errors import ConfigurationError
from infermux.sandbox import DEFAULT_MAX_RECORDS, RequestRecord, Sandbox, SandboxStats
from infermux.sandbox._cli import build_parser


def _rec(i: int) -> RequestRecord:
    return RequestRecord("POST /v1/chat/completions", f"r{i}", 1, None, f"s{i}", None, None, time.time())


def test_default_bound_keeps_the_latest_records() -> None:
    stats = SandboxStats()
    assert stats.max_records == DEFAULT_MAX_RECORDS == 10_000
    for i in range(DEFAULT_MAX_RECORDS + 25):
        stats.record(_rec(i))
    assert stats.total == DEFAULT_MAX_RECORDS + 25 and stats.dropped == 25
    assert len(stats.records) == DEFAULT_MAX_RECORDS and stats.records[0].request_id == "r25"
    assert stats.routes == {"POST /v1/chat/completions": DEFAULT_MAX_RECORDS + 25}
    stats.reset()
    assert stats.total == 0 and stats.dropped == 0 and stats.records == []


@pytest.mark.parametrize("bad", [0, -1, "10", True])
def test_bound_is_validated(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_records"):
        SandboxStats(bad)  # type: ignore[arg-type]


async def test_running_sandbox_and_its_stats_route_respect_the_bound() -> None:
    async with Sandbox(host="127.0.0.1", port=0, max_records=3) as sb, aiohttp.ClientSession() as http:
        for i in range(7):
            async with http.post(
                sb.openai_base_url + "/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": "Bearer k", "x-request-id": f"r{i}"},
            ) as resp:
                assert resp.status == 200
        async with http.get(sb.base_url + "/_sandbox/stats") as resp:
            snap = await resp.json()
    assert snap["total"] == 7 and snap["max_records"] == 3 and snap["dropped"] == 4
    assert [r["request_id"] for r in snap["requests"]] == ["r4", "r5", "r6"]


def test_cli_option() -> None:
    assert build_parser().parse_args([]).max_records == DEFAULT_MAX_RECORDS
    assert build_parser().parse_args(["--max-records", "50"]).max_records == 50
