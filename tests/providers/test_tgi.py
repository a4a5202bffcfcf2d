"""TGI provider: prompt rendering, /generate request building, response/stream parsing, errors, info/metrics."""

from __future__ import annotations

import json

import pytest

from infermux.errors import (
    BadRequestError,
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    OverloadedError,
    UnprocessableEntityError,
)
from infermux.providers import get_provider, tgi
from infermux.providers._prometheus import parse_prometheus, sample_sum, sample_value
from infermux.types import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    StreamAccumulator,
    StreamError,
    StreamFinish,
    TextDelta,
    TextPart,
    Tool,
    UsageEvent,
)

JSON = {"content-type": "application/json"}


def req(**kw: object) -> ChatRequest:
    msgs = (Message.system("Be brief."), Message.user("Hi"))
    return ChatRequest(msgs, **kw)  # type: ignore[arg-type]


def test_registry_names_both_providers() -> None:
    assert get_provider("tgi") is tgi.PROVIDER
    assert get_provider("tgi_chat") is tgi.CHAT_PROVIDER
    assert get_provider("huggingface_tgi") is tgi.PROVIDER


def test_render_prompt_templates() -> None:
    msgs = [Message.system("S"), Message.user("U"), Message.assistant("A"), Message.user("U2")]
    assert tgi.render_prompt(msgs) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
        "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"
    )
    llama = tgi.render_prompt(msgs, "llama3")
    assert llama.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>")
    assert llama.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert tgi.render_prompt("hello", "plain") == "User: hello\n\nAssistant:"
    parts = Message.user([TextPart("a"), TextPart("b")])
    assert "ab" in tgi.render_prompt([parts])


@pytest.mark.parametrize(
    "messages",
    [
        [Message.user([ImagePart(url="https://x/y.png")])],
        [Message.tool("call_1", "42")],
    ],
)
def test_render_prompt_refuses_what_a_raw_prompt_cannot_carry(messages: list[Message]) -> None:
    with pytest.raises(ConfigurationError, match="tgi_chat"):
        tgi.render_prompt(messages)


def test_render_prompt_unknown_template() -> None:
    with pytest.raises(ConfigurationError, match="template"):
        tgi.render_prompt("x", "mistral")


def test_build_chat_maps_options_to_generate_parameters() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    r = req(
        max_tokens=7,
        temperature=0.5,
        top_p=0.9,
        stop=("\n\n",),
        seed=3,
        response_format=ResponseFormat("json_schema", schema=schema),
        extra={"top_k": 10, "prompt_template": "plain"},
    )
    p = tgi.build_chat(r, "ignored-model", False)
    assert (p.method, p.path, p.stream) == ("POST", "/generate", False)
    assert p.json == {
        "inputs": "System: Be brief.\n\nUser: Hi\n\nAssistant:",
        "parameters": {
            "max_new_tokens": 7,
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 10,
            "stop": ["\n\n"],
            "seed": 3,
            "details": True,
            "return_full_text": False,
            "grammar": {"type": "json", "value": schema},
        },
    }
    s = tgi.build_chat(req(), "m", True)
    assert (s.path, s.stream) == ("/generate_stream", True)


def test_build_chat_greedy_and_top_p_one() -> None:
    params = tgi.build_chat(req(temperature=0.0, top_p=1.0), "m", False).json["parameters"]
    assert params["do_sample"] is False
    assert "temperature" not in params and "top_p" not in params
    json_mode = tgi.build_chat(req(response_format=ResponseFormat("json_object")), "m", False).json
    assert json_mode["parameters"]["grammar"] == {"type": "json", "value": {"type": "object"}}


def test_build_chat_refuses_tools() -> None:
    with pytest.raises(ConfigurationError, match="tgi_chat"):
        tgi.build_chat(req(tools=(Tool("f"),)), "m", False)


@pytest.mark.parametrize(
    "kw",
    [
        {"max_new_tokens": 0},
        {"max_new_tokens": -1},
        {"temperature": 0.0},
        {"top_p": 1.0},
        {"top_k": 0},
        {"repetition_penalty": 0.0},
        {"max_new_tokens": True},
    ],
)
def test_build_generate_rejects_what_tgi_would_refuse(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="invalid"):
        tgi.build_generate("hi", **kw)  # type: ignore[arg-type]


def test_build_generate_needs_a_prompt() -> None:
    with pytest.raises(ConfigurationError):
        tgi.build_generate("")


def test_parse_generate_object_and_api_inference_list() -> None:
    body = {
        "generated_text": "Hello",
        "details": {"finish_reason": "eos_token", "generated_tokens": 2, "seed": None, "prefill": [], "tokens": []},
    }
    r = tgi.parse_generate(json.dumps(body).encode(), {**JSON, "x-request-id": "abc", "x-prompt-tokens": "5"})
    assert (r.text, r.finish_reason, r.provider_request_id) == ("Hello", "stop", "abc")
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (5, 2)
    listed = tgi.parse_generate(json.dumps([{"generated_text": "x"}]).encode(), JSON)
    assert (listed.text, listed.finish_reason, listed.usage) == ("x", None, None)
    length = {"generated_text": "", "details": {"finish_reason": "length", "generated_tokens": 1, "prefill": [{}]}}
    r2 = tgi.parse_generate(json.dumps([length]).encode(), JSON)
    assert r2.finish_reason == "length" and r2.usage is not None and r2.usage.input_tokens == 1


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"generated_text": 3}', b"not json", b'[{"x": 1}]'])
def test_parse_generate_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        tgi.parse_generate(body, JSON)


STREAM = (
    b'data:{"index":1,"token":{"id":1,"text":"Hel","logprob":-0.1,"special":false},"generated_text":null,"details":null}\n\n'
    b'data:{"index":2,"token":{"id":2,"text":"lo","logprob":-0.1,"special":false},"generated_text":null,"details":null}\n\n'
    b'data:{"index":3,"token":{"id":3,"text":"</s>","logprob":-0.1,"special":true},"generated_text":"Hello",'
    b'"details":{"finish_reason":"eos_token","generated_tokens":3,"seed":null}}\n\n'
)


@pytest.mark.parametrize("size", [1, 5, 64, len(STREAM)])
def test_stream_parser_no_space_sse_any_split(size: int) -> None:
    p = tgi.GenerateStreamParser()
    events = []
    for i in range(0, len(STREAM), size):
        events += p.feed(STREAM[i : i + size])
    events += p.close()
    acc = StreamAccumulator()
    for ev in events:
        acc.add(ev)
    assert acc.text == "Hello" and acc.finished and acc.finish_reason == "stop"
    assert [type(e).__name__ for e in events] == ["StreamStart", "TextDelta", "TextDelta", "UsageEvent", "StreamFinish"]
    usage = next(e for e in events if isinstance(e, UsageEvent))
    assert usage.usage.output_tokens == 3


def test_stream_without_final_event_is_incomplete() -> None:
    p = tgi.GenerateStreamParser()
    cut = STREAM.split(b"\n\n")[0] + b"\n\n"
    assert [e for e in p.feed(cut) if isinstance(e, TextDelta)] == [TextDelta("Hel")]
    with pytest.raises(IncompleteStreamError) as ei:
        p.close()
    assert ei.value.partial_text == "Hel"


def test_stream_error_event_and_malformed_data() -> None:
    p = tgi.GenerateStreamParser()
    events = p.feed(b'data:{"error":"Request failed during generation: CUDA OOM","error_type":"generation"}\n\n')
    assert events == [StreamError("generation", "Request failed during generation: CUDA OOM", 424)]
    assert p.close() == []  # an error ends the stream: not "incomplete"
    with pytest.raises(MalformedResponseError):
        tgi.GenerateStreamParser().feed(b"data:{nope\n\n")


def test_stream_finish_length() -> None:
    p = tgi.GenerateStreamParser()
    last = (
        b'data:{"index":1,"token":{"id":1,"text":"a","special":false},"generated_text":"a",'
        b'"details":{"finish_reason":"length","generated_tokens":1}}\n\n'
    )
    events = p.feed(last) + p.close()
    assert events[-1] == StreamFinish("length")


def test_classify_validation_overloaded_and_text_errors() -> None:
    e = tgi.classify_error(
        422, JSON, b'{"error":"Input validation error: `inputs` cannot be empty","error_type":"validation"}'
    )
    assert isinstance(e, UnprocessableEntityError) and e.error_type == "validation" and not e.retryable
    assert e.provider_message == "Input validation error: `inputs` cannot be empty"
    o = tgi.classify_error(
        429,
        {**JSON, "retry-after": "2", "x-request-id": "r1"},
        b'{"error":"Model is overloaded","error_type":"overloaded"}',
    )
    assert isinstance(o, OverloadedError) and o.retryable and o.status_code == 429
    assert (o.retry_after, o.provider_request_id, o.provider_message) == (2.0, "r1", "Model is overloaded")
    t = tgi.classify_error(
        422,
        {"content-type": "text/plain"},
        b"Failed to deserialize the JSON body into the target type: missing field `inputs`",
    )
    assert isinstance(t, UnprocessableEntityError) and t.error_type == "invalid_body"
    assert t.provider_message is not None and "missing field `inputs`" in t.provider_message
    hf = tgi.classify_error(400, JSON, b'{"error":"The following `model_kwargs` are not used","warnings":["x"]}')
    assert isinstance(hf, BadRequestError) and hf.provider_message == "The following `model_kwargs` are not used"
    inc = tgi.classify_error(500, JSON, b'{"error":"Incomplete generation","error_type":"incomplete_generation"}')
    assert isinstance(inc, InternalServerError) and inc.retryable
    gen = tgi.classify_error(424, JSON, b'{"error":"Request failed during generation","error_type":"generation"}')
    assert gen.status_code == 424 and not gen.retryable
    chat = tgi.CHAT_PROVIDER.classify_error(429, JSON, b'{"error":"Model is overloaded","error_type":"overloaded"}')
    assert isinstance(chat, OverloadedError) and chat.provider == "tgi_chat"


def test_info_health_tokenize() -> None:
    info = {
        "model_id": "m/x",
        "model_sha": "s",
        "model_dtype": "torch.float16",
        "model_device_type": "cuda",
        "max_concurrent_requests": 128,
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_length": 1024,
        "max_total_tokens": 2048,
        "version": "2.0.4",
    }
    parsed = tgi.parse_info(json.dumps(info).encode(), JSON)
    assert (parsed.model_id, parsed.max_input_tokens, parsed.max_total_tokens, parsed.version) == (
        "m/x",
        1024,
        2048,
        "2.0.4",
    )
    with pytest.raises(MalformedResponseError):
        tgi.parse_info(b"{}", JSON)
    assert tgi.build_health().path == "/health" and tgi.parse_health(b"", {})
    toks = tgi.parse_tokenize(b'[{"id":1,"text":"a","start":0,"stop":1}]', JSON)
    assert toks == [tgi.TGIToken(1, "a", 0, 1)]
    with pytest.raises(MalformedResponseError):
        tgi.parse_tokenize(b'[{"id":"1"}]', JSON)
    with pytest.raises(ConfigurationError):
        tgi.build_tokenize("")


METRICS = b"""# HELP tgi_request_count Total requests
# TYPE tgi_request_count counter
tgi_request_count 12
tgi_request_success 10
tgi_request_failure{err="validation"} 1
tgi_request_failure{err="overloaded",x="a \\"q\\""} 1
tgi_queue_size 3
tgi_batch_current_size 2
tgi_request_generated_tokens_sum 345.5
tgi_request_duration_bucket{le="+Inf"} 12 1700000000
"""


def test_metrics_summary_and_prometheus_parser() -> None:
    m = tgi.parse_metrics(METRICS, {"content-type": "text/plain"})
    assert (m.request_count, m.request_success, m.request_failure, m.queue_size) == (12, 10, 2, 3)
    assert (m.batch_current_size, m.batch_current_max_tokens, m.generated_tokens_sum) == (2, None, 345.5)
    samples = parse_prometheus(METRICS)
    assert sample_value(samples, "tgi_request_failure", x='a "q"') == 1
    assert sample_value(samples, "tgi_request_duration_bucket", le="+Inf") == 12
    assert sample_sum(samples, "nope") is None
    with pytest.raises(MalformedResponseError):
        parse_prometheus("tgi_x{a=1} 2")
    with pytest.raises(MalformedResponseError):
        parse_prometheus("tgi_x notanumber")


def test_messages_api_sends_tgi_grammar_response_format() -> None:
    schema = {"type": "object", "properties": {}}
    p = tgi.CHAT_PROVIDER.build_chat(req(response_format=ResponseFormat("json_schema", schema=schema)), "tgi", False)
    assert p.path == "/chat/completions"
    assert p.json["response_format"] == {"type": "json_object", "value": schema}
    assert "response_format" not in tgi.CHAT_PROVIDER.build_chat(req(), "tgi", False).json


def test_model_loading_503_estimated_time_is_the_retry_delay() -> None:
    body = b'{"error": "Model HuggingFaceH4/zephyr-7b-beta is currently loading", "estimated_time": 20.5}'
    err = tgi.classify_error(503, {"content-type": "application/json"}, body)
    assert err.status_code == 503 and err.retryable and err.retry_after == 20.5
    assert err.provider_message and "currently loading" in err.provider_message
    with_header = tgi.classify_error(503, {"retry-after": "3"}, body)
    assert with_header.retry_after == 3.0  # the server's header wins over the body's estimate
