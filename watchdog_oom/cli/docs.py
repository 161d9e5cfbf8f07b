"""The shell completions and the man page, generated from the command line's own parser.

The generated files ship in the package (watchdog_oom/data/) so that installing needs
neither generator; `python -m watchdog_oom.cli.docs` rewrites them after the command line
changes (it needs the test extra: shtab, argparse-manpage), and a test fails while they
are out of date. `watchdog-oom completion bash|zsh` and `watchdog-oom manpage` print them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from watchdog_oom import __version__

DATA = Path(__file__).resolve().parent.parent / "data"
FILES = {"bash": DATA / "completion" / "watchdog-oom.bash", "zsh": DATA / "completion" / "_watchdog-oom",
         "man": DATA / "watchdog-oom.1"}


def generate() -> dict[str, str]:
    """Each shipped file's text, as the current parser gives it."""
    import shtab
    from build_manpages.manpage import Manpage

    from watchdog_oom.cli import build_parser

    texts = {shell: shtab.complete(build_parser(), shell=shell) for shell in ("bash", "zsh")}
    page = Manpage(build_parser())
    page.date = ""  # reproducible: the version says which release it describes
    page.source = f"watchdog-oom {__version__}"
    page.manual = "watchdog-oom manual"
    texts["man"] = str(page)
    return texts


def main() -> int:
    """Rewrite the shipped files."""
    for name, text in generate().items():
        FILES[name].parent.mkdir(parents=True, exist_ok=True)
        FILES[name].write_text(text)
        print(f"wrote {FILES[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
