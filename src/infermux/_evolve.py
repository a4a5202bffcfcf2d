"""A fast ``dataclasses.replace`` for the response types, which the engine stamps on every call (endpoint, then
route)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from .types import ChatResponse, EmbedResponse

_R = TypeVar("_R")
#: the response types :func:`evolve` copies field by field: only while they have no ``__post_init__`` (one added
#: later is honoured: that type falls back to ``replace``)
_EVOLVE: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {
    cls: (names, frozenset(names))
    for cls in (ChatResponse, EmbedResponse)
    if not hasattr(cls, "__post_init__")
    for names in [tuple(f.name for f in fields(cls))]
}


def evolve(obj: _R, **changes: Any) -> _R:
    """``dataclasses.replace(obj, **changes)``, without the call of ``__init__`` for the response types (the
    engine stamps every response twice, endpoint then route: half the cost); other types are replaced."""
    spec = _EVOLVE.get(type(obj))
    if spec is None:
        return replace(obj, **changes)  # type: ignore[type-var]
    names, known = spec
    if not changes.keys() <= known:
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(changes.keys() - known)}")
    new = object.__new__(type(obj))
    for name in names:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(obj, name))
    return new
