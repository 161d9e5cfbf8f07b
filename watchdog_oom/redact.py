"""Masks secrets in command lines before they are stored, printed or sent anywhere.

Any local user can read every command line in /proc, but the history database, the
notifications and the HTML report travel further, so a password typed as an argument
must not travel with them. A pattern is a regular expression whose group 1 (or, without
a group, the whole match) is the secret; the secret becomes "***" and the rest, the
name of the option or variable, stays readable.

The defaults (DEFAULT_PATTERNS) cover:

- options and variables whose name ends in password, passwd, passphrase, secret, token,
  api key, access key, secret key, private key or credentials, given as NAME=VALUE
  (`--password=x`, `PGPASSWORD=x`, `AWS_SECRET_ACCESS_KEY=x`, `token=x`,
  `-Djavax.net.ssl.keyStorePassword=x`, `?token=x&`) or as `--NAME VALUE`
  (`--api-key x`, `--password x`);
- a password glued to -p after a MySQL or MariaDB client (`mysql -uroot -pSECRET`);
  `-p 8080` and `ssh -p2222` are ports and stay;
- `sshpass -p SECRET`, and `curl -u user:SECRET`;
- credentials in URLs (`postgres://user:SECRET@host`, `redis://:SECRET@host`);
- HTTP authorization (`Authorization: Bearer SECRET`, `Authorization: Basic SECRET`,
  `Bearer SECRET`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"

# A name that says its value is a secret, as the last part of an option or variable name.
_SECRET_NAME = (
    r"(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|credentials?)"
)

DEFAULT_PATTERNS: tuple[str, ...] = (
    # The command-specific patterns come first: once their secret is "***", the generic
    # ones below cannot mistake it for a name (mysql -pSECRET is not an option "secret").
    # mysql -pSECRET: only after a MySQL/MariaDB client, only glued to -p.
    r"(?:^|[\s/])(?:mysql|mariadb)[\w-]*(?:\s+\S+)*?\s+-p([^\s-]\S*)",
    # sshpass -p SECRET (also -pSECRET).
    r"(?:^|[\s/])sshpass(?:\s+\S+)*?\s+-p\s*(\S+)",
    # curl -u user:SECRET / --user user:SECRET.
    r"(?:^|[\s/])curl(?:\s+\S+)*?\s+(?:-u|--user)\s*[^\s:]*:(\S+)",
    # scheme://user:SECRET@host
    r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/:@]*:([^\s/@]+)@",
    # Authorization: <scheme> SECRET, or the scheme missing.
    r"(?i)\bauthorization:\s*(?:(?:bearer|basic|token|digest)\s+)?([^\s'\"]+)",
    # A bare bearer token, e.g. in a header given to a client as -H 'Bearer …'.
    r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]+=*)",
    # NAME=VALUE: options (--password=), environment (PGPASSWORD=), Java properties
    # (-Dx.keyStorePassword=), query strings (?token=). The name starts at a word start.
    rf"(?i)(?<![\w.-])[\w.-]*{_SECRET_NAME}=([^\s&]+)",
    # --NAME VALUE, when the next word is not itself an option (--no-password -v).
    rf"(?i)(?<![\w-])--?[\w.-]*{_SECRET_NAME}\s+(?!-)(\S+)",
)


class Redactor:
    """Replaces the secrets matched by its patterns with "***"; patterns are checked at construction."""

    def __init__(self, extra_patterns: Sequence[str] = (), use_defaults: bool = True) -> None:
        sources = (*(DEFAULT_PATTERNS if use_defaults else ()), *extra_patterns)
        compiled: list[re.Pattern[str]] = []
        for source in sources:
            try:
                compiled.append(re.compile(source))
            except re.error as e:
                raise ValueError(f"invalid redaction pattern {source!r}: {e}") from None
        self._patterns = tuple(compiled)

    def redact(self, text: str) -> str:
        """The text with every secret replaced by "***"."""
        for pattern in self._patterns:
            text = pattern.sub(_mask, text)
        return text


def _mask(match: re.Match[str]) -> str:
    if match.re.groups == 0:
        return MASK
    start, end = match.span(1)
    if start < 0:  # group 1 took no part in this match: nothing secret in it
        return match.group(0)
    whole = match.group(0)
    offset = match.start(0)
    return whole[: start - offset] + MASK + whole[end - offset :]
