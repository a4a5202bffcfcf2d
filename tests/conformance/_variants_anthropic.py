"""Synthetic Anthropic Messages API and Bedrock invoke recordings (see ``_variants``)."""

from __future__ import annotations

from typing import Any

from ._variant_wire import DATE, Variant, rec, sse


def _ant_headers(stream: bool = False) -> dict[str, Any]:
    return {
        "anthropic-organization-id": "fe4a1c7e-0000-0000-0000-000000000000",
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-06-02T10:00:01Z",
        "content-type": "text/event-stream; charset=utf-8" if stream else "application/json",
        "date": DATE,
        "request-id": "req_011CbS1ovABoAsWvrNwGBYhz",
        "server": "cloudflare",
        "x-robots-tag": "none",
    }


_ANT_REQ = {
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
    "user-agent": "Anthropic/Python 0.60.0",
    "x-api-key": "<redacted>",
}
_ANT_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _msg(content: list[dict[str, Any]], stop: str | None, **usage: Any) -> dict[str, Any]:
    u = {
        "input_tokens": 120,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 95,
        "service_tier": "standard",
        **usage,
    }
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": u,
    }


def _ant(
    name: str,
    body: Any,
    status: int,
    response: dict[str, Any],
    *,
    stream: bool = False,
    headers: dict[str, Any] | None = None,
    skips: dict[str, str] | None = None,
) -> Variant:
    kinds = ["chat_stream", "stream", "endpoint:chat"] if stream else ["chat_non_stream", "non_stream", "endpoint:chat"]
    hdrs = headers if headers is not None else _ant_headers(stream)
    return Variant(
        name,
        rec("anthropic", kinds, "POST", "api.anthropic.com", "/v1/messages", _ANT_REQ, body, status, hdrs, **response),
        skips or {},
    )


def _ev(kind: str, **fields: Any) -> tuple[str | None, Any]:
    """One Messages stream event: named by its ``type``."""
    return (kind, {"type": kind, **fields})


def _error(kind: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def _anthropic_variants() -> list[Variant]:
    ask: dict[str, Any] = {
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "model": "claude-sonnet-4-20250514",
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [_ANT_TOOL],
    }

    def reply(
        name: str,
        req: Any,
        content: list[dict[str, Any]],
        stop: str,
        *,
        skips: dict[str, str] | None = None,
        **usage: Any,
    ) -> Variant:
        """A 200 message; ``usage`` overrides its usage fields."""
        return _ant(name, req, 200, {"body": _msg(content, stop, **usage)}, skips=skips)

    def text(t: str) -> dict[str, Any]:
        return {"type": "text", "text": t}

    out = []
    thinking = {
        "type": "thinking",
        "thinking": "The user wants the weather; call the tool.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
    }
    tool_use = {
        "type": "tool_use",
        "id": "toolu_01A09q90qw90lq917835lq9",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    mixed = [thinking, text("Let me check."), tool_use]
    cache: dict[str, Any] = {"cache_read_input_tokens": 2048, "cache_creation_input_tokens": 12}
    out.append(reply("anthropic_thinking_text_tool_use", ask, mixed, "tool_use", **cache))
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}
    cited = {
        "type": "text",
        "text": "The grass is green.",
        "citations": [
            {
                "type": "char_location",
                "cited_text": "The grass is green.",
                "document_index": 0,
                "document_title": "Facts",
                "start_char_index": 0,
                "end_char_index": 20,
            }
        ],
    }
    no_tools = {k: v for k, v in ask.items() if k != "tools"}
    blocks: list[dict[str, Any]] = [redacted, cited, text(" Also the sky is blue.")]
    out.append(reply("anthropic_redacted_thinking_citations", no_tools, blocks, "end_turn"))
    server: list[dict[str, Any]] = [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
            "name": "web_search",
            "input": {"query": "paris weather"},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
            "content": [
                {
                    "type": "web_search_result",
                    "title": "Paris weather",
                    "url": "https://example.com/paris",
                    "encrypted_content": "EqgfCioIARgBIiQ3YTAw",
                    "page_age": "1 day ago",
                }
            ],
        },
        text("It is sunny in Paris."),
    ]
    web = {**ask, "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]}
    web.pop("thinking")
    searched = {"web_search_requests": 1}
    out.append(reply("anthropic_server_tool_use", web, server, "end_turn", server_tool_use=searched))
    hi = {"max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}], "model": "claude-sonnet-4-20250514"}
    for stop, extra in (
        ("max_tokens", {}),
        ("stop_sequence", {"stop_sequence": "\n\nHuman:"}),
        ("refusal", {}),
        ("pause_turn", {}),
    ):
        body = {**_msg([text("Partial")] if stop != "refusal" else [], stop), **extra}
        out.append(_ant(f"anthropic_stop_{stop}", hi, 200, {"body": body}))
    # stream: thinking + tool_use (input_json_delta), usage in message_delta
    start = _ev("message_start", message=_msg([], None, output_tokens=1))

    def block(index: int, content_block: dict[str, Any]) -> tuple[str | None, Any]:
        return _ev("content_block_start", index=index, content_block=content_block)

    def delta(index: int, kind: str, **fields: Any) -> tuple[str | None, Any]:
        return _ev("content_block_delta", index=index, delta={"type": kind, **fields})

    def end(index: int) -> tuple[str | None, Any]:
        return _ev("content_block_stop", index=index)

    call = {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}
    ev = [
        start,
        block(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, "thinking_delta", thinking="Need the tool."),
        delta(0, "signature_delta", signature="EqQBCgIYAhIM1gbcDa9GJwZA"),
        end(0),
        _ev("ping"),
        block(1, text("")),
        delta(1, "text_delta", text="Checking…"),
        end(1),
        block(2, call),
        delta(2, "input_json_delta", partial_json=""),
        delta(2, "input_json_delta", partial_json='{"city": "Pa'),
        delta(2, "input_json_delta", partial_json='ris"}'),
        end(2),
        _ev("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 89}),
        _ev("message_stop"),
    ]
    out.append(_ant("anthropic_stream_thinking_tool_use", {**ask, "stream": True}, 200, sse(ev), stream=True))
    # stream interrupted by an overloaded error event
    overloaded = _error("overloaded_error", "Overloaded", "req_011CbS1ovABoAsWvrNwGBYhz")
    ev = [start, block(0, text("")), delta(0, "text_delta", text="Hel"), ("error", overloaded)]
    out.append(_ant("anthropic_stream_overloaded_event", {**ask, "stream": True}, 200, sse(ev), stream=True))
    # errors
    eh = {**_ant_headers(), "x-should-retry": "true"}
    rl = {
        **_ant_headers(),
        "retry-after": "17",
        "x-should-retry": "true",
        "anthropic-ratelimit-input-tokens-remaining": "0",
    }
    too_many = "This request would exceed the rate limit for your organization of 30,000 input tokens per minute."
    limited = _error("rate_limit_error", too_many, "req_011CbS2")
    bad = {**_ant_headers(), "x-should-retry": "false"}
    bad.pop("request-id")
    invalid = _error("invalid_request_error", "messages.0.content: Input should be a valid list", "req_011CbS3")
    html = "<html><body><h1>500 Internal Server Error</h1></body></html>"
    hh = {"content-type": "text/html", "date": DATE, "server": "cloudflare"}
    out += [
        _ant("anthropic_529_overloaded", ask, 529, {"body": overloaded}, headers=eh),
        _ant("anthropic_429_rate_limit", ask, 429, {"body": limited}, headers=rl),
        _ant("anthropic_400_invalid_request_body_request_id", ask, 400, {"body": invalid}, headers=bad),
        _ant("anthropic_500_html", ask, 500, {"body_text": html}, headers=hh),
    ]
    # request: a history with a thinking block and a tool_result marked is_error (not neutral messages)
    failed = {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "timeout", "is_error": True}
    hist = {
        **ask,
        "messages": [
            ask["messages"][0],
            {"role": "assistant", "content": [thinking, tool_use]},
            {"role": "user", "content": [failed]},
        ],
    }
    # not expressible as neutral messages: kept verbatim in extra, so the round trip is still exact
    out.append(reply("anthropic_request_thinking_history", hist, [thinking, text("Sorry.")], "end_turn"))
    # request: prompt caching on a content block and a system block list
    cached = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Long doc…", "cache_control": {"type": "ephemeral"}}]}
        ],
    }
    name = "anthropic_request_cache_control_blocks"  # lossless: the blocks travel verbatim in extra
    out.append(reply(name, cached, [text("Ok.")], "end_turn", cache_creation_input_tokens=1500))
    # Bedrock invoke: the Messages body, Amazon's headers
    bh = {
        "content-type": "application/json",
        "date": DATE,
        "x-amzn-bedrock-input-token-count": "120",
        "x-amzn-bedrock-output-token-count": "95",
        "x-amzn-requestid": "32c10f95-b609-44be-95d4-b82692d2a824",
    }
    bb = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [_ANT_TOOL],
    }
    out.append(
        Variant(
            "bedrock_tool_use",
            rec(
                "bedrock-anthropic",
                ["chat_non_stream", "non_stream", "tools", "endpoint:chat"],
                "POST",
                "bedrock-runtime.us-east-1.amazonaws.com",
                "/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke",
                {"authorization": "<redacted>", "content-type": "application/json"},
                bb,
                200,
                bh,
                body={**_msg([tool_use], "tool_use"), "model": "claude-3-5-haiku-20241022"},
            ),
            {"request": "Bedrock invoke envelope"},
        )
    )
    return out
