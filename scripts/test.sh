#!/bin/sh
# Quick start, command 2: install dependencies, build, and run every test
# (make check, then make distcheck).  Set MXV_SKIP_DISTCHECK=1 to skip the
# second pass.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
# CI builds with -Werror (AM_CFLAGS has -Wall -Wextra); users' builds do not
MXV_MAKE_CFLAGS=${MXV_MAKE_CFLAGS--g -O2 -Werror}
export MXV_MAKE_CFLAGS
"$root/scripts/build.sh"
cd "$root"
MXV_REQUIRE_PYTHON=1
export MXV_REQUIRE_PYTHON
status=0
make -j"$(nproc)" check ${MXV_MAKE_CFLAGS:+CFLAGS="$MXV_MAKE_CFLAGS"} || status=$?
echo "== test summaries"
for log in tests/*.log; do
    [ "$log" = tests/test-suite.log ] && continue
    grep -hE '^[0-9]+%: Checks:|[0-9]+ passed, [0-9]+ failed' "$log" |
        sed "s|^|$(basename "$log" .log): |"
done
if [ "$status" != 0 ]; then
    cat test-suite.log
    exit "$status"
fi
# fuzzers, sanitizers, valgrind, cppcheck (issue 12)
if [ "${MXV_SKIP_HARDEN:-0}" != 1 ]; then
    echo "== hardening (scripts/harden.sh)"
    "$root/scripts/harden.sh" || exit 1
fi
if [ "${MXV_SKIP_DISTCHECK:-0}" != 1 ]; then
    echo "== make distcheck"
    if ! make -s distcheck >distcheck.log 2>&1; then
        tail -n 100 distcheck.log
        exit 1
    fi
    grep -A1 'archives ready' distcheck.log | tail -n 1
fi
echo "test: all tests passed"
