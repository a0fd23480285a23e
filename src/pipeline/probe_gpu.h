/* probe_gpu.h -- run a probe plan (mxprobe/probe.h) on this machine's GPU
 * through the NVIDIA probe binary tools/probe/tc_probe (wgmma and mma.sync
 * on sm_90a), for `mxverify probe --gpu`.
 *
 * The binary is looked up in $MXVERIFY_TC_PROBE, then the build tree, then
 * $(pkglibexecdir).  Each run is one process: tc_probe OUTDIR PLANDIR 0
 * VARIANT, the plan file written beforehand into the same folder
 * (mxv_plan_write under mxv_plan_file_name), its result file read back and
 * checked against the plan's inputs.  There is no AMD counterpart: an
 * MFMA probe for gfx942 is not written.
 */
#ifndef MXV_PROBE_GPU_H
#define MXV_PROBE_GPU_H

#include <stddef.h>
#include "mxprobe/probe.h"

typedef enum {
    MXV_TC_OK = 0,
    MXV_TC_NO_GPU, /* no probe binary, no CUDA device, not an sm_90 GPU  */
    MXV_TC_FAILED  /* the probe ran and failed, or its output is unusable */
} mxv_tc_status;

/* The tc_probe to run into bin; otherwise MXV_TC_NO_GPU and why. */
mxv_tc_status mxv_tc_probe_find(char *bin, size_t len, char *why, size_t wlen);

/* A private folder for plan and result files (under $TMPDIR or /tmp);
 * 0, or -1 and why.  mxv_tc_workdir_remove deletes it and its files. */
int mxv_tc_workdir(char *dir, size_t len, char *why, size_t wlen);
void mxv_tc_workdir_remove(const char *dir);

/* Runs variant v (an index of mxv_tc_variants) on the plan p, whose plan
 * file is in dir, and fills p->d with the unit's results.  device gets
 * the GPU as tc_probe names it.  MXV_TC_NO_GPU when tc_probe says this
 * machine cannot run it (exit 77); MXV_TC_FAILED when it fails, fails its
 * operand layout check (exit 5), runs past 300 s, or writes a result file
 * of another variant, size or input checksum.  why: one line. */
mxv_tc_status mxv_tc_probe_run(const char *bin, const char *dir, int v,
                               mx_probe_plan *p, char *device, size_t devlen,
                               char *why, size_t wlen);

#endif /* MXV_PROBE_GPU_H */
