"""A fast ``dataclasses.replace`` for the response types, which the engine stamps on every call (endpoint, then
route)."""

from __future__ import annotations

from dataclasses import fields, replace
from operator import attrgetter
from typing import Any, TypeVar

from .types import ChatResponse, EmbedResponse

_R = TypeVar("_R")


def _spec(cls: type) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """For a slotted dataclass: a getter of every field's value (in order), each field's slot setter, and the
    setters by name."""
    names = tuple(f.name for f in fields(cls))
    setters = tuple(cls.__dict__[n].__set__ for n in names)  # the slots' member descriptors
    return attrgetter(*names), setters, dict(zip(names, setters, strict=True))


#: the response types :func:`evolve` copies slot by slot: only while they have no ``__post_init__`` (one added
#: later is honoured: that type falls back to ``replace``)
_EVOLVE: dict[type, tuple[Any, tuple[Any, ...], dict[str, Any]]] = {
    cls: _spec(cls)
    for cls in (ChatResponse, EmbedResponse)
    if not hasattr(cls, "__post_init__") and "__slots__" in cls.__dict__
}

#: the types :func:`evolve` copies slot by slot (each has a ``route`` field)
STAMPED = frozenset(_EVOLVE)


def evolve(obj: _R, **changes: Any) -> _R:
    """``dataclasses.replace(obj, **changes)``, without the call of ``__init__`` for the response types (the
    engine stamps every response twice, endpoint then route: half the cost); other types are replaced."""
    spec = _EVOLVE.get(type(obj))
    if spec is None:
        return replace(obj, **changes)  # type: ignore[type-var]
    values, setters, by_name = spec
    if not changes.keys() <= by_name.keys():
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(changes.keys() - by_name.keys())}")
    new = object.__new__(type(obj))
    for put, value in zip(setters, values(obj), strict=True):
        put(new, value)
    for name, value in changes.items():
        by_name[name](new, value)
    return new
