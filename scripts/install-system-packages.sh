#!/usr/bin/env bash
# The Debian packages sqlite-ml needs, installed when missing (as root, or through
# password-less sudo), so that the README's two commands work on a bare machine:
#
#   install-system-packages.sh test   (make test) everything below; exits 1 naming what
#                                     is missing when it cannot install it
#   install-system-packages.sh demo   (make demo) libgomp1, gcc and libsqlite3-dev only;
#                                     when it cannot install the last two it warns and
#                                     goes on (the native extension is then not built)
#
# - sqlite3 and libsqlite3-dev: the native extension is built against SQLite's extension
#   header, and tests drive Debian's sqlite3 shell (`.load`);
# - gcc: builds that extension;
# - chromium: the browser tests drive Debian's chromium (Playwright's own browser
#   download does not work offline); without it they fail rather than skip;
# - libgomp1: LightGBM's Linux wheel links the system's OpenMP runtime.
#
set -euo pipefail

purpose="${1:-test}"
case "$purpose" in
    test | demo) ;;
    *) echo "usage: $0 [test|demo]" >&2; exit 2 ;;
esac

missing=()
[ -f /usr/include/sqlite3ext.h ] || missing+=(libsqlite3-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
/sbin/ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1' || missing+=(libgomp1)
if [ "$purpose" = test ]; then
    command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

# For the demo only libgomp1 is required (LightGBM's wheel links it); without a compiler
# or SQLite's headers the package installs without its native extension.
give_up() {
    echo "install-system-packages: $1" >&2
    if [ "$purpose" = demo ] && [[ ! " ${missing[*]} " =~ " libgomp1 " ]]; then
        echo "install-system-packages: going on without the native extension" >&2
        exit 0
    fi
    exit 1
}

echo "install-system-packages: missing ${missing[*]}; installing with apt-get" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        give_up "cannot install ${missing[*]}: not root and no password-less sudo; install \
them with your package manager (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) \
and run again"
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    give_up "no apt-get on this machine; install the equivalents of ${missing[*]} with \
your package manager and run again"
fi
if ! $sudo apt-get update || ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y \
    "${missing[@]}"; then
    give_up "apt-get could not install ${missing[*]}"
fi
