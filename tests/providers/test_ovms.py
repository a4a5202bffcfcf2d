"""OVMS provider unit tests: KServe tensors and the binary extension (cross-checked with tritonclient's own
encoder/decoder), TFS and config.json helpers, error classification. No I/O."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from tritonclient.http import InferInput, InferRequestedOutput, InferResult
from tritonclient.http._utils import _get_inference_request

from infermux.errors import (
    ConfigurationError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
)
from infermux.providers import get_provider, ovms
from infermux.providers import kserve as ks

JSON = {"content-type": "application/json"}


def test_registry_and_aliases() -> None:
    assert get_provider("ovms") is ovms.PROVIDER is get_provider("openvino")
    assert ovms.PROVIDER.default_base_url == "http://127.0.0.1:8000/v3"
    assert ovms.server_root("http://h:8000/v3/") == "http://h:8000"
    assert {"chat", "stream", "embed", "kserve", "tfs"} <= ovms.PROVIDER.capabilities


@pytest.mark.parametrize(
    ("shape", "dtype", "data", "why"),
    [
        ((2, 2), "FP32", [1.0, 2.0, 3.0], "do not fill shape"),
        ((1,), "FP33", [1.0], "unknown datatype"),
        ((1,), "INT8", [128], "out of range"),
        ((1,), "UINT8", [-1], "out of range"),
        ((1,), "FP32", [True], "not a valid FP32"),
        ((1,), "INT64", [1.5], "not a valid INT64"),
        ((1,), "BOOL", [1], "not a valid BOOL"),
        ((1,), "BYTES", [3], "not a valid BYTES"),
        ((-1,), "FP32", [], "shape must be"),
    ],
)
def test_tensor_validation(shape: tuple[int, ...], dtype: str, data: list[Any], why: str) -> None:
    with pytest.raises(ConfigurationError, match=why):
        ks.Tensor("x", shape, dtype, tuple(data))


def test_tensor_nested_and_numpy() -> None:
    t = ks.Tensor.from_nested("x", [[1, 2, 3], [4, 5, 6]], "INT32")
    assert t.shape == (2, 3) and t.data == (1, 2, 3, 4, 5, 6)
    assert t.to_nested() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ConfigurationError, match="ragged"):
        ks.Tensor.from_nested("x", [[1, 2], [3]], "INT32")
    arr = np.arange(6, dtype=np.float16).reshape(3, 2)
    t16 = ks.Tensor.from_numpy("h", arr)
    assert t16.datatype == "FP16" and t16.shape == (3, 2)
    assert np.array_equal(t16.to_numpy(), arr) and t16.to_numpy().dtype == np.float16
    tb = ks.Tensor.from_numpy("s", np.array([b"a", b"bc"], dtype=np.object_))
    assert tb.datatype == "BYTES" and tb.data == (b"a", b"bc")
    assert ks.Tensor("s", (2,), "BYTES", ("x", b"y")).data == (b"x", b"y")


ALL = [
    ks.Tensor("b", (3,), "BOOL", (True, False, True)),
    ks.Tensor("u8", (2,), "UINT8", (0, 255)),
    ks.Tensor("u64", (1,), "UINT64", (2**64 - 1,)),
    ks.Tensor("i16", (2,), "INT16", (-32768, 32767)),
    ks.Tensor("i64", (2, 1), "INT64", (-(2**63), 2**63 - 1)),
    ks.Tensor("f16", (2,), "FP16", (0.5, -2.0)),
    ks.Tensor("f32", (1, 2), "FP32", (1.5, -0.25)),
    ks.Tensor("f64", (1,), "FP64", (1e300,)),
    ks.Tensor("s", (3,), "BYTES", (b"", b"\x00\xff", "héllo")),
]


def test_binary_round_trip_every_datatype() -> None:
    body, length = ks.encode_tensors({"id": "r1"}, "outputs", ALL, binary=True)
    assert length is not None and json.loads(body[:length])["outputs"][0]["parameters"] == {"binary_data_size": 3}
    head, back = ks.decode_tensors(body, length, "outputs")
    assert head["id"] == "r1" and back == ALL
    assert ks.Tensor.from_bytes("s", (1,), "BYTES", struct.pack("<I", 2) + b"hi").data == (b"hi",)


def test_mixed_json_and_binary_outputs_parse() -> None:
    body, length = ks.encode_tensors({"model_name": "m", "model_version": "2"}, "outputs", ALL[5:7], binary=["f32"])
    res = ks.parse_infer(body, {"inference-header-content-length": str(length)})
    assert res.model_name == "m" and res.model_version == "2"
    assert res.output("f16").data == (0.5, -2.0) and res.output("f32").data == (1.5, -0.25)
    with pytest.raises(KeyError):
        res.output("nope")


def test_our_encoding_decodes_with_tritonclient() -> None:
    """The binary response we encode is what tritonclient's InferResult reads (and vice versa below)."""
    outs = [
        ks.Tensor.from_nested("OUT", [[1.5, 2.5], [3.5, 4.5]], "FP32"),
        ks.Tensor("S", (2,), "BYTES", (b"a", b"xyz")),
    ]
    body, length = ks.encode_tensors({"model_name": "m"}, "outputs", outs, binary=True)
    res = InferResult.from_response_body(body, header_length=length)
    assert np.array_equal(res.as_numpy("OUT"), np.array([[1.5, 2.5], [3.5, 4.5]], dtype=np.float32))
    assert list(res.as_numpy("S")) == [b"a", b"xyz"]
    body, length = ks.encode_tensors({"model_name": "m"}, "outputs", outs[:1], binary=False)
    assert length is None
    assert np.array_equal(InferResult.from_response_body(body).as_numpy("OUT"), outs[0].to_numpy())


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_request_decodes_with_ours(binary: bool) -> None:
    x = np.array([[1, -2], [3, 4]], dtype=np.int64)
    s = np.array([b"hi", b"there"], dtype=np.object_)
    i0, i1 = InferInput("X", [2, 2], "INT64"), InferInput("S", [2], "BYTES")
    i0.set_data_from_numpy(x, binary_data=binary)
    i1.set_data_from_numpy(s, binary_data=binary)
    body, length = _get_inference_request(
        [i0, i1], "req-9", [InferRequestedOutput("Y", binary_data=True)], 0, False, False, 0, None, None
    )
    head, tensors = ks.decode_tensors(body, length, "inputs")
    assert head["id"] == "req-9" and head["outputs"] == [{"name": "Y", "parameters": {"binary_data": True}}]
    assert tensors[0] == ks.Tensor.from_numpy("X", x) and tensors[1].data == (b"hi", b"there")
    # and our request for the same tensors carries the same tensors
    preq = ks.build_infer(
        "m",
        [ks.Tensor.from_numpy("X", x), ks.Tensor("S", (2,), "BYTES", (b"hi", b"there"))],
        outputs=[ks.RequestedOutput("Y", binary_data=True)],
        binary_inputs=binary,
        request_id="req-9",
    )
    assert preq.content is not None
    ours_len = preq.headers.get(ks.HEADER_LENGTH)
    ours = ks.decode_tensors(preq.content, int(ours_len) if ours_len else None, "inputs")
    assert ours == (head, tensors)


def test_build_infer_routes_and_errors() -> None:
    t = ks.Tensor("X", (1,), "FP32", (1.0,))
    preq = ks.build_infer("my model", [t], version=2)
    assert preq.method == "POST" and preq.path == "/v2/models/my%20model/versions/2/infer"
    assert preq.json is None and json.loads(preq.content or b"") == {
        "inputs": [{"name": "X", "shape": [1], "datatype": "FP32", "data": [1.0]}]
    }
    assert ks.build_model_ready("m").path == "/v2/models/m/ready"
    assert ks.build_model_metadata("m", "3").path == "/v2/models/m/versions/3"
    assert ks.build_server_live().path == "/v2/health/live" and ks.build_server_ready().path == "/v2/health/ready"
    with pytest.raises(ConfigurationError):
        ks.build_infer("m", [])
    with pytest.raises(ConfigurationError):
        ks.build_infer("m", [t, t])
    with pytest.raises(ConfigurationError):
        ks.build_infer("", [t])
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        ks.build_infer("m", [ks.Tensor("S", (1,), "BYTES", (b"\xff",))])


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"outputs": [{"name": "Y", "shape": [2], "datatype": "FP32", "data": [1.0]}]}', JSON),
        (b'{"outputs": [{"name": "Y", "shape": [2], "datatype": "FP32"', JSON),
        (b"<html>", {"content-type": "text/html"}),
        (b'{"model_name": "m"}', JSON),
        (
            b'{"outputs":[{"name":"Y","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}\x00\x00',
            {"inference-header-content-length": "90"},
        ),
        (b"{}", {"inference-header-content-length": "abc"}),
        (b"{}", {"inference-header-content-length": "99"}),
    ],
)
def test_parse_infer_malformed(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(MalformedResponseError):
        ks.parse_infer(body, headers)


def test_metadata_parse() -> None:
    body = {
        "name": "m",
        "versions": ["1", "2"],
        "platform": "OpenVINO",
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [],
    }
    md = ks.parse_model_metadata(json.dumps(body).encode(), JSON)
    assert md.versions == ("1", "2") and md.inputs == (ks.TensorSpec("X", "FP32", (-1, 3)),)
    with pytest.raises(MalformedResponseError):
        ks.parse_model_metadata(b'{"versions": []}', JSON)


def test_tfs_helpers() -> None:
    p = ovms.build_tfs_predict("m", instances=[[1, 2]], version=3, signature_name="serving_default")
    assert p.path == "/v1/models/m/versions/3:predict"
    assert p.json == {"instances": [[1, 2]], "signature_name": "serving_default"}
    assert ovms.build_tfs_predict("m", inputs={"X": [1]}).json == {"inputs": {"X": [1]}}
    for bad in ({}, {"instances": [1], "inputs": [1]}, {"instances": "x"}):
        with pytest.raises(ConfigurationError):
            ovms.build_tfs_predict("m", **bad)
    assert ovms.parse_tfs_predict(b'{"predictions": [1, 2]}', JSON).predictions == [1, 2]
    assert ovms.parse_tfs_predict(b'{"outputs": {"Y": [1]}}', JSON).outputs == {"Y": [1]}
    with pytest.raises(MalformedResponseError):
        ovms.parse_tfs_predict(b'{"result": 1}', JSON)
    st = b'{"model_version_status":[{"version":"2","state":"AVAILABLE",'
    st += b'"status":{"error_code":"OK","error_message":""}}]}'
    assert ovms.parse_tfs_status(st, JSON) == (ovms.ModelVersionStatus(2, "AVAILABLE", "OK", ""),)
    assert ovms.parse_tfs_config(b'{"m": ' + st + b"}", JSON)["m"][0].state == "AVAILABLE"
    assert (
        ovms.build_tfs_status("m", 1).path == "/v1/models/m/versions/1" and ovms.build_tfs_config().path == "/v1/config"
    )
    with pytest.raises(MalformedResponseError):
        ovms.parse_tfs_status(b'{"model_version_status":[{"version":"x"}]}', JSON)


def _config() -> ovms.OvmsModelConfig:
    return ovms.OvmsModelConfig(
        (
            ovms.ModelSpec(
                "resnet",
                "/models/resnet",
                {1: "openvino", 2: "onnx", 3: "paddle"},
                version_policy=ovms.VersionPolicy("latest", num_versions=2),
                target_device="CPU",
                batch_size=1,
                nireq=4,
                plugin_config={"PERFORMANCE_HINT": "LATENCY"},
            ),
            ovms.ModelSpec(
                "bert",
                "s3://bucket/bert",
                {1: "tensorflow", 4: "openvino"},
                version_policy=ovms.VersionPolicy("specific", versions=(1, 4)),
                shape={"input": "(1,128)"},
            ),
            ovms.ModelSpec("add", "/models/add", {1: "onnx"}, version_policy=ovms.VersionPolicy("all")),
        ),
        ({"name": "llm", "base_path": "/models/llm"},),
    )


def test_config_render_parse_round_trip() -> None:
    cfg = _config()
    rendered = cfg.render()
    assert rendered["model_config_list"][0]["config"] == {
        "name": "resnet",
        "base_path": "/models/resnet",
        "target_device": "CPU",
        "batch_size": 1,
        "nireq": 4,
        "model_version_policy": {"latest": {"num_versions": 2}},
        "plugin_config": {"PERFORMANCE_HINT": "LATENCY"},
    }
    assert rendered["mediapipe_config_list"] == [{"name": "llm", "base_path": "/models/llm"}]
    assert cfg.model("resnet").served_versions() == (2, 3) and cfg.model("bert").served_versions() == (1, 4)
    back = ovms.OvmsModelConfig.parse(cfg.dumps())
    assert back.render() == rendered
    assert back.model("bert").versions == {1: "auto", 4: "auto"} and back.model("resnet").versions == {1: "auto"}
    exact = ovms.OvmsModelConfig.parse(rendered, versions={m.name: m.versions for m in cfg.models})
    assert exact == cfg


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: ovms.ModelSpec("m", "/p", {1: "caffe"}), "unknown format"),
        (lambda: ovms.ModelSpec("m", "/p", {}), "versions must not be empty"),
        (lambda: ovms.ModelSpec("m", "/p", {0: "onnx"}), "version 0"),
        (lambda: ovms.ModelSpec("m", "", {1: "onnx"}), "base_path"),
        (lambda: ovms.VersionPolicy("specific"), "must not be empty"),
        (lambda: ovms.VersionPolicy("latest", num_versions=0), ">= 1"),
        (
            lambda: ovms.ModelSpec(
                "m", "/p", {1: "onnx"}, version_policy=ovms.VersionPolicy("specific", versions=(5,))
            ),
            "selects none",
        ),
        (lambda: ovms.OvmsModelConfig((ovms.ModelSpec("m", "/a"), ovms.ModelSpec("m", "/b"))), "duplicate"),
        (lambda: ovms.OvmsModelConfig((ovms.ModelSpec("m", "/a"),), ({"name": "m"},)), "duplicate"),
        (lambda: ovms.OvmsModelConfig.parse("{not json"), "not valid JSON"),
        (lambda: ovms.OvmsModelConfig.parse({"model_config_list": [{"cfg": {}}]}), "config.name"),
        (
            lambda: ovms.OvmsModelConfig.parse(
                {
                    "model_config_list": [
                        {"config": {"name": "m", "base_path": "/p", "model_version_policy": {"newest": {}}}}
                    ]
                }
            ),
            "unknown model_version_policy",
        ),
    ],
)
def test_config_validation(make: Any, why: str) -> None:
    with pytest.raises(ConfigurationError, match=why):
        make()


def test_classify_errors() -> None:
    e = ovms.classify_error(404, JSON, b'{"error": "Model with requested name is not found"}')
    assert isinstance(e, NotFoundError) and e.provider == "ovms"
    assert e.provider_message == "Model with requested name is not found" and not e.retryable
    e2 = ovms.classify_error(503, JSON, b'{"error": "Model version not available"}')
    assert isinstance(e2, InternalServerError) and e2.retryable
    e3 = ovms.PROVIDER.classify_error(429, {"retry-after": "2"}, b'{"error": "busy"}')
    assert isinstance(e3, RateLimitError) and e3.retry_after == 2.0
