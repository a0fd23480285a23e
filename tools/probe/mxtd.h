/* mxtd.h -- read the result files of tc_probe (".mxtd") and rebuild their
 * inputs: random sets from casegen.h and the recorded seed, plan sets with
 * mx_probe_plan_make; the inputs' checksum must match the one recorded on
 * the GPU machine.  Shared by fit.c and mkgolden.c (one translation unit
 * each; everything static).
 *
 * File: "MXTD", u32 version (1), u32 variant (VAR index), u32 kind (0
 * random, 1 plan), u64 seed, u32 n, u32 ncase, u64 FNV-1a checksum of the
 * inputs (a codes, b codes, c bits, as u32 arrays), u32 d[ncase].
 */
#ifndef MXV_MXTD_H
#define MXV_MXTD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/blockfma.h"
#include "mxref/probe.h"
#include "casegen.h"

static const struct {
    const char *name;
    mx_format_id fa, fb;
    const cg_fmt *ca, *cb;
    int K;
} VAR[10] = {
    {"mma_e4m3_e4m3", MX_E4M3FN, MX_E4M3FN, &CG_E4M3, &CG_E4M3, 32},
    {"mma_e5m2_e5m2", MX_E5M2, MX_E5M2, &CG_E5M2, &CG_E5M2, 32},
    {"mma_e4m3_e5m2", MX_E4M3FN, MX_E5M2, &CG_E4M3, &CG_E5M2, 32},
    {"mma_bf16_bf16", MX_BF16, MX_BF16, &CG_BF16, &CG_BF16, 16},
    {"mma_fp16_fp16", MX_FP16, MX_FP16, &CG_FP16, &CG_FP16, 16},
    {"wgmma_e4m3_e4m3", MX_E4M3FN, MX_E4M3FN, &CG_E4M3, &CG_E4M3, 32},
    {"wgmma_e5m2_e5m2", MX_E5M2, MX_E5M2, &CG_E5M2, &CG_E5M2, 32},
    {"wgmma_e4m3_e5m2", MX_E4M3FN, MX_E5M2, &CG_E4M3, &CG_E5M2, 32},
    {"wgmma_bf16_bf16", MX_BF16, MX_BF16, &CG_BF16, &CG_BF16, 16},
    {"wgmma_fp16_fp16", MX_FP16, MX_FP16, &CG_FP16, &CG_FP16, 16},
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * UINT64_C(0x100000001b3);
    return h;
}

typedef struct {
    int var, kind;
    uint64_t seed, ck;
    uint32_t n, ncase;
    uint32_t *d;
    uint32_t *a, *b, *c; /* ncase * n codes */
    int *mode;           /* random: casegen mode; plan: test id */
    int *np;             /* products per case (plan) */
    mx_probe_plan *plan;
} set_t;

static int load(const char *path, set_t *s)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char m[4];
    uint32_t h[3];
    memset(s, 0, sizeof *s);
    if (fread(m, 1, 4, f) != 4 || memcmp(m, "MXTD", 4) || fread(h, 4, 3, f) != 3 ||
        fread(&s->seed, 8, 1, f) != 1 || fread(&s->n, 4, 1, f) != 1 ||
        fread(&s->ncase, 4, 1, f) != 1 || fread(&s->ck, 8, 1, f) != 1) {
        fclose(f);
        return 0;
    }
    s->var = (int)h[1];
    s->kind = (int)h[2];
    s->d = malloc(4 * (size_t)s->ncase);
    if (fread(s->d, 4, s->ncase, f) != s->ncase) {
        fclose(f);
        return 0;
    }
    fclose(f);
    size_t nn = (size_t)s->ncase * s->n;
    s->a = calloc(nn, 4);
    s->b = calloc(nn, 4);
    s->c = calloc(s->ncase, 4);
    s->mode = calloc(s->ncase, sizeof(int));
    s->np = calloc(s->ncase, sizeof(int));
    if (s->kind == 0) {
        for (uint32_t q = 0; q < s->ncase; q++) {
            s->mode[q] = cg_case(VAR[s->var].ca, VAR[s->var].cb, (int)s->n,
                                 s->seed, q, &s->a[q * s->n], &s->b[q * s->n],
                                 &s->c[q]);
            s->np[q] = (int)s->n;
        }
    } else {
        const mx_format *fa = mx_format_get(VAR[s->var].fa),
                        *fb = mx_format_get(VAR[s->var].fb);
        if (mx_probe_plan_make(fa, fb, VAR[s->var].K, &s->plan) != MX_OK ||
            s->plan->ncase != s->ncase || s->plan->stride != s->n)
            return 0;
        for (uint32_t q = 0; q < s->ncase; q++) {
            for (uint32_t i = 0; i < s->n; i++) {
                size_t j = (size_t)q * s->n + i;
                s->a[j] = fa->bits == 8 ? ((uint8_t *)s->plan->a)[j]
                                        : ((uint16_t *)s->plan->a)[j];
                s->b[j] = fb->bits == 8 ? ((uint8_t *)s->plan->b)[j]
                                        : ((uint16_t *)s->plan->b)[j];
            }
            s->c[q] = s->plan->c[q];
            s->mode[q] = s->plan->tag[q].test;
            s->np[q] = s->plan->n[q];
            s->plan->d[q] = s->d[q];
        }
    }
    uint64_t ck = UINT64_C(0xcbf29ce484222325);
    ck = fnv(ck, s->a, nn * 4);
    ck = fnv(ck, s->b, nn * 4);
    ck = fnv(ck, s->c, (size_t)s->ncase * 4);
    if (ck != s->ck) {
        fprintf(stderr, "fit: %s: regenerated inputs differ from the recorded ones\n", path);
        return 0;
    }
    return 1;
}

#endif
