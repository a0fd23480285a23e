#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz with clang (libFuzzer, ASan,
# UBSan, -fno-sanitize-recover): every library source is compiled once into
# tests/fuzz/obj/ (again when it, or any header, is newer than its object),
# then each target fuzz_NAME.c is linked against them.  Called by `make
# fuzz-build`, which writes the program's preprocessor flags and libraries,
# one per line, to tests/fuzz/obj/cppflags and tests/fuzz/obj/libs.
#   FUZZ_CC   clang with libFuzzer (configure: CLANG_FUZZ)
#   srcdir    the source tree
# usage: build.sh TARGET... -- LIBRARY-SOURCE...
set -eu
if [ -z "${FUZZ_CC:-}" ]; then
    echo "fuzz: configure found no clang with libFuzzer (apt-get install clang-19 libclang-rt-19-dev)" >&2
    exit 1
fi
srcdir=${srcdir:-.}
out=tests/fuzz
# one flag per line (the compile lines split on newlines only)
FUZZ_FLAGS=$(printf '%s\n' -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
    -ffp-contract=off -fno-omit-frame-pointer -fsanitize=address,undefined \
    -fno-sanitize-recover=all -I"$srcdir/reference" -I"$srcdir/tools/probe" -I"$srcdir/src" -I"$srcdir/src/lib" -I"$srcdir/src/pipeline" \
    -I"$srcdir/src/cmd" -I"$srcdir/kernels")
export FUZZ_FLAGS
targets=""
while [ $# -gt 0 ] && [ "$1" != -- ]; do targets="$targets $1"; shift; done
[ $# -gt 0 ] && shift
mkdir -p "$out/obj"
all=""
[ -f "$out/obj/.stamp" ] || all=yes
[ -n "$(find "$srcdir/src" "$srcdir/reference" "$srcdir/kernels" "$srcdir/tests" \
    -name '*.h' -newer "$out/obj/.stamp" 2>/dev/null | head -n 1)" ] && all=yes
objs=""
: >"$out/obj/todo"
for s in "$@"; do
    case $s in *.c) ;; *) continue ;; esac
    [ "$s" = src/cmd/main.c ] && continue
    o=$out/obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')
    objs="$objs $o"
    if [ -n "$all" ] || [ ! -f "$o" ] || [ "$srcdir/$s" -nt "$o" ]; then
        echo "$srcdir/$s $o" >>"$out/obj/todo"
    fi
done
# one line per flag in cppflags/libs: split on newlines only; -r: nothing
# to compile (every object up to date) runs nothing
xargs -r -P "$(nproc)" -L 1 sh -c '
    IFS="
"; set -f
    echo "  FUZZCC   $0"
    exec $FUZZ_CC $FUZZ_FLAGS -fsanitize=fuzzer-no-link $(cat tests/fuzz/obj/cppflags) -c "$0" -o "$1"' \
    <"$out/obj/todo"
touch "$out/obj/.stamp"
IFS='
'
set -f
for t in $(echo "$targets" | tr ' ' '\n' | grep .); do
    # shellcheck disable=SC2046,SC2086
    $FUZZ_CC $FUZZ_FLAGS -fsanitize=fuzzer $(cat "$out/obj/cppflags") \
        -o "$out/fuzz_$t" "$srcdir/tests/fuzz/fuzz_$t.c" $(echo "$objs" | tr ' ' '\n' | grep .) \
        $(cat "$out/obj/libs")
    echo "  FUZZLD   $out/fuzz_$t"
done
