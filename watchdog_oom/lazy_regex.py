"""Regular expressions compiled at their first use: `compile_on_first_use(source)`.

A compiled pattern keeps its program for the life of the process: 0.5 to 10 kB traced each,
and the parser alone declares some hundred. Many read what a running daemon rarely or never
sees: a user-space killer's lines on a host that runs none, an old kernel's wording, text
pasted into `import` (the lenient parser's anchors), a wrapper no live source writes. Such a
pattern is declared with compile_on_first_use() instead of re.compile(): it is compiled (and
kept) when one of its methods is first called, or an attribute other than `pattern` is first
read. Compiling reads nothing from the disk, so unlike a module loaded late (review R8) a
pattern compiled late cannot fail where one compiled at start would not; it costs a fraction
of a millisecond, once. A pattern that every kernel line of a live source goes through stays
compiled at start (re.compile): the idle daemon would only hold it a moment later.
"""

from __future__ import annotations

import re
from typing import Any, cast

# What a compiled pattern's users call: at the first, each becomes the compiled pattern's own
# bound method in the instance's __dict__, found there from then on (a call costs what a
# pattern's does); anything else (groups, groupindex, flags) is read from the compiled pattern.
_METHODS = ("match", "fullmatch", "search", "finditer", "findall", "sub", "subn", "split")


class _FirstUse:
    """Stands for re.compile(pattern, flags) until first used; `pattern` is the source, as a
    compiled pattern's is (another pattern may be built from it without compiling this one)."""

    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self._flags = flags

    def __getattr__(self, name: str) -> Any:  # (only for a name the instance does not hold yet)
        if name.startswith("__"):
            raise AttributeError(name)
        compiled = self.__dict__.get("_compiled")
        if compiled is None:  # (two threads may both compile it first: each stores the same)
            compiled = re.compile(self.pattern, self._flags)
            self.__dict__.update({method: getattr(compiled, method) for method in _METHODS}, _compiled=compiled)
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"compile_on_first_use({self.pattern!r})"


def compile_on_first_use(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """re.compile(pattern, flags), done when the pattern is first used (the module's docstring
    says which patterns may wait). Typed as the pattern it stands for: it answers the same
    methods and attributes, though it is no re.Pattern instance (no code of ours asks)."""
    return cast("re.Pattern[str]", _FirstUse(pattern, flags))
