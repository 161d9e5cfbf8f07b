"""`python -m watchdog_oom`: the same as the `watchdog-oom` console script."""

import sys

from watchdog_oom.cli import main

sys.exit(main())
