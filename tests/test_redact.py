"""redact.py: every default pattern masks its secret, ordinary arguments stay, patterns are configurable."""

from __future__ import annotations

import pytest

from watchdog_oom.redact import Redactor


@pytest.mark.parametrize(
    ("cmdline", "redacted"),
    [
        ("mysql -uroot -pS3cret db", "mysql -uroot -p*** db"),
        ("/usr/bin/mysqldump --single-transaction -ph4x0r --all-databases",
         "/usr/bin/mysqldump --single-transaction -p*** --all-databases"),
        ("mariadb-admin -u root -ptopsecret status", "mariadb-admin -u root -p*** status"),
        ("sshpass -p hunter2 ssh backup@host", "sshpass -p *** ssh backup@host"),
        ("curl -u deploy:t0ken https://ci.example.com", "curl -u deploy:*** https://ci.example.com"),
        ("psql postgres://app:pa55@db.internal:5432/app", "psql postgres://app:***@db.internal:5432/app"),
        ("redis-cli -u redis://:pw0rd@cache:6379", "redis-cli -u redis://:***@cache:6379"),
        ("curl -H Authorization: Bearer eyJhbGciOi.J9 https://api", "curl -H Authorization: Bearer *** https://api"),
        ("curl -H Authorization: Basic dXNlcjpwYXNz https://api", "curl -H Authorization: Basic *** https://api"),
        ("wget --header=X-Auth: Bearer abc.def== https://x", "wget --header=X-Auth: Bearer *** https://x"),
        ("app --password=hunter2 --verbose", "app --password=*** --verbose"),
        ("app --password hunter2 --verbose", "app --password *** --verbose"),
        ("app --db-password=hunter2", "app --db-password=***"),
        ("cli --api-key K123 run", "cli --api-key *** run"),
        ("cli --api_key=K123", "cli --api_key=***"),
        ("cli --client-secret s3 --token t0k", "cli --client-secret *** --token ***"),
        ("env PGPASSWORD=abc psql -h db", "env PGPASSWORD=*** psql -h db"),
        ("env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI aws s3 ls", "env AWS_SECRET_ACCESS_KEY=*** aws s3 ls"),
        ("worker token=abc123 queue=jobs", "worker token=*** queue=jobs"),
        ("curl https://x/cb?id=1&token=abc&next=2", "curl https://x/cb?id=1&token=***&next=2"),
        ("java -Djavax.net.ssl.keyStorePassword=changeit -jar app.jar",
         "java -Djavax.net.ssl.keyStorePassword=*** -jar app.jar"),
    ],
)
def test_each_default_pattern_masks_the_secret_and_keeps_the_name(cmdline, redacted):
    assert Redactor().redact(cmdline) == redacted


@pytest.mark.parametrize(
    "cmdline",
    [
        "ssh -p 8080 host",
        "ssh -p2222 admin@host",
        "docker run -p 8080:80 -p8443:443 mysql:8",
        "mysql -p",  # prompts for the password
        "mysql -u root -p mydb",
        "scp -P 2222 file host:",
        "app --no-password -v",
        "app --password-file /run/secrets/db",
        "app --token-file=/run/secrets/token",
        "DB_PASSWORD_FILE=/run/secrets/db app",
        "app --passive 1",
        "nginx: worker process",
        "postgres: 16/main: checkpointer",
        "python3 -m http.server 8000",
        "git clone https://github.com/org/repo.git",
        "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock",
    ],
)
def test_ordinary_arguments_are_left_alone(cmdline):
    assert Redactor().redact(cmdline) == cmdline


def test_a_secret_name_is_masked_whatever_its_value():
    # The rules read names, not values: a setting named like a password is masked too,
    # which costs a little information and never a secret.
    line = "docker run -p 3306:3306 -e MYSQL_ALLOW_EMPTY_PASSWORD=yes mariadb"
    assert Redactor().redact(line) == line.replace("PASSWORD=yes", "PASSWORD=***")


def test_every_secret_on_one_line_is_masked():
    line = "job --password=a --token b PGPASSWORD=c postgres://u:d@h mysql -pe"
    out = Redactor().redact(line)
    for secret in ("=a ", "--token b", "=c ", ":d@", "-pe"):
        assert secret not in out
    assert out.count("***") == 5


def test_extra_patterns_mask_group_one_or_the_whole_match():
    r = Redactor([r"--license\s+(\S+)", r"sk_live_[0-9a-zA-Z]+"])
    assert r.redact("app --license ABC-123 --key sk_live_9aZ") == "app --license *** --key ***"


def test_defaults_can_be_switched_off():
    r = Redactor([r"--pin=(\d+)"], use_defaults=False)
    assert r.redact("app --pin=1234 --password=x") == "app --pin=*** --password=x"


def test_a_pattern_whose_group_did_not_take_part_leaves_the_match():
    r = Redactor([r"--key(?:=(\S+))?"], use_defaults=False)
    assert r.redact("app --key --key=v") == "app --key --key=***"


def test_invalid_pattern_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"invalid redaction pattern '--token=\(\[a-z\]'"):
        Redactor(["--token=([a-z]"])

