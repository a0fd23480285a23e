#!/bin/bash
# gpu_check.sh -- the device check of an integrated build on one H200 (or any
# sm_90 NVIDIA GPU): the GPU kernel unit tests, every planted bug on the GPU
# backend (the sm_90 tensor-core GEMMs included), the kernels smoke suite and
# the gate on two small default cases.
#
# Usage (from the repository root on the device machine):
#   OUT=/some/dir tools/gpu_check.sh [STAGING]
# STAGING (default .dev/integ) holds, built here with `./configure --with-cuda`:
#   bin/mxverify, bin/check_kernels_gpu, lib/libmxk_gpu.so and the
#   non-system shared libraries the binaries need (ldd), golden/ (the golden
#   files of the built tree: gate refuses another arch's or model's).
# Writes one log per step into $OUT (each ends with "rc=N t=SECONDS") and a
# summary.txt; exits 0 only when every step exits 0.
set -u
D=$(cd "${1:-.dev/integ}" && pwd) || { echo "no staging folder"; exit 2; }
: "${OUT:?set OUT to the result folder}"
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export MXVERIFY_GPU_LIB=$D/lib/libmxk_gpu.so MXVERIFY_GOLDEN_DIR=$D/golden
export OPENBLAS_NUM_THREADS=1
chmod +x "$D"/bin/* 2>/dev/null
M=$D/bin/mxverify
CASES=${GPU_CHECK_CASES:-"small-w8a8-real small-bf16-real"}
{ nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv
  nproc; lscpu | grep "Model name"; date -u; ldd "$M" "$D/lib/libmxk_gpu.so"; } \
    > "$OUT/machine.txt" 2>&1
t0=$(date +%s)
el() { echo "rc=$1 t=$(( $(date +%s) - t0 ))"; }
step() { # name timeout command...
    local name=$1 lim=$2
    shift 2
    ( timeout "$lim" "$@" > "$OUT/$name.log" 2>&1; el $? >> "$OUT/$name.log" ) &
}
# independent steps in parallel: one GPU, 16 cores; the block-model
# reference on the CPU is most of the time
( cd "$OUT" && timeout 200 "$D/bin/check_kernels_gpu" > "$OUT/check_kernels_gpu.log" 2>&1
  el $? >> "$OUT/check_kernels_gpu.log" ) &
step mutants 420 "$M" mutants --backend gpu --report-md "$OUT/mutants.md" \
    --report-json "$OUT/mutants.json"
step kernels-smoke 300 "$M" kernels --backend gpu --suite smoke \
    --report-json "$OUT/kernels-smoke.json"
for c in $CASES; do
    step "gate-$c" 420 "$M" gate --backend gpu --case "$c" \
        --golden "$D/golden/gate-default-gpu.json" --report-json "$OUT/gate-$c.json"
done
wait
fail=0
for f in "$OUT"/*.log; do
    r=$(tail -n 1 "$f")
    echo "$(basename "$f" .log): $r"
    case $r in rc=0\ *) ;; *) fail=1 ;; esac
done > "$OUT/summary.txt"
echo "all done t=$(( $(date +%s) - t0 )) fail=$fail" >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
exit $fail
