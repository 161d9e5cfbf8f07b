"""Frozen value classes that cost a fraction of a dataclass's memory: `@valueclass`.

`@dataclass(frozen=True)` writes the source of six methods for every class (__init__,
__repr__, __eq__, __hash__, __setattr__, __delattr__) and exec()s each: every class keeps
six code objects of its own, each with its line and position tables. Measured with
tracemalloc on Python 3.11, 65 slotted classes of 8 fields keep 1,072 kB as frozen
dataclasses and 457 kB as value classes. The idle daemon loads 65 of ours: it traces
0.49 MiB less with them all value classes, and benchmarks/bench_footprint.py's peak RSS
over the library floor fell from +9.0..9.2 to +8.3..8.4 MiB (side by side, load 6-8).

`valueclass` lets `dataclasses` write none of them: the six methods are the same functions
for every class. The __init__ (see "The shared __init__" below) reads a plan made once per
class: the parameters in dataclass's order, their defaults, default factories,
field(init=False) and __post_init__ with its InitVars, all as in any dataclass; arguments
that do not bind are handed to the __init__ dataclass would have written, made then without
compiling anything, so the TypeError is Python's own, and inspect.signature(cls) and a class
without a docstring's __doc__ are dataclass's. It costs no code object per class (about
1.3 kB each, 80 kB in the idle daemon) but a call takes about a microsecond more (binding
keywords in Python): `compiled_init=True` keeps dataclass's own __init__ for a class built
per line or per row. The other methods read the fields through an `operator.attrgetter` made
once per class (C code: comparing costs what
the generated tuples did). The class stays a dataclass wherever the code relies on one:
`dataclasses.fields`, `replace`, `asdict`, `is_dataclass`, `__match_args__`, pickling
(slotted classes get dataclasses' own __getstate__ and __setstate__). Assigning or deleting
a field raises `dataclasses.FrozenInstanceError` with dataclass's message; so does any other
name on a value class's own instance (a slotted dataclass on 3.11 raises TypeError there
instead, CPython gh-105936). Equality is by class and the fields that compare, the hash
dataclass's `hash((field, ...))` of the fields that hash, the repr dataclass's
`Name(field=value, ...)` of the fields shown ("..." where a value holds itself). A method
the class body writes itself (__init__, __eq__, __repr__, __hash__) is kept; a class that writes
__eq__ but no __hash__ still hashes by its fields, as a frozen dataclass does.
`__dataclass_params__` says init=False, eq=False and repr=False: those methods are ours, not
generated.

    @valueclass                  # as @dataclass(frozen=True, slots=True)
    @valueclass(slots=False)     # as @dataclass(frozen=True): instances keep a __dict__
    @valueclass(frozen=False)    # as @dataclass(slots=True): mutable, unhashable, eq by fields
    @valueclass(frozen=False, slots=False, eq=False)   # as @dataclass(eq=False): by identity
    @valueclass(fast_init=True)  # as @valueclass, its __init__ faster (below)
    @valueclass(compiled_init=True)  # as @valueclass, with dataclass's own __init__

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
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter, itemgetter
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


# The shared __init__. Every value class but fast_init's has the same __init__ function,
# `_init` below, which reads the class's plan (its fields in parameter order, their
# defaults, how each is set: _plan) and does what the __init__ dataclass would have written
# does, step by step. Arguments it cannot bind (too many, a name twice, a required one
# missing, an unknown keyword) are handed to the __init__ dataclass would have written,
# made for the occasion without compiling anything (_exact, valueclass_exact.py): Python's
# binding raises its own TypeError, message and all. `inspect.signature(cls)` is that
# function's too (_Signature), and so is the __doc__ of a class without a docstring
# (_Doc). A class costs its plan, not a code object of its own.
_PLAN = f"{_OWN}plan__"  # the exact __init__'s one free variable: the class's plan
_GIVEN, _FACTORY, _MADE, _DEFAULT = range(4)  # where a field's value comes from (a plan's steps)
_HAS_DEFAULT_FACTORY: Any = dataclasses._HAS_DEFAULT_FACTORY  # type: ignore[attr-defined]  # "<factory>"
_INITVAR: Any = dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]
_CLASSVAR: Any = dataclasses._FIELD_CLASSVAR  # type: ignore[attr-defined]
_REQUIRED: Any = dataclasses.MISSING  # the default of a parameter that has none


def _exact(plan: tuple[Any, ...]) -> Callable[..., None]:
    """The __init__ dataclass would have written for the plan's class (valueclass_exact.py).
    Loaded when first needed: a call whose arguments do not bind (a bug, which raises either
    way: TypeError, or ImportError should the package be mid-upgrade), inspect.signature(cls),
    an undocumented class's __doc__."""
    from watchdog_oom.valueclass_exact import exact

    return exact(plan)


def _store(self: Any, plan: tuple[Any, ...], values: Sequence[Any]) -> None:
    """The body of dataclass's __init__: each field set, in order, then __post_init__."""
    _, setter, names, factories, steps, post_init = plan[:6]
    if steps is None:  # every field a parameter, in order
        if factories is not None:  # (the parameters whose default is the factory's marker)
            values = list(values)
            for at, factory in factories:
                if values[at] is _HAS_DEFAULT_FACTORY:
                    values[at] = factory()
        any(map(setter, repeat(self), names, values))  # each set in C; None is false: all are
    else:
        for name, source, what in steps:
            if source is _GIVEN:
                value = values[what]
            elif source is _FACTORY:  # a parameter whose default is the factory's marker
                value = values[what[0]]
                if value is _HAS_DEFAULT_FACTORY:
                    value = what[1]()
            elif source is _MADE:  # field(init=False, default_factory=...)
                value = what()
            else:  # field(init=False, default=...) of a slotted class
                value = what
            setter(self, name, value)
    if post_init is not None:
        self.__post_init__(*[values[i] for i in post_init])


def _init(self: Any, /, *args: Any, **kwargs: Any) -> None:
    """Every value class's __init__ (but fast_init's): see above."""
    plan = type(self).__valueclass__[3]
    names = plan[2]
    if kwargs:  # (this call's own dict) each parameter's value or default taken out in C (map)
        given = len(args)
        if given and (given > plan[7] or any(map(kwargs.__contains__, names[:given]))):
            return _exact(plan)(self, *args, **kwargs)  # raises dataclass's TypeError
        values = list(map(kwargs.pop, names, plan[6]))
        if kwargs:  # a keyword no parameter has: the first is the one Python names
            return _exact(plan)(self, *args, **kwargs)
        if given:
            values[:given] = args
    elif len(args) == plan[9]:  # every parameter given by position
        values = args  # type: ignore[assignment]
    elif len(args) > plan[7]:
        return _exact(plan)(self, *args, **kwargs)
    else:
        values = [*args, *plan[6][len(args):]]
    for at in plan[8]:  # the parameters without a default
        if values[at] is _REQUIRED:  # the keywords given, taken out of kwargs above
            return _exact(plan)(self, *args, **{name: value for name, value, default in zip(
                names[len(args):], values[len(args):], plan[6][len(args):], strict=True) if value is not default})
    if plan[10]:  # each parameter its field, in order: set in C (map)
        any(map(plan[1], repeat(self), names, values))
    else:
        _store(self, plan, values)
    return None


class _Signature:
    """`inspect.signature(cls)` of a class whose __init__ is the shared one: dataclass's."""

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is not None or owner.__init__ is not _init:  # type: ignore[misc]
            raise AttributeError("__signature__")  # inspect goes on as for any other class
        signature = inspect.signature(_exact(owner.__valueclass__[3]))  # type: ignore[attr-defined]
        return signature.replace(parameters=tuple(signature.parameters.values())[1:])


_SIGNATURE = _Signature()


class _Doc:
    """The __doc__ of a class without a docstring whose __init__ is the shared one: dataclass's,
    its name and signature, made when asked for."""

    def __get__(self, instance: Any, owner: type) -> str:
        return owner.__name__ + str(inspect.signature(owner)).replace(" -> None", "")


_DOC = _Doc()


def _default(f: dataclasses.Field[Any]) -> Any:
    """A parameter's default in dataclass's __init__: the field's, the factory's marker, or none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    return _REQUIRED if f.default_factory is dataclasses.MISSING else _HAS_DEFAULT_FACTORY


def _plan(made: Any, slots: bool, frozen: bool) -> tuple[Any, ...]:
    """What the shared __init__ needs of `made` (a dataclass made with init=False), checked
    as dataclass checks it: (the class, how a field is set, the parameters' names, the
    parameters with a default factory as (position, factory) or None, the steps (name,
    source, what) or None when each parameter is its field in order, the InitVars'
    positions given to __post_init__ or None without one, the parameters' defaults, how
    many are positional, the positions of those without a default, their count when all
    are positional (else -1), whether each parameter is its field in order with nothing else
    to do). The steps are dataclass's _field_init's, in its order."""
    declared, initvars, ordered = [], [], []
    for f in made.__dataclass_fields__.values():
        if f._field_type is not _CLASSVAR:
            declared.append(f)
            if f.init and not f.kw_only:
                ordered.append(f)
    positional = len(ordered)
    ordered += [f for f in declared if f.init and f.kw_only]
    names = tuple(map(attrgetter("name"), ordered))
    if names == made.__match_args__:  # one tuple, not two
        names = made.__match_args__
    if _PLAN in made.__dataclass_fields__:
        raise TypeError(f"{made.__qualname__}: the name {_PLAN} is valueclass's own")
    defaults = tuple(map(_default, ordered))
    seen_default = False
    for f, default in zip(ordered[:positional], defaults[:positional], strict=True):
        if default is not _REQUIRED:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    steps: list[tuple[str, int, Any]] = []
    for f in declared:
        if f._field_type is _INITVAR:
            initvars.append(names.index(f.name))
        elif f.init:
            at = names.index(f.name)
            steps.append((f.name, _GIVEN, at) if f.default_factory is dataclasses.MISSING
                         else (f.name, _FACTORY, (at, f.default_factory)))
        elif f.default_factory is not dataclasses.MISSING:
            steps.append((f.name, _MADE, f.default_factory))
        elif slots and f.default is not dataclasses.MISSING:
            steps.append((f.name, _DEFAULT, f.default))
    simple = tuple(map(itemgetter(0), steps)) == names  # each parameter its field, in order
    factories = tuple(what for _, source, what in steps if source is _FACTORY) or None
    post_init = tuple(initvars) if hasattr(made, "__post_init__") else None
    required = tuple(at for at, default in enumerate(defaults) if default is _REQUIRED)
    return (made, object.__setattr__ if frozen else setattr, names, factories if simple else None,
            None if simple else tuple(steps), post_init, defaults, positional, required,
            len(names) if positional == len(names) else -1, simple and factories is None and post_init is None)


def _make(cls: type[_T], slots: bool, frozen: bool, eq: bool, fast_init: bool = False,
          compiled_init: bool = False) -> type[_T]:
    own = cls.__dict__
    # dataclass's rule: a class body that defines __eq__ and no __hash__ gets __hash__ =
    # None from Python, which a frozen dataclass replaces by the fields' hash all the same.
    keeps_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    keeps_eq, keeps_repr, keeps_init = "__eq__" in own, "__repr__" in own, "__init__" in own
    undocumented, shared_init = not cls.__doc__, not (fast_init or compiled_init or keeps_init)
    if undocumented:  # (every class of the package, loaded without docstrings: lean.py)
        # dataclass would write the class's doc itself, its name and signature, as it makes it:
        # for the shared __init__ that means compiling the exact one (valueclass_exact.py) for
        # every class. The doc is made when it is read instead (_DOC below).
        type.__setattr__(cls, "__doc__", "(made when read)")
    if shared_init:  # before slots=True makes the class again: its dict is made with them
        type.__setattr__(cls, "__init__", _init)
        type.__setattr__(cls, "__signature__", _SIGNATURE)
    made: Any = dataclasses.dataclass(cls, init=not shared_init, frozen=frozen, slots=slots, repr=False, eq=False)
    if made.__dict__.get("__slots__") == made.__match_args__:  # one tuple for both
        made.__match_args__ = made.__slots__  # type: ignore[misc]
    plan: tuple[Any, ...] | None
    if shared_init:
        plan = _plan(made, slots, frozen)
    else:  # dataclass's, or one the class writes, which may call the base's: the shared one
        plan = None if fast_init or compiled_init else getattr(made, _SHAPE, (None,) * 4)[3]
    fields = dataclasses.fields(made)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    eq_key, shown = _key(compared), tuple(f.name for f in fields if f.repr)
    setattr(made, _SHAPE, (eq_key, eq_key if hashed == compared else _key(hashed),
                           shown if shown != made.__match_args__ else made.__match_args__, plan))
    if undocumented:  # dataclass's doc: the class's name and signature
        made.__doc__ = _DOC
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
def valueclass(*, slots: bool = True, frozen: bool = True, eq: bool = True, fast_init: bool = False,
               compiled_init: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def valueclass(cls: type[_T] | None = None, /, *, slots: bool = True, frozen: bool = True, eq: bool = True,
               fast_init: bool = False, compiled_init: bool = False) -> Any:
    """Makes `cls` a dataclass, frozen and slotted unless told otherwise, with shared methods."""
    if cls is None:
        return lambda cls: _make(cls, slots, frozen, eq, fast_init, compiled_init)
    return _make(cls, slots, frozen, eq, fast_init, compiled_init)
