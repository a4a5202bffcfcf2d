"""Synthetic "holdout-like" recordings, in the documented format (fixtures/recorded/README.md).

Each variant is an exchange a real server could have produced: the wire shapes (bodies, SSE framing, NDJSON,
error envelopes, headers) follow the recorded traffic of the shared set and each API's documentation; only
the combination is new (tool-call streams, n>1, refusals, content filters, thinking blocks, safety blocks,
in-band stream errors, every provider's error bodies...). :func:`variants` builds them (per API family in
``_variants_*``); :func:`truncated_streams` derives cut-off copies of real recorded streams (a dropped
connection). ``test_variants`` writes them to a folder and runs the same ``check_response`` /
``check_request`` the recorded-traffic tests run.
"""

from __future__ import annotations

import json

from ._recordings import Recording
from ._variant_wire import Variant, sse_events_of
from ._variants_anthropic import _anthropic_variants
from ._variants_compat import _azure_variants, _deepseek_variants, _groq_variants, _vllm_variants
from ._variants_google import _gemini_variants
from ._variants_local import _hf_variants, _ollama_variants
from ._variants_openai import _openai_variants
from ._variants_responses import _responses_variants

__all__ = ["Variant", "truncated_streams", "variants"]


def variants() -> list[Variant]:
    """Every synthetic variant (deterministic; no recordings needed)."""
    return [
        *_openai_variants(),
        *_responses_variants(),
        *_azure_variants(),
        *_deepseek_variants(),
        *_vllm_variants(),
        *_groq_variants(),
        *_anthropic_variants(),
        *_gemini_variants(),
        *_hf_variants(),
        *_ollama_variants(),
    ]


def truncated_streams(recordings: list[Recording], per_provider: int = 3) -> list[Variant]:
    """Copies of real recorded SSE streams cut after half their events (a connection that dropped): the
    checks must classify them (incomplete -> ``IncompleteStreamError``, unless the cut falls after the end)."""
    out: list[Variant] = []
    seen: dict[str, int] = {}
    for rec in recordings:
        resp = rec.response
        if "raw_body" not in resp or seen.get(rec.provider, 0) >= per_provider:
            continue
        blocks = [b for b in str(resp["raw_body"]).split("\n\n") if b.strip()]
        if len(blocks) < 4:
            continue
        seen[rec.provider] = seen.get(rec.provider, 0) + 1
        raw = "\n\n".join(blocks[: len(blocks) // 2]) + "\n\n"
        data = json.loads(json.dumps(rec.data))
        data["response"] = {**data["response"], "raw_body": raw, "sse_events": sse_events_of(raw)}
        out.append(Variant(f"cut_{rec.provider}_{rec.path.stem}"[:120], data))
    return out
