#!/bin/sh
# CI's hardening jobs (issue 12), run by scripts/test.sh after make check
# on the plain build (itself built with -Werror there):
#   cppcheck     static analysis of src/ and reference/ (scripts/cppcheck.sh)
#   valgrind     a subset of commands on the plain build, --error-exitcode=1
#   sanitizers   make check of a copy of the tree configured with
#                --enable-sanitizers (ASan + UBSan, -fno-sanitize-recover),
#                --disable-slow-tests, in _build/sanitizers
#   fuzz         make fuzz: each libFuzzer target for MXV_FUZZ_SECONDS
#                (default 60), failing on any finding (tests/fuzz/run.sh)
# Each job prints its wall time.  MXV_HARDEN_SKIP="fuzz valgrind" skips jobs.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
skip=" ${MXV_HARDEN_SKIP:-} "
status=0
venv=${MXV_VENV:-$root/.venv}
job() { # job NAME: runs harden_NAME, timed
    case $skip in *" $1 "*) echo "== $1: skipped"; return 0 ;; esac
    echo "== $1"
    t0=$(date +%s)
    if "harden_$1"; then r=ok; else r=FAILED; status=1; fi
    echo "== $1: $r in $(( $(date +%s) - t0 )) s"
}

harden_cppcheck() { "$root/scripts/cppcheck.sh"; }

harden_valgrind() {
    vg="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite"
    vg="$vg --show-leak-kinds=definite"
    bad=0
    for c in "check golden/capture-example.safetensors" \
        "check golden/h100/triton-mxfp8-p1.safetensors" \
        "formats table e4m3fnuz --json" "gate --suite smoke" \
        "gate --suite smoke --golden tests/fuzz/corpus/golden/empty.json"; do
        # shellcheck disable=SC2086
        $vg ./src/mxverify $c >/dev/null 2>_build/valgrind.err
        rc=$?
        # 0 pass, 1 a check failed (the empty golden), 3 bad input; valgrind's
        # own finding is rc 1 with its report on stderr
        if grep -q '^==[0-9]*==' _build/valgrind.err || [ "$rc" -gt 3 ]; then
            echo "valgrind: mxverify $c: exit $rc"; cat _build/valgrind.err; bad=1
        else
            echo "valgrind: mxverify $c: clean (exit $rc)"
        fi
    done
    for f in tests/fuzz/corpus/check/*; do
        $vg ./src/mxverify check -q "$f" >/dev/null 2>_build/valgrind.err
        rc=$?
        if grep -q '^==[0-9]*==' _build/valgrind.err || [ "$rc" -gt 3 ]; then
            echo "valgrind: mxverify check $f: exit $rc"; cat _build/valgrind.err; bad=1
        else
            echo "valgrind: mxverify check $f: clean (exit $rc)"
        fi
    done
    return $bad
}

harden_sanitizers() {
    d=_build/sanitizers
    rm -rf "$d"
    mkdir -p "$d"
    # a copy of the tracked files (the tree itself is configured in place)
    git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$d" || return 1
    (
        cd "$d" && ./bootstrap >/dev/null 2>&1 &&
            ./configure -q --enable-sanitizers --disable-slow-tests \
                PYTHON="$venv/bin/python" &&
            make -j"$(nproc)" -s >/dev/null 2>build.log || { tail -n 30 build.log; exit 1; }
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
            make -j"$(nproc)" check >check.log 2>&1
        r=$?
        grep -E '^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP):|^# [A-Z]+:' check.log
        [ "$r" = 0 ] || cat test-suite.log
        exit $r
    )
}

harden_fuzz() {
    make -s fuzz FUZZ_SECONDS="${MXV_FUZZ_SECONDS:-60}"
}

mkdir -p _build
job cppcheck
job valgrind
job sanitizers
job fuzz
[ "$status" = 0 ] && echo "harden: all jobs passed" || echo "harden: FAILED"
exit $status
