"""Frozen value classes that cost a fraction of a dataclass's memory: `@valueclass`.

`@dataclass(frozen=True)` writes the source of six methods for every class (__init__,
__repr__, __eq__, __hash__, __setattr__, __delattr__) and exec()s each: every class keeps
six code objects of its own, each with its line and position tables. Measured with
tracemalloc on Python 3.11, 65 slotted classes of 8 fields keep 1,072 kB as frozen
dataclasses and 457 kB as value classes. The idle daemon loads 65 of ours: it traces
0.49 MiB less with them all value classes, and benchmarks/bench_footprint.py's peak RSS
over the library floor fell from +9.0..9.2 to +8.3..8.4 MiB (side by side, load 6-8).

`valueclass` lets `dataclasses` write __init__ alone, so defaults, default_factory,
field(init=False) and __post_init__ work as in any dataclass, and construction costs what
it did. The five other methods are the same functions for every class; they read the
fields through an `operator.attrgetter` made once per class (C code: comparing costs what
the generated tuples did). The class stays a dataclass wherever the code relies on one:
`dataclasses.fields`, `replace`, `asdict`, `is_dataclass`, `__match_args__`, pickling
(slotted classes get dataclasses' own __getstate__ and __setstate__). Assigning or deleting
a field raises `dataclasses.FrozenInstanceError` with dataclass's message; so does any other
name on a value class's own instance (a slotted dataclass on 3.11 raises TypeError there
instead, CPython gh-105936). Equality is by class and the fields that compare, the hash
dataclass's `hash((field, ...))` of the fields that hash, the repr dataclass's
`Name(field=value, ...)` of the fields shown ("..." where a value holds itself). A method
the class body writes itself (__eq__, __repr__, __hash__) is kept; a class that writes
__eq__ but no __hash__ still hashes by its fields, as a frozen dataclass does.
`__dataclass_params__` says eq=False and repr=False: those methods are ours, not generated.

    @valueclass                  # as @dataclass(frozen=True, slots=True)
    @valueclass(slots=False)     # as @dataclass(frozen=True): instances keep a __dict__
    @valueclass(frozen=False)    # as @dataclass(slots=True): mutable, unhashable, eq by fields
    @valueclass(frozen=False, slots=False, eq=False)   # as @dataclass(eq=False): by identity

The few mutable ones (the daemon's shared state, a scan's accumulators) go through it too,
for their shared __repr__ and __eq__ (about 20 kB of the daemon's for nine classes), and so
that the package has one rule: a dataclass is declared with `@valueclass`.
"""

from __future__ import annotations

import _thread
import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")

# What the shared methods read, one class attribute (a slotted instance has no room for it
# and needs none): (the key of the fields that compare, of those that hash, the names of
# those shown). One attribute, not three: each new name grows the class's dict.
_SHAPE = "__valueclass__"


def _no_fields(obj: object) -> tuple[()]:
    return ()


def _key(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving the tuple of these attributes, as dataclass's `(self.a, self.b)`.

    Always a tuple, even of one field: tuples compare items by identity first (a NaN
    equals itself inside one), and hash((x,)) is what dataclass hashes.
    """
    if len(names) > 1:
        return attrgetter(*names)
    if not names:
        return _no_fields
    one = attrgetter(names[0])
    return lambda obj: (one(obj),)


def _eq(self: Any, other: Any) -> Any:
    cls = type(self)
    if type(other) is cls:
        key = cls.__valueclass__[0]
        return key(self) == key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(type(self).__valueclass__[1](self))


# (id, thread) of the instances whose repr is being built: a value that contains itself
# reads "...", as dataclass's repr (reprlib.recursive_repr) does.
_repr_running: set[tuple[int, int]] = set()


def _repr(self: Any) -> str:
    running = id(self), _thread.get_ident()
    if running in _repr_running:
        return "..."
    _repr_running.add(running)
    try:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__valueclass__[2])
    finally:
        _repr_running.discard(running)
    return f"{type(self).__qualname__}({shown})"


def _frozen(self: Any, name: str) -> bool:
    """Whether `name` may not change: any attribute of a value class's instance, and the
    fields of an instance of a subclass that is no value class (as dataclass's __setattr__)."""
    cls = type(self)
    return _SHAPE in cls.__dict__ or any(f.name == name for f in dataclasses.fields(cls))


def _setattr(self: Any, name: str, value: Any) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _make(cls: type[_T], slots: bool, frozen: bool, eq: bool) -> type[_T]:
    own = cls.__dict__
    # dataclass's rule: a class body that defines __eq__ and no __hash__ gets __hash__ =
    # None from Python, which a frozen dataclass replaces by the fields' hash all the same.
    keeps_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    keeps_eq, keeps_repr = "__eq__" in own, "__repr__" in own
    made: Any = dataclasses.dataclass(cls, frozen=frozen, slots=slots, repr=False, eq=False)
    fields = dataclasses.fields(made)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    eq_key = _key(compared)
    setattr(made, _SHAPE, (eq_key, eq_key if hashed == compared else _key(hashed),
                           tuple(f.name for f in fields if f.repr)))
    if not keeps_repr:
        made.__repr__ = _repr
    if eq and not keeps_eq:
        made.__eq__ = _eq
    if eq and not keeps_hash:
        made.__hash__ = _hash if frozen else None
    if frozen:
        made.__setattr__ = _setattr
        made.__delattr__ = _delattr
    return made


@overload
def valueclass(cls: type[_T], /) -> type[_T]: ...


@overload
def valueclass(*, slots: bool = True, frozen: bool = True, eq: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def valueclass(cls: type[_T] | None = None, /, *, slots: bool = True, frozen: bool = True, eq: bool = True) -> Any:
    """Makes `cls` a dataclass, frozen and slotted unless told otherwise, with shared methods."""
    if cls is None:
        return lambda cls: _make(cls, slots, frozen, eq)
    return _make(cls, slots, frozen, eq)
