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
    ReasoningBlock,
    ReasoningDelta,
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
    from ._sync import Client, SyncChatStream
    from .client import AsyncClient, ChatParams, ChatStream, ModelListing
    from .endpoint import Endpoint, EndpointConfig
    from .resilience.breaker import BreakerConfig, BreakerState
    from .resilience.clock import FakeClock
    from .resilience.retry import RetryPolicy
    from .transport import Limits, Timeouts

__version__ = "0.1.0"

_LAZY = {  # imported on first use: `import infermux` stays light
    "AsyncClient": ".client",
    "BreakerConfig": ".resilience.breaker",
    "BreakerState": ".resilience.breaker",
    "ChatParams": ".client",
    "ChatStream": ".client",
    "Client": "._sync",
    "Endpoint": ".endpoint",
    "EndpointConfig": ".endpoint",
    "FakeClock": ".resilience.clock",
    "Limits": ".transport",
    "ModelListing": ".client",
    "RetryPolicy": ".resilience.retry",
    "SyncChatStream": "._sync",
    "Timeouts": ".transport",
}

__all__ = [  # noqa: PLE0604
    "AsyncClient",
    "BreakerConfig",
    "BreakerState",
    "ChatParams",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "Client",
    "EmbedRequest",
    "EmbedResponse",
    "Endpoint",
    "EndpointConfig",
    "FakeClock",
    "ImagePart",
    "Limits",
    "Message",
    "ModelListing",
    "Priority",
    "ResponseFormat",
    "RetryPolicy",
    "StreamAccumulator",
    "StreamError",
    "StreamResumed",
    "ReasoningBlock",
    "ReasoningDelta",
    "StreamEvent",
    "StreamFinish",
    "StreamStart",
    "SyncChatStream",
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
