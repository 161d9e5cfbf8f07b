"""SIGHUP: the configuration read again and put in force, the old one kept when the new
one is bad. What can change while the daemon runs (channels, routing, rules, checks, the
process cache, the log level, oom_score_adj) changes now; what cannot (the database, the
host name, the kernel log source, the metrics endpoint) is said to wait for a restart.

Loaded at the first SIGHUP (Daemon.reload), not at start: most daemons are never
reloaded. If it cannot be loaded then (the package being upgraded), Daemon.reload says so
and the old configuration stays in force.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from watchdog_oom import config as config_mod
from watchdog_oom import procfs

if TYPE_CHECKING:
    from watchdog_oom.daemon.daemon import Daemon

log = logging.getLogger("watchdog_oom")


def reload(daemon: Daemon) -> bool:
    """Load the config file again and put it in force; False (the old one kept) when the
    new one is refused."""
    old = daemon.cfg
    try:
        new = config_mod.load_config(daemon.config_path, daemon.env)
    except config_mod.ConfigError as exc:
        log.error("SIGHUP: the new configuration is refused, keeping the old one: %s", exc)
        return False
    new = _at_restart(new, old)
    if new.processes.cache_size != old.processes.cache_size:
        daemon.shared.host.cache.resize(new.processes.cache_size)
    if new.daemon.log_level != old.daemon.log_level:
        logging.getLogger().setLevel(new.daemon.log_level.upper())
    if new.daemon.oom_score_adj != old.daemon.oom_score_adj:
        ok, message = procfs.lower_own_oom_score_adj(new.daemon.oom_score_adj, new.procfs)
        (log.info if ok else log.warning)("SIGHUP: %s", message)
    with daemon.shared.lock:
        daemon.apply(new)
        daemon.jobs.schedule()
    log.info("SIGHUP: configuration reloaded from %s", daemon.config_path or new.origin or "built-in defaults")
    return True


def _at_restart(new: config_mod.Config, old: config_mod.Config) -> config_mod.Config:
    """`new` with the settings that change only at a restart kept as they are in force
    (the database, the host name), and those said in the log."""
    if new.database != old.database or new.host != old.host:
        log.warning("SIGHUP: database and host changes take effect at the next restart")
        new = dataclasses.replace(new, database=old.database, host=old.host)
    for key in ("kernel_log", "metrics"):
        if getattr(new, key) != getattr(old, key):
            log.warning("SIGHUP: %s changes take effect at the next restart", key)
    return new
