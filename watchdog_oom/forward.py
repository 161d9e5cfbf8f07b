"""Names a module hands out from other modules, loaded at their first use (PEP 562).

A module whose names stay importable from it while the code behind them moved to a module
the idle daemon need not load (see docs/architecture.md, "What the idle daemon holds")
declares them once:

    __getattr__ = forward(__name__, {"watchdog_oom.sending": ("Dispatcher", "Senders")})

`from watchdog_oom.dispatch import Dispatcher` then imports sending.py, at that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def forward(owner: str, sources: Mapping[str, Iterable[str]]) -> Callable[[str], Any]:
    """The module `__getattr__` of `owner` that takes each name of `sources` from the module
    it is listed under, imported then; any other name is an AttributeError, as Python's."""
    where = {name: source for source, names in sources.items() for name in names}

    def __getattr__(name: str) -> Any:
        source = where.get(name)
        if source is None:
            raise AttributeError(f"module {owner!r} has no attribute {name!r}")
        return getattr(import_module(source), name)

    return __getattr__
