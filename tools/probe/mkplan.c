/* mkplan.c -- write the probe plans (mxref/probe.h) as binary files that the
 * GPU probe (tc_probe.cu) reads, for the format pairs and instruction sizes
 * it probes.
 *
 * Usage: mkplan OUTDIR
 * File plan_<fa>_<fb>_k<k>.bin: "MXPL", u32 version, u32 fa id, u32 fb id,
 * u32 k, u32 ncase, u32 stride, u32 (bytes per a code | bytes per b << 8),
 * then i32 n[ncase], a codes, b codes (ncase*stride each, native width),
 * u32 c[ncase].  Little-endian.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/probe.h"

static int write_plan(const char *dir, mx_format_id ia, mx_format_id ib, int k)
{
    const mx_format *fa = mx_format_get(ia), *fb = mx_format_get(ib);
    mx_probe_plan *p;
    if (mx_probe_plan_make(fa, fb, k, &p) != MX_OK) {
        fprintf(stderr, "mkplan: cannot make plan %s x %s k=%d\n", fa->name,
                fb->name, k);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/plan_%s_%s_k%d.bin", dir, fa->name,
             fb->name, k);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "mkplan: cannot write %s\n", path);
        mx_probe_plan_free(p);
        return 1;
    }
    uint32_t ea = (uint32_t)fa->bits / 8, eb = (uint32_t)fb->bits / 8;
    uint32_t h[7] = {(uint32_t)p->version, (uint32_t)ia, (uint32_t)ib,
                     (uint32_t)k, (uint32_t)p->ncase, (uint32_t)p->stride,
                     ea | eb << 8};
    fwrite("MXPL", 1, 4, f);
    fwrite(h, 4, 7, f);
    for (size_t i = 0; i < p->ncase; i++) {
        int32_t n = p->n[i];
        fwrite(&n, 4, 1, f);
    }
    fwrite(p->a, ea, p->ncase * p->stride, f);
    fwrite(p->b, eb, p->ncase * p->stride, f);
    fwrite(p->c, 4, p->ncase, f);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
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
