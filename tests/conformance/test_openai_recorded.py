"""Replays recorded OpenAI-protocol traffic (OpenAI, Azure OpenAI, Groq, DeepSeek, vLLM, HF/TGI Messages API)
through the pure OpenAI providers: responses are parsed (streams fed in small chunks) and compared with what
the recording itself says; requests are rebuilt from the recorded body and compared with what was sent.

``check_response(rec)`` / ``check_request(rec)`` work on any :class:`Recording` that ``accepts(rec)``
(the synthetic variants of ``test_variants`` go through them too)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from infermux.errors import ConfigurationError, MalformedResponseError
from infermux.providers import openai as oa
from infermux.providers import openai_responses as oar
from infermux.providers import tgi
from infermux.types import EmbedRequest

from ._checks import (
    check_status_error,
    error_envelope,
    expected_finish,
    has_done_marker,
    rebuilt_unless_refused,
    run_stream,
    sse_objects,
)
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

PROVIDERS = {"openai", "azure-openai", "groq", "deepseek", "vllm", "huggingface"}


def accepts(rec: Recording) -> bool:
    # Hugging Face: only its chat files speak the OpenAI protocol (TGI Messages API); tgi_generate and the
    # feature-extraction "embeddings" belong to the TGI/TEI backends (test_huggingface_recorded).
    return rec.provider in PROVIDERS and (rec.provider != "huggingface" or rec.endpoint_kind == "chat")


RECORDINGS = [r for r in load(PROVIDERS) if accepts(r)]
_SUPPORTED = {"chat", "responses", "responses_retrieve", "embeddings", "completions_legacy"}

#: Request-side differences between the recorded body and ours, on purpose:
#: - JSON nulls are never sent (HF's client sends every unset option as null);
#: - ``"stream": false`` is not sent (it is the default);
#: - streaming chat always adds ``stream_options: {"include_usage": true}`` (usage in the last chunk);
#: - embeddings always send ``encoding_format`` ("float" unless the caller overrides it);
#: - ``developer`` messages are sent as ``system`` (the neutral Message has no developer role);
#: - null message fields (``"content": null`` next to ``tool_calls``) are not sent.
#: Values are compared for every other key, except where our shape is canonical: ``input`` (a string
#: becomes a list; Responses items lose their server-side ``id``/``status``) and ``stop`` (a string
#: becomes a list). Chat ``messages`` round-trip exactly (after the developer -> system rename).

#: Auth header each recorded provider used; ours is ``authorization: Bearer`` except Azure's ``api-key``
#: (Azure needs its own provider config; the OpenAI builder is reused for its body only). Azure also
#: accepts an Entra ID bearer token in ``authorization``.
_AUTH_HEADERS = {"azure-openai": {"api-key", "authorization"}}
_AUTH_NAMES = {"authorization", "api-key", "x-api-key"}


def _kind(rec: Recording) -> str:
    kind = rec.endpoint_kind or "unknown"
    if kind not in _SUPPORTED:
        pytest.skip(f"endpoint kind {kind} not supported by the OpenAI providers")
    return "responses" if kind == "responses_retrieve" else kind


def _request_id(rec: Recording) -> str | None:
    hdrs = rec.response_headers()
    return hdrs.get("x-request-id") or hdrs.get("apim-request-id") or None


# --------------------------------------------------------------------------- streams


def _chat_stream_expectations(rec: Recording) -> dict[str, Any]:
    """What the recorded chat/completions chunks carry for choice 0 (independent of our parser)."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, list[Any]] = {}
    ids: dict[str, int] = {}
    finish: str | None = None
    usage: Mapping[str, Any] | None = None
    error: str | None = None
    for _, obj in sse_objects(rec):
        if not isinstance(obj, Mapping):
            continue
        if obj.get("error") is not None and "choices" not in obj:
            error = error if error is not None else error_envelope(Recording(rec.path, _as_body(rec, obj)))[1]
            continue
        for ch in obj.get("choices") or []:
            if ch.get("index", 0) != 0:
                continue
            delta = ch.get("delta") or {}
            piece = delta.get("content") if "delta" in ch else ch.get("text")
            text.append(piece or "")
            # reasoning of OpenAI-compatible servers (DeepSeek, vLLM, llama.cpp): reasoning_content, else reasoning
            r = delta.get("reasoning_content")
            reasoning.append(r if isinstance(r, str) else delta.get("reasoning") or "")
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(_call_index(tc, calls, ids), ["", "", []])
                fn = tc.get("function") or tc.get("custom") or {}
                slot[0] = slot[0] or tc.get("id") or ""
                slot[1] = slot[1] or fn.get("name") or ""
                slot[2].append(fn.get("arguments", fn.get("input")) or "")
            if isinstance(delta.get("function_call"), Mapping):
                slot = calls.setdefault(0, ["", "", []])
                slot[1] = slot[1] or delta["function_call"].get("name") or ""
                slot[2].append(delta["function_call"].get("arguments") or "")
            if ch.get("finish_reason") is not None:
                finish = ch["finish_reason"]
        u = obj.get("usage")
        if not isinstance(u, Mapping) and isinstance(obj.get("x_groq"), Mapping):
            u = obj["x_groq"].get("usage")
        if isinstance(u, Mapping):
            usage = u
    return {
        "text": "".join(text),
        "reasoning": "".join(reasoning),
        "calls": [(c[0], c[1], "".join(c[2])) for _, c in sorted(calls.items())],
        "finish": finish,
        "usage": usage,
        "error": error,
        # termination rule: [DONE] is required, except on TGI's Messages API (HF) where a finish_reason is enough
        "complete": has_done_marker(rec) or error is not None or (finish is not None and not _done_required(rec)),
    }


def _done_required(rec: Recording) -> bool:
    return rec.provider != "huggingface"


def _stream_parser(rec: Recording) -> Any:
    return tgi.CHAT_PROVIDER.new_stream_parser if rec.provider == "huggingface" else oa.ChatStreamParser


def _call_index(tc: Mapping[str, Any], calls: Mapping[int, Any], ids: dict[str, int]) -> int:
    """Which call a streamed tool-call piece belongs to: its ``index``; without one (Gemini's OpenAI
    endpoint, proxies) a new ``id`` starts the next call and a piece with neither continues the last."""
    if isinstance(tc.get("index"), int):
        idx: int = tc["index"]
    elif tc.get("id") and tc["id"] in ids:
        idx = ids[tc["id"]]
    elif tc.get("id") or not calls:
        idx = max(calls, default=-1) + 1
    else:
        idx = ids.get("\0last", max(calls))
    if tc.get("id"):
        ids.setdefault(tc["id"], idx)
    ids["\0last"] = idx
    return idx


def _as_body(rec: Recording, obj: Any) -> dict[str, Any]:
    """A recording-shaped dict whose response body is ``obj`` (to read an in-band error like a body)."""
    return {**rec.data, "response": {"status": 200, "headers": {}, "body": obj}}


def _responses_stream_expectations(rec: Recording) -> dict[str, Any]:
    """What the recorded Responses API events carry (independent of our parser)."""
    text: list[str] = []
    calls: dict[int, tuple[str, str, str]] = {}
    terminal: Mapping[str, Any] | None = None
    error: str | None = None
    for name, obj in sse_objects(rec):
        if not isinstance(obj, Mapping):
            continue
        kind = obj.get("type") or name
        if kind == "response.output_text.delta":
            text.append(obj.get("delta") or "")
        elif kind == "response.output_item.done" and (obj.get("item") or {}).get("type") in _CALL_ITEMS:
            it = obj["item"]
            calls[obj.get("output_index", len(calls))] = (it.get("call_id") or "", it["name"], _call_input(it))
        elif kind in ("response.completed", "response.incomplete", "response.failed") and terminal is None:
            terminal = obj
        elif kind == "error" and error is None:
            err = obj.get("error") if isinstance(obj.get("error"), Mapping) else obj
            error = err.get("message") or "stream error"
    finish = None
    if terminal is not None:
        resp = terminal.get("response") or {}
        if terminal.get("type") == "response.failed":
            error = error or ((resp.get("error") or {}).get("message") or "response failed")
        else:
            finish = _responses_finish(resp, bool(calls)) or (
                "stop" if terminal.get("type") == "response.completed" else "length"
            )
    return {
        "text": "".join(text),
        "calls": [c for _, c in sorted(calls.items())],
        "finish": finish,
        "usage": (terminal.get("response") or {}).get("usage") if terminal is not None else None,
        "error": error,
        "complete": terminal is not None or error is not None,
    }


#: Responses output items that are calls for the caller (function tools; custom tools with free-form input)
_CALL_ITEMS = ("function_call", "custom_tool_call")


def _call_input(item: Mapping[str, Any]) -> Any:
    return item.get("input") if item.get("type") == "custom_tool_call" else item.get("arguments")


def _responses_finish(resp: Mapping[str, Any], has_calls: bool) -> str | None:
    status = resp.get("status")
    if status == "completed":
        return "tool_calls" if has_calls else "stop"
    if status == "incomplete":
        reason = (resp.get("incomplete_details") or {}).get("reason")
        return expected_finish(reason) or "length"
    if status in ("failed", "cancelled"):
        return "error"
    return None  # queued / in_progress (background responses)


def _check_stream(rec: Recording, kind: str) -> None:
    if kind == "responses":
        exp = _responses_stream_expectations(rec)
        acc = run_stream(oar.ResponsesStreamParser, rec, complete=exp["complete"], error_message=exp["error"])
        in_key, out_key = "input_tokens", "output_tokens"
    else:
        exp = _chat_stream_expectations(rec)
        acc = run_stream(_stream_parser(rec), rec, complete=exp["complete"], error_message=exp["error"])
        in_key, out_key = "prompt_tokens", "completion_tokens"
    if acc is None:
        return
    assert acc.text == exp["text"]
    if "reasoning" in exp:  # kept apart from the text, never dropped
        assert acc.reasoning == exp["reasoning"]
    got = [(c.id, c.name, c.raw_arguments) for c in acc.tool_calls()]
    assert got == exp["calls"]
    if exp["error"] is None:
        assert acc.finished
        expected = expected_finish(exp["finish"]) if kind != "responses" else exp["finish"]
        assert acc.finish_reason == expected
    if exp["usage"] is not None:
        assert acc.usage is not None
        assert (acc.usage.input_tokens, acc.usage.output_tokens) == (exp["usage"][in_key], exp["usage"][out_key])


# --------------------------------------------------------------------------- bodies


def _check_chat_body(rec: Recording, kind: str) -> None:
    body = rec.response["body"]
    headers = rec.response_headers()
    if kind == "responses":
        resp = oar.PROVIDER.parse_chat(rec.response_bytes(), headers)
        output = body.get("output") or []
        texts = [
            p["text"]
            for it in output
            if it.get("type") == "message"
            for p in it.get("content") or []
            if p.get("type") == "output_text"
        ]
        assert resp.text == "".join(texts)
        calls = [
            (it.get("call_id") or it.get("id"), it["name"], _call_input(it))
            for it in output
            if it.get("type") in _CALL_ITEMS
        ]
        assert [(c.id, c.name, c.raw_arguments) for c in resp.tool_calls] == calls
        assert resp.finish_reason == _responses_finish(body, bool(calls))
        if isinstance(body.get("usage"), Mapping):
            assert resp.usage is not None and resp.usage.input_tokens == body["usage"]["input_tokens"]
            assert resp.usage.output_tokens == body["usage"]["output_tokens"]
            out_details = body["usage"].get("output_tokens_details")
            if isinstance(out_details, Mapping) and isinstance(out_details.get("reasoning_tokens"), int):
                assert resp.usage.reasoning_tokens == out_details["reasoning_tokens"]
    elif kind == "completions_legacy":
        resp = oa.parse_completion(rec.response_bytes(), headers)
        assert resp.text == body["choices"][0]["text"]
        assert resp.finish_reason == expected_finish(body["choices"][0].get("finish_reason"))
    else:
        resp = oa.PROVIDER.parse_chat(rec.response_bytes(), headers)
        choice = body["choices"][0]
        msg = choice.get("message")
        if msg is None:  # Azure content filtering: the choice ends filtered, without a message
            assert choice.get("finish_reason") == "content_filter"
            assert resp.finish_reason == "content_filter" and resp.text == "" and resp.tool_calls == ()
            assert oa.content_filter_results(resp).get("completion") == choice.get("content_filter_results")
            msg = {}
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        assert resp.text == (content or "")  # a refusal has content null and its text in "refusal"
        r = msg.get("reasoning_content")
        assert resp.reasoning == (r if isinstance(r, str) else msg.get("reasoning") or "")
        calls = [
            ("" if c.get("id") is None else str(c["id"]), fn["name"], fn.get("arguments", fn.get("input")))
            for c in msg.get("tool_calls") or []
            for fn in [c.get("function") or c.get("custom") or {}]  # custom tools: {"name", "input"}
        ]
        if not calls and msg.get("function_call"):
            calls = [("", msg["function_call"]["name"], msg["function_call"].get("arguments"))]
        assert [(c.id, c.name) for c in resp.tool_calls] == [(i, n) for i, n, _ in calls]
        for ours, (_, _, args) in zip(resp.tool_calls, calls, strict=True):
            # arguments are a JSON string on OpenAI's wire; TGI sends an object
            assert (ours.raw_arguments if isinstance(args, str) else ours.arguments) == args
        assert resp.finish_reason == expected_finish(choice.get("finish_reason"))
        if body.get("usage"):
            assert resp.usage is not None and resp.usage.output_tokens == body["usage"]["completion_tokens"]
            assert resp.usage.input_tokens == body["usage"]["prompt_tokens"]
            details = body["usage"].get("prompt_tokens_details")
            if isinstance(details, Mapping) and isinstance(details.get("cached_tokens"), int):
                assert resp.usage.cached_tokens == details["cached_tokens"]
            out_details = body["usage"].get("completion_tokens_details")
            if isinstance(out_details, Mapping) and isinstance(out_details.get("reasoning_tokens"), int):
                assert resp.usage.reasoning_tokens == out_details["reasoning_tokens"]
    assert resp.response_id == (body.get("id") or None)
    assert resp.provider_request_id == _request_id(rec)


def _check_error(rec: Recording, kind: str) -> None:
    status = int(rec.response["status"])
    prov = oar.PROVIDER if kind == "responses" else oa.PROVIDER
    err = prov.classify_error(status, rec.response_headers(), rec.response_bytes())
    check_status_error(err, rec, provider=prov.name, request_id=_request_id(rec))


def _check_embeddings(rec: Recording) -> None:
    resp = oa.PROVIDER.parse_embed(rec.response_bytes(), rec.response_headers())  # type: ignore[misc]
    data = sorted(rec.response["body"]["data"], key=lambda d: d.get("index", 0))
    assert len(resp.vectors) == len(data)
    for ours, theirs in zip(resp.vectors, data, strict=True):
        if isinstance(theirs["embedding"], list):
            assert list(ours) == pytest.approx(theirs["embedding"])
        else:  # base64 little-endian float32
            assert len(ours) * 4 == len(base64.b64decode(theirs["embedding"]))
    assert all(len(v) > 0 for v in resp.vectors)


def check_response(rec: Recording) -> None:
    kind = _kind(rec)
    status = int(rec.response["status"])
    body = rec.response.get("body")
    if status >= 400:
        _check_error(rec, kind)
    elif "raw_body" in rec.response:
        _check_stream(rec, kind)
    elif kind == "embeddings":
        _check_embeddings(rec)
    elif isinstance(body, Mapping) and body.get("error") and "choices" not in body and kind != "responses":
        # Azure's content filter has answered HTTP 200 with an error body: typed, never a success.
        etype, message = error_envelope(rec)
        with pytest.raises(MalformedResponseError) as exc:
            oa.PROVIDER.parse_chat(rec.response_bytes(), rec.response_headers())
        assert exc.value.provider_message == message and exc.value.error_type == etype
        if etype == "content_filter":
            assert not exc.value.retryable
    else:
        _check_chat_body(rec, kind)


# --------------------------------------------------------------------------- requests


def _rebuild(rec: Recording, kind: str, body: dict[str, Any]) -> tuple[Any, set[str]]:
    """Our ProviderRequest for the recorded body, and the key set we expect (after documented differences)."""
    stream = bool(body.get("stream"))
    expected = {k for k, v in body.items() if v is not None}
    if not stream:
        expected.discard("stream")
    rest = {k: v for k, v in body.items() if v is not None and k not in ("model", "stream")}
    if kind == "chat":
        pr = oa.build_chat(oa.chat_request_from_wire(body), body.get("model") or "", stream)
        if stream:
            expected.add("stream_options")
    elif kind == "embeddings":
        inputs = rest.pop("input")
        if not isinstance(inputs, (str, list)) or (
            isinstance(inputs, list) and not all(isinstance(x, str) for x in inputs)
        ):
            pytest.skip("embeddings input given as token ids (EmbedRequest takes text)")
        req = EmbedRequest(inputs=inputs, dimensions=rest.pop("dimensions", None), extra=rest)
        pr = oa.build_embed(req, body.get("model") or "")
        expected.add("encoding_format")
    elif kind == "completions_legacy":
        pr = oa.build_completion(body.get("model") or "", rest.pop("prompt"), stream=stream, extra=rest)
    else:
        try:
            req = oar.responses_request_from_wire(body)
        except ConfigurationError as e:
            pytest.skip(f"Responses input not expressible as neutral messages: {e}")
        pr = oar.build_chat(req, body.get("model") or "", stream)
    return pr, expected


def _neutral_messages(messages: Any) -> Any:
    """The recorded messages as we send them back: ``developer`` becomes ``system`` and null fields (an
    assistant's ``"content": null`` beside its tool calls) are not sent (both documented above)."""
    if not isinstance(messages, list):
        return messages
    out = []
    for m in messages:
        if isinstance(m, Mapping):
            kept = {k: v for k, v in m.items() if v is not None}
            if kept.get("role") == "developer":
                kept["role"] = "system"
            out.append(kept)
        else:
            out.append(m)
    return out


def check_request(rec: Recording) -> None:
    kind = _kind(rec)
    if rec.endpoint_kind == "responses_retrieve":
        pytest.skip("GET /responses/{id} (retrieve) has no request builder")
    body = rec.request.get("body")
    if not isinstance(body, dict):
        pytest.skip("request body not recorded (async client cassette)")
    rebuilt = rebuilt_unless_refused(rec, lambda: _rebuild(rec, kind, body))
    if rebuilt is None:
        return
    pr, expected = rebuilt
    assert pr.method == rec.request["method"]
    path = str(rec.request["path"]).split("?")[0]
    if rec.provider == "azure-openai":
        assert path.rsplit("/", 1)[-1] == pr.path.rsplit("/", 1)[-1]
    else:
        assert path.endswith(pr.path), (path, pr.path)
    assert set(pr.json) == expected
    for key in expected - {"stream", "stream_options", "encoding_format", "input", "stop", "messages"}:
        assert pr.json[key] == body[key], key
    if kind == "chat":
        # the neutral rendering, or (messages the neutral form cannot hold exactly) the recorded ones verbatim
        assert pr.json["messages"] in (_neutral_messages(body["messages"]), body["messages"])
    # Most cassettes had their credentials stripped upstream; where an auth header was kept, it is ours.
    recorded_auth = {h.lower() for h in rec.request.get("headers") or {}} & _AUTH_NAMES
    if recorded_auth:
        assert recorded_auth <= _AUTH_HEADERS.get(rec.provider, set(oa.auth_headers("k")))


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    check_response(rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    check_request(rec)
