#!/usr/bin/env bash
# The Debian packages the test suite needs, installed when missing (as root, or through
# sudo); `make test` runs this first, so the README's two commands work on a bare machine.
#
# - sqlite3 and libsqlite3-dev: the native extension is built against SQLite's extension
#   header, and tests drive Debian's sqlite3 shell (`.load`);
# - gcc: builds that extension;
# - chromium: the browser tests drive Debian's chromium (Playwright's own browser
#   download does not work offline); without it they fail rather than skip;
# - libgomp1: LightGBM's Linux wheel links the system's OpenMP runtime.
#
# Exits 0 when everything is there (or was installed), 1 with a message naming what is
# missing when it cannot install (not root, no sudo, no apt-get).
set -euo pipefail

missing=()
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
[ -f /usr/include/sqlite3ext.h ] || missing+=(libsqlite3-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
/sbin/ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1' || missing+=(libgomp1)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

echo "install-system-packages: missing ${missing[*]}; installing with apt-get" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        echo "install-system-packages: cannot install ${missing[*]}: not root and no" \
            "password-less sudo; install them with your package manager" \
            "(Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) and run again" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-packages: no apt-get on this machine; install the equivalents of" \
        "${missing[*]} with your package manager and run again" >&2
    exit 1
fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
