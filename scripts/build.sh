#!/bin/sh
# Configures (once) and builds mxverify in the source tree.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=${MXV_VENV:-$root/.venv}
[ -x configure ] || ./bootstrap
if [ ! -f Makefile ] || [ configure -nt config.status ]; then
    ./configure -q PYTHON="$venv/bin/python" ${MXV_CONFIGURE_FLAGS:-}
fi
if [ -n "${MXV_MAKE_CFLAGS:-}" ]; then
    make -j"$(nproc)" -s CFLAGS="$MXV_MAKE_CFLAGS"
else
    make -j"$(nproc)" -s
fi
