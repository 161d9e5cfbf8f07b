"""The value-class decorator against the real thing: each behaviour a frozen dataclass has
(equality, hash, repr, replace, fields, pickling, frozen errors, fields that neither
compare nor show, inheritance, the methods a class writes itself) is compared with a
`@dataclass(frozen=True)` twin built from the same source; then that the package uses
it everywhere, that mypy still reads the classes as dataclasses, and that it costs less."""

from __future__ import annotations

import ast
import copy
import dataclasses
import gc
import inspect
import math
import pickle
import subprocess
import sys
import textwrap
import tracemalloc
from dataclasses import FrozenInstanceError, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog_oom.model import OomKill, TaskRow
from watchdog_oom.valueclass import valueclass

ROOT = Path(__file__).resolve().parent.parent


def twins(source: str, **options: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The classes `source` defines under `@value`: as dataclasses, as value classes, both
    with these options (frozen and slotted unless they say otherwise; fast_init and
    compiled_init for the value classes alone)."""
    made = []
    fast, compiled = options.pop("fast_init", False), options.pop("compiled_init", False)
    written = ", ".join(f"{name}={value}" for name, value in {"frozen": True, "slots": True, **options}.items())
    for decorator in (f"dataclass({written})", f"valueclass({written}, fast_init={fast}, compiled_init={compiled})"):
        namespace: dict[str, Any] = {"dataclass": dataclass, "valueclass": valueclass, "field": field}
        exec(textwrap.dedent(source).replace("@value", "@" + decorator), namespace)
        made.append(namespace)
    return made[0], made[1]


SAMPLE = """
@value
class Sample:
    a: object
    b: object = 0
    hidden: object = field(default=None, repr=False)
    ignored: object = field(default=None, compare=False)
    unhashed: object = field(default=None, hash=False)
"""
DC, VC = twins(SAMPLE)
DC_DICT, VC_DICT = twins(SAMPLE, slots=False)

values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, -0.0, 1.0, math.nan]),
                   st.text(max_size=3), st.tuples(st.integers(0, 2)), st.frozensets(st.integers(0, 2), max_size=2),
                   st.lists(st.integers(0, 1), max_size=2))
fields5 = st.tuples(values, values, values, values, values)


def _hash_or_error(obj: object) -> object:
    try:
        return hash(obj)
    except TypeError as error:  # a list among the fields
        return str(error)


@given(fields5, fields5)
def test_equality_hash_and_repr_are_dataclasses(x: tuple, y: tuple) -> None:
    for dc, vc in ((DC, VC), (DC_DICT, VC_DICT)):
        d1, d2, v1, v2 = dc["Sample"](*x), dc["Sample"](*y), vc["Sample"](*x), vc["Sample"](*y)
        assert repr(v1) == repr(d1) and repr(v2) == repr(d2)
        assert (v1 == v2) is (d1 == d2) and (v1 != v2) is (d1 != d2)
        assert (v1 == v1) is (d1 == d1)  # a NaN field: the same object, equal inside a tuple
        assert _hash_or_error(v1) == _hash_or_error(d1)


# A field's declaration: whether it is shown, compared, hashed (None: as it compares).
declarations = st.lists(st.tuples(st.booleans(), st.booleans(), st.sampled_from([None, True, False])),
                        min_size=0, max_size=5)


@given(declarations, st.data())
def test_any_shape_of_fields_compares_hashes_and_shows_as_dataclass(declared: list, data: st.DataObject) -> None:
    """Classes of 0 to 5 fields, each shown or not, compared or not, hashed or not."""
    body = "".join(f"    f{n}: object = field(repr={shown}, compare={compared}, hash={hashed})\n"
                   for n, (shown, compared, hashed) in enumerate(declared)) or "    pass\n"
    frozen = data.draw(st.booleans(), label="frozen")
    dc, vc = twins("@value\nclass Drawn:\n" + body, frozen=frozen)
    x, y = (data.draw(st.tuples(*[values] * len(declared))) for _ in range(2))
    d1, d2, v1, v2 = dc["Drawn"](*x), dc["Drawn"](*y), vc["Drawn"](*x), vc["Drawn"](*y)
    assert repr(v1) == repr(d1)
    assert (v1 == v2) is (d1 == d2)
    if frozen:
        assert _hash_or_error(v1) == _hash_or_error(d1)
    else:
        assert vc["Drawn"].__hash__ is dc["Drawn"].__hash__ is None
    assert copy.deepcopy(v1) == v1 and repr(copy.copy(v1)) == repr(d1)


def test_fields_declared_repr_false_compare_false_or_hash_false_are_honoured() -> None:
    a, b = VC["Sample"](1, hidden="secret", ignored=1), VC["Sample"](1, hidden="other", ignored=2)
    assert "secret" not in repr(a) and repr(a) == "Sample(a=1, b=0, ignored=1, unhashed=None)"
    assert a != b  # hidden still compares
    assert VC["Sample"](1, ignored=1) == VC["Sample"](1, ignored=2)
    assert hash(VC["Sample"](1, unhashed=1)) == hash(VC["Sample"](1, unhashed=2))


def test_other_classes_are_not_equal_even_with_the_same_fields() -> None:
    assert VC["Sample"](1) != DC["Sample"](1)
    assert VC["Sample"](1).__eq__(DC["Sample"](1)) is NotImplemented
    assert VC["Sample"](1) != (1, 0, None, None, None)


def test_assigning_or_deleting_raises_dataclasses_error_and_message() -> None:
    for dc, vc in ((DC, VC), (DC_DICT, VC_DICT)):
        errors = []
        for obj in (dc["Sample"](1), vc["Sample"](1)):
            with pytest.raises(FrozenInstanceError) as assigned:
                obj.a = 2
            with pytest.raises(FrozenInstanceError) as deleted:
                del obj.a
            errors.append((str(assigned.value), str(deleted.value)))
        assert errors[0] == errors[1] == ("cannot assign to field 'a'", "cannot delete field 'a'")


def test_a_name_that_is_no_field_is_frozen_too() -> None:
    """As a frozen dataclass without slots says; a slotted one raises TypeError on 3.11
    (super() of the class before slots, CPython gh-105936, fixed in 3.14)."""
    for obj in (DC_DICT["Sample"](1), VC_DICT["Sample"](1), VC["Sample"](1)):
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'other'"):
            obj.other = 2
        with pytest.raises(FrozenInstanceError, match="cannot delete field 'other'"):
            del obj.other


def test_replace_fields_asdict_astuple_and_match_args_are_dataclasses() -> None:
    d, v = DC["Sample"](1, 2, hidden=3), VC["Sample"](1, 2, hidden=3)
    assert dataclasses.is_dataclass(v) and dataclasses.is_dataclass(VC["Sample"])
    assert [f.name for f in dataclasses.fields(v)] == [f.name for f in dataclasses.fields(d)]
    assert dataclasses.asdict(v) == dataclasses.asdict(d) and dataclasses.astuple(v) == dataclasses.astuple(d)
    assert dataclasses.replace(v, b=5) == VC["Sample"](1, 5, hidden=3)
    assert VC["Sample"].__match_args__ == DC["Sample"].__match_args__
    sample = VC["Sample"]
    match v:
        case sample(1, b, _hidden):
            assert b == 2
        case _:
            pytest.fail("the value class does not match by position")
    with pytest.raises(TypeError):
        VC["Sample"]()  # a required field


def test_init_keeps_defaults_factories_init_false_and_post_init() -> None:
    dc, vc = twins("""
        @value
        class Made:
            base: int
            items: list = field(default_factory=list)
            double: int = field(init=False, repr=True)
            def __post_init__(self):
                object.__setattr__(self, "double", self.base * 2)
    """)
    for ns in (dc, vc):
        made = ns["Made"](3)
        assert made.double == 6 and made.items == [] and made.items is not ns["Made"](3).items
    assert repr(vc["Made"](3)) == repr(dc["Made"](3)) == "Made(base=3, items=[], double=6)"


def test_methods_the_class_writes_itself_are_kept() -> None:
    source = """
        @value
        class Own:
            a: int
            b: int = 0
            def __eq__(self, other):
                return isinstance(other, type(self)) and self.a == other.a
            def __repr__(self):
                return f"<own {self.a}>"

        @value
        class OwnHash:
            a: int
            def __hash__(self):
                return 42
    """
    dc, vc = twins(source)
    for ns in (dc, vc):
        assert ns["Own"](1, 2) == ns["Own"](1, 3) and repr(ns["Own"](1)) == "<own 1>"
        assert hash(ns["OwnHash"](1)) == 42
    # __eq__ without __hash__: a frozen dataclass hashes the fields all the same.
    assert hash(vc["Own"](1, 2)) == hash(dc["Own"](1, 2)) == hash((1, 2))


def test_inheritance_between_value_classes_is_dataclasses() -> None:
    dc, vc = twins("""
        @value
        class Base:
            name: str
            kind: str = "base"

        @value
        class Child(Base):
            url: str = field(default="", repr=False)
            extra: int = 0
    """)
    for ns in (dc, vc):
        child = ns["Child"]("hook", url="http://x", extra=1)
        assert [f.name for f in dataclasses.fields(child)] == ["name", "kind", "url", "extra"]
        assert child != ns["Base"]("hook") and ns["Base"]("hook") != child
        assert child == ns["Child"]("hook", url="http://x", extra=1)
    assert repr(vc["Child"]("hook", extra=1)) == repr(dc["Child"]("hook", extra=1)) == \
        "Child(name='hook', kind='base', extra=1)"
    assert hash(vc["Child"]("hook")) == hash(dc["Child"]("hook"))


@pytest.mark.parametrize("slots", [False, True])
def test_a_plain_subclass_may_set_what_is_not_a_field(slots: bool) -> None:
    """A subclass that is no dataclass has a __dict__ for its own attributes; the fields stay
    frozen. (Not compared with a slotted dataclass: gh-105936 again.)"""
    dc, vc = twins("""
        @value
        class Base:
            a: int

        class Plain(Base):
            pass
    """, slots=slots)
    for ns in (vc,) if slots else (dc, vc):
        plain = ns["Plain"](1)
        plain.note = "free"
        assert plain.note == "free"
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'a'"):
            plain.a = 2


def test_a_value_holding_itself_reads_dots() -> None:
    dc, vc = twins("""
        @value
        class Box:
            items: list
    """)
    for ns in (dc, vc):
        box = ns["Box"]([])
        box.items.append(box)
        assert repr(box) == "Box(items=[...])"


def test_repr_names_a_nested_class_by_its_qualified_name() -> None:
    @valueclass
    class Inner:
        a: int

    @dataclass(frozen=True, slots=True)
    class Twin:
        a: int

    assert repr(Inner(1)) == repr(Twin(1)).replace(".Twin(", ".Inner(")
    assert "<locals>.Inner(a=1)" in repr(Inner(1))


MUTABLE = """
@value
class State:
    name: str
    seen: list = field(default_factory=list)
    note: object = field(default=None, repr=False, compare=False)
"""


@pytest.mark.parametrize("slots", [False, True])
def test_a_mutable_one_is_a_plain_dataclass(slots: bool) -> None:
    dc, vc = twins(MUTABLE, frozen=False, slots=slots)
    for ns in (dc, vc):
        state = ns["State"]("kmsg", note="x")
        state.seen.append(1)
        state.name = "journal"
        assert state == ns["State"]("journal", [1]) and state != ns["State"]("journal")
        assert ns["State"].__hash__ is None
        with pytest.raises(TypeError, match="unhashable"):
            hash(state)
    assert repr(vc["State"]("a", [1], note=2)) == repr(dc["State"]("a", [1], note=2)) == "State(name='a', seen=[1])"


def test_one_without_eq_compares_and_hashes_by_identity() -> None:
    dc, vc = twins(MUTABLE, frozen=False, slots=False, eq=False)
    for ns in (dc, vc):
        one, other = ns["State"]("a"), ns["State"]("a")
        assert one != other and one == one and hash(one) == object.__hash__(one)
        assert {one: 1}[one] == 1
    assert repr(vc["State"]("a")) == repr(dc["State"]("a"))


@valueclass
class Pickled:
    """A module-level value class, so that pickle finds it by name."""

    a: int
    b: tuple[int, ...] = ()
    c: dict = field(default_factory=dict, compare=False)


@valueclass(slots=False)
class PickledWithDict:
    """The same without slots."""

    a: int
    b: tuple[int, ...] = ()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_round_trips(protocol: int) -> None:
    for value in (Pickled(1, (2,), {"x": 1}), PickledWithDict(1, (2, 3))):
        back = pickle.loads(pickle.dumps(value, protocol=protocol))
        assert back == value and type(back) is type(value) and repr(back) == repr(value)
    assert pickle.loads(pickle.dumps(Pickled(1, c={"x": 1}), protocol)).c == {"x": 1}


def test_a_kill_crosses_a_pipe_to_another_process() -> None:
    """The import command's child sends kills pickled through a pipe: a real child here."""
    row = TaskRow(7, 0, 7, 4096, 1024, 12, 0, 0, "java")
    kill = OomKill(pid=7, process="java", anon_rss_kb=1024, task_table=(row,), extra={"raw": "Killed process 7 (java)"})
    child = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; kill = pickle.load(sys.stdin.buffer); "
         "sys.stdout.buffer.write(pickle.dumps(kill.replace(uid=1000), pickle.HIGHEST_PROTOCOL))"],
        input=pickle.dumps(kill, pickle.HIGHEST_PROTOCOL), capture_output=True, check=True, cwd=ROOT, timeout=60)
    back = pickle.loads(child.stdout)
    assert back == kill.replace(uid=1000) and back.task_table == kill.task_table and back.extra == kill.extra


def test_the_package_declares_no_dataclass_itself() -> None:
    """Every dataclass of the package goes through @valueclass (its memory reason is in
    watchdog_oom/valueclass.py): a @dataclass found here names itself."""
    found = []
    for path in sorted((ROOT / "watchdog_oom").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(called) in ("dataclass", "dataclasses.dataclass"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not found, f"dataclasses declared directly (use @valueclass): {found}"


def test_mypy_reads_value_classes_as_frozen_dataclasses(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        from watchdog_oom.model import OomKill
        kill = OomKill(pid=1, process="x", no_such_field=3)
        OomKill(pid="one", process="x")
        kill.pid = 2
    """))
    checked = subprocess.run([sys.executable, "-m", "mypy", str(probe), "--cache-dir=/dev/null", "--no-error-summary",
                              "--follow-imports=silent"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    errors = checked.stdout
    assert 'Unexpected keyword argument "no_such_field" for "OomKill"' in errors, errors
    assert 'Argument "pid" to "OomKill" has incompatible type "str"' in errors, errors
    assert 'Property "pid" defined in "OomKill" is read-only' in errors, errors


def _traced(decorate: Any) -> int:
    """Bytes that 30 classes of 8 fields keep once made, as tracemalloc counts them."""
    body = "".join(f"    f{i}: int = {i}\n" for i in range(8))
    sources = [compile(f"class C{n}:\n    'A class.'\n{body}", "<made>", "exec") for n in range(30)]
    gc.collect()
    tracemalloc.start()
    try:
        kept = []
        for n, source in enumerate(sources):
            namespace: dict[str, Any] = {}
            exec(source, namespace)
            kept.append(decorate(namespace[f"C{n}"]))
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_value_classes_cost_well_under_frozen_dataclasses() -> None:
    """The reason the module exists (about 0.43x on Python 3.11): if a Python's dataclasses
    stop writing a code object per method, this says the decorator is no longer worth it."""
    ours, theirs = _traced(valueclass), _traced(dataclass(frozen=True, slots=True))
    assert ours < 0.7 * theirs, (ours, theirs)


FAST = """
@value
class Fast:
    a: object
    b: object = 0
    items: list = field(default_factory=list)
    hidden: object = field(default=None, repr=False, compare=False)
    late: object = field(default="x", kw_only=True)
    made: list = field(default_factory=lambda: [1], kw_only=True)
"""


def test_fast_init_keeps_dataclasses_signature_and_values() -> None:
    """fast_init's __init__ against a frozen dataclass's: the same signature (positions,
    defaults, keyword-only fields, factories), the same values, errors and behaviour."""
    dc, vc = twins(FAST, fast_init=True)
    fast, plain = vc["Fast"], dc["Fast"]
    assert str(inspect.signature(fast)) == str(inspect.signature(plain))
    for args, kwargs in (((1,), {}), ((1, 2, [3], 4), {"late": 5, "made": [6]}), ((), {"a": 1, "made": []})):
        one, other = fast(*args, **kwargs), plain(*args, **kwargs)
        assert type(one) is fast and repr(one) == repr(other)
        assert dataclasses.astuple(one) == dataclasses.astuple(other)
    assert fast(1).items is not fast(1).items and fast(1).made == [1]
    for args, kwargs in (((), {}), ((1, 2, 3, 4, 5), {}), ((1,), {"nope": 2}), ((1,), {"a": 2})):
        with pytest.raises(TypeError) as theirs:
            plain(*args, **kwargs)
        with pytest.raises(TypeError) as ours:
            fast(*args, **kwargs)
        assert str(ours.value).replace("__init__", "") == str(theirs.value).replace("__init__", "")
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'a'"):
        fast(1).a = 2


def test_fast_init_leaves_no_twin_and_builds_a_subclass_the_dataclass_way() -> None:
    failing: list[bool] = []

    def factory() -> list:
        if failing:
            raise RuntimeError("factory")
        return [1]

    namespace: dict[str, Any] = {"valueclass": valueclass, "field": field, "factory": factory}
    exec(textwrap.dedent(FAST).replace("@value", "@valueclass(fast_init=True)").replace("lambda: [1]", "factory")
         + "\nclass Sub(Fast):\n    pass\n", namespace)
    fast, sub = namespace["Fast"], namespace["Sub"]
    made = sub(1, 2)
    assert type(made) is sub and made == made and made.b == 2 and made.made == [1]
    made.note = "free"  # a plain subclass has a __dict__
    with pytest.raises(FrozenInstanceError):
        made.a = 3
    failing.append(True)
    with pytest.raises(RuntimeError):
        fast(1)  # the factory runs before the instance turns: none is left half-made as the twin
    gc.collect()
    assert not [obj for obj in gc.get_objects() if type(obj).__qualname__.endswith(".<twin>")]


def test_fast_init_refuses_what_it_would_not_build_as_dataclass_does() -> None:
    for source in ("a: int\n    def __post_init__(self):\n        pass",
                   "a: int\n    b: int = field(init=False, default=0)"):
        with pytest.raises(TypeError, match="fast_init"):
            exec(f"@valueclass(fast_init=True)\nclass Refused:\n    {source}\n",
                 {"valueclass": valueclass, "field": field})
    with pytest.raises(TypeError, match="fast_init"):
        valueclass(frozen=False, fast_init=True)(type("Mutable", (), {"__annotations__": {"a": int}}))


def test_fast_init_takes_fields_named_as_its_own_code_might_name_things() -> None:
    # Review R9: the generated __init__'s names were _type, _set, _twin, _cls, _init and self,
    # and a field so named hid one of them (a called value, FrozenInstanceError, a SyntaxError).
    names = ("self", "_type", "_set", "_twin", "_cls", "_init", "_unset_extra", "_factory_extra")
    annotations = {name: int for name in names} | {"extra": dict}
    namespace: dict[str, Any] = {"__annotations__": annotations, "extra": field(default_factory=dict)}
    fast = valueclass(fast_init=True)(type("Clashing", (), dict(namespace)))
    slow = dataclasses.dataclass(frozen=True, slots=True)(type("Clashing", (), dict(namespace)))
    values = {name: n for n, name in enumerate(names)}
    made, expected = fast(**values), slow(**values)
    assert type(made) is fast and dataclasses.astuple(made) == dataclasses.astuple(expected)
    assert fast(*range(len(names))).extra == {} and fast(*range(len(names)), extra={"a": 1}).extra == {"a": 1}
    with pytest.raises(FrozenInstanceError):
        made._set = 2
    with pytest.raises(TypeError, match="fast_init keeps the names"):
        valueclass(fast_init=True)(type("Own", (), {"__annotations__": {"__valueclass_self__": int}}))


def test_a_kill_is_built_fast_and_pickles() -> None:
    kill = OomKill(pid=7, process="java", anon_rss_kb=1024, extra={"raw": "x"})
    assert type(kill) is OomKill and kill.extra == {"raw": "x"} and OomKill(1, "x").extra == {}
    assert pickle.loads(pickle.dumps(kill)) == kill and kill.replace(pid=8).pid == 8
    with pytest.raises(FrozenInstanceError):
        kill.pid = 2


# -- the shared __init__ (every value class but fast_init's and compiled_init's) -------------

SHAPES = """
@value
class Plain:
    a: object
    b: object
    c: object

@value
class Shaped:
    a: object
    b: object = 0
    items: list = field(default_factory=list)
    hidden: object = field(default=None, repr=False, compare=False)
    late: object = field(default="x", kw_only=True)
    made: list = field(default_factory=lambda: [1], kw_only=True)
    must: object = field(kw_only=True, default=None)

@value
class Keyworded:
    a: object
    b: object = field(kw_only=True)
    c: object = 2
"""
CALLS = (((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((1, 2, [3], 4), {}), ((1, 2, 3, 4, 5), {}),
         ((), {"a": 1}), ((), {"a": 1, "b": 2, "c": 3}), ((1,), {"a": 2}), ((1,), {"nope": 2}),
         ((1,), {"b": 2, "late": 5, "made": [6], "must": 7}), ((1, 2), {"b": 3}), ((), {"b": 1}),
         ((1,), {"b": 1, "self": 2}), ((1, 2, 3), {"nope": 1, "other": 2}), ((1,), {"c": 2, "b": 3}),
         ((1, 2), {"c": 3}), ((), {"c": 1, "a": 2, "b": 3}))


@pytest.mark.parametrize("slots", [False, True])
@pytest.mark.parametrize("frozen", [False, True])
def test_the_shared_init_binds_and_refuses_every_call_as_dataclass_does(slots: bool, frozen: bool) -> None:
    dc, vc = twins(SHAPES, slots=slots, frozen=frozen)
    for name in ("Plain", "Shaped", "Keyworded"):
        ours, theirs = vc[name], dc[name]
        assert ours.__init__ is not theirs.__init__ and "__init__" not in vars(ours).get("__dataclass_fields__", {})
        assert str(inspect.signature(ours)) == str(inspect.signature(theirs)), name
        for args, kwargs in CALLS:
            try:
                expected = theirs(*args, **kwargs)
            except TypeError as error:
                with pytest.raises(TypeError) as raised:
                    ours(*args, **kwargs)
                assert str(raised.value) == str(error), (name, args, kwargs)
            else:
                made = ours(*args, **kwargs)
                assert type(made) is ours and repr(made) == repr(expected), (name, args, kwargs)
                assert dataclasses.astuple(made) == dataclasses.astuple(expected)
    one = vc["Shaped"](1)
    assert one.items == [] and one.items is not vc["Shaped"](1).items and one.made == [1]
    assert vc["Shaped"](1, items=[2]).items == [2]


def test_the_shared_init_keeps_init_false_initvars_post_init_and_the_order_of_defaults() -> None:
    source = """
        @value
        class Late:
            base: int
            scale: InitVar[int] = 2
            counted: list = field(init=False, default_factory=list)
            fixed: str = field(init=False, default="f")
            double: int = field(init=False, default=0)
            name: str = "n"
            def __post_init__(self, scale):
                object.__setattr__(self, "double", self.base * scale)
    """
    for slots in (False, True):
        made = []
        for decorator in (f"dataclass(frozen=True, slots={slots})", f"valueclass(slots={slots})"):
            namespace = {"dataclass": dataclass, "valueclass": valueclass, "field": field,
                         "InitVar": dataclasses.InitVar}
            exec(textwrap.dedent(source).replace("@value", "@" + decorator), namespace)
            made.append(namespace["Late"])
        theirs, ours = made
        for args, kwargs in (((3,), {}), ((3, 5), {}), ((3,), {"scale": 7, "name": "m"}), ((), {}),
                             ((3,), {"counted": []})):
            try:
                expected = theirs(*args, **kwargs)
            except TypeError as error:
                with pytest.raises(TypeError) as raised:
                    ours(*args, **kwargs)
                assert str(raised.value) == str(error)
            else:
                assert repr(ours(*args, **kwargs)) == repr(expected)
                assert ours(*args, **kwargs).fixed == "f" and ours(*args, **kwargs).counted == []
        assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    for decorator in (dataclass(frozen=True), valueclass):
        with pytest.raises(TypeError) as raised:
            decorator(type("Wrong", (), {"__annotations__": {"a": int, "b": int}, "a": 1}))
        assert str(raised.value) == "non-default argument 'b' follows default argument"


def test_the_shared_init_takes_a_field_named_self_and_writes_dataclasss_doc() -> None:
    dc, vc = twins("""
        @value
        class Odd:
            self: int
            other: str = "o"
    """)
    assert vc["Odd"](self=1).self == 1 and vc["Odd"](1, "p") == vc["Odd"](1, other="p")
    assert vc["Odd"].__doc__ == dc["Odd"].__doc__ == "Odd(self: 'int', other: 'str' = 'o')"
    assert vc["Odd"](1).__doc__ == inspect.getdoc(vc["Odd"]) == vc["Odd"].__doc__
    with pytest.raises(TypeError) as theirs:
        dc["Odd"](1, self=2)
    with pytest.raises(TypeError) as ours:
        vc["Odd"](1, self=2)
    assert str(ours.value) == str(theirs.value)


def test_an_init_the_class_writes_is_kept_and_may_call_the_shared_one() -> None:
    namespace: dict[str, Any] = {"valueclass": valueclass, "field": field}
    exec(textwrap.dedent("""
        @valueclass
        class Base:
            a: int
            b: int = 0

        @valueclass
        class Own(Base):
            c: int = 5
            def __init__(self, total):  # (no super() in a slotted dataclass: CPython gh-90562)
                Base.__init__(self, total - 1, b=1)
                object.__setattr__(self, "c", total)

        class Plain(Base):
            def __init__(self, x, y):
                super().__init__(x + y)
    """), namespace)
    own, plain = namespace["Own"](10), namespace["Plain"](1, 2)
    assert (own.a, own.b, own.c) == (9, 1, 10) and (plain.a, plain.b) == (3, 0)
    assert str(inspect.signature(namespace["Own"])) == "(total)"
    assert str(inspect.signature(namespace["Plain"])) == "(x, y)"
    assert str(inspect.signature(namespace["Base"])) == "(a: 'int', b: 'int' = 0) -> None"


def test_compiled_init_keeps_dataclasss_own() -> None:
    dc, vc = twins(SAMPLE, compiled_init=True)
    assert vc["Sample"].__init__.__code__.co_varnames[:6] == dc["Sample"].__init__.__code__.co_varnames[:6]
    assert vc["Sample"](1, 2) == vc["Sample"](a=1, b=2) and "__signature__" not in vars(vc["Sample"])
    assert TaskRow.__init__.__code__.co_argcount == 10  # built by the thousand: dataclass's own
