"""OVMS end to end on 127.0.0.1: the official tritonclient (KServe v2: health, readiness, metadata, infer with
the binary data extension on and off both ways) and the openai SDK (/v3) against the sandbox emulator; then
infermux against the same emulator: KServe tensors and TFS through Endpoint.call, an emulator configured from
an OvmsModelConfig, /v3 chat/stream/embeddings/completions, typed errors, retries, cut and malformed bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import openai
import pytest
import tritonclient.http as th
from tritonclient.utils import InferenceServerException

from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    BadRequestError,
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
)
from infermux.providers import kserve as ks
from infermux.providers import ovms
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.transport import Timeouts
from infermux.types import ChatRequest, EmbedRequest, Message, StreamAccumulator, TextDelta

pytestmark = pytest.mark.timeout(60)
LLM = "meta-llama/Llama-3.2-1B-Instruct"
EMB = "BAAI/bge-small-en-v1.5"
X = np.array([[1.5, 2.0, -1.0], [0.0, 7.0, 3.0]], dtype=np.float32)


# --------------------------------------------------------------------------- official SDKs


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("ovms",)) as sandbox:
        yield sandbox


@pytest.fixture
def triton(sbt: SandboxThread) -> Iterator[th.InferenceServerClient]:
    sbt.reset()
    client = th.InferenceServerClient(url=sbt.base_url.removeprefix("http://"))
    yield client
    client.close()


def test_tritonclient_health_ready_metadata(triton: th.InferenceServerClient) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("identity") and triton.is_model_ready("identity", "1")
    assert not triton.is_model_ready("missing") and not triton.is_model_ready("identity", "7")
    md = triton.get_model_metadata("argmax")
    assert md["versions"] == ["1"] and md["outputs"] == [{"name": "OUTPUT0", "datatype": "INT64", "shape": [-1]}]
    assert triton.get_model_metadata("identity")["versions"] == ["1", "2"]
    assert triton.get_server_metadata()["name"] == "OpenVINO Model Server"


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
def test_tritonclient_infer_binary_both_ways(
    triton: th.InferenceServerClient, binary_in: bool, binary_out: bool
) -> None:
    a, b = th.InferInput("INPUT0", [2, 3], "FP32"), th.InferInput("INPUT1", [2, 3], "FP32")
    a.set_data_from_numpy(X, binary_data=binary_in)
    b.set_data_from_numpy(X * 2, binary_data=binary_in)
    out = th.InferRequestedOutput("OUTPUT0", binary_data=binary_out)
    r = triton.infer("add", [a, b], outputs=[out], request_id="r-1")
    assert np.array_equal(r.as_numpy("OUTPUT0"), X * 3) and r.get_response()["id"] == "r-1"
    r = triton.infer("argmax", [a], outputs=[th.InferRequestedOutput("OUTPUT0", binary_data=binary_out)])
    assert r.as_numpy("OUTPUT0").tolist() == [1, 1] and r.as_numpy("OUTPUT0").dtype == np.int64
    strings = np.array([b"hi", "héllo".encode(), b"\x00\xff"], dtype=np.object_)
    s = th.InferInput("INPUT0", [3], "BYTES")
    s.set_data_from_numpy(strings, binary_data=True)
    r = triton.infer("echo_bytes", [s])  # no outputs named: all come back binary
    assert r.as_numpy("OUTPUT0").tolist() == strings.tolist()
    r = triton.infer("identity", [a], model_version="2")
    assert np.array_equal(r.as_numpy("OUTPUT0"), X) and r.get_response()["model_version"] == "2"


def test_tritonclient_errors(triton: th.InferenceServerClient) -> None:
    bad = th.InferInput("INPUT0", [2, 3], "INT64")
    bad.set_data_from_numpy(X.astype(np.int64), binary_data=False)
    with pytest.raises(InferenceServerException, match="Invalid input precision") as ei:
        triton.infer("identity", [bad])
    assert ei.value.status() == "400"
    with pytest.raises(InferenceServerException, match="requested name is not found") as ni:
        triton.infer("missing", [bad])
    assert ni.value.status() == "404"


def test_openai_sdk_on_v3(sbt: SandboxThread) -> None:
    sbt.reset()
    c = openai.OpenAI(base_url=sbt.base_url + "/v3", api_key="unused", max_retries=0)
    r = c.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "hello ovms"}])
    assert r.choices[0].message.content == "echo: hello ovms"
    chunks = list(
        c.chat.completions.create(model=LLM, messages=[{"role": "user", "content": "hello ovms"}], stream=True)
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "echo: hello ovms"
    e = c.embeddings.create(model=EMB, input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 64
    comp = c.completions.create(model=LLM, prompt="say this", max_tokens=2)
    assert comp.choices[0].text == "echo: say" and comp.choices[0].finish_reason == "length"
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    c.close()


# --------------------------------------------------------------------------- infermux


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(backends=("ovms",)) as sandbox:
        yield sandbox


def endpoint(sb: Sandbox, *, root: bool = False, **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        name="sb-ovms",
        provider="ovms",
        base_url=sb.base_url if root else sb.base_url + "/v3",
        model=LLM,
        retry=kw.pop("retry", RetryPolicy(max_retries=3, initial_delay=0.001)),
        timeouts=Timeouts(connect=2.0, read=5.0),
        **kw,
    )
    return Endpoint(cfg, clock=FakeClock())


def chat(text: str = "count one two three", **kw: Any) -> ChatRequest:
    return ChatRequest((Message.user(text),), **kw)


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
async def test_kserve_infer_through_endpoint(sb: Sandbox, binary_in: bool, binary_out: bool) -> None:
    ep = endpoint(sb, root=True)
    try:
        x = ks.Tensor.from_numpy("INPUT0", X)
        y = ks.Tensor.from_numpy("INPUT1", X * 2)
        out = [ks.RequestedOutput("OUTPUT0", binary_data=binary_out)]
        res = await ep.call(ks.build_infer("add", [x, y], outputs=out, binary_inputs=binary_in), ks.parse_infer)
        assert np.array_equal(res.output("OUTPUT0").to_numpy(), X * 3) and res.model_name == "add"
        s = ks.Tensor("INPUT0", (2,), "BYTES", (b"\x00\xff", "ünï"))
        res = await ep.call(ks.build_infer("echo_bytes", [s], outputs=out, binary_inputs=True), ks.parse_infer)
        if binary_out:  # JSON cannot carry non-UTF-8 bytes; binary output does
            assert res.output("OUTPUT0").data == s.data
        res = await ep.call(ks.build_infer("argmax", [x], version=1, request_id="q"), ks.parse_infer)
        assert res.output("OUTPUT0") == ks.Tensor("OUTPUT0", (2,), "INT64", (1, 1)) and res.id == "q"
    finally:
        await ep.aclose()


async def test_kserve_health_metadata_and_typed_errors(sb: Sandbox) -> None:
    ep = endpoint(sb, root=True, retry=RetryPolicy(max_retries=0))
    try:
        assert await ep.call(ks.build_server_live(), ks.parse_ready)
        assert await ep.call(ks.build_model_ready("identity", 2), ks.parse_ready)
        md = await ep.call(ks.build_model_metadata("add"), ks.parse_model_metadata)
        assert [i.name for i in md.inputs] == ["INPUT0", "INPUT1"] and md.platform == "OpenVINO"
        with pytest.raises(NotFoundError) as nf:
            await ep.call(ks.build_model_metadata("identity", 9), ks.parse_model_metadata)
        assert nf.value.provider_message == "Model with requested version is not found"
        bad = ks.Tensor("INPUT0", (2,), "FP32", (1.0, 2.0))
        with pytest.raises(BadRequestError, match="Invalid number of shape dimensions"):
            await ep.call(ks.build_infer("identity", [bad]), ks.parse_infer)
        sb.configure_backend("ovms", not_ready=["identity"])
        with pytest.raises(InternalServerError) as nr:
            await ep.call(ks.build_model_ready("identity"), ks.parse_ready)
        assert nr.value.status_code == 503 and nr.value.retryable
    finally:
        await ep.aclose()


async def test_emulator_serves_an_ovms_model_config(sb: Sandbox) -> None:
    cfg = ovms.OvmsModelConfig(
        (
            ovms.ModelSpec(
                "detector",
                "/models/argmax",
                {1: "onnx", 2: "openvino", 3: "paddle"},
                version_policy=ovms.VersionPolicy("latest", num_versions=2),
            ),
            ovms.ModelSpec(
                "scaler",
                "/models/identity",
                {1: "tensorflow", 4: "openvino"},
                version_policy=ovms.VersionPolicy("specific", versions=(4,)),
            ),
        ),
        ({"name": LLM, "base_path": "/models/llm"},),
    )
    sb.configure_backend("ovms", config=cfg.render(), available={m.name: list(m.versions) for m in cfg.models})
    ep = endpoint(sb, root=True, retry=RetryPolicy(max_retries=0))
    try:
        md = await ep.call(ks.build_model_metadata("detector"), ks.parse_model_metadata)
        assert md.versions == tuple(str(v) for v in cfg.model("detector").served_versions()) == ("2", "3")
        res = await ep.call(ks.build_infer("detector", [ks.Tensor.from_numpy("INPUT0", X)]), ks.parse_infer)
        assert res.model_version == "3" and res.output("OUTPUT0").data == (1, 1)
        with pytest.raises(NotFoundError):
            await ep.call(ks.build_model_ready("detector", 1), ks.parse_ready)
        status = await ep.call(ovms.build_tfs_config(), ovms.parse_tfs_config)
        assert {n: [s.version for s in st] for n, st in status.items()} == {"detector": [2, 3], "scaler": [4]}
        with pytest.raises(NotFoundError):
            await ep.call(ks.build_model_metadata("identity"), ks.parse_model_metadata)
    finally:
        await ep.aclose()


async def test_tfs_predict_and_status(sb: Sandbox) -> None:
    ep = endpoint(sb, root=True, retry=RetryPolicy(max_retries=0))
    try:
        rows = await ep.call(ovms.build_tfs_predict("argmax", instances=X.tolist()), ovms.parse_tfs_predict)
        assert rows.predictions == [1, 1]
        two = [{"INPUT0": [1, 2], "INPUT1": [10, 20]}, {"INPUT0": [3, 4], "INPUT1": [30, 40]}]
        added = await ep.call(ovms.build_tfs_predict("add", instances=two, version=1), ovms.parse_tfs_predict)
        assert added.predictions == [[11.0, 22.0], [33.0, 44.0]]
        cols = await ep.call(
            ovms.build_tfs_predict("identity", inputs={"INPUT0": [[1.0, 2.0]]}), ovms.parse_tfs_predict
        )
        assert cols.outputs == [[1.0, 2.0]]
        st = await ep.call(ovms.build_tfs_status("identity"), ovms.parse_tfs_status)
        assert [(s.version, s.state) for s in st] == [(1, "AVAILABLE"), (2, "AVAILABLE")]
        with pytest.raises(BadRequestError, match="Missing input"):
            await ep.call(ovms.build_tfs_predict("add", inputs={"INPUT0": [[1.0]]}), ovms.parse_tfs_predict)
    finally:
        await ep.aclose()


async def test_v3_chat_stream_embed_completion(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        r = await ep.chat(chat(max_tokens=40))
        acc, n = StreamAccumulator(), 0
        async for ev in ep.stream(chat(max_tokens=40)):
            acc.add(ev)
            n += isinstance(ev, TextDelta)
        assert r.text == acc.text == "echo: count one two three" and acc.finished and n > 1
        assert r.provider == "ovms" and r.usage is not None and r.usage.output_tokens == 5
        e = await ep.embed(EmbedRequest(("a", "b"), model=EMB))
        assert len(e.vectors) == 2 and len(e.vectors[0]) == 64
        comp = await ep.call(ovms.build_completion(LLM, "one two three four", max_tokens=3), ovms.parse_completion)
        assert comp.text == "echo: one two" and comp.finish_reason == "length"
        with pytest.raises(NotFoundError) as nf:
            await ep.chat(chat(model="unknown-graph"))
        assert nf.value.provider_message == "Mediapipe graph definition with requested name is not found"
        assert nf.value.attempts == 1
    finally:
        await ep.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_429_and_503_retried_to_success(sb: Sandbox, stream: bool) -> None:
    sb.faults.push(Fault.status_error(429, retry_after=1))
    sb.faults.push(Fault.status_error(503))
    ep = endpoint(sb, adaptive_concurrency=False)
    try:
        if stream:
            acc = StreamAccumulator()
            async for ev in ep.stream(chat()):
                acc.add(ev)
            text = acc.text
        else:
            r = await ep.chat(chat())
            assert r.attempts == 3
            text = r.text
    finally:
        await ep.aclose()
    assert text == "echo: count one two three"
    assert [rec.attempt for rec in sb.stats.records] == [1, 2, 3] and len(set(sb.stats.request_ids())) == 1
    assert 1.0 <= ep.clock.sleeps[0] < 1.5  # type: ignore[attr-defined]  # retry-after honoured, no real wait


async def test_429_typed_and_kserve_retried(sb: Sandbox) -> None:
    sb.faults.push(Fault.status_error(429, retry_after=2))
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        with pytest.raises(RateLimitError) as rl:
            await ep.chat(chat())
        assert rl.value.retry_after == 2.0 and rl.value.provider_message == "Too many requests"
    finally:
        await ep.aclose()
    sb.faults.push(Fault.status_error(503))
    root = endpoint(sb, root=True)
    try:
        res = await root.call(
            ks.build_infer("identity", [ks.Tensor.from_numpy("INPUT0", X)], binary_inputs=True), ks.parse_infer
        )
        assert np.array_equal(res.output("OUTPUT0").to_numpy(), X)
    finally:
        await root.aclose()
    assert [rec.attempt for rec in sb.stats.records][-2:] == [1, 2]


async def test_cut_stream_and_malformed(sb: Sandbox) -> None:
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        sb.faults.push(Fault.stream_cut(after=2, clean=True))
        with pytest.raises(IncompleteStreamError) as ei:
            async for _ in ep.stream(chat()):
                pass
        assert ei.value.partial_text
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.chat(chat())
    finally:
        await ep.aclose()
    root = endpoint(sb, root=True, retry=RetryPolicy(max_retries=0))
    try:
        out = [ks.RequestedOutput("OUTPUT0", binary_data=True)]
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await root.call(
                ks.build_infer("identity", [ks.Tensor.from_numpy("INPUT0", X)], outputs=out), ks.parse_infer
            )
    finally:
        await root.aclose()


async def test_bad_input_fails_before_io(sb: Sandbox) -> None:
    ep = endpoint(sb, root=True)
    try:
        with pytest.raises(ConfigurationError):
            await ep.call(ks.build_infer("identity", [ks.Tensor("INPUT0", (2, 2), "FP32", (1.0,))]), ks.parse_infer)
        with pytest.raises(ConfigurationError):
            await ep.call(ovms.build_tfs_predict("identity"), ovms.parse_tfs_predict)
    finally:
        await ep.aclose()
    assert sb.stats.total == 0
