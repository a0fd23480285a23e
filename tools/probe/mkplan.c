/* mkplan.c -- write the probe plans (mxprobe/probe.h) as binary files that the
 * GPU probe (tc_probe.cu) reads, for the format pairs and instruction sizes
 * it probes.
 *
 * Usage: mkplan OUTDIR
 * Files plan_<fa>_<fb>_k<k>.bin in the format of src/lib/probe_io.h
 * (mxv_plan_write, also used by `mxverify probe --gpu`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxprobe/probe.h"
#include "probe_io.h"

static int write_plan(const char *dir, mx_format_id ia, mx_format_id ib, int k)
{
    const mx_format *fa = mx_format_get(ia), *fb = mx_format_get(ib);
    mx_probe_plan *p;
    if (mx_probe_plan_make(fa, fb, k, &p) != MX_OK) {
        fprintf(stderr, "mkplan: cannot make plan %s x %s k=%d\n", fa->name,
                fb->name, k);
        return 1;
    }
    char path[4096], name[256], err[600];
    mxv_plan_file_name(p, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int bad = mxv_plan_write(path, p, err, sizeof err) != 0;
    if (bad)
        fprintf(stderr, "mkplan: %s\n", err);
    else
        printf("%s: %zu cases (eb=%d es=%d)\n", path, p->ncase, p->eb, p->es);
    mx_probe_plan_free(p);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkplan OUTDIR\n");
        return 2;
    }
    int bad = 0;
    bad |= write_plan(argv[1], MX_E4M3FN, MX_E4M3FN, 32);
    bad |= write_plan(argv[1], MX_E5M2, MX_E5M2, 32);
    bad |= write_plan(argv[1], MX_E4M3FN, MX_E5M2, 32);
    bad |= write_plan(argv[1], MX_BF16, MX_BF16, 16);
    bad |= write_plan(argv[1], MX_FP16, MX_FP16, 16);
    return bad ? 1 : 0;
}
