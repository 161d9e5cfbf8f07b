#!/bin/sh
# Install watchdog-oom from this checkout into a virtual environment of its own, so that it
# works where the system Python is externally managed (PEP 668: Debian 12+, Ubuntu 23.04+),
# and put the `watchdog-oom` command on the PATH.
#
#   ./install.sh            as root: /opt/watchdog-oom, command in /usr/local/bin
#                           as a user: ~/.local/share/watchdog-oom, command in ~/.local/bin
#   ./install.sh --test     a development environment in ./.venv with the test extras,
#                           then the test suite (arguments after --test go to pytest)
#
# WATCHDOG_OOM_PREFIX and WATCHDOG_OOM_BINDIR choose other places. Nothing outside those
# two places is touched, except that on Debian and Ubuntu, as root, the python3-venv
# package is installed when the system Python lacks venv.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}

die() { echo "install.sh: $*" >&2; exit 1; }

command -v "$python" > /dev/null || die "no $python found: install Python 3.11 or newer first"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "watchdog-oom needs Python 3.11 or newer; $python is $("$python" -V 2>&1)"

# Debian and Ubuntu ship venv without ensurepip unless python3-venv is installed.
if ! "$python" -c 'import ensurepip, venv' 2> /dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
        echo "install.sh: installing python3-venv (the system Python has no venv)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv > /dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv > /dev/null; } \
            || die "could not install python3-venv; install it, then run this again"
    else
        die "$python has no venv module: install python3-venv (Debian, Ubuntu) and run this again"
    fi
fi

if [ "${1:-}" = "--test" ]; then
    shift
    venv="$here/.venv"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$here[test,postgres]"
    cd "$here"
    # The tests run the installed console script too: put the venv's bin first.
    PATH="$venv/bin:$PATH" exec "$venv/bin/python" -m pytest "$@"
fi
[ $# -eq 0 ] || die "unknown argument: $1 (see the top of this file)"

if [ "$(id -u)" -eq 0 ]; then
    prefix=${WATCHDOG_OOM_PREFIX:-/opt/watchdog-oom}
    bindir=${WATCHDOG_OOM_BINDIR:-/usr/local/bin}
    sharedir=${WATCHDOG_OOM_SHAREDIR:-/usr/local/share}
else
    prefix=${WATCHDOG_OOM_PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}/watchdog-oom}
    bindir=${WATCHDOG_OOM_BINDIR:-$HOME/.local/bin}
    sharedir=${WATCHDOG_OOM_SHAREDIR:-${XDG_DATA_HOME:-$HOME/.local/share}}
fi

[ -x "$prefix/bin/python" ] || "$python" -m venv "$prefix"
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$here" \
    || die "pip could not install watchdog-oom into $prefix"
mkdir -p "$bindir"
ln -sf "$prefix/bin/watchdog-oom" "$bindir/watchdog-oom"
# The man page and shell completions, where man, bash-completion and zsh look for them.
data=$("$prefix/bin/python" -c 'import os, watchdog_oom; print(os.path.join(os.path.dirname(watchdog_oom.__file__), "data"))')
mkdir -p "$sharedir/man/man1" "$sharedir/bash-completion/completions" "$sharedir/zsh/site-functions"
cp "$data/watchdog-oom.1" "$sharedir/man/man1/watchdog-oom.1"
cp "$data/completion/watchdog-oom.bash" "$sharedir/bash-completion/completions/watchdog-oom"
cp "$data/completion/_watchdog-oom" "$sharedir/zsh/site-functions/_watchdog-oom"

echo "watchdog-oom $("$prefix/bin/python" -c 'from importlib.metadata import version; print(version("watchdog-oom"))') installed in $prefix"
echo "command: $bindir/watchdog-oom"
case ":$PATH:" in
    *":$bindir:"*) ;;
    *) echo "note: $bindir is not on your PATH; call $bindir/watchdog-oom or add it to PATH" ;;
esac
echo "next: 'watchdog-oom run' in the foreground (Ctrl-C stops it), or 'watchdog-oom install-service' for systemd"
