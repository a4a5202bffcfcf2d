"""KServe v2 (Open Inference Protocol) REST: typed tensors, pure builders/parsers, binary data extension.

Spoken by OpenVINO Model Server (:mod:`.ovms`), Triton and KServe runtimes. Routes (relative to the
server root, not to an OpenAI ``/v3`` base URL): ``GET /v2/health/live``, ``/v2/health/ready``,
``/v2/models/{m}[/versions/{v}]/ready``, ``/v2/models/{m}[/versions/{v}]`` (metadata) and
``POST /v2/models/{m}[/versions/{v}]/infer``.

Tensors travel as JSON (``data``: a flat row-major list) or with the *binary data extension*: the body
is a JSON header followed by the raw little-endian tensor bytes, the header's length in the
``Inference-Header-Content-Length`` HTTP header and each tensor's byte count in its
``parameters.binary_data_size`` (``BYTES`` elements are each prefixed by a 4-byte little-endian length).
Outputs requested with ``parameters.binary_data: true`` come back the same way. Errors are
``{"error": "..."}``. numpy is optional and imported only by :meth:`Tensor.from_numpy`/:meth:`Tensor.to_numpy`.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..errors import ConfigurationError, MalformedResponseError
from ._base import ProviderRequest, decode_json, header
from ._common import JSON_HEADERS, as_str, malformed

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "InferResult",
    "ModelMetadata",
    "RequestedOutput",
    "Tensor",
    "TensorSpec",
    "build_infer",
    "build_model_metadata",
    "build_model_ready",
    "build_server_live",
    "build_server_ready",
    "decode_tensors",
    "encode_tensors",
    "parse_infer",
    "parse_model_metadata",
    "parse_ready",
]

HEADER_LENGTH = "inference-header-content-length"
#: KServe v2 datatype -> struct format character (little-endian); BYTES is length-prefixed, not fixed size.
DATATYPES: Mapping[str, str] = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
    "BYTES": "",
}
_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_NAME = "kserve"


def _int_range(datatype: str) -> tuple[int, int]:
    bits = int(datatype.lstrip("UINT")) if datatype.startswith("U") else int(datatype[3:])
    return (0, 2**bits - 1) if datatype.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _norm(datatype: str, v: object, where: str) -> Any:
    """One element checked against ``datatype`` and normalised (bool / int / float / bytes)."""
    if datatype == "BOOL":
        if isinstance(v, bool):
            return v
    elif datatype == "BYTES":
        if isinstance(v, str):
            return v.encode()
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
    elif datatype.startswith("FP"):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    elif isinstance(v, int) and not isinstance(v, bool):
        lo, hi = _int_range(datatype)
        if lo <= v <= hi:
            return v
        raise ConfigurationError(f"{where}: {v} is out of range for {datatype}")
    raise ConfigurationError(f"{where}: {v!r} is not a valid {datatype} value")


def _flatten(nested: Any, shape: list[int], depth: int, out: list[Any]) -> None:
    if isinstance(nested, (list, tuple)):
        if len(shape) <= depth:
            shape.append(len(nested))
        elif shape[depth] != len(nested):
            raise ConfigurationError(
                f"ragged nested list: dimension {depth} has lengths {shape[depth]} and {len(nested)}"
            )
        for item in nested:
            _flatten(item, shape, depth + 1, out)
    else:
        if len(shape) != depth:
            raise ConfigurationError("ragged nested list: scalars at different depths")
        out.append(nested)


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named KServe tensor: ``data`` is flat, row-major, ``len(data) == prod(shape)``; values are checked
    against ``datatype`` and normalised (``BYTES`` elements become ``bytes``; ``str`` is UTF-8 encoded)."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    data: tuple[Any, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError("tensor name must be a non-empty string")
        if self.datatype not in DATATYPES:
            raise ConfigurationError(f"tensor {self.name!r}: unknown datatype {self.datatype!r}")
        shape = tuple(self.shape)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ConfigurationError(f"tensor {self.name!r}: shape must be non-negative ints, got {self.shape!r}")
        data = tuple(self.data)
        if len(data) != math.prod(shape):
            raise ConfigurationError(
                f"tensor {self.name!r}: {len(data)} values do not fill shape {list(shape)} ({math.prod(shape)})"
            )
        where = f"tensor {self.name!r}"
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "data", tuple(_norm(self.datatype, v, where) for v in data))

    @classmethod
    def from_nested(cls, name: str, values: Any, datatype: str, shape: Sequence[int] | None = None) -> Tensor:
        """From nested lists (the shape is inferred unless given; a scalar is shape ``[]``)."""
        flat: list[Any] = []
        inferred: list[int] = []
        _flatten(values, inferred, 0, flat)
        return cls(name, tuple(shape) if shape is not None else tuple(inferred), datatype, tuple(flat))

    @classmethod
    def from_numpy(cls, name: str, array: Any, datatype: str | None = None) -> Tensor:
        """From a numpy array (numpy is imported lazily); the datatype follows the array's dtype."""
        import numpy as np

        arr = np.asarray(array)
        if datatype is None:
            by_dtype = {v: k for k, v in _NUMPY.items() if k != "BYTES"}
            datatype = "BYTES" if arr.dtype.kind in "OSU" else by_dtype.get(arr.dtype.name)
            if datatype is None:
                raise ConfigurationError(f"tensor {name!r}: numpy dtype {arr.dtype} has no KServe datatype")
        return cls(name, tuple(int(d) for d in arr.shape), datatype, tuple(arr.reshape(-1).tolist()))

    def to_numpy(self) -> Any:
        import numpy as np

        if self.datatype == "BYTES":
            return np.array(self.data, dtype=np.object_).reshape(self.shape)
        return np.array(self.data, dtype=_NUMPY[self.datatype]).reshape(self.shape)

    def to_nested(self) -> Any:
        """The data as nested lists of ``shape`` (a scalar for shape ``[]``)."""

        def build(flat: tuple[Any, ...], dims: tuple[int, ...]) -> Any:
            if not dims:
                return flat[0]
            step = math.prod(dims[1:])
            return [build(flat[i * step : (i + 1) * step], dims[1:]) for i in range(dims[0])]

        return build(self.data, self.shape)

    def to_bytes(self) -> bytes:
        """Raw little-endian bytes (BYTES: each element as a 4-byte length and its bytes)."""
        if self.datatype == "BYTES":
            return b"".join(struct.pack("<I", len(v)) + v for v in self.data)
        return struct.pack(f"<{len(self.data)}{DATATYPES[self.datatype]}", *self.data)

    @classmethod
    def from_bytes(cls, name: str, shape: Sequence[int], datatype: str, raw: bytes) -> Tensor:
        """Decode raw tensor bytes; a size that does not match the shape raises ``MalformedResponseError``."""
        if datatype not in DATATYPES:
            raise MalformedResponseError(f"tensor {name!r}: unknown datatype {datatype!r}")
        count = math.prod(shape)
        if datatype != "BYTES":
            fmt = f"<{count}{DATATYPES[datatype]}"
            if struct.calcsize(fmt) != len(raw):
                raise MalformedResponseError(
                    f"tensor {name!r}: {len(raw)} bytes, expected {struct.calcsize(fmt)} for {datatype}{list(shape)}"
                )
            return cls(name, tuple(shape), datatype, struct.unpack(fmt, raw))
        out: list[bytes] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise MalformedResponseError(f"tensor {name!r}: truncated BYTES length prefix")
            (n,) = struct.unpack_from("<I", raw, pos)
            if pos + 4 + n > len(raw):
                raise MalformedResponseError(f"tensor {name!r}: BYTES element overruns the buffer")
            out.append(raw[pos + 4 : pos + 4 + n])
            pos += 4 + n
        if len(out) != count:
            raise MalformedResponseError(f"tensor {name!r}: {len(out)} BYTES elements, shape needs {count}")
        return cls(name, tuple(shape), datatype, tuple(out))

    def json_data(self) -> list[Any]:
        """``data`` for a JSON body (BYTES must be UTF-8 there; send binary otherwise)."""
        if self.datatype != "BYTES":
            return list(self.data)
        try:
            return [v.decode() for v in self.data]
        except UnicodeDecodeError as e:
            raise ConfigurationError(f"tensor {self.name!r}: BYTES data is not UTF-8; send it as binary") from e


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output to return; ``binary_data=True`` asks for it in the binary extension."""

    name: str
    binary_data: bool = False
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "parameters": {**self.parameters, "binary_data": self.binary_data}}


# --------------------------------------------------------------------------- codec


def encode_tensors(
    head: Mapping[str, Any], key: str, tensors: Iterable[Tensor], *, binary: bool | Iterable[str] = False
) -> tuple[bytes, int | None]:
    """``(body, json_length)``: ``head`` plus ``key`` (``"inputs"``/``"outputs"``) as JSON, and the binary
    tensors (all when ``binary`` is ``True``, else those named) after it; ``json_length`` is ``None``
    when nothing is binary (the body is plain JSON)."""
    tensors = list(tensors)
    names = {t.name for t in tensors} if binary is True else set() if binary is False else set(binary)
    items: list[dict[str, Any]] = []
    raws: list[bytes] = []
    for t in tensors:
        item: dict[str, Any] = {"name": t.name, "shape": list(t.shape), "datatype": t.datatype}
        params = dict(t.parameters)
        if t.name in names:
            raw = t.to_bytes()
            raws.append(raw)
            params["binary_data_size"] = len(raw)
        else:
            item["data"] = t.json_data()
        if params:
            item["parameters"] = params
        items.append(item)
    text = json.dumps({**head, key: items}, separators=(",", ":"), ensure_ascii=False).encode()
    if not raws:
        return text, None
    return text + b"".join(raws), len(text)


def _tensor_from_item(item: Any, raw: bytes | None, what: str) -> Tensor:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise MalformedResponseError(f"{what}: tensor entry without a name: {item!r}")
    shape, dtype, name = item.get("shape"), item.get("datatype"), item["name"]
    if not isinstance(shape, list) or not isinstance(dtype, str):
        raise MalformedResponseError(f"{what}: tensor {name!r} lacks shape/datatype")
    raw_params = item.get("parameters")
    params = {k: v for k, v in raw_params.items() if k != "binary_data_size"} if isinstance(raw_params, Mapping) else {}
    try:
        if raw is not None:
            t = Tensor.from_bytes(name, shape, dtype, raw)
            return Tensor(t.name, t.shape, t.datatype, t.data, params)
        data = item.get("data")
        if not isinstance(data, list):
            raise MalformedResponseError(f"{what}: tensor {name!r} has neither data nor binary_data_size")
        flat: list[Any] = []
        _flatten(data, [], 0, flat)  # servers may send nested lists
        return Tensor(name, tuple(shape), dtype, tuple(flat), params)
    except ConfigurationError as e:
        raise MalformedResponseError(f"{what}: {e.message}") from e


def decode_tensors(body: bytes, json_length: int | None, key: str) -> tuple[dict[str, Any], list[Tensor]]:
    """The inverse of :func:`encode_tensors`: ``(header JSON, tensors under key)``."""
    what = f"{_NAME} {key}"
    if json_length is not None and not 0 < json_length <= len(body):
        raise MalformedResponseError(f"{what}: Inference-Header-Content-Length {json_length} vs body {len(body)}")
    head_bytes = body if json_length is None else body[:json_length]
    try:
        head = json.loads(head_bytes)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedResponseError(f"{what}: JSON header is not valid JSON ({e})") from e
    if not isinstance(head, dict) or not isinstance(head.get(key), list):
        raise MalformedResponseError(f"{what}: the JSON header has no {key!r} list")
    pos = json_length or len(body)
    tensors: list[Tensor] = []
    for item in head[key]:
        size = item.get("parameters", {}).get("binary_data_size") if isinstance(item, Mapping) else None
        raw = None
        if isinstance(size, int) and json_length is not None:
            if pos + size > len(body):
                raise MalformedResponseError(f"{what}: binary data of {item.get('name')!r} overruns the body")
            raw, pos = body[pos : pos + size], pos + size
        tensors.append(_tensor_from_item(item, raw, what))
    return head, tensors


def _header_length(headers: Mapping[str, str]) -> int | None:
    v = header(headers, HEADER_LENGTH)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError as e:
        raise MalformedResponseError(f"{_NAME}: bad Inference-Header-Content-Length {v!r}") from e


# --------------------------------------------------------------------------- routes


def _model_path(model: str, version: str | int | None) -> str:
    if not model:
        raise ConfigurationError("model name must not be empty")
    path = f"/v2/models/{quote(model, safe='')}"
    return path if version in (None, "") else f"{path}/versions/{quote(str(version), safe='')}"


def build_server_live() -> ProviderRequest:
    return ProviderRequest("GET", "/v2/health/live")


def build_server_ready() -> ProviderRequest:
    return ProviderRequest("GET", "/v2/health/ready")


def build_model_ready(model: str, version: str | int | None = None) -> ProviderRequest:
    return ProviderRequest("GET", _model_path(model, version) + "/ready")


def parse_ready(body: bytes, headers: Mapping[str, str]) -> bool:
    """2xx means live/ready (the body is empty or ignored); not-ready answers come as typed errors."""
    return True


def build_model_metadata(model: str, version: str | int | None = None) -> ProviderRequest:
    return ProviderRequest("GET", _model_path(model, version))


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1: dynamic dimension


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    raw: Any = None


def _specs(raw: Any, what: str) -> tuple[TensorSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise malformed(_NAME, f"model metadata {what} is not a list", raw)
    out = []
    for s in raw:
        if not isinstance(s, Mapping) or not isinstance(s.get("name"), str) or not isinstance(s.get("shape"), list):
            raise malformed(_NAME, f"bad tensor spec in model metadata {what}: {s!r}", s)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in s["shape"]):
            raise malformed(_NAME, f"tensor spec shape in model metadata {what} is not a list of integers: {s!r}", s)
        out.append(TensorSpec(s["name"], str(s.get("datatype")), tuple(s["shape"])))
    return tuple(out)


def parse_model_metadata(body: bytes, headers: Mapping[str, str]) -> ModelMetadata:
    data = decode_json(body, headers, provider=_NAME, what="model metadata")
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise malformed(_NAME, "model metadata has no 'name'", data)
    raw_versions = data.get("versions")
    versions = raw_versions if isinstance(raw_versions, list) else []
    return ModelMetadata(
        name=data["name"],
        versions=tuple(str(v) for v in versions),
        platform=as_str(data.get("platform")),
        inputs=_specs(data.get("inputs"), "inputs"),
        outputs=_specs(data.get("outputs"), "outputs"),
        raw=data,
    )


def build_infer(
    model: str,
    inputs: Sequence[Tensor],
    *,
    version: str | int | None = None,
    outputs: Sequence[RequestedOutput | str] = (),
    binary_inputs: bool | Iterable[str] = False,
    request_id: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> ProviderRequest:
    """``POST .../infer``; ``binary_inputs`` sends all (``True``) or the named inputs as raw bytes."""
    if not inputs:
        raise ConfigurationError("infer needs at least one input tensor")
    if len({t.name for t in inputs}) != len(inputs):
        raise ConfigurationError("input tensor names must be unique")
    head: dict[str, Any] = {}
    if request_id is not None:
        head["id"] = request_id
    if parameters:
        head["parameters"] = dict(parameters)
    if outputs:
        head["outputs"] = [(RequestedOutput(o) if isinstance(o, str) else o).to_json() for o in outputs]
    body, json_length = encode_tensors(head, "inputs", inputs, binary=binary_inputs)
    path = _model_path(model, version) + "/infer"
    if json_length is None:
        return ProviderRequest("POST", path, headers=dict(JSON_HEADERS), content=body)
    hdrs = {"content-type": "application/octet-stream", HEADER_LENGTH: str(json_length)}
    return ProviderRequest("POST", path, headers=hdrs, content=body)


@dataclass(frozen=True, slots=True)
class InferResult:
    model_name: str | None
    model_version: str | None
    id: str | None
    outputs: tuple[Tensor, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def output(self, name: str) -> Tensor:
        for t in self.outputs:
            if t.name == name:
                return t
        raise KeyError(name)


def parse_infer(body: bytes, headers: Mapping[str, str]) -> InferResult:
    """An infer response, JSON or binary extension (``Inference-Header-Content-Length`` set)."""
    length = _header_length(headers)
    ctype = (header(headers, "content-type") or "").lower()
    if length is None and ctype and "json" not in ctype:
        raise malformed(_NAME, f"infer response: expected JSON but got content-type {ctype!r}", body[:200])
    try:
        head, tensors = decode_tensors(body, length, "outputs")
    except MalformedResponseError as e:
        e.provider = e.provider or _NAME
        raise
    params = head.get("parameters")
    return InferResult(
        model_name=as_str(head.get("model_name")),
        model_version=as_str(head.get("model_version")),
        id=as_str(head.get("id")),
        outputs=tuple(tensors),
        parameters=params if isinstance(params, Mapping) else {},
    )
