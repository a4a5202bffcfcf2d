"""Provider registry: short names to pure provider modules, imported on first use."""

from __future__ import annotations

import importlib
import importlib.util

from ..errors import ConfigurationError
from ._base import Provider, ProviderRequest, StreamParser

__all__ = ["Provider", "ProviderRequest", "StreamParser", "available", "get_provider"]

#: short name -> "module:ATTRIBUTE" under infermux.providers (a pure provider value, see _base.Provider).
#: Backends whose module is not present yet are left out of :func:`available`.
_REGISTRY: dict[str, str] = {
    "openai": "openai:PROVIDER",
    "openai_responses": "openai_responses:PROVIDER",
    "anthropic": "anthropic:PROVIDER",
    "llamacpp": "llamacpp:PROVIDER",
    "gemini": "gemini:PROVIDER",
    "groq": "groq:PROVIDER",
    "ollama": "ollama:PROVIDER",
    "ollama_openai": "ollama:OPENAI_PROVIDER",
    "tgi": "tgi:PROVIDER",
    "tgi_chat": "tgi:CHAT_PROVIDER",
    "tei": "tei:PROVIDER",
    "vllm": "vllm:PROVIDER",
    "ovms": "ovms:PROVIDER",
    "opea": "opea:PROVIDER",
    "opea_llm": "opea:LLM_PROVIDER",
    "opea_codegen": "opea:CODEGEN_PROVIDER",
    "opea_docsum": "opea:DOCSUM_PROVIDER",
}
_ALIASES: dict[str, str] = {
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "claude": "anthropic",
    "google": "gemini",
    "huggingface_tgi": "tgi",
    "huggingface_tei": "tei",
    "openvino": "ovms",
}
_CACHE: dict[str, Provider] = {}


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(f"{__name__}.{name}") is not None


def available() -> list[str]:
    """Short names of every backend this installation can use."""
    return sorted(k for k, v in _REGISTRY.items() if _module_exists(v.split(":")[0]))


def get_provider(name: str | Provider) -> Provider:
    """Look a provider up by short name (``"openai"``, ``"anthropic"``, ``"llamacpp"``...)."""
    if isinstance(name, Provider):
        return name
    if not isinstance(name, str):
        got = type(name).__name__
        raise ConfigurationError(f"provider must be a short name such as 'openai' or a Provider, got {got}")
    key = _ALIASES.get(name.lower(), name.lower())
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    target = _REGISTRY.get(key)
    if target is None or not _module_exists(target.split(":")[0]):
        raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(available())}")
    mod_name, attr = target.split(":")
    prov: Provider = getattr(importlib.import_module(f"{__name__}.{mod_name}"), attr)
    _CACHE[key] = prov
    return prov
