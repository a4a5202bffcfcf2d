"""A fast ``dataclasses.replace`` for the response types, which the engine stamps on every call (endpoint, then
route), and a fast constructor for the frozen types a parser builds on every call (:func:`fast_init`)."""

from __future__ import annotations

from dataclasses import MISSING, fields, replace
from typing import Any, TypeVar

from .types import ChatResponse, EmbedResponse

_R = TypeVar("_R")


def _copier(cls: type) -> tuple[Any, dict[str, Any]]:
    """For a slotted dataclass: a function that copies an instance slot by slot (straight-line code made once,
    as ``dataclasses`` makes ``__init__``: no loop, no name look-ups), and each field's slot setter by name."""
    names = [f.name for f in fields(cls)]
    setters = {n: cls.__dict__[n].__set__ for n in names}  # the slots' member descriptors
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = ["def copy(obj):", "    new = _new(_cls)"]
    for i, n in enumerate(names):
        env[f"_set{i}"] = setters[n]
        lines.append(f"    _set{i}(new, obj.{n})")
    lines.append("    return new")
    exec("\n".join(lines), env)  # field names of our own dataclasses (as dataclasses makes __init__)
    return env["copy"], setters


#: the response types :func:`evolve` copies slot by slot: only while they have no ``__post_init__`` (one added
#: later is honoured: that type falls back to ``replace``)
_EVOLVE: dict[type, tuple[Any, dict[str, Any]]] = {
    cls: _copier(cls)
    for cls in (ChatResponse, EmbedResponse)
    if not hasattr(cls, "__post_init__") and "__slots__" in cls.__dict__
}
#: the types :func:`evolve` copies slot by slot (each has a ``route`` field)
STAMPED = frozenset(_EVOLVE)


def evolve(obj: _R, **changes: Any) -> _R:
    """``dataclasses.replace(obj, **changes)``, without the call of ``__init__`` for the response types (the
    engine stamps every response twice, endpoint then route); other types are replaced."""
    spec = _EVOLVE.get(type(obj))
    if spec is None:
        return replace(obj, **changes)  # type: ignore[type-var]
    copy, setters = spec
    if not changes.keys() <= setters.keys():
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(changes.keys() - setters.keys())}")
    new = copy(obj)
    for name, value in changes.items():
        setters[name](new, value)
    return new  # type: ignore[no-any-return]


def fast_init(cls: type[_R]) -> type[_R]:
    """A constructor of frozen slotted dataclass ``cls`` with ``__init__``'s parameters and defaults that fills
    the slots through their setters (a frozen ``__init__`` goes through ``object.__setattr__`` by name, about
    three times slower); ``cls`` itself when it has a ``__post_init__``, a default factory or a field outside
    ``__init__`` (then nothing may be skipped)."""
    flds = fields(cls)  # type: ignore[arg-type]
    if (
        hasattr(cls, "__post_init__")
        or "__slots__" not in cls.__dict__
        or any(f.default_factory is not MISSING or not f.init or f.kw_only for f in flds)
    ):
        return cls
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    params, body = [], []
    for i, f in enumerate(flds):
        env[f"_set{i}"] = cls.__dict__[f.name].__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            env[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        body.append(f"    _set{i}(new, {f.name})")
    exec("\n".join([f"def init({', '.join(params)}):", "    new = _new(_cls)", *body, "    return new"]), env)
    return env["init"]  # type: ignore[no-any-return]
