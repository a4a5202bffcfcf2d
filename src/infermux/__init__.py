"""infermux: one typed, fast and resilient interface to many inference services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import *  # noqa: F403  (the error tree is small and always needed)
from .errors import __all__ as _errors_all
from .types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    ImagePart,
    Message,
    Priority,
    ResponseFormat,
    StreamAccumulator,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamResumed,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
)

if TYPE_CHECKING:  # pragma: no cover
    from .client import AsyncClient, Client, ModelListing
    from .endpoint import Endpoint, EndpointConfig
    from .transport import Limits, Timeouts

__version__ = "0.1.0"

_LAZY = {
    "AsyncClient": ".client",
    "Client": "._sync",
    "Endpoint": ".endpoint",
    "EndpointConfig": ".endpoint",
    "Limits": ".transport",
    "ModelListing": ".client",
    "Timeouts": ".transport",
}

__all__ = [  # noqa: PLE0604
    "AsyncClient",
    "ChatRequest",
    "ChatResponse",
    "Client",
    "EmbedRequest",
    "EmbedResponse",
    "Endpoint",
    "EndpointConfig",
    "ImagePart",
    "Limits",
    "Message",
    "ModelListing",
    "Priority",
    "ResponseFormat",
    "StreamAccumulator",
    "StreamError",
    "StreamResumed",
    "StreamEvent",
    "StreamFinish",
    "StreamStart",
    "TextDelta",
    "TextPart",
    "Timeouts",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "Usage",
    "UsageEvent",
    "__version__",
    *_errors_all,
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'infermux' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod, __name__), name)
    globals()[name] = value
    return value
