"""Build hook: the Alembic migrations live at the top of the source tree (`migrations/`)
and are shipped inside the package, as `watchdog_oom/migrations`, where an installed
`watchdog-oom db upgrade` finds them. Everything else is declared in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithMigrations(build_py):
    """build_py, plus migrations/ copied into the built package."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "migrations"
        target = Path(self.build_lib) / "watchdog_oom" / "migrations"
        shutil.copytree(source, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithMigrations})
