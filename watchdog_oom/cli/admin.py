"""`db upgrade` and `config check`: the database's schema and the configuration's validity."""

from __future__ import annotations

import argparse
from typing import TextIO

from watchdog_oom import config as config_mod
from watchdog_oom import store as store_mod
from watchdog_oom.cli import EXIT_OK, Command


def cmd_db(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Migrate the database to the newest schema and say from which revision."""
    store = store_mod.Store(cfg.database, cfg.host)
    before = store.revision()
    after = store.upgrade()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"), file=out)
    return EXIT_OK


def cmd_config(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Print the configuration as read, secrets masked (reaching here means it is valid);
    or the example file, or the reference of every key."""
    if args.action == "example":
        out.write(config_mod.example_text())
        return EXIT_OK
    if args.action == "keys":
        from watchdog_oom.config.render import reference

        out.write(reference())
        return EXIT_OK
    origin = cfg.origin or "built-in defaults"
    print(f"# configuration valid: {origin}", file=out)
    print(config_mod.display(cfg), file=out)
    return EXIT_OK


def _db_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("upgrade",),
                   help="upgrade: migrate the history database to the newest schema (run does this at start)")


def _config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("check", "example", "keys"),
                   help="check: validate the config and print it as read, secrets masked (exit 2 if invalid); "
                        "example: print an example file, every key at its default with its help; "
                        "keys: list every key with its type, bounds, default and help")


COMMANDS = (
    Command("db", "database maintenance", _db_arguments, cmd_db),
    Command("config", "configuration", _config_arguments, cmd_config),
)
