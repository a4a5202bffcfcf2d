"""Property-based fuzzing of every provider's parse functions, seeded from recorded real traffic.

Each target (a response parser, a stream parser, an error classifier, a models parser, a wire-request reader)
gets otherwise valid bodies (the recordings in ``../shared/fixtures/recorded`` plus a few hand-written
seeds for the backends without recordings) with one to three JSON values replaced by a value of the wrong
type: lists, ints, bools, objects, nulls, huge or odd strings and numbers. Whatever a target raises must be
an :class:`~infermux.errors.InfermuxError` (``MalformedResponseError``, ``ConfigurationError``...): a
``TypeError``, ``KeyError`` or ``AttributeError`` escaping a parser is a bug.

Targets are discovered (every ``parse_*``, ``classify_error`` and ``*_from_wire`` function of the provider
modules, every registered provider's callables and stream parser classes), so a new parser is fuzzed without
editing this file. Bounded and reproducible: ``derandomize=True`` and a fixed ``max_examples`` per target.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infermux.providers as providers_pkg
from infermux.errors import InfermuxError
from infermux.providers import available, get_provider

from ..conformance._recordings import load
from ._fuzz_seeds import EXTRA_SEEDS

EXAMPLES = 50
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

JSON_H = {"content-type": "application/json"}
STATUSES = (400, 401, 403, 404, 408, 409, 413, 422, 429, 498, 500, 502, 503, 504, 529)

#: recorded provider -> the provider modules whose parsers speak its protocol
GROUPS: dict[str, tuple[str, ...]] = {
    "openai": ("openai", "openai_responses", "groq", "vllm", "llamacpp", "ovms", "opea", "tgi"),
    "azure-openai": ("openai",),
    "groq": ("groq", "openai"),
    "deepseek": ("openai",),
    "vllm": ("vllm", "openai"),
    "huggingface": ("tgi", "tei", "openai"),
    "anthropic": ("anthropic",),
    "bedrock-anthropic": ("anthropic",),
    "gemini": ("gemini",),
    "vertexai": ("gemini",),
    "ollama": ("ollama",),
}

#: values of the wrong type (and odd values of the right one) put in place of a recorded value
WRONG = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            0,
            -1,
            2**70,
            1.5,
            float("inf"),
            float("nan"),
            "",
            "x",
            "\ud800",
            "[DONE]",
            [],
            [None],
            [1, "x"],
            [[1.0, 2.0], [3.0]],
            {},
            {"type": "text"},
            {"a": [1]},
        ]
    ),
    st.text(max_size=8),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.just("y" * 20_000),  # a huge string (20 kB; larger ones only slow the test down)
)


def _paths(value: Any, prefix: tuple[Any, ...] = (), out: list[tuple[Any, ...]] | None = None) -> list[tuple[Any, ...]]:
    """Every path to a JSON value inside ``value`` (the root excluded), depth first, capped."""
    out = [] if out is None else out
    if len(out) > 4000:
        return out
    items: Iterator[tuple[Any, Any]]
    if isinstance(value, dict):
        items = iter(value.items())
    elif isinstance(value, list):
        items = iter(enumerate(value))
    else:
        return out
    for k, v in items:
        out.append((*prefix, k))
        _paths(v, (*prefix, k), out)
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _pattern(path: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple("*" if isinstance(k, int) else k for k in path)


def _sites(seeds: list[Any]) -> list[tuple[int, tuple[Any, ...]]]:
    """One ``(seed index, path)`` per distinct path pattern (list indices as ``*``) over all seeds, so each
    field of each shape is as likely to be mutated as any other (not in proportion to how often it occurs)."""
    out: dict[tuple[Any, ...], tuple[int, tuple[Any, ...]]] = {}
    for i, seed in enumerate(seeds):
        for path in _paths(seed):
            out.setdefault(_pattern(path), (i, path))
    return [out[k] for k in sorted(out, key=repr)] or [(0, ())]


def mutated(seeds: list[Any]) -> st.SearchStrategy[Any]:
    """A seed with one field (picked among every distinct field of every seed) replaced by a wrong value,
    then up to two more anywhere in it (sometimes the whole body replaced, sometimes a key dropped)."""
    return _mutated(seeds, _sites(seeds))


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[Any], sites: list[tuple[int, tuple[Any, ...]]]) -> Any:
    index, path = draw(st.sampled_from(sites))
    value = _replace(seeds[index], path, draw(WRONG))
    for _ in range(draw(st.integers(0, 2))):
        paths = _paths(value)
        if not paths or draw(st.integers(0, 19)) == 0:
            value = draw(WRONG)
            continue
        path = draw(st.sampled_from(paths))
        if draw(st.integers(0, 4)) == 0:  # drop the key / item instead
            parent = _get(value, path[:-1])
            if isinstance(parent, dict):
                value = _replace(value, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
                continue
        value = _replace(value, path, draw(WRONG))
    return value


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        value = value[k]
    return value


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


def _call(fn: Callable[[], Any]) -> None:
    with contextlib.suppress(InfermuxError):  # a typed error is the right answer to a bad body
        fn()


# --------------------------------------------------------------------------- seeds


@dataclass
class Seeds:
    bodies: list[Any]  # 2xx JSON bodies
    errors: list[Any]  # error bodies
    requests: list[Any]  # request bodies
    sse: list[list[list[Any]]]  # [[event, data-object-or-text], ...]
    ndjson: list[list[Any]]


def _seeds(modules: tuple[str, ...]) -> Seeds:
    wanted = {rec for rec, mods in GROUPS.items() if set(mods) & set(modules)}
    out = Seeds([], [], [], [], [])
    for rec in load(wanted):
        resp = rec.response
        body = resp.get("body")
        if isinstance(rec.request.get("body"), (dict, list)):
            out.requests.append(rec.request["body"])
        if body is not None:
            (out.errors if int(resp["status"]) >= 400 else out.bodies).append(body)
        if isinstance(resp.get("sse_events"), list):
            events = []
            for ev in resp["sse_events"]:
                data = ev.get("data", "")
                with contextlib.suppress(ValueError):
                    data = json.loads(data)
                events.append([ev.get("event"), data])
            out.sse.append(events)
        if isinstance(resp.get("ndjson"), list):
            out.ndjson.append(resp["ndjson"])
    for m in modules:
        out.bodies.extend(EXTRA_SEEDS.get(m, []))
    if not out.bodies:
        out.bodies.append({"id": "x", "data": [], "choices": []})
    if not out.errors:
        out.errors.append({"error": {"message": "bad", "type": "invalid_request_error", "code": None}})
    return out


_SEED_CACHE: dict[tuple[str, ...], Seeds] = {}


def _small(value: Any) -> Any:
    """A seed with lists cut to 3 items (an embedding's 1536 floats would otherwise take nearly every
    mutation), deduplicated by :func:`_dedupe`."""
    if isinstance(value, dict):
        return {k: _small(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_small(v) for v in value[:3]]
    return value


def _dedupe(values: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for v in values:
        key = json.dumps(v, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def seeds_for(modules: tuple[str, ...]) -> Seeds:
    if modules not in _SEED_CACHE:
        s = _seeds(modules)
        s.bodies, s.errors, s.requests = (_dedupe([_small(v) for v in vs]) for vs in (s.bodies, s.errors, s.requests))
        s.sse = _dedupe([[[name, _small(data)] for name, data in ev[:12]] + ev[-3:] for ev in s.sse])
        s.ndjson = _dedupe([_small(lines[:6]) + lines[-2:] for lines in s.ndjson])
        _SEED_CACHE[modules] = s
    return _SEED_CACHE[modules]


def _sse_bytes(events: Any) -> bytes:
    if not isinstance(events, list):
        events = [[None, events]]
    out = []
    for ev in events:
        name, data = (ev[0], ev[1]) if isinstance(ev, list) and len(ev) == 2 else (None, ev)
        text = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {name}\n" if isinstance(name, str) and name else ""
        out.append(head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n")
    return "".join(out).encode("utf-8", "surrogatepass")


def _ndjson_bytes(objs: Any) -> bytes:
    objs = objs if isinstance(objs, list) else [objs]
    return "".join(json.dumps(o) + "\n" for o in objs).encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    name: str
    modules: tuple[str, ...]
    kind: str  # body | status | wire | stream | ndjson | text | headers
    fn: Callable[..., Any]


def _module_names() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(providers_pkg.__path__) if m.name not in ("__init__",)]


def _module_targets() -> list[Target]:
    out: list[Target] = []
    for mod_name in _module_names():
        mod = importlib.import_module(f"infermux.providers.{mod_name}")
        group = (mod_name.lstrip("_").split("_")[0],)
        for name, fn in vars(mod).items():
            if not inspect.isfunction(fn) or fn.__module__ != mod.__name__ or name.startswith("_"):
                continue
            sig = inspect.signature(fn).parameters
            params = list(sig)
            label = f"{mod_name}.{name}"
            if any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in sig.values()):
                continue  # a helper that needs the caller's context (decode_json, status_error...), not a parser
            if name.endswith("from_wire"):
                out.append(Target(label, group, "wire", fn))
            elif params[:3] == ["status", "headers", "body"]:
                out.append(Target(label, group, "status", fn))
            elif params[:2] == ["body", "headers"]:
                out.append(Target(label, group, "body", fn))
            elif name.startswith("parse") and params[:1] in (["value"], ["raw"]):
                out.append(Target(label, group, "value", fn))  # any decoded JSON value
            elif name.startswith("parse") and params[:1] in (["text"], ["body"]):
                takes_bytes = "bytes" in str(sig[params[0]].annotation)
                out.append(Target(label, group, "bytes" if takes_bytes else "text", fn))  # off the wire
            elif name.startswith("parse") and params[:1] == ["headers"]:
                out.append(Target(label, group, "headers", fn))
    return out


def _stream_kind(factory: Callable[[], Any]) -> str:
    parser = factory()
    decoder = getattr(parser, "_decoder", None)
    return "ndjson" if type(decoder).__name__ == "NDJSONDecoder" or not hasattr(parser, "_decoder") else "stream"


def _provider_targets() -> list[Target]:
    out: list[Target] = []
    for short in available():
        prov = get_provider(short)
        mod = prov.parse_chat.__module__.rsplit(".", 1)[-1]
        group = (short.split("_")[0], mod.lstrip("_").split("_")[0])
        out.append(Target(f"{short}:parse_chat", group, "body", prov.parse_chat))
        out.append(Target(f"{short}:classify_error", group, "status", prov.classify_error))
        if prov.parse_embed is not None:
            out.append(Target(f"{short}:parse_embed", group, "body", prov.parse_embed))
        if prov.parse_models is not None:
            out.append(Target(f"{short}:parse_models", group, "body", prov.parse_models))
        try:
            kind = _stream_kind(prov.new_stream_parser)
        except InfermuxError:
            continue  # a backend that does not stream (TEI) refuses to make a parser
        out.append(Target(f"{short}:stream", group, kind, prov.new_stream_parser))
    from infermux.providers._common import parse_model_ids  # the default models parser (OpenAI's shape)

    out.append(Target("_common.parse_model_ids", ("openai",), "body", lambda b, h: parse_model_ids("x", b, h)))
    return out


def _class_targets() -> list[Target]:
    from infermux.providers.llamacpp import CompletionStreamParser
    from infermux.providers.ollama import NDJSONStreamParser, PullProgressParser
    from infermux.providers.tgi import GenerateStreamParser

    return [
        Target("llamacpp.CompletionStreamParser", ("llamacpp", "openai"), "stream", CompletionStreamParser),
        Target("tgi.GenerateStreamParser", ("tgi",), "stream", GenerateStreamParser),
        Target("ollama.NDJSONStreamParser(generate)", ("ollama",), "ndjson", lambda: NDJSONStreamParser("generate")),
        Target("ollama.PullProgressParser", ("ollama",), "ndjson", PullProgressParser),
    ]


def _dedupe_targets(targets: list[Target]) -> list[Target]:
    """One target per parser code: the OpenAI-compatible providers wrap the same parse function (and the same
    stream parser) under another name; their seeds are merged instead of fuzzing the same code ten times."""
    by_code: dict[tuple[str, Any], Target] = {}
    for t in targets:
        code = getattr(t.fn, "__code__", t.fn)
        key = (t.kind, code)
        if key in by_code:
            first = by_code[key]
            merged = tuple(dict.fromkeys(first.modules + t.modules))
            by_code[key] = Target(first.name, merged, first.kind, first.fn)
        else:
            by_code[key] = t
    return list(by_code.values())


TARGETS = _dedupe_targets(_module_targets() + _provider_targets() + _class_targets())


def test_every_parser_is_a_target() -> None:
    names = {t.name for t in TARGETS}
    for must in (
        "openai.parse_chat",
        "anthropic.parse_chat",
        "gemini.parse_chat",
        "tgi.parse_generate",
        "tei.parse_embed",
        "ollama.parse_chat",
        "_openai_wire.chat_request_from_wire",
        "vllm.parse_models",
        "groq:stream",
        "anthropic:stream",
        "ovms.parse_tfs_predict",
        "kserve.parse_infer",
    ):
        assert must in names
    assert len(TARGETS) >= 90  # after merging the providers that share one parse function


def _run_stream(factory: Callable[[], Any], raw: bytes, split: int) -> None:
    parser = factory()

    def go() -> None:
        for i in range(0, len(raw), split):
            parser.feed(raw[i : i + split])
        parser.close()

    _call(go)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_parser_raises_only_typed_errors(target: Target) -> None:
    seeds = seeds_for(target.modules)
    fn = target.fn

    if target.kind == "body":

        @FUZZ
        @given(mutated(seeds.bodies + seeds.errors[:3]))
        def run(value: Any) -> None:
            _call(lambda: fn(_dumps(value), JSON_H))

    elif target.kind == "status":

        @FUZZ
        @given(mutated(seeds.errors + seeds.bodies[:5]), st.sampled_from(STATUSES), st.sampled_from(HEADER_SETS))
        def run(value: Any, status: int, headers: dict[str, str]) -> None:
            _call(lambda: fn(status, headers, _dumps(value)))

    elif target.kind == "wire":
        requests = seeds.requests or [{"model": "m", "messages": [{"role": "user", "content": "hi"}]}]

        @FUZZ
        @given(mutated(requests))
        def run(value: Any) -> None:
            _call(lambda: fn(value))

    elif target.kind == "stream":
        streams: list[Any] = seeds.sse or [[[None, {"choices": [{"index": 0, "delta": {"content": "x"}}]}]]]

        @FUZZ
        @given(mutated(streams), st.sampled_from((7, 64, 1 << 20)))
        def run(value: Any, split: int) -> None:
            _run_stream(fn, _sse_bytes(value), split)

    elif target.kind == "ndjson":
        lines: list[Any] = seeds.ndjson or [[{"status": "pulling"}, {"status": "success"}]]
        lines = lines + [[b] for b in EXTRA_SEEDS.get("ollama", [])]

        @FUZZ
        @given(mutated(lines), st.sampled_from((5, 1 << 20)))
        def run(value: Any, split: int) -> None:
            _run_stream(fn, _ndjson_bytes(value), split)

    elif target.kind == "headers":

        @FUZZ
        @given(st.sampled_from(HEADER_SETS), st.dictionaries(st.sampled_from(HEADER_NAMES), st.text(max_size=12)))
        def run(base: dict[str, str], more: dict[str, str]) -> None:
            _call(lambda: fn({**base, **more}))

    elif target.kind == "value":

        @FUZZ
        @given(st.one_of(WRONG, mutated(seeds.bodies)))
        def run(value: Any) -> None:
            _call(lambda: fn(value))

    else:  # text off the wire: str (and bytes where the function takes them)
        texts = st.one_of(st.text(max_size=60), st.sampled_from(ODD_TEXTS))
        if target.kind == "bytes":
            texts = st.one_of(texts, st.binary(max_size=60), st.just(b"\xff\xfe"))

        @FUZZ
        @given(texts)
        def run(value: Any) -> None:
            _call(lambda: fn(value))

    run()


ODD_TEXTS = (
    "",
    "\ud800",
    "1e309s",
    "nan",
    "-1s",
    "2m59.56s",
    '# TYPE x counter\nx{a="b"} NaN\nx{a="\\"} 1e999\nx{ 1\n',
    "{" * 1000,
)
HEADER_NAMES = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-request-id",
    "request-id",
    "content-type",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-limit-tokens",
)
HEADER_SETS: list[dict[str, str]] = [
    dict(JSON_H),
    {**JSON_H, "retry-after": "abc", "x-should-retry": "maybe"},
    {**JSON_H, "retry-after": "1e309", "retry-after-ms": "nan"},
    {**JSON_H, "retry-after": "-5", "retry-after-ms": "-1"},
    {**JSON_H, "retry-after": "99999999999999999999999"},
    {**JSON_H, "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
    {"content-type": "text/html"},
    {},
]


#: the wrong values the sweep puts in every field of every seed shape
SWEEP: tuple[Any, ...] = ([], [1, "x"], 7, True, {}, {"type": "text"}, None, "x", 1.5)


def _sweep_inputs(target: Target) -> tuple[list[Any], Callable[[Any], None]]:
    """The seeds of ``target`` and how one (mutated) seed is fed to it."""
    seeds = seeds_for(target.modules)
    fn = target.fn
    if target.kind == "body":
        return seeds.bodies + seeds.errors[:3], lambda v: fn(_dumps(v), JSON_H)
    if target.kind == "status":
        return seeds.errors + seeds.bodies[:5], lambda v: fn(429, JSON_H, _dumps(v))
    if target.kind == "wire":
        return seeds.requests, fn
    if target.kind == "stream":
        return seeds.sse, lambda v: _run_stream(fn, _sse_bytes(v), 1 << 20)
    if target.kind == "ndjson":
        return seeds.ndjson, lambda v: _run_stream(fn, _ndjson_bytes(v), 1 << 20)
    if target.kind == "value":
        return seeds.bodies, fn
    return [], fn


SWEPT = [t for t in TARGETS if t.kind not in ("text", "bytes", "headers")]


@pytest.mark.parametrize("target", SWEPT, ids=lambda t: t.name)
def test_parser_sweep_every_field(target: Target) -> None:
    """Deterministic complement of the property test: every distinct field of every seed shape, once with
    each value of :data:`SWEEP` (the property test samples; this one covers every field)."""
    seeds, feed = _sweep_inputs(target)
    failures: list[str] = []
    for index, path in _sites(seeds) if seeds else []:
        for wrong in SWEEP:
            try:
                feed(_replace(seeds[index], path, wrong))
            except InfermuxError:
                pass
            except Exception as e:  # anything untyped is the finding
                failures.append(f"{'/'.join(map(str, path))} = {wrong!r}: {type(e).__name__}: {e}")
    assert not failures, f"{len(failures)} untyped errors, first ones:\n" + "\n".join(failures[:15])
