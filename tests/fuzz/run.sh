#!/bin/sh
# Runs each libFuzzer target of tests/fuzz for a set time (`make fuzz`, CI).
#
#   run.sh SECONDS [TARGET...]      (default: every tests/fuzz/fuzz_* built)
#   FUZZ_JOBS=N                     targets run N at a time (default: nproc)
#
# Each target starts from its committed seed corpus (tests/fuzz/corpus/NAME,
# copied: the committed one is never changed) with its dictionary.  Limits,
# the same for every target and stated here so that a slow or greedy input
# is a finding, not noise:
#   -max_len         8192 bytes (inputs are truncated to it)
#   per input time   250 ms + 250 us per byte of the input, CPU time
#                    (tests/fuzz/fuzz.h aborts past it: 2.3 s for the
#                    largest input), and
#                    libFuzzer's -timeout=10 s as a backstop
#   memory           -malloc_limit_mb=256 (32 KiB per byte of -max_len, for
#                    one allocation) and -rss_limit_mb=1024 for the process
# A crash, an ASan/UBSan report, a leak, a slow input or an allocation past
# the limit fails the run: the input is kept as tests/fuzz/findings/NAME-*
# and its libFuzzer log printed.  Each target's execution count is printed.
set -u
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
dir=tests/fuzz
srcdir=${srcdir:-.}
targets=$*
if [ -z "$targets" ]; then
    for f in "$dir"/fuzz_*; do
        [ -x "$f" ] && targets="$targets ${f##*/fuzz_}"
    done
fi
[ -n "$targets" ] || { echo "fuzz: no target built (make fuzz-build)" >&2; exit 1; }
mkdir -p "$dir/findings" "$dir/work"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export OPENBLAS_NUM_THREADS=1
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    for s in llvm-symbolizer-19 llvm-symbolizer; do
        if command -v "$s" >/dev/null 2>&1; then
            ASAN_SYMBOLIZER_PATH=$(command -v "$s")
            export ASAN_SYMBOLIZER_PATH
            break
        fi
    done
fi
tmp=$(mktemp -d)
export TMPDIR="$tmp"
one() {
    t=$1
    corpus=$dir/work/$t
    rm -rf "$corpus"
    mkdir -p "$corpus"
    cp "$srcdir/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null
    dict=""
    [ -f "$srcdir/tests/fuzz/dict/$t.dict" ] && dict="-dict=$srcdir/tests/fuzz/dict/$t.dict"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$dir/fuzz_$t" "$corpus" $dict -max_total_time="$secs" -max_len=8192 \
        -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=1024 -close_fd_mask=1 \
        -print_final_stats=1 -artifact_prefix="$dir/findings/$t-" \
        >"$dir/work/$t.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/work/$t.log")
    cov=$(grep -o 'cov: [0-9]*' "$dir/work/$t.log" | tail -n 1)
    if [ "$rc" = 0 ]; then
        echo "fuzz: $t: ${runs:-?} executions in $(( $(date +%s) - start )) s, ${cov:-cov: ?}, no finding"
    else
        echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} executions; log:"
        grep -v '^#[0-9]' "$dir/work/$t.log" | tail -n 60
        ls "$dir/findings/$t-"* 2>/dev/null | sed 's/^/fuzz: finding: /'
    fi
    return $rc
}
status=0
jobs=${FUZZ_JOBS:-$(nproc)}
set -- $targets
while [ $# -gt 0 ]; do
    batch=""
    n=0
    while [ $# -gt 0 ] && [ "$n" -lt "$jobs" ]; do
        one "$1" >"$dir/work/$1.summary" 2>&1 &
        batch="$batch $!:$1"
        n=$((n + 1))
        shift
    done
    for pt in $batch; do
        wait "${pt%%:*}" || status=1
        cat "$dir/work/${pt#*:}.summary"
    done
done
rm -rf "$tmp"
exit $status
