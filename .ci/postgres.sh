#!/usr/bin/env bash
# CI: make a PostgreSQL server available to tests/test_fleet.py, which starts its own
# throwaway instance from Debian's /usr/lib/postgresql/*/bin. Installs only the binaries
# when they are missing; the packaged cluster is not needed, so it is not started.
set -euo pipefail

if compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed and this is not root; the fleet tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101: the package must not start its own cluster service on a CI machine.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
fi
trap 'if [ -n "$created_policy" ]; then rm -f "$policy"; fi' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql > /dev/null
compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null || {
    echo "postgres.sh: postgresql installed but no initdb under /usr/lib/postgresql" >&2
    exit 1
}
