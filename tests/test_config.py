"""Tests of watchdog_oom.config: YAML files on disk to typed, frozen values, and the errors."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import textwrap
from pathlib import Path

import pytest

from watchdog_oom.config import (
    CHANNEL_CLASSES,
    DEFAULT_CONFIG_PATH,
    CommitConfig,
    Config,
    ConfigError,
    GlobFilter,
    MemoryConfig,
    ProcessesConfig,
    SlackChannel,
    config_path,
    default_database_url,
    display,
    example_text,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
    values,
)
from watchdog_oom.config.declare import SectionOf, Setting, settings_of
from watchdog_oom.model import CriticalRule

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.yaml"

SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/SlackTokenXyz123"
SMTP_PASSWORD = "smtp-Pa55word!"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
DB_PASSWORD = "db-Secret-42"
SECRETS_ENV = {
    "SLACK_WEBHOOK_URL": SLACK_URL,
    "SMTP_PASSWORD": SMTP_PASSWORD,
    "WEBHOOK_SECRET": WEBHOOK_SECRET,
    "PAGER_TOKEN": "pager-token-777",
}

# The Configuration example of INTERFACE.md, verbatim: the contract with users' files.
INTERFACE_EXAMPLE = """\
host: web-01                  # default: the hostname
database: sqlite:////var/lib/watchdog-oom/history.db   # any SQLAlchemy URL; a fleet shares
                              # postgresql://user@db-host/watchdog (extra: watchdog-oom[postgres])
procfs: /proc                 # root of the proc filesystem that is read
commit:
  interval: 10s
  basis: auto                 # auto | sar | commit_limit (auto: commit_limit when vm.overcommit_memory=2, else sar)
  warn_percent: 90
  crit_percent: 100
  for: 30s                    # how long the condition must hold before it alerts
  hysteresis: 5               # points below the threshold before it resolves
memory:
  interval: 10s
  available_warn_percent: 10
  available_crit_percent: 5
  psi_full_warn: 10           # /proc/pressure/memory full avg10, percent
kernel_log:
  source: auto                # auto | kmsg | journal | file | none
  path: null                  # kmsg: /dev/kmsg; file: e.g. /var/log/kern.log
processes:
  interval: 30s
  top: 10
  critical:                   # processes that must not be the OOM killer's victim
    - name: sshd              # exact process name (comm)
    - cmdline: 'postgres: .*' # regular expression on the command line
  protect: false              # true: set critical processes' oom_score_adj to protect_adj
  protect_adj: -900
notifications:
  group_wait: 5s
  repeat_interval: 4h
  channels:
    - name: ops-chat
      type: slack
      webhook_url: ${SLACK_WEBHOOK_URL}
      min_severity: warning   # info | warning | critical
    - name: ops-mail
      type: email
      host: smtp.example.com
      port: 587
      security: starttls      # starttls | ssl | none
      username: watchdog
      password: ${SMTP_PASSWORD}
      from: watchdog@example.com
      to: [ops@example.com]
    - name: pager
      type: webhook
      url: https://hooks.example.com/oom
      secret: ${WEBHOOK_SECRET}   # whsec_… : Standard Webhooks signing
      format: native              # native | alertmanager
metrics:
  listen: null                # e.g. 127.0.0.1:9464 : Prometheus metrics at /metrics
retention:
  samples: 30d
  kills: 400d
"""

# Every key, none at its default.
EVERY_KEY = """\
host: db-07
database: postgresql+psycopg://watchdog:${DB_PASSWORD}@db-host:5433/watchdog?sslmode=require
procfs: /host/proc
commit:
  interval: 15s
  basis: commit_limit
  warn_percent: 80
  crit_percent: 95.5
  for: 1m
  hysteresis: 3
  trend_window: 1h
  trend_rise_percent: 0
memory:
  interval: 20s
  available_warn_percent: 15
  available_crit_percent: 7.5
  psi_full_warn: 5
  psi_full_crit: 20
  swap_used_warn_percent: 70
  swap_used_crit_percent: 90
  for: 45s
  hysteresis: 1
kernel_log:
  source: file
  path: /var/log/kern.log
  vmstat_check: false
processes:
  interval: 1m
  top: 20
  at_risk_top: 5
  critical:
    - name: sshd
    - cmdline: 'postgres: .*'
    - unit: redis*.service
    - cgroup: /system.slice/mysql*
    - systemd-journald
  protect: true
  protect_adj: -1000
  for: 2m
  cache_size: 100
  redact: ['--license[= ](\\S+)']
notifications:
  group_wait: 0
  repeat_interval: 1h30m
  max_age: 2d
  channels:
    - name: ops-chat
      type: slack
      webhook_url: ${SLACK_WEBHOOK_URL}
      min_severity: critical
      kinds: oom.kill
      match: {process: "java*", cgroup: /kubepods/*}
      exclude: {process: stress, cgroup: /user.slice/*}
      timeout: 5s
    - name: ops-mail
      type: email
      host: smtp.example.com
      port: 2525
      security: ssl
      username: watchdog
      password: ${SMTP_PASSWORD}
      from: watchdog-oom <watchdog@example.com>
      to: ops@example.com, Dev Team <dev@example.com>
    - name: pager
      type: webhook
      url: https://hooks.example.com/oom
      secret: ${WEBHOOK_SECRET}
      format: alertmanager
      headers:
        Authorization: Bearer ${PAGER_TOKEN}
        X-Priority: 1
  heartbeat:
    url: https://hc-ping.com/5f0c1a2b-aaaa-bbbb-cccc-123456789abc
    interval: 5m
metrics:
  listen: "[::1]:9464"
retention:
  samples: 60d
  kills: 1w
  alerts: 100d
  notifications: 30d
  raw_samples: 3d
daemon:
  oom_score_adj: -500
  log_level: debug
  watchdog: false
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def refused(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    """The message of the ConfigError that loading `text` from a file raises."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=env or {})
    return str(caught.value)


# -- where the configuration comes from -------------------------------------------------


@pytest.mark.skipif(os.path.exists(DEFAULT_CONFIG_PATH), reason="this machine has a config file")
def test_no_file_anywhere_gives_the_built_in_defaults(tmp_path: Path) -> None:
    config = load_config(env={"STATE_DIRECTORY": str(tmp_path)})
    assert config.origin is None
    assert config.database == f"sqlite:///{tmp_path}/history.db"
    assert config.commit == CommitConfig()
    assert config.processes.critical == (CriticalRule(name="sshd"),)
    assert config.notifications.channels == ()
    assert config.host


def test_watchdog_oom_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "host: from-env\n")
    config = load_config(env={"WATCHDOG_OOM_CONFIG": path})
    assert (config.host, config.origin) == ("from-env", path)
    assert config_path(None, {"WATCHDOG_OOM_CONFIG": path}) == path


def test_explicit_path_beats_the_variable(tmp_path: Path) -> None:
    chosen = write(tmp_path, "host: chosen\n", "chosen.yaml")
    other = write(tmp_path, "host: other\n", "other.yaml")
    assert load_config(chosen, env={"WATCHDOG_OOM_CONFIG": other}).host == "chosen"


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=re.escape(missing) + ": cannot read"):
        load_config(env={"WATCHDOG_OOM_CONFIG": missing})


def test_database_defaults_to_the_systemd_state_directory(tmp_path: Path) -> None:
    assert default_database_url({"STATE_DIRECTORY": f"{tmp_path}/a:{tmp_path}/b"}) == f"sqlite:///{tmp_path}/a/history.db"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_database_defaults_to_var_lib_as_root() -> None:
    assert default_database_url({}) == "sqlite:////var/lib/watchdog-oom/history.db"


@pytest.mark.skipif(os.geteuid() == 0, reason="root uses /var/lib")
def test_database_defaults_to_the_xdg_state_home_for_a_user(tmp_path: Path) -> None:
    assert default_database_url({"XDG_STATE_HOME": str(tmp_path)}) == f"sqlite:///{tmp_path}/watchdog-oom/history.db"
    assert default_database_url({"HOME": str(tmp_path)}) == f"sqlite:///{tmp_path}/.local/state/watchdog-oom/history.db"


@pytest.mark.parametrize("text", ["", "# only comments\n", "{}\n", "~\n", "commit:\nmemory: {}\n"])
def test_empty_file_mapping_or_section_means_defaults(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text), env={})
    assert (config.commit, config.memory) == (CommitConfig(), MemoryConfig())


# -- every key accepted -------------------------------------------------------------------


def test_example_file_loads_and_sets_the_defaults() -> None:
    example = load_config(str(EXAMPLE), env={})
    assert example.origin == str(EXAMPLE)
    assert example == Config(host=example.host, database=example.database, origin=str(EXAMPLE))


def test_example_file_is_generated_from_the_declarations() -> None:
    # Regenerate with: python -m watchdog_oom.config example > config.example.yaml
    assert EXAMPLE.read_text(encoding="utf-8") == example_text()


def test_example_documents_every_declared_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")

    def keys(cls: type) -> list[str]:
        found = []
        for key, (_, setting) in settings_of(cls).items():
            found.append(key)
            if isinstance(setting.kind, SectionOf):
                found += keys(setting.kind.cls)
        return found

    every = keys(Config) + [key for cls in CHANNEL_CLASSES.values() for key in keys(cls)]
    assert [key for key in every if not re.search(rf"\b{key}:", text)] == []
    assert [key for key in ("name", "cmdline", "unit", "cgroup", "uid") if f"#   {key} " not in text] == []


def test_example_channels_load_once_uncommented(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = lines.index("  # channels:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("  #"))
    block = [line.replace("  # ", "  ", 1) if line != "  #" else "" for line in lines[start:end]]
    text = "\n".join(line for line in lines[:start] + block + lines[end:] if line != "  channels: []")

    config = load_config(write(tmp_path, text), env=SECRETS_ENV)

    assert [c.name for c in config.notifications.channels] == ["ops-chat", "ops-mail", "pager"]
    assert config.notifications.channels[2].options()["headers"] == {"Authorization": "Bearer pager-token-777"}


def test_interface_example_is_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, INTERFACE_EXAMPLE), env=SECRETS_ENV)
    assert config.host == "web-01"
    assert config.processes.critical == (CriticalRule(name="sshd"), CriticalRule(cmdline="postgres: .*"))
    slack, mail, pager = config.notifications.channels
    assert slack.webhook_url == SLACK_URL
    assert (mail.password, mail.to, mail.from_) == (SMTP_PASSWORD, ("ops@example.com",), "watchdog@example.com")
    assert (pager.secret, pager.format) == (WEBHOOK_SECRET, "native")
    assert config.retention.kills == 400 * 86400


def test_every_key_is_read_into_its_field(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "DB_PASSWORD": DB_PASSWORD}
    config = load_config(write(tmp_path, EVERY_KEY), env=env)

    assert config.database == f"postgresql+psycopg://watchdog:{DB_PASSWORD}@db-host:5433/watchdog?sslmode=require"
    assert (config.host, config.procfs) == ("db-07", "/host/proc")
    assert config.commit == CommitConfig(15, "commit_limit", 80, 95.5, 60, 3, 3600, 0)
    assert config.memory == MemoryConfig(20, 15, 7.5, 5, 20, 70, 90, 45, 1)
    assert (config.kernel_log.source, config.kernel_log.path, config.kernel_log.vmstat_check) == (
        "file", "/var/log/kern.log", False)
    assert config.processes == ProcessesConfig(
        interval=60, top=20, at_risk_top=5,
        critical=(CriticalRule(name="sshd"), CriticalRule(cmdline="postgres: .*"),
                  CriticalRule(unit="redis*.service"), CriticalRule(cgroup="/system.slice/mysql*"),
                  CriticalRule(name="systemd-journald")),
        protect=True, protect_adj=-1000, for_=120, cache_size=100, redact=(r"--license[= ](\S+)",),
    )
    notifications = config.notifications
    assert (notifications.group_wait, notifications.repeat_interval, notifications.max_age) == (0, 5400, 172800)
    assert (notifications.heartbeat.url, notifications.heartbeat.interval) == (
        "https://hc-ping.com/5f0c1a2b-aaaa-bbbb-cccc-123456789abc", 300)
    slack, mail, pager = notifications.channels
    assert slack == SlackChannel(
        name="ops-chat", webhook_url=SLACK_URL, min_severity="critical", kinds=("oom.kill",),
        match=GlobFilter(process="java*", cgroup="/kubepods/*"), exclude=GlobFilter("stress", "/user.slice/*"),
        timeout=5,
    )
    assert (slack.type, slack.match_process, slack.match_cgroup, slack.exclude_process, slack.exclude_cgroup) == (
        "slack", "java*", "/kubepods/*", "stress", "/user.slice/*")
    assert (mail.port, mail.security, mail.username, mail.from_, mail.to) == (
        2525, "ssl", "watchdog", "watchdog-oom <watchdog@example.com>",
        ("ops@example.com", "Dev Team <dev@example.com>"))
    assert pager.headers == (("Authorization", "Bearer pager-token-777"), ("X-Priority", "1"))
    assert config.metrics.listen == "[::1]:9464"
    assert config.metrics.address == ("::1", 9464)
    retention = config.retention
    assert (retention.samples, retention.kills, retention.alerts, retention.notifications, retention.raw_samples) == (
        60 * 86400, 7 * 86400, 100 * 86400, 30 * 86400, 3 * 86400)
    assert (config.daemon.oom_score_adj, config.daemon.log_level, config.daemon.watchdog) == (-500, "debug", False)
    assert hash(config)


def test_for_and_from_keys_map_to_for_and_from_fields(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
        commit: {for: 2m}
        memory: {for: 90}
        processes: {for: 1h30m}
        notifications:
          channels:
            - {name: m, type: email, host: mx.example.com, from: a@example.com, to: b@example.com}
        """), env={})
    assert (config.commit.for_, config.memory.for_, config.processes.for_) == (120, 90, 5400)
    assert config.notifications.channels[0].from_ == "a@example.com"


def test_email_port_follows_the_security_when_not_given(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
        notifications:
          channels:
            - {name: a, type: email, host: mx.example.com, from: a@example.com, to: b@example.com}
            - {name: b, type: email, host: mx.example.com, from: a@example.com, to: b@example.com, security: ssl}
            - {name: c, type: email, host: localhost, from: a@example.com, to: b@example.com, security: none}
        """), env={})
    assert [c.port for c in config.notifications.channels] == [587, 465, 25]


def test_merge_keys_share_settings_between_channels(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
        notifications:
          channels:
            - &mail {name: day, type: email, host: mx.example.com, from: a@example.com, to: day@example.com}
            - <<: *mail
              name: night
              to: night@example.com
        """), env={})
    day, night = config.notifications.channels
    assert (night.name, night.host, night.to) == ("night", "mx.example.com", ("night@example.com",))


def test_channel_options_are_the_build_channel_arguments_of_its_type(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, INTERFACE_EXAMPLE), env=SECRETS_ENV)
    slack, mail, pager = config.notifications.channels
    assert slack.options() == {"webhook_url": SLACK_URL, "timeout": 10.0}
    assert mail.options() == {
        "host": "smtp.example.com", "port": 587, "security": "starttls", "username": "watchdog",
        "password": SMTP_PASSWORD, "sender": "watchdog@example.com", "to": ("ops@example.com",), "timeout": 10.0,
    }
    assert pager.options() == {
        "url": "https://hooks.example.com/oom", "secret": WEBHOOK_SECRET, "format": "native",
        "timeout": 10.0, "headers": {},
    }


# -- mistakes refused ---------------------------------------------------------------------


def test_misspelt_key_is_refused_with_its_path_line_and_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "host: a\ncommit:\n  interval: 10s\n  warn_percnt: 80\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f'{path} line 4: unknown key "commit.warn_percnt"; did you mean "warn_percent"?'
    assert caught.value.line == 4


def test_unknown_key_without_a_near_name_lists_the_valid_ones(tmp_path: Path) -> None:
    message = refused(tmp_path, "daemon:\n  colour: blue\n")
    assert 'line 2: unknown key "daemon.colour"; the keys here are oom_score_adj, log_level, watchdog' in message


def test_key_of_another_channel_type_is_refused_naming_the_type(tmp_path: Path) -> None:
    message = refused(tmp_path, """\
        notifications:
          channels:
            - name: chat
              type: slack
              webhook_url: https://hooks.slack.com/services/x
              url: https://example.com/
        """)
    assert 'line 6: unknown key "notifications.channels[0].url" for a slack channel' in message


def test_wrong_type_names_key_line_and_what_was_expected(tmp_path: Path) -> None:
    message = refused(tmp_path, "host: a\n\n\n\ncommit:\n  basis: sar\n  interval: ten\n")
    assert message.endswith('line 7: commit.interval: expected a duration like 10s, 5m or a number of seconds, '
                            'got "ten"')


@pytest.mark.parametrize(("text", "expected"), [
    ("commit:\n  warn_percent: true\n", "line 2: commit.warn_percent: expected a number, got true"),
    ("processes:\n  top: 10.5\n", "line 2: processes.top: expected a whole number, got 10.5"),
    ("processes:\n  protect: yes please\n", 'line 2: processes.protect: expected true or false, got "yes please"'),
    ("host: 42\n", "line 1: host: expected text, got 42; put it in quotes"),
    ("commit: [1, 2]\n", "line 1: commit: expected a mapping of keys, got a list"),
    ("processes:\n  critical: sshd\n", 'line 2: processes.critical: expected a list, got "sshd"'),
    ("- a\n- b\n", "line 1: the top level: expected a mapping of keys"),
])
def test_values_of_the_wrong_type_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(("text", "expected"), [
    ("commit:\n  warn_percent: 90\n  crit_percent: 80\n",
     "line 3: commit.crit_percent (80) is below commit.warn_percent (90)"),
    ("commit:\n  warn_percent: 120\n",
     "line 2: commit.crit_percent (100) is below commit.warn_percent (120)"),
    ("memory:\n  available_warn_percent: 5\n  available_crit_percent: 10\n",
     "line 3: memory.available_crit_percent (10) is above memory.available_warn_percent (5): less available"),
    ("memory:\n  psi_full_crit: 5\n", "line 2: memory.psi_full_crit (5) is below memory.psi_full_warn (10)"),
    ("memory:\n  swap_used_crit_percent: 50\n", "memory.swap_used_crit_percent (50) is below"),
    ("commit:\n  hysteresis: 95\n", "line 2: commit.hysteresis (95) must be below commit.warn_percent (90)"),
    ("retention:\n  raw_samples: 40d\n", "line 2: retention.raw_samples (40d) is longer than retention.samples (30d)"),
    ("notifications:\n  retry_initial: 1h\n  retry_max: 10m\n",
     "line 2: notifications.retry_initial: must not exceed retry_max"),
])
def test_critical_levels_less_severe_than_warning_levels_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(("text", "expected"), [
    ("commit:\n  interval: -5s\n", "line 2: commit.interval: a duration must be zero or more seconds, got \"-5s\""),
    ("memory:\n  interval: 0\n", "line 2: memory.interval: must be longer than zero, got 0"),
    ("processes:\n  interval: -1\n", "processes.interval: a duration must be zero or more seconds, got -1"),
    ("notifications:\n  heartbeat:\n    interval: 0s\n", "line 3: notifications.heartbeat.interval: must be longer"),
    ("memory:\n  available_warn_percent: 101\n", "memory.available_warn_percent: must be at least 0 and at most 100"),
    ("commit:\n  warn_percent: 0\n", "commit.warn_percent: must be above 0, got 0"),
    ("daemon:\n  oom_score_adj: -1001\n", "daemon.oom_score_adj: must be from -1000 to 1000, got -1001"),
    ("processes:\n  protect_adj: 2000\n", "processes.protect_adj: must be from -1000 to 1000, got 2000"),
    ("processes:\n  top: 0\n", "processes.top: must be at least 1, got 0"),
])
def test_negative_zero_and_out_of_range_values_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(("text", "expected"), [
    ("commit:\n  basis: sars\n",
     'commit.basis: expected one of auto, sar, commit_limit; got "sars" (did you mean "sar"?)'),
    ("kernel_log:\n  source: syslog\n", "kernel_log.source: expected one of auto, kmsg, journal, file, none"),
    ("daemon:\n  log_level: verbose\n", "daemon.log_level: expected one of debug, info, warning, error"),
    ("notifications:\n  channels:\n    - {name: x, type: sms}\n",
     'notifications.channels[0].type: expected one of slack, email, webhook; got "sms"'),
    ("notifications:\n  channels:\n"
     "    - {name: x, type: slack, webhook_url: 'https://h.example/x', min_severity: high}\n",
     "notifications.channels[0].min_severity: expected one of info, warning, critical"),
    ("notifications:\n  channels:\n    - {name: x, type: email, host: h, from: a@b.c, to: d@e.f, security: tls}\n",
     "notifications.channels[0].security: expected one of starttls, ssl, none"),
    ("notifications:\n  channels:\n    - {name: x, type: webhook, url: 'https://h.example/', format: json}\n",
     "notifications.channels[0].format: expected one of native, alertmanager"),
])
def test_unknown_choices_are_refused_listing_the_allowed_ones(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(("channel", "expected"), [
    ("{name: x, type: slack}", "notifications.channels[0] (x): the slack channel needs webhook_url"),
    ("{name: x, type: email, host: h}", "the email channel needs from and to"),
    ("{name: x, type: webhook}", "the webhook channel needs url"),
    ("{type: slack}", "notifications.channels[0]: a channel needs a name"),
    ("{name: x}", "notifications.channels[0]: a channel needs a type: slack, email, webhook"),
    ("{name: x, type: email, host: h, from: a@b.c, to: [ops]}",
     'notifications.channels[0].to[0]: expected email addresses like ops@example.com, got "ops"'),
    ("{name: x, type: email, host: h, from: watchdog, to: a@b.c}", "notifications.channels[0].from: expected email"),
    ("{name: x, type: email, host: h, from: a@b.c, to: []}", "an email channel needs at least one address"),
    ("{name: x, type: email, host: 'h:25', from: a@b.c, to: d@e.f}", "(the port goes under port:)"),
    ("{name: x, type: email, host: h, from: a@b.c, to: d@e.f, password: p}",
     "notifications.channels[0].password: a login needs both username and password; username is missing"),
    ("{name: x, type: email, host: h, from: a@b.c, to: d@e.f, username: u, password: p, security: none}",
     "notifications.channels[0].security: none would send the password unencrypted"),
    ("{name: x, type: webhook, url: 'https://h.example/', secret: whsec_not*base64}",
     "notifications.channels[0].secret: expected whsec_ followed by base64"),
    ("{name: x, type: webhook, url: 'https://h.example/', secret: whsec_c2hvcnQ=}", "encodes 5 bytes"),
    ("{name: x, type: webhook, url: 'https://h.example/', headers: {webhook-id: '1'}}",
     "notifications.channels[0].headers.webhook-id: webhook-id is set by the webhook channel itself"),
    ("{name: x y, type: webhook, url: 'https://h.example/'}", "notifications.channels[0].name: a channel name is"),
    ("{name: x, type: webhook, url: 'https://h.example/', headers: {'X Bad': '1'}}",
     'notifications.channels[0].headers.X Bad: "X Bad" is not a valid HTTP header name'),
    ("{name: x, type: webhook, url: 'https://h.example/', headers: {'X-Ünïcode': '1'}}",
     '"X-Ünïcode" is not a valid HTTP header name'),
    ("{name: x, type: webhook, url: 'https://h.example/', headers: {'X-(paren)': '1'}}",
     '"X-(paren)" is not a valid HTTP header name'),
    ("{name: x, type: slack, webhook_url: 'https://h.example/', match: {proces: a}}",
     'unknown key "notifications.channels[0].match.proces"; did you mean "process"?'),
])
def test_channels_missing_or_misusing_keys_are_refused(tmp_path: Path, channel: str, expected: str) -> None:
    assert expected in refused(tmp_path, f"notifications:\n  channels:\n    - {channel}\n")


def test_duplicate_channel_names_are_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, """\
        notifications:
          channels:
            - {name: ops, type: webhook, url: 'https://a.example/'}
            - name: ops
              type: webhook
              url: https://b.example/
        """)
    assert 'line 4: notifications.channels[1].name: "ops" is already the name of the channel at line 3' in message


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    assert 'line 3: duplicate key "commit.interval" (first written at line 2)' in refused(
        tmp_path, "commit:\n  interval: 10s\n  interval: 20s\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("processes:\n  critical:\n    - cmdline: 'postgres: ('\n",
     "line 3: processes.critical[0].cmdline: not a valid regular expression"),
    ("processes:\n  redact: ['ok', '[unclosed']\n", "line 2: processes.redact[1]: not a valid regular expression"),
    ("processes:\n  critical:\n    - {}\n",
     "line 3: processes.critical[0]: a critical rule needs one of name, cmdline"),
    ("processes:\n  critical:\n    - comm: sshd\n",
     'line 3: unknown key "processes.critical[0].comm"; the keys here are name, cmdline, unit, cgroup'),
    ("metrics:\n  listen: 9464\n", "line 2: metrics.listen: expected text, got 9464"),
    ("metrics:\n  listen: localhost\n", 'metrics.listen: expected HOST:PORT like 127.0.0.1:9464'),
    ("metrics:\n  listen: '127.0.0.1:99999'\n", "metrics.listen: the port must be from 1 to 65535, got 99999"),
    ("kernel_log:\n  source: file\n", "line 2: kernel_log.path: source file needs the path of the log file"),
    ("kernel_log:\n  source: journal\n  path: /x\n", "line 3: kernel_log.path: source journal reads no path"),
    ("procfs: proc\n", 'procfs: expected an absolute path, got "proc"'),
])
def test_impossible_values_are_refused_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(("key", "url", "expected"), [
    ("webhook_url", "ftp://hooks.slack.com/services/T1/B2/SEKRET", 'got one with the scheme "ftp"'),
    ("webhook_url", "hooks.slack.com/services/T1/B2/SEKRET",
     "expected an http:// or https:// URL, got one with no scheme"),
    ("webhook_url", "https:///services/T1/B2/SEKRET", "expected an http(s) URL with a host"),
    ("webhook_url", "https://hooks.slack.com:99999/SEKRET", "not a valid URL"),
])
def test_malformed_urls_are_refused_without_repeating_them(tmp_path: Path, key: str, url: str, expected: str) -> None:
    message = refused(tmp_path,
                      f"notifications:\n  channels:\n    - name: c\n      type: slack\n      {key}: '{url}'\n")
    assert f"line 5: notifications.channels[0].{key}: " in message
    assert expected in message
    assert "SEKRET" not in message


def test_malformed_database_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    message = refused(tmp_path, "database: postgres:/user:SEKRET@host/db\n")
    assert "line 1: database: expected an SQLAlchemy URL dialect[+driver]://" in message
    assert "SEKRET" not in message


def test_malformed_heartbeat_url_is_refused(tmp_path: Path) -> None:
    assert "line 3: notifications.heartbeat.url: expected an http://" in refused(
        tmp_path, "notifications:\n  heartbeat:\n    url: mailto:ops@example.com\n")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "commit:\n  interval: 10s\n warn_percent: 80\n")
    with pytest.raises(ConfigError, match=re.escape(path) + r" line 3: not valid YAML: .*check the indentation"):
        load_config(path, env={})


def test_a_tab_in_the_indentation_is_explained(tmp_path: Path) -> None:
    assert "line 2: not valid YAML: " in refused(tmp_path, "commit:\n\tinterval: 10s\n")
    assert "(YAML indents with spaces, never tabs)" in refused(tmp_path, "commit:\n\tinterval: 10s\n")


# -- the environment ------------------------------------------------------------------------


def test_environment_variables_are_expanded_before_typing(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
        host: ${HOST_LABEL}-${RACK:-r1}
        commit:
          interval: ${INTERVAL:-10s}
          warn_percent: ${WARN}
        processes:
          protect: ${PROTECT:-false}
        """), env={"HOST_LABEL": "web", "WARN": "85", "PROTECT": "true", "RACK": ""})
    assert config.host == "web-r1"  # :- takes the default for an empty variable too
    assert (config.commit.interval, config.commit.warn_percent) == (10.0, 85.0)
    assert config.processes.protect is True


def test_a_quoted_expansion_stays_text(tmp_path: Path) -> None:
    message = refused(tmp_path, "processes:\n  top: '${TOP}'\n", env={"TOP": "5"})
    assert 'line 2: processes.top: expected a whole number, got "5"' in message


def test_missing_variable_without_default_names_variable_and_key(tmp_path: Path) -> None:
    message = refused(tmp_path, """\
        notifications:
          channels:
            - name: chat
              type: slack
              webhook_url: ${SLACK_WEBHOOK_URL}
        """, env={"SLACK_WEBHOOK_URLS": SLACK_URL})
    assert "line 5: notifications.channels[0].webhook_url: environment variable SLACK_WEBHOOK_URL is not set" in message
    assert SLACK_URL not in message


def test_double_dollar_is_a_literal_dollar(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "host: cost-$$5-$x-${A}\n"), env={"A": "a"})
    assert config.host == "cost-$5-$x-a"


@pytest.mark.parametrize(("value", "expected"), [
    ("${UNCLOSED", '"${" is never closed'),
    ("${1BAD}", '"${1BAD}" is not a variable reference'),
])
def test_malformed_references_are_refused(tmp_path: Path, value: str, expected: str) -> None:
    assert expected in refused(tmp_path, f"host: '{value}'\n")


# -- display ------------------------------------------------------------------------------


def test_display_masks_every_secret(tmp_path: Path) -> None:
    env = {**SECRETS_ENV, "DB_PASSWORD": DB_PASSWORD}
    config = load_config(write(tmp_path, EVERY_KEY), env=env)

    shown = display(config)

    for secret in (SMTP_PASSWORD, WEBHOOK_SECRET, WEBHOOK_SECRET[6:], DB_PASSWORD, "SlackTokenXyz123",
                   "T0001", "pager-token-777", "5f0c1a2b"):
        assert secret not in shown
    assert "database: postgresql+psycopg://watchdog:***@db-host:5433/watchdog?sslmode=require" in shown
    assert "webhook_url: https://hooks.slack.com/***" in shown
    assert "password: '***'" in shown
    assert "secret: '***'" in shown
    assert "Authorization: '***'" in shown
    assert "url: https://hc-ping.com/***" in shown
    assert "url: https://hooks.example.com/***" in shown
    for secret in (SMTP_PASSWORD, WEBHOOK_SECRET, DB_PASSWORD, SLACK_URL):
        assert secret not in repr(config)


def test_display_reads_back_as_the_same_configuration(tmp_path: Path) -> None:
    text = EVERY_KEY.replace(":${DB_PASSWORD}", "").split("notifications:")[0]
    config = load_config(write(tmp_path, text + "metrics: {listen: '0.0.0.0:9464'}\n"), env={})
    shown = display(config)
    assert shown.startswith(f"# watchdog-oom effective configuration ({tmp_path}/config.yaml)")
    again = parse_config(shown, origin=config.origin, env={})
    assert again == config
    assert "interval: 1m" in shown and "for: 2m" in shown


def test_display_of_defaults_reads_back(tmp_path: Path) -> None:
    config = load_config(env={"STATE_DIRECTORY": str(tmp_path), "WATCHDOG_OOM_CONFIG": write(tmp_path, "")})
    assert parse_config(display(config), origin=config.origin, env={}) == config


# -- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    ("10s", 10), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400),
    ("1h 30m", 5400), ("1.5h", 5400), (" 90 ", 90), (45, 45), (0.5, 0.5), ("0", 0),
])
def test_durations_are_read_in_seconds(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["ten", "10 seconds", "5ms", "1y", "", "h", True, None, -1, "nan", "inf"])
def test_malformed_durations_raise_value_error(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize("seconds", [0, 2.5, 59, 60, 5400, 86400, 90061, 400 * 86400])
def test_formatted_durations_read_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_critical_rule_takes_an_owner_uid_but_not_alone(tmp_path: Path) -> None:
    cfg = parse_config("processes:\n  critical:\n    - name: myapp\n      uid: 1001\n", env={})
    assert cfg.processes.critical == (CriticalRule(name="myapp", uid=1001),)
    assert "a critical rule needs one of" in refused(tmp_path, "processes:\n  critical:\n    - uid: 1001\n")


def test_email_addresses_must_be_ascii(tmp_path: Path) -> None:
    text = ("notifications:\n  channels:\n    - name: m\n      type: email\n      host: smtp.example.com\n"
            "      from: wätchdog@example.org\n      to: [ops@example.com]\n")
    assert "expected email addresses like ops@example.com" in refused(tmp_path, text)


def test_a_key_is_declared_by_one_field_and_keys_of_one_kind_share_it() -> None:
    """A key's declaration is its dataclass field, a Setting (no metadata dict beside it),
    and the factories of values.py make one Kind per arguments (a Kind is frozen)."""
    fields = {f.name: f for f in dataclasses.fields(CommitConfig)}
    assert isinstance(fields["interval"], Setting) and fields["interval"].metadata == {}
    assert settings_of(CommitConfig)["for"] == ("for_", fields["for_"])
    assert fields["interval"].kind is settings_of(MemoryConfig)["interval"][1].kind
    assert values.duration(positive=True) is values.duration(positive=True) is not values.duration()
    assert values.number(0, 100) is values.percent() and values.integer(1) is not values.integer(0)
    assert values.optional(values.glob()) is values.optional(values.glob())
    # (its __doc__ is copied too, None here: the package loads without docstrings, lean.py)
    assert values.duration.__name__ == values.duration.__qualname__ == "duration"
