"""What the real OpenAI API refuses or adds per model, shared by the chat and Responses emulators.

- Reasoning models (``o1``, ``o3-mini``, ``o4-mini``, ``gpt-5*`` but not ``gpt-5*-chat``) answer 400 to
  ``max_tokens`` ("Unsupported parameter: 'max_tokens' is not supported with this model. Use
  'max_completion_tokens' instead.") and to a ``temperature``/``top_p`` other than 1 ("Unsupported value:
  'temperature' does not support 0.5 with this model. Only the default (1) value is supported."), with the
  real ``param``/``code``; other models refuse ``reasoning_effort``. Their usage reports hidden reasoning
  tokens (``completion_tokens_details.reasoning_tokens`` / ``output_tokens_details.reasoning_tokens``,
  included in the output count), more for a higher effort.
- Azure OpenAI's content filtering, on request (header ``x-sandbox-content-filter``): ``azure`` adds the
  verdicts Azure sends (``prompt_filter_results`` and per-choice ``content_filter_results`` on chat, a
  ``content_filters`` list on Responses); ``block`` also filters the completion away (chat: the choice ends
  with ``finish_reason: "content_filter"`` and no ``message``; Responses: ``status: "incomplete"``,
  ``incomplete_details.reason: "content_filter"``).

The rule is written here independently of :mod:`infermux.providers` (the emulator checks the client).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from infermux.sandbox._wire import Ctx

__all__ = [
    "EFFORTS",
    "check_image_url",
    "check_sampling",
    "check_tool_name",
    "content_filter_mode",
    "filter_verdicts",
    "is_base64",
    "is_reasoning_model",
    "reasoning_tokens",
]

_REASONING = re.compile(r"^(?:o\d+(?:$|-)|gpt-5(?!.*-chat))")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_EFFORT_TOKENS = {"none": 0, "minimal": 4, "low": 16, "medium": 64, "high": 256, "xhigh": 512}


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING.match(model.rsplit("/", 1)[-1]))


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values[:-1]) + f", and '{values[-1]}'"


def check_sampling(body: dict[str, Any], ctx: Ctx, effort: Any, *, limit_key: str | None = "max_tokens") -> None:
    """Refuse what the real API refuses for ``body["model"]`` (see the module docstring)."""
    model = str(body.get("model"))
    if effort is not None and effort not in EFFORTS:
        raise ctx.error(
            400,
            f"Invalid value: '{effort}'. Supported values are: {_quoted(EFFORTS)}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    if not is_reasoning_model(model):
        if effort is not None:
            raise ctx.error(
                400,
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                param="reasoning_effort",
                code="unsupported_parameter",
            )
        return
    if limit_key and body.get(limit_key) is not None:
        raise ctx.error(
            400,
            f"Unsupported parameter: '{limit_key}' is not supported with this model."
            " Use 'max_completion_tokens' instead.",
            param=limit_key,
            code="unsupported_parameter",
        )
    if effort == "none":
        return
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and value != 1:
            raise ctx.error(
                400,
                f"Unsupported value: '{name}' does not support {value} with this model."
                " Only the default (1) value is supported.",
                param=name,
                code="unsupported_value",
            )


def reasoning_tokens(model: str, effort: Any) -> int:
    """The hidden reasoning tokens a reasoning model spends (0 for other models); ``medium`` by default."""
    if not is_reasoning_model(model):
        return 0
    return _EFFORT_TOKENS.get(str(effort or "medium"), 64)


def content_filter_mode(ctx: Ctx) -> str | None:
    """``"azure"`` (verdicts added), ``"block"`` (the completion filtered) or ``None``."""
    mode = ctx.request_headers.get("x-sandbox-content-filter", "").strip().lower()
    return mode if mode in ("azure", "block") else None


def filter_verdicts(blocked: bool = False) -> dict[str, Any]:
    """Azure's per-category verdicts (``violence`` filtered when ``blocked``)."""
    safe = {"filtered": False, "severity": "safe"}
    return {
        "hate": dict(safe),
        "self_harm": dict(safe),
        "sexual": dict(safe),
        "violence": {"filtered": True, "severity": "high"} if blocked else dict(safe),
    }


def is_base64(data: Any) -> bool:
    """Strict base64 (the alphabet, correct padding), as the real APIs decode image data."""
    if not isinstance(data, str):
        return False
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_OPENAI_IMAGE = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_UNSUPPORTED_IMAGE = (
    "You uploaded an unsupported image. Please make sure your image has of one the following formats:"
    " ['png', 'jpeg', 'gif', 'webp']."
)  # the real message (recorded: openai/otel-openai-0.62.4_test_vision_base64_3.json)


def check_image_url(url: Any, ctx: Ctx, where: str) -> None:
    """An ``image_url`` as api.openai.com checks it: a data URL of png/jpeg/gif/webp with valid base64, or an
    http(s) URL."""
    if not isinstance(url, str) or not url:
        raise ctx.error(400, f"Missing required parameter: '{where}'.", param=where, code="missing_required_parameter")
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        mime = head[5:].split(";")[0].lower()
        if ";base64" not in head or mime not in _OPENAI_IMAGE:
            raise ctx.error(400, _UNSUPPORTED_IMAGE, code="invalid_image_format")
        if not is_base64(data):
            raise ctx.error(400, "Invalid image.", param=where, code="invalid_image")
        return
    if url.split(":", 1)[0].lower() not in ("http", "https"):
        raise ctx.error(
            400,
            f"Invalid '{where}'. Expected a valid URL, but got a value with an invalid format.",
            param=where,
            code="invalid_value",
        )


def check_tool_name(name: str, ctx: Ctx, where: str) -> None:
    """A function name as api.openai.com validates it (pattern, then length)."""
    if not re.fullmatch(r"[a-zA-Z0-9_-]+", name):
        raise ctx.error(
            400,
            f"Invalid '{where}': string does not match pattern. Expected a string that matches the pattern"
            " '^[a-zA-Z0-9_-]+$'.",
            param=where,
            code="invalid_value",
        )
    if len(name) > 64:
        raise ctx.error(
            400,
            f"Invalid '{where}': string too long. Expected a string with maximum length 64, but got a string"
            f" with length {len(name)} instead.",
            param=where,
            code="string_above_max_length",
        )
