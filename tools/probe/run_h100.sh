#!/bin/bash
# run_h100.sh -- build and run the tensor-core probe and the Triton
# recordings on an NVIDIA Hopper GPU; results as xz tarballs in $OUT.
#
# Usage: OUT=results [SCALE=1.0] run_h100.sh [SRCDIR]
# SRCDIR (default: this script's folder) holds tc_probe.cu, tc_layout.h,
# casegen.h, h100_triton.py and plans/*.bin (written by tools/probe/mkplan).
# SCALE scales the random case counts: the recorded run used 1.0, the rerun
# 0.1 (a determinism check: same seeds, so its cases are the first tenth).
# Needs nvcc (sm_90a), cuobjdump, xz, and python3 with torch, triton and
# safetensors.  About 35 s on an H100.
D=${1:-$(dirname "$0")}
OUT=${OUT:-./h100-results}
mkdir -p "$OUT"
W=$(mktemp -d)
R=$W/res
mkdir -p "$R"
{ date -u; nvidia-smi; nvidia-smi --query-gpu=name,driver_version,vbios_version,clocks.max.sm --format=csv
  nvcc --version; python3 -c "import torch,triton;print('torch',torch.__version__,'triton',triton.__version__)"; } > "$R/env.txt" 2>&1
nvcc -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o "$W/tc_probe" "$D/tc_probe.cu" > "$R/build.log" 2>&1 || echo "BUILD FAILED" >> "$R/run.log"
cuobjdump -sass "$W/tc_probe" > "$W/sass.txt" 2>&1
awk '/Function :/{f=$3} /[A-Z]MMA/{if (match($0,/[A-Z]*MMA[A-Z0-9._]*/)) print f, substr($0,RSTART,RLENGTH)}' "$W/sass.txt" | sort | uniq -c > "$R/sass_ops.txt"
grep -oE "F2FP[A-Z0-9._]*|HADD2[A-Z0-9._]*|F2F[A-Z0-9._]*" "$W/sass.txt" | sort | uniq -c >> "$R/sass_ops.txt"
xz -6 -c "$W/sass.txt" > "$R/sass.txt.xz"
SCALE=${SCALE:-1.0}
# one process per instruction variant, most important first, so that a
# fault in one cannot lose the others
for v in 5 6 8 0 1 3 7 9 2 4; do
  timeout 25 "$W/tc_probe" "$R" "$D/plans" "$SCALE" $v >> "$R/run.log" 2>&1 || echo "variant $v rc=$?" >> "$R/run.log"
done
(cd "$W" && tar cJf "$OUT/probe.tar.xz" res)
mkdir -p "$W/tri"
timeout 150 python3 "$D/h100_triton.py" "$W/tri" > "$W/tri/stdout.log" 2>&1 || echo "triton rc=$?" >> "$W/tri/stdout.log"
(cd "$W" && tar cJf "$OUT/triton.tar.xz" tri)
cat "$R/run.log"; head -60 "$R/sass_ops.txt"; tail -20 "$W/tri/stdout.log"; cat "$W/tri/triton.log"
ls -la "$OUT"
