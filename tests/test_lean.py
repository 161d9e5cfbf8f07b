"""The package's modules load without docstrings and functions' annotations (watchdog_oom/lean.py)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from types import CodeType

import pytest

from tests import lean_check
from watchdog_oom import lean

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not lean.supported(), reason="lean.py strips only CPython 3.11-3.13's code")


def run(source: str, name: str = "sample") -> dict[str, object]:
    code = lean.strip_docstrings(compile(textwrap.dedent(source), f"<{name}>", "exec"))
    namespace: dict[str, object] = {"__name__": name}
    exec(code, namespace)
    return namespace


def test_docstrings_of_modules_classes_and_functions_are_gone_and_nothing_else_changes() -> None:
    ns = run('''
        """The module."""
        X = 1

        class C:
            """The class."""
            y = "kept"

            def method(self) -> str:
                """The method."""
                return "also kept"

        def f(a: int, b: str = "d") -> str:
            """The function."""
            return b * a

        def g():
            return "no docstring: its first constant is None, this one stays"

        lam = lambda: "a lambda's constant"
        squares = [str(i) + "!" for i in range(3)]
    ''')
    assert ns["__doc__"] is None and ns["X"] == 1
    cls: type = ns["C"]  # type: ignore[assignment]
    assert cls.__doc__ is None and cls.y == "kept" and cls().method() == "also kept"  # type: ignore[attr-defined]
    assert cls.method.__doc__ is None  # type: ignore[attr-defined]
    f = ns["f"]
    assert f.__doc__ is None and f(2) == "dd" and f(1, "x") == "x"  # type: ignore[attr-defined, operator]
    assert ns["g"]() == "no docstring: its first constant is None, this one stays"  # type: ignore[operator]
    assert ns["lam"]() == "a lambda's constant" and ns["squares"] == ["0!", "1!", "2!"]  # type: ignore[operator]


def test_a_docstring_that_is_also_a_constant_the_code_uses_is_kept() -> None:
    ns = run('''
        """same"""
        MODULE = "same"

        class C:
            """twice"""
            ALSO = "twice"

        def f():
            """echo"""
            return "echo"
    ''')
    assert ns["MODULE"] == ns["__doc__"] == "same"
    assert ns["C"].ALSO == ns["C"].__doc__ == "twice"  # type: ignore[attr-defined]
    assert ns["f"]() == ns["f"].__doc__ == "echo"  # type: ignore[attr-defined, operator]


def test_line_numbers_and_positions_in_a_traceback_are_the_same() -> None:
    source = textwrap.dedent('''
        def fails(values):
            """Docstring
            over three
            lines."""
            total = 0
            for value in values:
                total += 10 // value
            return total
    ''')

    def where(code: CodeType) -> tuple[int | None, str]:
        namespace: dict[str, object] = {}
        exec(code, namespace)
        try:
            namespace["fails"]([1, 0])  # type: ignore[operator]
        except ZeroDivisionError as error:
            frame = traceback.extract_tb(error.__traceback__)[-1]
            return frame.lineno, f"{frame.colno}-{frame.end_colno}"  # type: ignore[attr-defined]
        raise AssertionError("no error")

    original = compile(source, "<x>", "exec")
    assert where(lean.strip_docstrings(original)) == where(original) == (8, "17-28")


def test_every_module_of_the_package_loses_its_docstrings_and_only_them() -> None:
    """Each of our own files: the stripped code is the same code, constant for constant, but for
    the docstrings, which `dis` finds independently (tests/lean_check.py); every docstring goes."""
    stripped, problems = lean_check.differential(lean, sorted((ROOT / "watchdog_oom").rglob("*.py")))
    assert problems == []
    assert stripped > 1000  # the package documents itself: every module, most classes and functions


def test_code_whose_docstring_looks_like_something_else_computes_the_same() -> None:
    assert lean_check.behaviour(lean) == []


def other_interpreters() -> list[str]:
    """CPython 3.11-3.13 interpreters on this machine other than the one running the tests."""
    found: dict[str, str] = {}
    candidates = [shutil.which(f"python3.{minor}") for minor in (11, 12, 13)]
    candidates += sorted(map(str, Path.home().glob(".pyenv/versions/3.1[123].*/bin/python3")))
    for candidate in filter(None, candidates):
        version = subprocess.run([candidate, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        if version and version != sys.version.split()[0]:
            found.setdefault(version, candidate)
    return sorted(found.values())


def test_the_check_holds_on_the_other_supported_interpreters_found_here() -> None:
    """3.12 loads constants with RETURN_CONST too, 3.13 stores __firstlineno__ in class bodies."""
    interpreters = other_interpreters()
    if not interpreters:
        pytest.skip("no other CPython 3.11-3.13 on this machine (python3.12, python3.13, ~/.pyenv)")
    for interpreter in interpreters:
        out = subprocess.run([interpreter, str(ROOT / "tests" / "lean_check.py")], capture_output=True, text=True,
                             timeout=300)
        result = json.loads(out.stdout)
        assert result["supported"] and result["problems"] == [] and result["stripped"] > 1000, (interpreter, result)


def test_annotations_of_functions_go_and_a_value_classes_fields_stay() -> None:
    if lean.Finder not in sys.meta_path:  # type: ignore[comparison-overlap]
        pytest.skip("WATCHDOG_OOM_KEEP_DOCS is set: the package was loaded whole")
    from watchdog_oom.model import OomKill
    from watchdog_oom.store import engine

    fields = [f.name for f in dataclasses.fields(OomKill)]
    assert "pid" in fields and OomKill.__annotations__["pid"]  # the class's annotations: its fields
    assert engine.make_engine.__annotations__ == {}
    assert list(inspect.signature(engine.make_engine).parameters)  # a signature without annotations


PROBE = """
import json, sys, yaml
import watchdog_oom.daemon.pipeline as pipeline
from watchdog_oom.store.engine import make_engine
from watchdog_oom.valueclass import valueclass
print(json.dumps({"module": pipeline.__doc__, "function": make_engine.__doc__,
                  "annotations": make_engine.__annotations__, "library": bool(yaml.safe_load.__doc__),
                  "lean": any(getattr(f, "__module__", None) == "watchdog_oom.lean" for f in sys.meta_path)}))
"""


@pytest.mark.parametrize("keep", [False, True])
def test_a_fresh_interpreter_loads_the_package_lean_unless_told_to_keep_docs(keep: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_OOM_KEEP_DOCS"}
    env["PYTHONPATH"] = str(ROOT)
    if keep:
        env["WATCHDOG_OOM_KEEP_DOCS"] = "1"
    out = json.loads(subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                                    check=True, timeout=60).stdout)
    assert out["library"] is True  # libraries keep theirs
    if keep:
        assert out["module"] and out["function"] and out["annotations"] and out["lean"] is False
    else:
        assert out["module"] is None and out["function"] is None and out["annotations"] == {} and out["lean"]


def test_install_is_idempotent() -> None:
    before = sys.meta_path.count(lean.Finder)  # type: ignore[arg-type]
    assert lean.install() is (before == 1)
    assert sys.meta_path.count(lean.Finder) == before  # type: ignore[arg-type]
