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
#include <math.h>
#include "mxtd.h"

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

/* |hw - exact| / bound for case q, or -1 when the case is out of the
 * bound's scope (special inputs, non-finite result). */
static double bound_ratio(const mx_blockfma_params *p, const set_t *s,
                          uint32_t q, uint32_t hw)
{
    const mx_format *fa = mx_format_get(VAR[s->var].fa),
                    *fb = mx_format_get(VAR[s->var].fb);
    if ((hw & 0x7f800000u) == 0x7f800000u || (s->c[q] & 0x7f800000u) == 0x7f800000u)
        return -1;
    uint8_t a8[4096], b8[4096];
    uint16_t a16[4096], b16[4096];
    mpfr_t x, t, u;
    mpfr_inits2(1400, x, t, u, (mpfr_ptr)0);
    mx_decode_mpfr(mx_format_get(MX_FP32), s->c[q], x);
    for (int i = 0; i < s->np[q]; i++) {
        uint32_t ca = s->a[q * s->n + i], cb = s->b[q * s->n + i];
        a8[i] = (uint8_t)ca; a16[i] = (uint16_t)ca;
        b8[i] = (uint8_t)cb; b16[i] = (uint16_t)cb;
        if (mx_classify(fa, ca) >= MX_CLASS_INF || mx_classify(fb, cb) >= MX_CLASS_INF) {
            mpfr_clears(x, t, u, (mpfr_ptr)0);
            return -1;
        }
        mx_decode_mpfr(fa, ca, t);
        mx_decode_mpfr(fb, cb, u);
        mpfr_mul(t, t, u, MPFR_RNDN);
        mpfr_add(x, x, t, MPFR_RNDN);
    }
    mx_decode_mpfr(mx_format_get(MX_FP32), hw, t);
    mpfr_sub(t, t, x, MPFR_RNDN);
    mpfr_abs(t, t, MPFR_RNDN);
    double err = mpfr_get_d(t, MPFR_RNDU);
    mpfr_clears(x, t, u, (mpfr_ptr)0);
    double sa = mx_blockfma_sum_abs(p, fa, fa->bits == 8 ? (void *)a8 : (void *)a16,
                                    fb, fb->bits == 8 ? (void *)b8 : (void *)b16,
                                    (size_t)s->np[q]);
    float cf;
    memcpy(&cf, &s->c[q], 4);
    double bd = mx_blockfma_bound(p, (size_t)s->np[q], sa, fabs((double)cf));
    if (!isfinite(bd))
        return -1;
    return bd > 0 ? err / bd : (err > 0 ? INFINITY : 0);
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
    int fp8 = VAR[s.var].k == 32;
    mx_blockfma_params p = *mx_blockfma_preset(fp8 ? "hopper-fp8" : "hopper-bf16");
    int show = 8, dobound = 0;
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
        else if (!strcmp(key, "bound")) dobound = iv;
    }
    if (mx_blockfma_check(&p) != MX_OK) {
        fprintf(stderr, "fit: invalid parameters\n");
        return 2;
    }
    long bad = 0, byk[16] = {0}, totk[16] = {0};
    double worst = 0;
    long over = 0, inscope = 0;
    uint32_t worst_q = 0;
    for (uint32_t q = 0; q < s.ncase; q++) {
        uint32_t m = model(&p, &s, q);
        if (dobound) {
            double r = bound_ratio(&p, &s, q, s.d[q]);
            if (r >= 0) {
                inscope++;
                if (r > 1) over++;
                if (r > worst) { worst = r; worst_q = q; }
            }
        }
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
    if (dobound)
        printf("   bound: %ld cases in scope, %ld over the bound, worst err/bound %.4g (case %u)\n",
               inscope, over, worst, worst_q);
    for (int k = 0; k < 16; k++)
        if (totk[k])
            printf("   %-10s %6ld / %6ld\n",
                   s.kind ? mx_probe_test_name(k) : (k < CG_NMODES ? cg_mode_names[k] : "?"),
                   byk[k], totk[k]);
    return bad != 0;
}
