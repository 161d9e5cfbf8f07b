"""Every configuration key, declared once: its type, default, bounds (in its kind) and help.

This is the one place to add a key or a section; see the package docstring for how.
The reader, `config check` and config.example.yaml are all derived from what is here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import field
from typing import Any, ClassVar

from watchdog_oom.config import values as v
from watchdog_oom.config.declare import ListOf, NamedValues, Records, key, section
from watchdog_oom.config.reader import View, replace
from watchdog_oom.model import SEVERITIES, CriticalRule
from watchdog_oom.valueclass import valueclass

SYSTEM_STATE_DIRECTORY = "/var/lib/watchdog-oom"

COMMIT_BASES = ("auto", "sar", "commit_limit")
KERNEL_LOG_SOURCES = ("auto", "kmsg", "journal", "file", "none")
EMAIL_SECURITY = ("starttls", "ssl", "none")
WEBHOOK_FORMATS = ("native", "alertmanager")
LOG_LEVELS = ("debug", "info", "warning", "error")
# The port of each email security by convention: submission with STARTTLS (RFC 6409),
# implicit TLS (RFC 8314), plain SMTP to a local relay (RFC 5321).
EMAIL_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# Headers the webhook channel sets itself; configured headers may not replace them.
WEBHOOK_OWN_HEADERS = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")
# (a text, not a frozenset of its 79 characters: 8 kB; a name is made of them when stripping them leaves nothing)
_HEADER_NAME_CHARS = "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"


def state_directory(env: Mapping[str, str] = os.environ) -> str:
    """The daemon's state directory: systemd's, the system one for root, else the user's XDG one."""
    if env.get("STATE_DIRECTORY"):
        # systemd sets it from StateDirectory=; with several, they are colon-separated.
        return os.path.abspath(env["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return SYSTEM_STATE_DIRECTORY
    base = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore a relative path
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.abspath(os.path.join(base, "watchdog-oom"))


def default_database_url(env: Mapping[str, str] = os.environ) -> str:
    """The SQLite database history.db in the state directory, as an SQLAlchemy URL."""
    return "sqlite:///" + os.path.join(state_directory(env), "history.db")


# -- checks: combinations of values a section refuses ------------------------------------


def _levels(warn_key: str, crit_key: str, higher_is_worse: bool = True) -> Any:
    """A check refusing a critical level that is less severe than its warning level."""

    def check(view: View, config: Any) -> None:
        warn, crit = getattr(config, warn_key), getattr(config, crit_key)
        if (crit < warn) if higher_is_worse else (crit > warn):
            relation, why = (
                ("below", "the critical level must be at least the warning level") if higher_is_worse
                else ("above", "less available memory is worse, "
                               "so the critical level must be at most the warning level")
            )
            raise view.error(
                f"{view.key_path(crit_key)} ({crit:g}) is {relation} {view.key_path(warn_key)} ({warn:g}): {why}",
                crit_key, warn_key,
            )

    return check


def _hysteresis_below_warning(view: View, config: CommitConfig) -> None:
    if config.hysteresis >= config.warn_percent:
        raise view.error(
            f"{view.key_path('hysteresis')} ({config.hysteresis:g}) must be below "
            f"{view.key_path('warn_percent')} ({config.warn_percent:g}): an alert resolves that many "
            "points below the warning level",
            "hysteresis", "warn_percent",
        )


# -- the sections ---------------------------------------------------------------------


@valueclass
class CommitConfig:
    """When committed memory (Committed_AS) is worth an alert: `commit:`."""

    interval: float = key(10.0, v.duration(positive=True), "How often /proc/meminfo is read.")
    basis: str = key("auto", v.choice(COMMIT_BASES), """\
What commit is a percentage of:
  sar           Committed_AS / (MemTotal + SwapTotal), `sar -r`'s %commit
  commit_limit  Committed_AS / CommitLimit, the limit the kernel enforces
                when vm.overcommit_memory=2
  auto          commit_limit when vm.overcommit_memory=2, else sar""")
    # Above 100 is meaningful: Committed_AS exceeds RAM + swap under overcommit.
    warn_percent: float = key(90.0, v.number(0, above=True), """\
Alert levels in percent of the basis. Above 100 is allowed: with overcommit, Committed_AS can \
exceed RAM + swap. crit_percent must be at least warn_percent.""")
    crit_percent: float = key(100.0, v.number(0, above=True), "The critical level, in percent of the basis.")
    for_: float = key(30.0, v.duration(), "How long a level must be exceeded before it alerts.")
    hysteresis: float = key(5.0, v.percent(), """\
Points below a level that commit must fall to before the alert resolves, so a value hovering at \
the threshold does not flap. Must be below warn_percent.""")
    trend_window: float = key(1800.0, v.duration(positive=True), """\
A steady rise alerts before a level is reached: a rise of trend_rise_percent points of the basis \
within trend_window.""")
    trend_rise_percent: float = key(10.0, v.number(0), "The rise that alerts within trend_window; 0 disables it.")

    checks: ClassVar = (_levels("warn_percent", "crit_percent"), _hysteresis_below_warning)


@valueclass
class MemoryConfig:
    """When available memory, memory pressure or swap use is worth an alert: `memory:`."""

    interval: float = key(10.0, v.duration(positive=True), "How often available memory, pressure and swap are read.")
    available_warn_percent: float = key(10.0, v.percent(), """\
MemAvailable in percent of MemTotal; lower is worse, so crit must not exceed warn.""")
    available_crit_percent: float = key(5.0, v.percent(), "The critical level of MemAvailable, in percent.")
    psi_full_warn: float = key(10.0, v.percent(), """\
/proc/pressure/memory "full" avg10: the percentage of time every task was stalled waiting for \
memory (PSI, Linux 4.20+). 0 to 100; crit at least warn.""")
    psi_full_crit: float = key(30.0, v.percent(), "The critical level of memory pressure.")
    swap_used_warn_percent: float = key(80.0, v.percent(), """\
Swap used in percent of SwapTotal (not judged on a host without swap).""")
    swap_used_crit_percent: float = key(95.0, v.percent(), "The critical level of swap use.")
    for_: float = key(30.0, v.duration(), "How long a condition must hold before it alerts.")
    hysteresis: float = key(2.0, v.percent(), "Points a value must recover past a level before the alert resolves.")

    checks: ClassVar = (
        _levels("available_warn_percent", "available_crit_percent", higher_is_worse=False),
        _levels("psi_full_warn", "psi_full_crit"),
        _levels("swap_used_warn_percent", "swap_used_crit_percent"),
    )


def _source_and_path(view: View, config: KernelLogConfig) -> None:
    if config.source == "file" and config.path is None:
        raise view.error(f"{view.key_path('path')}: source file needs the path of the log file", "source")
    if config.path is not None and config.source in ("journal", "none"):
        raise view.error(f"{view.key_path('path')}: source {config.source} reads no path (kmsg, file and auto do)",
                         "path")


@valueclass
class KernelLogConfig:
    """Where OOM kill reports are read from: `kernel_log:`."""

    source: str = key("auto", v.choice(KERNEL_LOG_SOURCES), """\
Where the kernel's OOM kill reports are read:
  kmsg     /dev/kmsg (needs root or CAP_SYSLOG)
  journal  the journal's kernel messages, through journalctl
  file     a log file written by syslog, followed across rotation
  none     read no log; kills are still counted from /proc/vmstat
  auto     /dev/kmsg if it can be opened, else the journal if journalctl exists,
           else the first of /var/log/kern.log, /var/log/messages, /var/log/syslog""")
    path: str | None = key(None, v.optional(v.absolute_path()), """\
An absolute path. kmsg and auto: the device instead of /dev/kmsg; file: the log file, required, \
e.g. /var/log/kern.log. Refused with journal and none.""")
    vmstat_check: bool = key(True, v.boolean(), """\
Compare /proc/vmstat's oom_kill counter (Linux 4.13+) with the kills found in the log, and alert \
on kills the log did not show (oom.unlogged).""")
    witness_wait: float = key(10.0, v.duration(positive=True), """\
How long a kill one witness saw (the tracepoints, or the kernel log) waits for the other \
before their disagreement is alerted (oom.unlogged): the journal and syslog files may lag the \
kernel by seconds, a log shipped from elsewhere by more.""")
    tracepoints: str = key("auto", v.auto_on_off(), """\
Read the kernel's oom tracepoints (mark_victim, Linux 4.13+; oom_score_adj_update) from a \
trace instance of the daemon's own: every kill with its exact pid, time and sizes even when \
the log loses it, and the audit of oom_score_adj writes. auto: where tracefs is mounted and \
writable; on: required, and tracefs is mounted at /sys/kernel/tracing if it is not; off: never.""")
    tracefs: str | None = key(None, v.optional(v.absolute_path()), """\
Where tracefs is mounted; null: /sys/kernel/tracing, else /sys/kernel/debug/tracing.""")
    trace_instance: str = key("watchdog-oom", v.file_name(), """\
The trace instance made under tracefs's instances/ (removed at stop). One left by a killed \
daemon is replaced; one another reader has open is left alone and NAME-PID used instead.""")

    checks: ClassVar = (_source_and_path,)


def _rule_names_a_process(view: View, rule: CriticalRuleKeys) -> None:
    if rule.name is None and rule.cmdline is None and rule.unit is None and rule.cgroup is None:
        raise view.error(f"{view.path}: a critical rule needs one of name, cmdline, unit, cgroup")


@valueclass
class CriticalRuleKeys:
    """The keys of one `processes.critical` rule, read into a model.CriticalRule."""

    name: str | None = key(None, v.text(), "the exact process name (comm, as in `ps -o comm`)")
    cmdline: str | None = key(None, v.regex(), "a regular expression searched in the command line")
    unit: str | None = key(None, v.glob(), 'a glob on the systemd unit or container, e.g. "postgresql*.service"')
    cgroup: str | None = key(None, v.glob(), "a glob on the cgroup path")
    uid: int | None = key(None, v.integer(0), "the owner it must have (a service run by an ordinary user)")

    checks: ClassVar = (_rule_names_a_process,)


def _critical_rule(keys: CriticalRuleKeys) -> CriticalRule:
    return CriticalRule(name=keys.name, cmdline=keys.cmdline, unit=keys.unit, cgroup=keys.cgroup, uid=keys.uid)


@valueclass
class ProcessesConfig:
    """Ranking of the OOM killer's next victims, and the processes that must not be one."""

    interval: float = key(30.0, v.duration(positive=True), "How often processes are ranked by the kernel's oom_score.")
    top: int = key(10, v.integer(1), "How many of the likeliest victims are kept and shown.")
    at_risk_top: int = key(3, v.integer(0), """\
A critical process among this many likeliest victims is at risk and alerts (process.at_risk). \
0 disables that alert.""")
    # sshd only: it is the way in to repair a machine short of memory. Databases are
    # left to each host's file: on a database server the database is the biggest
    # process, hence always among the top candidates, and would alert without end.
    critical: tuple[CriticalRule, ...] = key((CriticalRule(name="sshd"),), Records(
        {"rule": CriticalRuleKeys}, noun="critical rule", shorthand="name", build=_critical_rule,
        what="a mapping with one of name, cmdline, unit or cgroup (and optionally uid)",
        examples=({"cmdline": "postgres: .*"}, {"name": "mysqld"}, {"unit": "redis*.service"},
                  {"name": "myapp", "uid": 1001}),
    ), """\
Processes that must not be the OOM killer's victim. Each rule sets one or more of the keys below. \
A plain string is a name: `- sshd` is `- name: sshd`. A process matching any rule is critical. \
The default is sshd alone, the way in to repair a machine short of memory. Add your databases \
here: they are not critical by default because on a database server the database is the biggest \
process, always among the likeliest victims, and would alert without end.""")
    system_uid_max: int = key(999, v.integer(0), """\
A rule without `uid` matches only processes of system accounts (uid up to this), because any \
local user can call a process "sshd" or give it any command line.""")
    protect: bool = key(False, v.boolean(), """\
true: set each critical process's oom_score_adj to protect_adj (needs root or CAP_SYS_RESOURCE).""")
    protect_adj: int = key(-900, v.integer(-1000, 1000), """\
-1000 makes a process immune; -900 leaves it killable as a last resort.""")
    for_: float = key(0.0, v.duration(), "How long a critical process must stay at risk before it alerts.")
    cache_size: int = key(4096, v.integer(1), """\
How many processes' command lines and units are remembered, so a kill record can name what the \
victim was after it is gone.""")
    redact: tuple[str, ...] = key((), ListOf(v.regex(), single=True), """\
Regular expressions for secrets in command lines, in addition to the built-in ones (passwords, \
tokens, keys, credentials in URLs). Group 1 of a match (or the whole match without a group) \
becomes *** before a command line is stored or sent.""", more=(("--license[= ](\\S+)",),))


def _cgroup_hysteresis_below_warning(view: View, config: CgroupsConfig) -> None:
    if config.hysteresis >= config.warn_percent:
        raise view.error(
            f"{view.key_path('hysteresis')} ({config.hysteresis:g}) must be below "
            f"{view.key_path('warn_percent')} ({config.warn_percent:g})", "hysteresis", "warn_percent")


@valueclass
class CgroupsConfig:
    """Containers, pods and services at their own memory limit: `cgroups:`."""

    enabled: bool = key(True, v.boolean(), """\
Watch the memory cgroups that have a limit of their own (containers, Kubernetes pods, systemd \
units with MemoryMax= or MemoryHigh=), where the cgroup filesystem is readable.""")
    interval: float = key(10.0, v.duration(positive=True), """\
How often they are read. A forecast needs three readings, so a cgroup that fills in less than \
three intervals is caught by the kernel first.""")
    root: str | None = key(None, v.optional(v.absolute_path()), """\
Where the cgroup filesystems are mounted (v2 at the root, v1's memory hierarchy in memory/, \
a hybrid host's cgroup2 in unified/). By default sys/fs/cgroup beside procfs: /sys/fs/cgroup \
for /proc, /host/sys/fs/cgroup for /host/proc.""", more=("/sys/fs/cgroup",))

    @staticmethod
    def state_root_for(procfs: str) -> str:
        """The root under which container runtimes keep their state (/var/lib/docker, /run/containerd):
        the directory holding procfs, "/" for /proc."""
        return os.path.dirname(os.path.normpath(procfs)) or "/"

    def root_for(self, procfs: str) -> str:
        """The cgroup mount root to read: `root`, else sys/fs/cgroup beside the procfs root."""
        if self.root is not None:
            return self.root
        return os.path.join(os.path.dirname(os.path.normpath(procfs)), "sys", "fs", "cgroup")
    warn_percent: float = key(85.0, v.percent(), """\
Working set (usage minus inactive file pages, as the kubelet and cAdvisor count it) in percent \
of the cgroup's limit. crit_percent must be at least warn_percent.""")
    crit_percent: float = key(95.0, v.percent(), "The critical level, in percent of the limit.")
    for_: float = key(30.0, v.duration(), "How long a level must be exceeded before it alerts.")
    hysteresis: float = key(5.0, v.percent(), "Points below a level before its alert resolves; below warn_percent.")
    horizon: float = key(600.0, v.duration(), """\
cgroup.forecast alerts when the working set, growing at its recent rate, reaches the limit \
within this time; 0 disables the forecast.""")
    window: float = key(300.0, v.duration(positive=True), "The recent history the growth rate is fitted over.")
    include: tuple[str, ...] = key(("*",), ListOf(v.glob(), single=True), """\
Globs on the cgroup path (as the kernel prints it, e.g. /kubepods/*); only matching cgroups are \
watched.""", more=(("/kubepods*", "/system.slice/*"),))
    exclude: tuple[str, ...] = key((), ListOf(v.glob(), single=True), """\
Globs on the cgroup path of cgroups never watched (their kills still count in their parents).""",
                                   more=(("/user.slice/*",),))
    top: int = key(10, v.integer(0), """\
Beyond those at or above warn_percent, how many cgroups with the least headroom are kept in \
history and exported in /metrics (bounds the metrics' cardinality).""")
    max_cgroups: int = key(20000, v.integer(1), "At most this many cgroups are looked at per reading.")

    checks: ClassVar = (_levels("warn_percent", "crit_percent"), _cgroup_hysteresis_below_warning)


# -- notification channels: one dataclass per type --------------------------------------


@valueclass
class GlobFilter:
    """Globs on the process name and cgroup path a notification is about."""

    process: str | None = key(None, v.optional(v.glob()), "a glob on the process name")
    cgroup: str | None = key(None, v.optional(v.glob()), "a glob on the cgroup path")


@valueclass
class ChannelConfig:
    """What every channel has: a name, and which notifications it wants. `type` names the
    subclass (SlackChannel, EmailChannel, WebhookChannel); options() are the keyword
    arguments of notify.build_channel for it."""

    type: ClassVar[str] = ""
    name: str = key("", v.channel_name(), "A unique name: letters, digits, . _ -.")
    min_severity: str = key("warning", v.choice(SEVERITIES), "The least severity sent: info | warning | critical.")
    kinds: tuple[str, ...] = key((), ListOf(v.glob(), single=True), """\
Globs on the notification kind (oom.kill, commit.warning, commit.critical, commit.resolved, \
memory.*, process.at_risk, ...); a single glob or a list. Empty: every kind.""")
    match: GlobFilter = section(GlobFilter, """\
Only notifications about a process name / cgroup path matching these globs (both when both are \
given) ...""", compact=True)
    exclude: GlobFilter = section(GlobFilter, "... and none about one matching these.", compact=True)
    timeout: float = key(10.0, v.duration(positive=True), "How long one delivery attempt may take.")

    @property
    def match_process(self) -> str | None:
        """The glob a process name must match, if any."""
        return self.match.process

    @property
    def match_cgroup(self) -> str | None:
        """The glob a cgroup path must match, if any."""
        return self.match.cgroup

    @property
    def exclude_process(self) -> str | None:
        """The glob of process names not notified, if any."""
        return self.exclude.process

    @property
    def exclude_cgroup(self) -> str | None:
        """The glob of cgroup paths not notified, if any."""
        return self.exclude.cgroup

    def options(self) -> dict[str, Any]:
        """The keyword arguments of build_channel(type, name, **options) for this channel's type."""
        raise NotImplementedError

    def secrets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The secret texts this channel holds, and its URLs whose path or query may hold one."""
        return (), ()


@valueclass
class SlackChannel(ChannelConfig):
    """A Slack incoming webhook."""

    type: ClassVar[str] = "slack"
    webhook_url: str | None = key(None, v.http_url(), """\
A Slack incoming webhook; its path is a secret, so take it from the environment.""", required=True)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of build_channel("slack", name, **options)."""
        return {"webhook_url": self.webhook_url, "timeout": self.timeout}

    def secrets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """No secret text; the webhook URL."""
        return (), tuple(url for url in (self.webhook_url,) if url)


def _email_login_and_port(view: View, channel: EmailChannel) -> EmailChannel:
    if not channel.to:
        raise view.error(f"{view.key_path('to')}: an email channel needs at least one address", "to")
    if (channel.username is None) != (channel.password is None):
        given, absent = ("username", "password") if channel.username is not None else ("password", "username")
        raise view.error(f"{view.key_path(given)}: a login needs both username and password; {absent} is missing",
                         given)
    if channel.password is not None and channel.security == "none":
        raise view.error(f"{view.key_path('security')}: none would send the password unencrypted; use starttls or ssl",
                         "security", "password")
    if "port" not in view:
        return replace(channel, port=EMAIL_PORTS[channel.security])
    return channel


@valueclass
class EmailChannel(ChannelConfig):
    """Email through an SMTP server, STARTTLS or TLS, verified."""

    type: ClassVar[str] = "email"
    host: str | None = key(None, v.hostname(), "The SMTP server.", required=True)
    port: int = key(EMAIL_PORTS["starttls"], v.integer(1, 65535), """\
The SMTP port; by default 587 for starttls, 465 for ssl and 25 for none.""")
    security: str = key("starttls", v.choice(EMAIL_SECURITY), "starttls | ssl | none.")
    username: str | None = key(None, v.text(), """\
A login needs both username and password; none sends no password, so it is refused with one.""")
    password: str | None = key(None, v.secret(), "The login's password; keep it in the environment.")
    from_: str | None = key(None, v.address(), "The sender's address.", required=True)
    to: tuple[str, ...] = key((), ListOf(v.addresses(), single=True, flatten=True), "One address or a list.",
                              required=True)

    checks: ClassVar = (_email_login_and_port,)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of build_channel("email", name, **options)."""
        return {
            "host": self.host, "port": self.port, "security": self.security,
            "username": self.username, "password": self.password,
            "sender": self.from_, "to": self.to, "timeout": self.timeout,
        }

    def secrets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The password."""
        return tuple(p for p in (self.password,) if p), ()


_HEADER_VALUE = v.Kind("text (masked)", v.header_value, mask=lambda _: v.MASK, secret_sort="text")


@valueclass
class WebhookChannel(ChannelConfig):
    """An HTTP POST signed per Standard Webhooks."""

    type: ClassVar[str] = "webhook"
    url: str | None = key(None, v.http_url(), "Where notifications are POSTed.", required=True)
    secret: str | None = key(None, v.webhook_secret(), """\
Standard Webhooks signing: whsec_ and the base64 of 24 to 64 random bytes (the prefix may be \
omitted), e.g. whsec_$(openssl rand -base64 32). Without a secret, notifications are not signed.""")
    format: str = key("native", v.choice(WEBHOOK_FORMATS), """\
native: watchdog-oom's JSON; alertmanager: the Alertmanager webhook v4 body.""")
    headers: tuple[tuple[str, str], ...] = key((), NamedValues(
        _HEADER_VALUE, "HTTP header", lambda name: bool(name) and not name.strip(_HEADER_NAME_CHARS),
        reserved=WEBHOOK_OWN_HEADERS, owner="the webhook channel"), """\
Extra request headers; the webhook- signature headers and Content-Type are the channel's own.""")

    def options(self) -> dict[str, Any]:
        """The keyword arguments of build_channel("webhook", name, **options)."""
        return {
            "url": self.url, "secret": self.secret, "format": self.format,
            "timeout": self.timeout, "headers": dict(self.headers),
        }

    def secrets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The signing secret and header values; the URL."""
        texts = tuple(s for s in (self.secret, *(value for _, value in self.headers)) if s)
        return texts, tuple(url for url in (self.url,) if url)


CHANNEL_CLASSES: dict[str, type[ChannelConfig]] = {
    cls.type: cls for cls in (SlackChannel, EmailChannel, WebhookChannel)
}
CHANNEL_TYPES = tuple(CHANNEL_CLASSES)

_CHANNEL_EXAMPLES = (
    {"name": "ops-chat", "type": "slack", "webhook_url": "${SLACK_WEBHOOK_URL}", "min_severity": "warning",
     "kinds": [], "match": {}, "exclude": {}, "timeout": "10s"},
    {"name": "ops-mail", "type": "email", "kinds": ["oom.kill", "commit.*"], "match": {"cgroup": "/system.slice/*"},
     "exclude": {"process": "stress*"}, "host": "smtp.example.com", "security": "starttls", "port": 587,
     "username": "watchdog", "password": "${SMTP_PASSWORD}", "from": "watchdog-oom <watchdog@example.com>",
     "to": ["ops@example.com"]},
    {"name": "pager", "type": "webhook", "url": "https://hooks.example.com/oom", "format": "native",
     "secret": "${WEBHOOK_SECRET}", "headers": {"Authorization": "Bearer ${PAGER_TOKEN}"}},
)


@valueclass
class HeartbeatConfig:
    """A URL fetched every `interval` while the daemon is healthy (a dead man's switch)."""

    url: str | None = key(None, v.optional(v.http_url()), """\
A URL (a healthchecks.io or Uptime Kuma push URL) requested every interval while the daemon is \
healthy, so that a dead daemon is noticed. null: none.""")
    interval: float = key(60.0, v.duration(positive=True), "How often the heartbeat URL is requested.")


def _retry_order(view: View, config: NotificationsConfig) -> None:
    if config.retry_initial > config.retry_max:
        raise view.error("notifications.retry_initial: must not exceed retry_max", "retry_initial", "retry_max")


@valueclass
class NotificationsConfig:
    """Grouping, repeating and delivery of notifications: `notifications:`."""

    group_wait: float = key(5.0, v.duration(), """\
How long to wait for more alerts before sending, so one event is one message.""")
    repeat_interval: float = key(14400.0, v.duration(positive=True), """\
How often a condition that is still firing is notified again.""")
    max_age: float = key(86400.0, v.duration(positive=True), """\
A notification still undelivered after this is given up (and recorded as such).""")
    retry_initial: float = key(5.0, v.duration(positive=True), """\
After a transient failure (HTTP 5xx or 429, a timeout, SMTP 4xx) the next attempt waits \
retry_initial, doubling with each failure up to retry_max, with +-50% jitter; a Retry-After \
from the endpoint is honoured.""")
    retry_max: float = key(900.0, v.duration(positive=True), "The longest wait between retries.")
    channels: tuple[ChannelConfig, ...] = key((), Records(
        CHANNEL_CLASSES, noun="channel", tag="type", unique="name",
        what="a mapping with name, type and the type's keys", examples=_CHANNEL_EXAMPLES,
    ), """\
Where notifications go. Each channel has a unique name (letters, digits, . _ -) and a type: slack, \
email or webhook. No channels: alerts are still recorded, and `watchdog-oom history` shows them.""")
    heartbeat: HeartbeatConfig = section(HeartbeatConfig, "A dead man's switch.")

    checks: ClassVar = (_retry_order,)


@valueclass
class MetricsConfig:
    """The Prometheus endpoint: `metrics:`."""

    listen: str | None = key(None, v.optional(v.listen()), """\
HOST:PORT of Prometheus metrics at /metrics, e.g. 127.0.0.1:9464, [::1]:9464, or 0.0.0.0:9464 on \
every interface. null: no metrics endpoint.""")

    @property
    def address(self) -> tuple[str, int] | None:
        """`listen` as (host, port) for a socket, IPv6 brackets removed; None when off."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


def _raw_within_samples(view: View, config: RetentionConfig) -> None:
    if config.raw_samples > config.samples:
        raise view.error(
            f"{view.key_path('raw_samples')} ({v.format_duration(config.raw_samples)}) is longer than "
            f"{view.key_path('samples')} ({v.format_duration(config.samples)}): samples are deleted before "
            "they would be downsampled",
            "raw_samples", "samples",
        )


@valueclass
class RetentionConfig:
    """How long history is kept (seconds) before it is downsampled or deleted."""

    samples: float = key(30 * 86400.0, v.duration(positive=True), """\
How long each history is kept. Samples are kept at full resolution for raw_samples, then as \
5-minute means, and past a week (or raw_samples, if longer) as hourly means, until `samples`.""")
    raw_samples: float = key(2 * 86400.0, v.duration(positive=True), "Must not exceed samples.")
    kills: float = key(400 * 86400.0, v.duration(positive=True), "How long kills are kept.")
    alerts: float = key(400 * 86400.0, v.duration(positive=True), "Resolved alerts.")
    notifications: float = key(90 * 86400.0, v.duration(positive=True), "Notifications whose delivery is over.")
    adjustments: float = key(400 * 86400.0, v.duration(positive=True), """\
Writes to processes' oom_score_adj seen by the tracepoint (history adjustments).""")

    checks: ClassVar = (_raw_within_samples,)


@valueclass
class DaemonConfig:
    """The daemon's own conduct: `daemon:`."""

    oom_score_adj: int = key(-900, v.integer(-1000, 1000), """\
The daemon's own oom_score_adj (-1000 to 1000), set at start when permitted: it must outlive the \
memory shortage it reports.""")
    log_level: str = key("info", v.choice(LOG_LEVELS), "debug | info | warning | error")
    watchdog: bool = key(True, v.boolean(), "Send WATCHDOG=1 to systemd when the unit sets WatchdogSec=.")


def _database_from_the_environment(view: View, config: Config) -> Config | None:
    # The default depends on the environment load_config was given ($STATE_DIRECTORY).
    if "database" not in view:
        return replace(config, database=default_database_url(view.reader.env))
    return None


@valueclass
class Config:
    """The whole configuration; `origin` is the file it came from, None for built-in defaults.

    `warnings` says what a lenient load (strict_env=False) left out.
    """

    host: str = key(None, v.text(), "The name this host goes by in notifications and in a shared database.",
                    default_factory=socket.gethostname, default_text="the hostname", example="web-01")
    database: str = key(None, v.database_url(), """\
Where history is kept: any SQLAlchemy URL. A fleet can share one PostgreSQL database (install \
watchdog-oom[postgres]); keep its password in the environment.""",
                        default_factory=lambda: default_database_url(os.environ),
                        default_text="sqlite:/// and history.db in the state directory: $STATE_DIRECTORY "
                        "(systemd's StateDirectory=), else /var/lib/watchdog-oom as root, else "
                        "$XDG_STATE_HOME/watchdog-oom or ~/.local/state/watchdog-oom",
                        example="postgresql://watchdog:${DB_PASSWORD}@db-host/watchdog",
                        more=("sqlite:////var/lib/watchdog-oom/history.db",))
    procfs: str = key("/proc", v.absolute_path(), """\
The root of the proc filesystem that is read (another path for containers and tests).""")
    commit: CommitConfig = section(CommitConfig, "When committed memory (Committed_AS) is worth an alert.")
    memory: MemoryConfig = section(MemoryConfig, "When available memory, pressure or swap use is worth an alert.")
    kernel_log: KernelLogConfig = section(KernelLogConfig, "Where OOM kill reports are read from.")
    processes: ProcessesConfig = section(ProcessesConfig, """\
The OOM killer's likeliest next victims, and the processes that must not be one.""")
    cgroups: CgroupsConfig = section(CgroupsConfig, """\
Containers, pods and services at their own memory limit: headroom, a forecast, the victim inside.""")
    notifications: NotificationsConfig = section(NotificationsConfig, "Who is told, and how.", daemon_only=True)
    metrics: MetricsConfig = section(MetricsConfig, "The Prometheus endpoint.", daemon_only=True)
    retention: RetentionConfig = section(RetentionConfig, "How long history is kept.", daemon_only=True)
    daemon: DaemonConfig = section(DaemonConfig, "The daemon's own conduct.", daemon_only=True)
    origin: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)

    checks: ClassVar = (_database_from_the_environment,)
