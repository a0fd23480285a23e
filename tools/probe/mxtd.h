/* mxtd.h -- read the result files of tc_probe (".mxtd") and rebuild their
 * inputs: random sets from casegen.h and the recorded seed, plan sets with
 * mx_probe_plan_make; the inputs' checksum must match the one recorded on
 * the GPU machine.  Shared by fit.c and mkgolden.c (one translation unit
 * each; everything static).
 *
 * The file format and its reader: src/lib/probe_io.h (mxv_mxtd_read); VAR is
 * its table of tc_probe's instruction variants.
 */
#ifndef MXV_MXTD_H
#define MXV_MXTD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/blockfma.h"
#include "mxprobe/probe.h"
#include "casegen.h"
#include "probe_io.h"

/* The casegen.h format of an mxref format (tc_probe's random cases). */
static const cg_fmt *cg_of(mx_format_id f)
{
    return f == MX_E4M3FN ? &CG_E4M3 : f == MX_E5M2 ? &CG_E5M2
         : f == MX_BF16 ? &CG_BF16 : &CG_FP16;
}

#define VAR mxv_tc_variants

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
    mxv_mxtd m;
    char err[600];
    memset(s, 0, sizeof *s);
    if (mxv_mxtd_read(path, &m, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 0;
    }
    s->var = (int)m.variant;
    s->kind = (int)m.kind;
    s->seed = m.seed;
    s->n = m.n;
    s->ncase = m.ncase;
    s->ck = m.checksum;
    s->d = m.d;
    size_t nn = (size_t)s->ncase * s->n;
    s->a = calloc(nn, 4);
    s->b = calloc(nn, 4);
    s->c = calloc(s->ncase, 4);
    s->mode = calloc(s->ncase, sizeof(int));
    s->np = calloc(s->ncase, sizeof(int));
    if (s->kind == 0) {
        for (uint32_t q = 0; q < s->ncase; q++) {
            s->mode[q] = cg_case(cg_of(VAR[s->var].fa), cg_of(VAR[s->var].fb), (int)s->n,
                                 s->seed, q, &s->a[q * s->n], &s->b[q * s->n],
                                 &s->c[q]);
            s->np[q] = (int)s->n;
        }
    } else {
        const mx_format *fa = mx_format_get(VAR[s->var].fa),
                        *fb = mx_format_get(VAR[s->var].fb);
        if (mx_probe_plan_make(fa, fb, VAR[s->var].k, &s->plan) != MX_OK ||
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
    if (mxv_mxtd_checksum(s->a, s->b, nn, s->c, s->ncase) != s->ck) {
        fprintf(stderr, "fit: %s: regenerated inputs differ from the recorded ones\n", path);
        return 0;
    }
    return 1;
}

#endif
