#!/bin/bash
# run_h100.sh -- one device call: build and run the tensor-core probe and the
# Triton recordings on an H100; results as xz tarballs under $OUT.
# Expects (relative to the repo root on the device machine) .devcarry/ with
# tc_probe.cu, tc_layout.h, casegen.h, h100_triton.py and plans/*.bin
# (tools/probe/mkplan writes them).  SCALE (default 1.0) scales the random
# case counts: the first run used 1.0, the rerun 0.1 (a determinism check:
# same seeds, so its cases are the first tenth of the first run's).
D=.devcarry
W=/tmp/w
R=$W/res
mkdir -p "$R"
{ date -u; nvidia-smi; nvidia-smi --query-gpu=name,driver_version,vbios_version,clocks.max.sm --format=csv
  nvcc --version; python3 -c "import torch,triton;print('torch',torch.__version__,'triton',triton.__version__)"; } > "$R/env.txt" 2>&1
nvcc -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o $W/tc_probe $D/tc_probe.cu > "$R/build.log" 2>&1 || echo "BUILD FAILED" >> "$R/run.log"
cuobjdump -sass $W/tc_probe > $W/sass.txt 2>&1
awk '/Function :/{f=$3} /[A-Z]MMA/{if (match($0,/[A-Z]*MMA[A-Z0-9._]*/)) print f, substr($0,RSTART,RLENGTH)}' $W/sass.txt | sort | uniq -c > "$R/sass_ops.txt"
grep -oE "F2FP[A-Z0-9._]*|HADD2[A-Z0-9._]*|F2F[A-Z0-9._]*" $W/sass.txt | sort | uniq -c >> "$R/sass_ops.txt"
xz -6 -c $W/sass.txt > "$R/sass.txt.xz"
SCALE=${SCALE:-1.0}
for v in 5 6 8 0 1 3 7 9 2 4; do
  timeout 25 $W/tc_probe "$R" $D/plans $SCALE $v >> "$R/run.log" 2>&1 || echo "variant $v rc=$?" >> "$R/run.log"
done
(cd $W && tar cJf "$OUT/probe.tar.xz" res)
mkdir -p $W/tri
timeout 150 python3 $D/h100_triton.py $W/tri > $W/tri/stdout.log 2>&1 || echo "triton rc=$?" >> $W/tri/stdout.log
(cd $W && tar cJf "$OUT/triton.tar.xz" tri)
cat "$R/run.log"; cat "$R/sass_ops.txt" | head -60; tail -20 $W/tri/stdout.log; cat $W/tri/triton.log
ls -la "$OUT"
