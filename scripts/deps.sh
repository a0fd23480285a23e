#!/bin/sh
# Installs what mxverify needs on Debian 12, idempotently: Debian packages
# through apt-get (only the missing ones), and a Python venv (.venv) with the
# cross-check helpers from PyPI.  Safe to run again; quiet when all is there.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)

PKGS="gcc g++ make autoconf automake pkg-config libgmp-dev libmpfr-dev libgsl-dev
libopenblas-dev check libcjson-dev nettle-dev python3 python3-venv clang-19
libamdhip64-dev xz-utils libclang-rt-19-dev valgrind cppcheck"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "deps: installing Debian packages:$missing"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null
fi

venv=${MXV_VENV:-$root/.venv}
# tests/python/test_safetensors.py is written against safetensors 0.8 (FP8
# dtypes saved from numpy + ml_dtypes arrays); older ones are upgraded.
if ! "$venv/bin/python" -c 'import numpy, ml_dtypes, safetensors
assert tuple(map(int, safetensors.__version__.split(".")[:2])) >= (0, 8)' \
    2>/dev/null; then
    echo "deps: creating $venv (numpy, ml_dtypes, safetensors from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "numpy>=1.24" "ml_dtypes==0.6.0" "safetensors>=0.8"
fi
