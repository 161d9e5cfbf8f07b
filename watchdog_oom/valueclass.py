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
    @valueclass(fast_init=True)  # as @valueclass, its __init__ faster (below)

`@valueclass(fast_init=True)`, for a class built by the thousand (a parsed kill, a kill line
held): its __init__ writes the fields through a twin, a plain class with the same slots and no
__setattr__ of its own. A frozen class's dataclass __init__ sets each field with
object.__setattr__(self, name, value), a call that looks the name up: 29 of them made an
OomKill in 2.7 us. The fast __init__ turns the instance into its twin (`__class__` may change
between classes whose slots are the same, in the same order, on the same base), stores the
fields as plain attributes (the interpreter's specialised slot store, a few ns each) and turns
it back: 0.65 us. No statement between the two turns can raise (default factories run
before), so no instance is left a twin; only an asynchronous exception (a signal handler
raising there) could, and then the caller gets no instance: the twin lives on only in the
traceback's frame. An instance of a subclass is built by dataclass's __init__. The
generated code's own names (`__valueclass_self__`, …) cannot be a field's (TypeError).
It keeps dataclass's signature: the same parameters, defaults, keyword-only fields and default
factories; a class with a __post_init__, an init=False field, an InitVar or a slotted base
cannot have it (TypeError). The twin and the second __init__ cost 6 to 9 kB a class (traced,
8 and 29 fields), hence the option: two classes use it, OomKill and the rejoiner's _Held.

The few mutable ones (the daemon's shared state, a scan's accumulators) go through it too,
for their shared __repr__ and __eq__ (about 20 kB of the daemon's for nine classes), and so
that the package has one rule: a dataclass is declared with `@valueclass`.
"""

from __future__ import annotations

import _thread
import dataclasses
import inspect
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


# The prefix of the generated __init__'s own names (as dataclass's `__dataclass_self__`):
# no field may start with it, so a field's parameter never hides one of them.
_OWN = "__valueclass_"


def _fast_init(made: Any) -> Callable[..., None]:
    """The __init__ of a frozen slotted value class that writes its fields through a twin
    class (see the module's docstring), with the signature of dataclass's own `made.__init__`."""
    fields = dataclasses.fields(made)
    names = tuple(f.name for f in fields)
    original = made.__init__
    signature = inspect.signature(original)
    if (made.__bases__ != (object,) or "__post_init__" in made.__dict__ or made.__slots__ != names
            or tuple(signature.parameters)[1:] != names):
        raise TypeError(f"{made.__qualname__}: fast_init needs the fields alone, all in __init__, on no base")
    twin = type(made.__name__, (), {"__slots__": names, "__module__": made.__module__,
                                    "__qualname__": f"{made.__qualname__}.<twin>"})
    if any(name.startswith(_OWN) for name in names):
        raise TypeError(f"{made.__qualname__}: fast_init keeps the names {_OWN}… for its own code")
    scope: dict[str, Any] = {f"{_OWN}cls__": made, f"{_OWN}twin__": twin, f"{_OWN}init__": original,
                             f"{_OWN}type__": type, f"{_OWN}set__": object.__setattr__}
    parameters, made_lines = [], []
    for f in fields:
        parameter = signature.parameters[f.name]
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in parameters:
            parameters.append("*")
        parameters.append(f.name)
        if f.default_factory is not dataclasses.MISSING:  # dataclass's sentinel stands in the signature
            unset, factory = f"{_OWN}unset_{f.name}__", f"{_OWN}factory_{f.name}__"
            scope[unset], scope[factory] = parameter.default, f.default_factory
            made_lines.append(f"    if {f.name} is {unset}:\n        {f.name} = {factory}()\n")
    arguments = ", ".join(f"{name}={name}" for name in names)
    me = f"{_OWN}self__"
    source = (f"def __init__({me}, {', '.join(parameters)}):\n"
              f"    if {_OWN}type__({me}) is not {_OWN}cls__:\n        return {_OWN}init__({me}, {arguments})\n"
              + "".join(made_lines) + f"    {_OWN}set__({me}, '__class__', {_OWN}twin__)\n"
              + "".join(f"    {me}.{name} = {name}\n" for name in names) + f"    {me}.__class__ = {_OWN}cls__\n")
    exec(source, scope)
    init = scope["__init__"]
    init.__defaults__, init.__kwdefaults__ = original.__defaults__, original.__kwdefaults__
    init.__annotations__ = original.__annotations__
    init.__qualname__, init.__module__ = original.__qualname__, made.__module__
    return init


def _make(cls: type[_T], slots: bool, frozen: bool, eq: bool, fast_init: bool = False) -> type[_T]:
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
    if fast_init:
        if not (frozen and slots):
            raise TypeError(f"{cls.__qualname__}: fast_init is for frozen slotted classes")
        made.__init__ = _fast_init(made)
    return made


@overload
def valueclass(cls: type[_T], /) -> type[_T]: ...


@overload
def valueclass(*, slots: bool = True, frozen: bool = True, eq: bool = True,
               fast_init: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def valueclass(cls: type[_T] | None = None, /, *, slots: bool = True, frozen: bool = True, eq: bool = True,
               fast_init: bool = False) -> Any:
    """Makes `cls` a dataclass, frozen and slotted unless told otherwise, with shared methods."""
    if cls is None:
        return lambda cls: _make(cls, slots, frozen, eq, fast_init)
    return _make(cls, slots, frozen, eq, fast_init)
