"""infermux.sandbox: a protocol-faithful emulator of the OpenAI and Anthropic HTTP APIs with fault injection.

Not imported by ``import infermux`` (it needs aiohttp.web). Quick start::

    async with Sandbox() as sb:
        sb.faults.push(Fault.status_error(429, retry_after_ms=250))
        client = openai.AsyncOpenAI(base_url=sb.openai_base_url, api_key="k")

Routes: ``POST /v1/chat/completions``, ``/v1/embeddings``, ``/v1/responses``, ``GET /v1/models``,
``POST /v1/messages``, ``/v1/messages/count_tokens``; control: ``POST /_sandbox/faults``,
``GET /_sandbox/stats``, ``POST /_sandbox/reset``, ``GET /_sandbox/health``. Per-request faults:
the ``x-sandbox-fault`` header (grammar in :mod:`infermux.sandbox._faults`).

Further backends (``Sandbox(backends=("groq",))``: gemini, groq, ollama, tgi, tei, vllm, ovms, opea) keep their
state per sandbox; ``sb.configure_backend("groq", requests=2)`` sets one sandbox's options, ``sb.backend_state(
"vllm")`` reads its live state, ``sb.reset()`` (or ``POST /_sandbox/reset``) forgets both.

Memory stays bounded when the sandbox is left running: ``stats`` counts every request but logs only the latest
``max_records`` (default 10,000; ``Sandbox(max_records=...)``, ``--max-records``); ``stats.dropped`` and the
``dropped`` field of ``GET /_sandbox/stats`` say how many older records were discarded.
"""

from infermux.sandbox._cli import main
from infermux.sandbox._faults import Fault, FaultController, FaultKind, parse_fault
from infermux.sandbox._model import Conversation, Responder, example_from_schema
from infermux.sandbox._runner import Sandbox, SandboxThread
from infermux.sandbox._server import BUILTIN_BACKENDS, DEFAULT_MODELS, Backend, Route, SandboxApp, load_backend
from infermux.sandbox._stats import DEFAULT_MAX_RECORDS, RequestRecord, SandboxStats

__all__ = [
    "BUILTIN_BACKENDS",
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_MODELS",
    "Backend",
    "Conversation",
    "Fault",
    "FaultController",
    "FaultKind",
    "RequestRecord",
    "Responder",
    "Route",
    "Sandbox",
    "SandboxApp",
    "SandboxStats",
    "SandboxThread",
    "example_from_schema",
    "load_backend",
    "main",
    "parse_fault",
]
