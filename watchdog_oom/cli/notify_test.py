"""`notify-test`: send a test notification through every configured channel, or one."""

from __future__ import annotations

import argparse
from typing import TextIO

from watchdog_oom import config as config_mod
from watchdog_oom.cli import EXIT_OK, Command
from watchdog_oom.cli.common import utcnow
from watchdog_oom.textout import safe


def cmd_notify_test(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Send a test notification and say, per channel, whether it was delivered."""
    import uuid

    from watchdog_oom.model import Notification
    from watchdog_oom.notify import ChannelError, build_channel

    configured = cfg.notifications.channels
    channels = [c for c in configured if not args.channel or c.name == args.channel]
    if not configured:
        print("watchdog-oom notify-test: no notification channels configured (notifications.channels)", file=err)
        return 1
    if not channels:
        print(f"watchdog-oom notify-test: no channel named {args.channel} "
              f"(configured: {', '.join(c.name for c in configured)})", file=err)
        return 1
    ok = True
    for c in channels:
        n = Notification(id=f"msg_{uuid.uuid4().hex}", kind="test", time=utcnow(), host=cfg.host, severity="info",
                         summary="Test notification from watchdog-oom: this channel works.",
                         data={"channel": c.name}, reason="test")
        try:
            detail = build_channel(c.type, c.name, **c.options()).send(n)
            print(f"{c.name} ({c.type}): delivered: {safe(detail)}", file=out)
        except ChannelError as exc:
            ok = False
            kind = "permanent" if exc.permanent else "transient"
            print(f"{c.name} ({c.type}): FAILED ({kind}): {safe(str(exc))}", file=out)
    return EXIT_OK if ok else 1



def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", metavar="NAME",
                   help="only the channel of this name (default: every configured channel)")


COMMANDS = (Command("notify-test", "send a test notification through every channel (or one)", _arguments,
                    cmd_notify_test),)
