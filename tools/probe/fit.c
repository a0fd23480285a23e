/* fit.c -- replay recorded tensor-core outputs (tc_probe's .mxtd files)
 * through the block-FMA model and report every mismatch: the tool used to
 * fit the hopper-* presets.
 *
 * Usage: fit FILE.mxtd [key=value ...]
 *   Starts from preset=NAME (default: hopper-fp8 for FP8 variants,
 *   hopper-bf16 otherwise) and overrides fields: k block F round(trunc|rd|rne)
 *   sticky prodnorm oddeven late out final(rne|rtz|rup|rdown) ftzin ftzprod
 *   ftzout ovfinf nan(hex) show(number of mismatches to print).
 * Random sets are regenerated from their seed with casegen.h and checked
 * against the recorded input checksum; plan sets are rebuilt with
 * mx_probe_plan_make.
 */
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

static uint32_t model(const mx_blockfma_params *p, const set_t *s, uint32_t q)
{
    const mx_format *fa = mx_format_get(VAR[s->var].fa),
                    *fb = mx_format_get(VAR[s->var].fb);
    uint8_t a8[4096], b8[4096];
    uint16_t a16[4096], b16[4096];
    for (int i = 0; i < s->np[q]; i++) {
        a8[i] = (uint8_t)s->a[q * s->n + i];
        a16[i] = (uint16_t)s->a[q * s->n + i];
        b8[i] = (uint8_t)s->b[q * s->n + i];
        b16[i] = (uint16_t)s->b[q * s->n + i];
    }
    return mx_blockfma_dot_bits(p, fa, fa->bits == 8 ? (void *)a8 : (void *)a16,
                                fb, fb->bits == 8 ? (void *)b8 : (void *)b16,
                                (size_t)s->np[q], s->c[q]);
}

static int same(uint32_t x, uint32_t y)
{
    return x == y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fit FILE.mxtd [key=value ...]\n");
        return 2;
    }
    set_t s;
    if (!load(argv[1], &s)) {
        fprintf(stderr, "fit: cannot load %s\n", argv[1]);
        return 3;
    }
    int fp8 = VAR[s.var].K == 32;
    mx_blockfma_params p = *mx_blockfma_preset(fp8 ? "hopper-fp8" : "hopper-bf16");
    int show = 8;
    for (int i = 2; i < argc; i++) {
        char key[64];
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq - argv[i] >= 63)
            continue;
        memcpy(key, argv[i], (size_t)(eq - argv[i]));
        key[eq - argv[i]] = 0;
        const char *v = eq + 1;
        int iv = atoi(v);
        if (!strcmp(key, "preset")) p = *mx_blockfma_preset(v);
        else if (!strcmp(key, "k")) p.k = iv;
        else if (!strcmp(key, "block")) p.block = iv;
        else if (!strcmp(key, "deal")) p.deal = iv;
        else if (!strcmp(key, "cfadd")) p.c_fadd = iv;
        else if (!strcmp(key, "infmt")) p.in_fmt = iv;
        else if (!strcmp(key, "F")) p.frac_bits = iv;
        else if (!strcmp(key, "round")) p.align_round = !strcmp(v, "rd") ? MX_ALIGN_RD : !strcmp(v, "rne") ? MX_ALIGN_RNE : MX_ALIGN_TRUNC;
        else if (!strcmp(key, "sticky")) p.sticky = iv;
        else if (!strcmp(key, "prodnorm")) p.prod_norm = iv;
        else if (!strcmp(key, "oddeven")) p.odd_even = iv;
        else if (!strcmp(key, "late")) p.late_c = iv;
        else if (!strcmp(key, "out")) p.out_prec = iv;
        else if (!strcmp(key, "final")) p.final_round = !strcmp(v, "rne") ? MX_RNE : !strcmp(v, "rup") ? MX_RUP : !strcmp(v, "rdown") ? MX_RDOWN : MX_RTZ;
        else if (!strcmp(key, "ftzin")) p.ftz_in = iv;
        else if (!strcmp(key, "ftzprod")) p.ftz_prod = iv;
        else if (!strcmp(key, "ftzout")) p.ftz_out = iv;
        else if (!strcmp(key, "ovfinf")) p.prod_ovf_inf = iv;
        else if (!strcmp(key, "nan")) p.nan_code = (uint32_t)strtoul(v, NULL, 16);
        else if (!strcmp(key, "show")) show = iv;
    }
    if (mx_blockfma_check(&p) != MX_OK) {
        fprintf(stderr, "fit: invalid parameters\n");
        return 2;
    }
    long bad = 0, byk[16] = {0}, totk[16] = {0};
    for (uint32_t q = 0; q < s.ncase; q++) {
        uint32_t m = model(&p, &s, q);
        int k = s.mode[q] & 15;
        totk[k]++;
        if (!same(m, s.d[q])) {
            bad++;
            byk[k]++;
            if (bad <= show) {
                float fm, fh;
                memcpy(&fm, &m, 4);
                memcpy(&fh, &s.d[q], 4);
                const mx_blockfma_params *ex = mx_blockfma_preset("exact-rne");
                uint32_t e = model(ex, &s, q);
                float fe;
                memcpy(&fe, &e, 4);
                printf("case %u (%s) n=%d c=%08x hw=%08x (%a) model=%08x (%a) exact=%a\n",
                       q, s.kind ? mx_probe_test_name(s.mode[q]) : cg_mode_names[k],
                       s.np[q], s.c[q], s.d[q], (double)fh, m, (double)fm, (double)fe);
                if (s.kind && s.plan) {
                    mx_probe_tag t = s.plan->tag[q];
                    printf("   tag i=%d j=%d v=%d w=%d\n", t.i, t.j, t.v, t.w);
                }
                printf("   a:");
                for (int i = 0; i < s.np[q]; i++) printf(" %x", s.a[q * s.n + i]);
                printf("\n   b:");
                for (int i = 0; i < s.np[q]; i++) printf(" %x", s.b[q * s.n + i]);
                printf("\n");
            }
        }
    }
    printf("%s %s n=%u: %u cases, %ld mismatches\n", VAR[s.var].name,
           s.kind ? "plan" : "random", s.n, s.ncase, bad);
    for (int k = 0; k < 16; k++)
        if (totk[k])
            printf("   %-10s %6ld / %6ld\n",
                   s.kind ? mx_probe_test_name(k) : (k < CG_NMODES ? cg_mode_names[k] : "?"),
                   byk[k], totk[k]);
    return bad != 0;
}
