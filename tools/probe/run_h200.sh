#!/bin/bash
# run_h200.sh -- the H200 run of 2026-12-02 (docs/kernels.md, "Measured on an H200"),
# as run: from a repository root where .dev/tc/ holds bin/mxverify and
# bin/check_kernels_gpu (built here with --with-cuda), lib/ (libmxk_gpu.so and
# the non-system shared libraries), golden/gate-default-{cpu,gpu}.json, capture/
# (tools/capture/mxverify_capture) and h200_triton_bugs.py; OUT is the result
# folder.  Every suite case runs in its own process (the block-model reference
# is the cost); golden files per case are merged, then gated per case.
D=$PWD/.dev/tc
export LD_LIBRARY_PATH=$D/lib:$LD_LIBRARY_PATH MXVERIFY_GPU_LIB=$D/lib/libmxk_gpu.so
export OPENBLAS_NUM_THREADS=1 PYTHONPATH=$D/capture
M=$D/bin/mxverify
chmod +x $D/bin/* 2>/dev/null
mkdir -p $OUT/caps $OUT/g $OUT/k $OUT/gate
CASES="small-w8a8-real small-w8a8-spread small-w8a8-cancel small-w8a8-tiny small-bf16-real tp8-t1-hybrid tp8-t9-hybrid tp8-t64-w8a8 ep8-t8-hybrid"
{ nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv; nproc; lscpu | grep "Model name"; date -u; python3 -c 'import torch,triton;print(torch.__version__,triton.__version__,torch.version.cuda)'; } > $OUT/machine.txt 2>&1
t0=$(date +%s)
el() { echo "rc=$1 t=$(( $(date +%s) - t0 ))"; }
( cd $OUT && timeout 200 $D/bin/check_kernels_gpu > $OUT/check_kernels_gpu.log 2>&1; el $? >> $OUT/check_kernels_gpu.log ) &
( timeout 300 python3 $D/h200_triton_bugs.py $OUT/caps > $OUT/triton.log 2>&1; el $? >> $OUT/triton.log ) &
( timeout 400 $M kernels --backend gpu --suite default --model fp32-seq --report-json $OUT/kernels-fp32seq.json > $OUT/kernels-fp32seq.log 2>&1; el $? >> $OUT/kernels-fp32seq.log ) &
( timeout 300 $M mutants --backend gpu > $OUT/mutants.log 2>&1; el $? >> $OUT/mutants.log ) &
{ $M gate --backend gpu --golden $D/golden/gate-default-cpu.json; echo "rc=$?"; $M gate --backend gpu --golden $D/golden/gate-default-gpu.json; echo "rc=$?"; } > $OUT/gate-refuse.log 2>&1
for c in $CASES; do
  ( cp $D/golden/gate-default-gpu.json $OUT/g/$c.json
    timeout 380 $M golden update --backend gpu --suite default --case $c --golden $OUT/g/$c.json > $OUT/g/$c.log 2>&1; el $? >> $OUT/g/$c.log ) &
done
for c in $CASES; do while ! grep -q '^rc=' $OUT/g/$c.log 2>/dev/null; do sleep 2; done; done
python3 - $OUT $CASES <<'PY'
import json, sys
out, cases = sys.argv[1], sys.argv[2:]
base = json.load(open(f"{out}/g/{cases[0]}.json"))
ents = []
for c in cases:
    d = json.load(open(f"{out}/g/{c}.json"))
    ents += [e for e in d["entries"] if e["case"] == c]
base["entries"] = ents
base["history"][-1]["reason"] = "H200 run of tools: golden update --case per case, merged"
json.dump(base, open(f"{out}/gate-default-gpu.json", "w"), indent="\t")
print("merged", len(ents), "entries")
PY
echo "merged t=$(( $(date +%s) - t0 ))" > $OUT/merge.log
for c in $CASES; do
  ( timeout $(( 480 - ($(date +%s) - t0) )) $M gate --backend gpu --case $c --golden $OUT/gate-default-gpu.json > $OUT/gate/$c.log 2>&1; el $? >> $OUT/gate/$c.log ) &
done
( timeout $(( 485 - ($(date +%s) - t0) )) $M gate --backend gpu --golden $OUT/gate-default-gpu.json --report-json $OUT/gate.json > $OUT/gate.log 2>&1; el $? >> $OUT/gate.log ) &
wait
echo "all done t=$(( $(date +%s) - t0 ))"
tail -n 2 $OUT/*.log $OUT/g/*.log $OUT/gate/*.log
