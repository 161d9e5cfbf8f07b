"""The __init__ dataclass would have written for a value class, made only when one is asked
for (valueclass.py's "The shared __init__"): for a call whose arguments do not bind (so that
Python's binding raises its own TypeError), for inspect.signature(cls) and for the __doc__ of
a class without a docstring. Apart from valueclass.py so that its code is not loaded where
neither happens: in the idle daemon (about 9 kB).

The function is made without compiling anything per class: a copy of one template code
object (one per count of positional and keyword-only parameters) with the fields' names for
its parameters' names, its body `_store(self, plan, (the arguments))` as valueclass's.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any

from watchdog_oom import valueclass

_TEMPLATES: dict[tuple[int, int], CodeType] = {}


def _template(positional: int, keyword: int) -> CodeType:
    """The code of an __init__ with this many positional and keyword-only parameters."""
    code = _TEMPLATES.get((positional, keyword))
    if code is None:
        names = [f"a{i}" for i in range(positional + keyword)]
        parameters = ["s", *names[:positional], *(["*", *names[positional:]] if keyword else [])]
        scope: dict[str, Any] = {}
        plan = valueclass._PLAN
        exec(f"def outer({plan}):\n def __init__({', '.join(parameters)}):\n"
             f"  _store(s, {plan}, ({''.join(name + ', ' for name in names)}))\n return __init__\n",
             vars(valueclass), scope)
        made = next(c for c in scope["outer"].__code__.co_consts if isinstance(c, CodeType))
        code = _TEMPLATES[positional, keyword] = made.replace(co_qualname="__init__")
    return code


def exact(plan: tuple[Any, ...]) -> Callable[..., None]:
    """The __init__ dataclass would have written for the plan's class: the same parameters,
    defaults, annotations and name, made from a template's code with the fields' names."""
    owner, names, defaults, positional = plan[0], plan[2], plan[6], plan[7]
    me = "__dataclass_self__" if "self" in owner.__dataclass_fields__ else "self"
    code = _template(positional, len(names) - positional).replace(co_varnames=(me, *names))
    init = FunctionType(code, vars(valueclass), "__init__", None, (lambda: plan).__closure__)
    required = valueclass._REQUIRED
    init.__defaults__ = tuple(d for d in defaults[:positional] if d is not required) or None
    init.__kwdefaults__ = {name: d for name, d in zip(names[positional:], defaults[positional:], strict=True)
                           if d is not required} or None
    fields = owner.__dataclass_fields__
    init.__annotations__ = {**{name: fields[name].type for name in names}, "return": None}
    init.__qualname__, init.__module__ = f"{owner.__qualname__}.__init__", owner.__module__
    return init
