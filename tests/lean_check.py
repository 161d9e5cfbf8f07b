"""watchdog_oom/lean.py's strip_docstrings checked against `dis`, by any CPython 3.11 to 3.13.

Needs only the standard library (lean.py is loaded alone, by its path), so that another
interpreter than the one running the tests can check it: the code layout differs by version
(3.12 loads constants with RETURN_CONST too, 3.13 stores __firstlineno__ in class bodies).

    python3.12 tests/lean_check.py    prints {"version", "stripped", "problems"} as JSON

The differential compiles every module of the package; for each code object, the stripped
copy must be the same code, constant for constant, but for its docstrings, which are found
here from `dis`'s instructions, not by lean.py's reading of the bytecode. The behaviour cases
run small sources compiled and stripped and compare what they compute.
"""

from __future__ import annotations

import dis
import importlib.util
import json
import sys
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONST_LOADS = {"LOAD_CONST", "RETURN_CONST"}
PREAMBLE = {"__module__", "__qualname__", "__firstlineno__"}
PROLOGUE = {"RESUME", "NOP", "MAKE_CELL", "COPY_FREE_VARS", "CACHE", "SETUP_ANNOTATIONS"}

# (source, the name whose value must be the same compiled and stripped)
CASES = {
    "docstring == returned constant": ('def f():\n    "error"\n    return "error"\nRESULT = f()', "RESULT"),
    "docstring == returned constant, method": (
        'class K:\n    def kind(self):\n        """oom"""\n        return "oom"\nRESULT = K().kind()', "RESULT"),
    "docstring == yielded constant": ('def g():\n    "x"\n    yield "x"\nRESULT = list(g())', "RESULT"),
    "docstring == constant in an expression": ('def f(a):\n    "doc"\n    return a or "doc"\nRESULT = f(0)', "RESULT"),
    "async docstring == returned constant": (
        'import asyncio\nasync def f():\n    "a"\n    return "a"\nRESULT = asyncio.run(f())', "RESULT"),
    "lambda returning a string": ('f = lambda x: "s" if x else "t"\nRESULT = (f(1), f(0))', "RESULT"),
    "no docstring, returns a string": ('def f():\n    return "plain"\nRESULT = f()', "RESULT"),
    "module __doc__ assigned after a statement": ('import os\n__doc__ = "usage"\nRESULT = __doc__', "RESULT"),
    "module __doc__ assigned after an expression": ('len("x")\n__doc__ = "usage"\nRESULT = __doc__', "RESULT"),
    "class using super(), docstring": (
        'class A:\n    "doc"\n    def f(self):\n        return super().__repr__()[:1]\nRESULT = (A.__doc__, A().f())',
        "RESULT"),
    "class __doc__ assigned after a statement": (
        'class A:\n    x = 1\n    __doc__ = "set"\nRESULT = A.__doc__', "RESULT"),
    "class docstring also a field's value": ('class A:\n    "v"\n    x = "v"\nRESULT = A.x', "RESULT"),
    "nested class, docstring == returned": (
        'class O:\n    class I:\n        def m(self):\n            "in"\n            return "in"\nRESULT = O.I().m()',
        "RESULT"),
    "f-string first statement": ('x = 1\ndef f():\n    f"{x} doc"\n    return 2\nRESULT = f()', "RESULT"),
    "comprehension of a string": ('RESULT = ["abc" for _ in range(2)]', "RESULT"),
    "docstring read as __doc__ (None once stripped)": ('def f():\n    "help text"\nRESULT = f.__doc__', "RESULT"),
}
STRIPPED_CASES = {"docstring read as __doc__ (None once stripped)": None, "class using super(), docstring": (None, "<")}


def load_lean() -> ModuleType:
    spec = importlib.util.spec_from_file_location("watchdog_oom_lean_alone", ROOT / "watchdog_oom" / "lean.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def codes(code: CodeType) -> list[CodeType]:
    """`code` and every code object nested in it, depth first, in constant order."""
    found = [code]
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found += codes(const)
    return found


def docstring_constants(code: CodeType) -> set[int]:
    """The constants of `code` that are a docstring, by `dis`: a function's first constant if it
    is a string no instruction loads; a body's constant that its first statement of its own
    stores to __doc__, loaded by that store alone."""
    instructions = list(dis.get_instructions(code))
    loads: dict[Any, int] = {}
    for instruction in instructions:
        if instruction.opname in CONST_LOADS:
            loads[instruction.arg] = loads.get(instruction.arg, 0) + 1
    if code.co_flags & 0x3 == 0x3:
        return {0} if code.co_consts and isinstance(code.co_consts[0], str) and 0 not in loads else set()
    own = [i for i in instructions if i.opname not in PROLOGUE]
    while len(own) > 1 and own[1].opname == "STORE_NAME" and own[1].argval in PREAMBLE:
        own = own[2:]  # a class's own __module__, __qualname__, __firstlineno__
    if (len(own) > 1 and own[0].opname == "LOAD_CONST" and isinstance(own[0].argval, str)
            and own[1].opname == "STORE_NAME" and own[1].argval == "__doc__" and loads[own[0].arg] == 1):
        return {own[0].arg}  # type: ignore[arg-type]
    return set()


def differential(lean: Any, paths: list[Path]) -> tuple[int, list[str]]:
    """How many docstrings stripping removed from these files, and what else it changed."""
    stripped, problems = 0, []
    for path in paths:
        original = compile(path.read_text(), str(path), "exec")
        for before, after in zip(codes(original), codes(lean.strip_docstrings(original)), strict=True):
            where = f"{path.relative_to(ROOT)}:{before.co_qualname}"
            if after.co_code != before.co_code or after.co_linetable != before.co_linetable:
                problems.append(f"{where}: code or line table changed")
            if after.co_names != before.co_names or after.co_varnames != before.co_varnames:
                problems.append(f"{where}: names changed")
            docstrings = docstring_constants(before)
            for at, (old, new) in enumerate(zip(before.co_consts, after.co_consts, strict=True)):
                if at in docstrings:
                    stripped += new is None
                    if new is not None:
                        problems.append(f"{where}: docstring kept")
                elif isinstance(old, CodeType):
                    if not isinstance(new, CodeType) or new.co_qualname != old.co_qualname:
                        problems.append(f"{where}: nested code {at} changed")
                elif not (new is old or new == old):
                    problems.append(f"{where}: constant {at} ({old!r:.40}) became {new!r:.40}")
    return stripped, problems


def behaviour(lean: Any) -> list[str]:
    """The cases whose stripped code computes something else than the compiled one."""
    problems = []
    for label, (source, name) in CASES.items():
        code = compile(source, "<case>", "exec")
        compiled: dict[str, Any] = {"__name__": "case"}
        stripped: dict[str, Any] = {"__name__": "case"}
        exec(code, compiled)
        try:
            exec(lean.strip_docstrings(code), stripped)
            got = stripped.get(name)
        except Exception as exc:  # noqa: BLE001 - any failure of the stripped code is the finding
            got = f"raised {type(exc).__name__}: {exc}"
        expected = STRIPPED_CASES[label] if label in STRIPPED_CASES else compiled.get(name)
        if got != expected:
            problems.append(f"{label}: compiled {compiled.get(name)!r}, stripped {got!r}")
    return problems


def main() -> int:
    lean = load_lean()
    stripped, problems = differential(lean, sorted((ROOT / "watchdog_oom").rglob("*.py")))
    problems += behaviour(lean)
    print(json.dumps({"version": sys.version.split()[0], "supported": lean.supported(),
                      "stripped": stripped, "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
