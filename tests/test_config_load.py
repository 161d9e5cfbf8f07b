"""Loading config files that are broken, hostile or missing: only ever a ConfigError with the
file and line, caps on size and list lengths, and secrets needed only where they are used."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest

from watchdog_oom.cli import main
from watchdog_oom.config import MAX_CONFIG_BYTES, MAX_ITEMS, MAX_NODES, ConfigError, example_text, load_config

# A config a little like a real one: sections, a list of rules, channels, quoting,
# an anchor and merge key, and ${VAR}s.
REALISTIC = b"""\
host: web-01
procfs: /proc
commit:
  interval: 10s
  warn_percent: 90   # comment
processes:
  critical:
    - sshd
    - {cmdline: 'postgres: .*', uid: 26}
  redact: ['--token[= ](\\S+)']
notifications:
  channels:
    - {name: pager, type: webhook, url: "https://hooks.example.com/oom", secret: "${WH_SECRET}",
       match: &java {process: "java*"}}
    - name: mail
      type: email
      exclude: {<<: *java, cgroup: /user.slice/*}
      host: smtp.example.com
      from: watchdog@example.com
      to: [ops@example.com]
metrics:
  listen: "127.0.0.1:9464"
"""
ENV = {"WH_SECRET": "whsec_" + base64.b64encode(b"k" * 32).decode()}


def load_bytes(tmp_path: Path, data: bytes, env: dict[str, str] | None = None) -> object:
    """The config loaded from a file holding `data`: a Config, or the ConfigError (nothing else)."""
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    try:
        return load_config(str(path), env=ENV if env is None else env)
    except ConfigError as error:
        assert str(error).startswith(str(path)), error
        return error


@pytest.mark.parametrize("byte", range(256))
def test_every_byte_in_a_value_or_ending_a_file_is_a_config_or_a_config_error(tmp_path: Path, byte: int) -> None:
    for data in (b"host: bad%cname\n" % byte, b"host: bad%c" % byte, b"commit:\n  interval: 1%c" % byte,
                 b"%c" % byte, REALISTIC[:200] + bytes([byte]) + REALISTIC[200:]):
        load_bytes(tmp_path, data)


def test_every_truncation_of_a_file_is_a_config_or_a_config_error(tmp_path: Path) -> None:
    results = [load_bytes(tmp_path, REALISTIC[:end]) for end in range(len(REALISTIC) + 1)]
    assert not isinstance(results[-1], ConfigError)
    assert any(isinstance(result, ConfigError) for result in results)


def test_a_control_character_names_the_line(tmp_path: Path) -> None:
    error = load_bytes(tmp_path, b"commit:\n  interval: 10s\nhost: bad\x01name\n")
    assert isinstance(error, ConfigError)
    assert error.line == 3
    assert "line 3: not valid YAML: the character U+0001 is not allowed" in str(error)


def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    error = load_bytes(tmp_path, b"host: a\nprocfs: /pr\xffoc\n")
    assert isinstance(error, ConfigError)
    assert "line 2: not UTF-8 text (byte 19, 0xff, is not)" in str(error)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda path: None, "cannot read the configuration: No such file or directory"),
    (lambda path: path.mkdir(), "cannot read the configuration: Is a directory"),
])
def test_a_missing_file_or_a_directory_is_a_config_error(tmp_path: Path, make, expected: str) -> None:
    path = tmp_path / "config.yaml"
    make(path)
    with pytest.raises(ConfigError, match=expected):
        load_config(str(path), env={})


def test_a_file_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("host: secret-host\n")
    path.chmod(0o000)
    tmp_path.chmod(0o755)
    # A forked child drops root (which reads any file) for nobody, loads, and reports.
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
            try:
                load_config(str(path), env={})
                message = "loaded"
            except ConfigError as error:
                message = str(error)
            os.write(writing, message.encode())
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    assert message == f"{path}: cannot read the configuration: Permission denied"


def test_a_file_over_the_size_cap_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    error = load_bytes(tmp_path, b"# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    assert isinstance(error, ConfigError)
    assert "the configuration is larger than 1024 KiB" in str(error)
    assert not isinstance(load_bytes(tmp_path, b"#" * (MAX_CONFIG_BYTES - 1) + b"\n"), ConfigError)


def test_a_file_of_too_many_values_is_refused_once_the_parser_reaches_them(tmp_path: Path) -> None:
    error = load_bytes(tmp_path, b"processes:\n  redact: [" + b"a, " * (MAX_NODES + 50_000) + b"a]\n")
    assert isinstance(error, ConfigError)
    assert f"line 2: more than {MAX_NODES} keys and values; is this the right file?" in str(error)


def test_a_list_over_the_item_cap_is_refused(tmp_path: Path) -> None:
    patterns = "".join(f"    - 'p{i}'\n" for i in range(MAX_ITEMS + 1))
    error = load_bytes(tmp_path, f"processes:\n  redact:\n{patterns}".encode())
    assert isinstance(error, ConfigError)
    assert f"line 3: processes.redact: {MAX_ITEMS + 1} items; at most {MAX_ITEMS} are allowed" in str(error)
    fits = "".join(f"    - 'p{i}'\n" for i in range(MAX_ITEMS))
    config = load_bytes(tmp_path, f"processes:\n  redact:\n{fits}".encode())
    assert len(config.processes.redact) == MAX_ITEMS  # type: ignore[attr-defined]


def test_merge_keys_that_refer_to_themselves_or_fan_out_are_refused_or_read_once(tmp_path: Path) -> None:
    error = load_bytes(tmp_path, b"commit: &c\n  <<: *c\n")
    assert isinstance(error, ConfigError) and "line 1" in str(error)
    # 40 levels of two merges each: 2**40 paths, read in linear time.
    levels = ["a0: &a0 {interval: 10s}"] + [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, 41)]
    error = load_bytes(tmp_path, ("\n".join(levels) + "\ncommit:\n  <<: *a40\n").encode())
    assert isinstance(error, ConfigError) and 'unknown key "a0"' in str(error)


def test_a_regex_nested_too_deeply_is_a_config_error(tmp_path: Path) -> None:
    pattern = "(" * 3000 + ")" * 3000
    error = load_bytes(tmp_path, f"processes:\n  redact: ['{pattern}']\n".encode())
    assert isinstance(error, ConfigError)
    assert "line 2: processes.redact[0]: not a usable regular expression" in str(error)


def test_config_check_exits_2_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"host: bad\x01name\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(path), "config", "check"], out, err) == 2
    assert err.getvalue() == (f"watchdog-oom: configuration error: {path} line 1: not valid YAML: the character "
                              "U+0001 is not allowed in a YAML file (control characters can only be written as "
                              'escapes in double quotes, like "\\x01")\n')
    assert out.getvalue() == ""


def test_config_example_and_keys_need_no_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("commit: [broken\n")
    out = io.StringIO()
    assert main(["-c", str(path), "config", "example"], out, io.StringIO()) == 0
    assert out.getvalue() == example_text()
    out = io.StringIO()
    assert main(["-c", str(path), "config", "keys"], out, io.StringIO()) == 0
    assert "commit.warn_percent\n    a number above 0; default 90\n" in out.getvalue()
    port = "notifications.channels[type=email].port\n    a whole number from 1 to 65535; default 587\n"
    assert port in out.getvalue()


# -- secrets only where they are used ----------------------------------------------------

WITH_SECRETS = """\
database: sqlite:///{tmp}/history.db
notifications:
  channels:
    - {{name: pager, type: webhook, url: "https://hooks.example.com/oom", secret: "${{WH_SECRET}}"}}
    - {{name: chat, type: slack, webhook_url: "https://hooks.slack.com/services/T/B/x"}}
  heartbeat:
    url: https://hc-ping.com/${{HC_UUID}}
"""


def test_strict_loading_needs_every_variable(tmp_path: Path) -> None:
    error = load_bytes(tmp_path, WITH_SECRETS.format(tmp=tmp_path).encode(), env={})
    assert isinstance(error, ConfigError)
    assert "line 4: notifications.channels[0].secret: environment variable WH_SECRET is not set" in str(error)


def test_lenient_loading_leaves_out_what_an_unset_variable_was_for_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(WITH_SECRETS.format(tmp=tmp_path))
    config = load_config(str(path), env={}, strict_env=False)
    assert [c.name for c in config.notifications.channels] == ["chat"]
    assert config.notifications.heartbeat.url is None
    assert config.database == f"sqlite:///{tmp_path}/history.db"
    assert config.warnings == (
        f"{path} line 4: notifications.channels[0].secret: environment variable WH_SECRET is not set; set it, "
        "or give a default with ${WH_SECRET:-default}; notifications.channels[0] is left out by this command",
        f"{path} line 7: notifications.heartbeat.url: environment variable HC_UUID is not set; set it, or give "
        "a default with ${HC_UUID:-default}; notifications.heartbeat.url is left at its default by this command",
    )


def test_lenient_loading_still_needs_the_variables_of_sections_every_command_uses(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("database: postgresql://watchdog:${DB_PASSWORD}@db-host/watchdog\n")
    with pytest.raises(ConfigError, match="line 1: database: environment variable DB_PASSWORD is not set"):
        load_config(str(path), env={}, strict_env=False)


def test_check_and_processes_go_on_without_the_database_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("database: postgresql://watchdog:${DB_PASSWORD}@db-host/watchdog\n")
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(path), "processes", "--top", "1"], out, err) == 0
    assert f"watchdog-oom: warning: {path} line 1: database: environment variable DB_PASSWORD" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(path), "check"], out, err) in (0, 1, 2)  # judged, not UNKNOWN
    assert "DB_PASSWORD" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(path), "history"], out, err) == 2  # it reads the database
    assert "configuration error: " in err.getvalue() and "DB_PASSWORD is not set" in err.getvalue()


def test_read_only_commands_warn_and_go_on_while_run_notify_test_and_config_check_refuse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(WITH_SECRETS.format(tmp=tmp_path))
    monkeypatch.delenv("WH_SECRET", raising=False)
    monkeypatch.delenv("HC_UUID", raising=False)
    for argv in (["history"], ["mute", "--list"], ["processes"]):
        out, err = io.StringIO(), io.StringIO()
        assert main(["-c", str(path), *argv], out, err) == 0, err.getvalue()
        assert "watchdog-oom: warning: " in err.getvalue() and "WH_SECRET is not set" in err.getvalue()
    for argv in (["config", "check"], ["notify-test"], ["run"]):
        out, err = io.StringIO(), io.StringIO()
        assert main(["-c", str(path), *argv], out, err) == 2
        assert "configuration error: " in err.getvalue() and "WH_SECRET is not set" in err.getvalue()
