"""`python -m watchdog_oom.config example|keys|check [FILE]`: the example file, the reference of
every key, or a file checked, all from the declarations (the CLI offers the same)."""

from __future__ import annotations

import os
import sys

from watchdog_oom.config import ConfigError, display, example_text, load_config
from watchdog_oom.config.render import reference

USAGE = "usage: python -m watchdog_oom.config example | keys | check [FILE]\n"


def main(argv: list[str]) -> int:
    """Prints what the first argument names; 2 on a usage or configuration error."""
    if argv[:1] == ["example"] and len(argv) == 1:
        sys.stdout.write(example_text())
        return 0
    if argv[:1] == ["keys"] and len(argv) == 1:
        sys.stdout.write(reference())
        return 0
    if argv[:1] == ["check"] and len(argv) <= 2:
        try:
            config = load_config(argv[1] if len(argv) == 2 else None, os.environ)
        except ConfigError as error:
            print(f"configuration error: {error}", file=sys.stderr)
            return 2
        sys.stdout.write(display(config))
        return 0
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
