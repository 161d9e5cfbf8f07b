"""The package's own modules, loaded without their docstrings and their functions' annotations.

Nothing in watchdog-oom reads its own docstrings or the annotations of its functions at run
time: they are for whoever reads the source (and mypy, which reads the source too). Python keeps
both in memory all the same, for every module, class and function loaded: in the idle daemon
about 200 KiB of docstrings and 85 KiB of annotations (tracemalloc, Python 3.11), a tenth of
what the package's own modules take, on a host that may be short of memory. `python -OO` would
drop the docstrings, but of every library in the process as well (and asserts), and a program
cannot choose the flags it runs with. So `watchdog_oom/__init__.py` calls `install()`, which puts
`Finder` first on `sys.meta_path`: a module of this package is found as usual (same file, same
.pyc, written and read as usual) and its code is then copied without its docstrings
(`strip_docstrings`); once the module has run, its functions and methods let go of their
annotations (`drop_annotations`). Libraries are untouched, and so is everything else about our
code: line numbers and column positions in tracebacks, class annotations (a value class's
fields), `inspect.signature` (without annotations).

Afterwards `__doc__` is None for this package's modules, classes and functions (a value class
without one shows dataclass's signature, as a dataclass does) and a function's `__annotations__`
is empty. Set WATCHDOG_OOM_KEEP_DOCS=1 to load them whole, e.g. for help() at a prompt. Only the
CPython versions whose code layout this knows (3.11 to 3.13) are stripped; on any other the
finder is not installed and the modules load whole.

How a docstring is found in the code, on those versions: a function's is its code's first
constant (None when it has none, which is why a constant used elsewhere in the function can sit
there only if the function has no docstring: then some instruction loads it, and it is left);
a module's or class body's is the constant its first statement stores to `__doc__` (after a
class's own __module__ and __qualname__). A constant any other instruction loads (LOAD_CONST,
3.12's RETURN_CONST) is kept.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder, SourceFileLoader, SourcelessFileLoader
from opcode import EXTENDED_ARG, opmap
from types import CodeType, FunctionType, ModuleType
from typing import Any

_PACKAGE = __name__.partition(".")[0] + "."
_LOAD_CONST, _STORE_NAME = opmap["LOAD_CONST"], opmap["STORE_NAME"]
# The instructions that load a constant by its index: LOAD_CONST, and from 3.12 RETURN_CONST.
_LOADS_CONST = tuple(opmap[name] for name in ("LOAD_CONST", "RETURN_CONST") if name in opmap)
# What a class body stores before anything of its own (3.13 adds __firstlineno__), loaded by
# LOAD_NAME or LOAD_CONST, and the instructions a body may open with before its statements.
_PREAMBLE = frozenset({"__module__", "__qualname__", "__firstlineno__"})
_LOADS_NAME = (opmap["LOAD_NAME"], opmap["LOAD_CONST"])
_PROLOGUE = tuple(opmap[name] for name in ("RESUME", "NOP", "MAKE_CELL", "COPY_FREE_VARS", "SETUP_ANNOTATIONS")
                  if name in opmap)
_FUNCTION = 0x1 | 0x2  # CO_OPTIMIZED | CO_NEWLOCALS: a function's code, not a module's or class body's


def supported() -> bool:
    """Whether this interpreter's code objects are laid out as `strip_docstrings` expects."""
    return sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] <= (3, 13)


def _loads(code: bytes, index: int) -> int:
    """How many instructions of `code` load constant `index` (< 256)."""
    count = 0
    for op in _LOADS_CONST:
        pattern = bytes((op, index))
        at = code.find(pattern)
        while at >= 0:
            if at % 2 == 0 and (at == 0 or code[at - 2] != EXTENDED_ARG):
                count += 1
            at = code.find(pattern, at + 1)
    return count


def _body_docstring(code: CodeType, bytecode: bytes) -> int | None:
    """The index of a module's or class body's docstring: the constant its first statement
    stores to `__doc__`, where that statement comes first (after a class's own __module__,
    __qualname__ and __firstlineno__), else None."""
    at, names = 0, code.co_names
    while at + 3 < len(bytecode):
        if bytecode[at] in _PROLOGUE:
            at += 2
        elif bytecode[at] in _LOADS_NAME and bytecode[at + 2] == _STORE_NAME and names[bytecode[at + 3]] in _PREAMBLE:
            at += 4
        else:
            break
    if (at + 3 < len(bytecode) and bytecode[at] == _LOAD_CONST and bytecode[at + 2] == _STORE_NAME
            and names[bytecode[at + 3]] == "__doc__"):
        return bytecode[at + 1]
    return None


def strip_docstrings(code: CodeType) -> CodeType:
    """A copy of `code` and of the code nested in it (functions, classes, comprehensions)
    without docstrings. Always a copy: reading `co_code` caches a copy of the bytecode on the
    code object it is read from, which the original then keeps."""
    consts = list(code.co_consts)
    for at, const in enumerate(consts):
        if type(const) is CodeType:
            consts[at] = strip_docstrings(const)
    bytecode = code.co_code
    index: int | None
    if code.co_flags & _FUNCTION == _FUNCTION:  # its first constant, which nothing loads
        index, loaded = 0, 0
    else:  # the constant stored to __doc__, loaded by that store alone
        index, loaded = _body_docstring(code, bytecode), 1
    if index is not None and index < len(consts) and type(consts[index]) is str and _loads(bytecode, index) == loaded:
        consts[index] = None
    return code.replace(co_consts=tuple(consts))


def _drop(values: Any, module: str, classes: list[type]) -> None:
    """Drop the annotations of the functions among `values` that `module` defines; collect
    its classes, whose methods are next."""
    for value in values:
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        accessors = (value.fget, value.fset, value.fdel) if isinstance(value, property) else (value,)
        for function in accessors:
            if type(function) is FunctionType and function.__module__ == module:
                function.__annotations__ = None  # type: ignore[assignment]  # freed; reads give {}
        if isinstance(value, type) and value.__module__ == module:
            classes.append(value)


def drop_annotations(namespace: dict[str, Any], module: str) -> None:
    """Let the functions, methods (static, class, property accessors) and classes, nested ones
    too, that `module` defines and `namespace` holds let go of their functions' annotations. A
    class's own `__annotations__` (its fields) stay."""
    classes: list[type] = []
    _drop(namespace.values(), module, classes)
    seen: set[int] = set()
    while classes:
        cls = classes.pop()
        if id(cls) not in seen:
            seen.add(id(cls))
            _drop(list(vars(cls).values()), module, classes)


class _Lean:
    """What a module's loader does here beyond the usual: strip the code, then the annotations."""

    def get_code(self, fullname: str) -> CodeType | None:
        code: CodeType | None = super().get_code(fullname)  # type: ignore[misc]
        return None if code is None else strip_docstrings(code)

    def exec_module(self, module: ModuleType) -> None:
        super().exec_module(module)  # type: ignore[misc]
        drop_annotations(vars(module), module.__name__)


class _LeanSource(_Lean, SourceFileLoader):  # type: ignore[misc]  # (typeshed's two bases disagree)
    pass


class _LeanSourceless(_Lean, SourcelessFileLoader):
    pass


class Finder:
    """The meta path finder of this package's modules: found by the usual path finder, loaded
    by a loader of the same kind that strips them."""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        if not name.startswith(_PACKAGE):
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        if type(loader) is SourceFileLoader:
            spec.loader = _LeanSource(loader.name, loader.path)
        elif type(loader) is SourcelessFileLoader:
            spec.loader = _LeanSourceless(loader.name, loader.path)
        return spec

    @classmethod
    def invalidate_caches(cls) -> None:
        pass


def install() -> bool:
    """Put `Finder` first on `sys.meta_path`, once, where it applies; whether it is there."""
    if any(finder is Finder for finder in sys.meta_path):
        return True
    if not supported() or os.environ.get("WATCHDOG_OOM_KEEP_DOCS"):
        return False
    sys.meta_path.insert(0, Finder)
    return True
