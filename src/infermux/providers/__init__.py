"""Provider registry: short names to pure provider modules, imported on first use."""

from __future__ import annotations

import importlib

from ..errors import ConfigurationError
from ._base import Provider, ProviderRequest, StreamParser

__all__ = ["Provider", "ProviderRequest", "StreamParser", "available", "get_provider"]

#: short name -> module under infermux.providers that defines PROVIDER
_REGISTRY: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "llamacpp": "llamacpp",
    "openai_responses": "openai_responses",
}
_ALIASES: dict[str, str] = {"llama.cpp": "llamacpp", "llama_cpp": "llamacpp", "claude": "anthropic"}
_CACHE: dict[str, Provider] = {}


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_provider(name: str | Provider) -> Provider:
    """Look a provider up by short name (``"openai"``, ``"anthropic"``, ``"llamacpp"``...)."""
    if isinstance(name, Provider):
        return name
    key = _ALIASES.get(name.lower(), name.lower())
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    mod_name = _REGISTRY.get(key)
    if mod_name is None:
        raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(available())}")
    mod = importlib.import_module(f"{__name__}.{mod_name}")
    prov: Provider = mod.PROVIDER
    _CACHE[key] = prov
    return prov
