/* probe_infer.c -- infer block-FMA parameters from a unit's probe outputs.
 *
 * Three stages (docs/blockfma.md, "Probe", walks through them):
 *  1. Read-outs that need no model: NaN pattern, sign of zero results,
 *     overflow, flushing of subnormal inputs and outputs (SPECIAL, ZERO,
 *     SUBN); the alignment width F from ALIGN (largest j whose small term
 *     survives a cancelling +-B pair).
 *  2. The block structure, FPRev-style, from ORDER: two places i and i'
 *     are in the same block exactly when swapping them never changes a
 *     result, i.e. rows i and i' (and columns) of the ORDER result matrix
 *     agree off the diagonal -- whatever the absorption, a result depends
 *     only on which blocks hold +B and -B.  The classes of the first
 *     instruction give the block size and how products are dealt to blocks.
 *  3. The rest by coordinate search over the model: each feature in turn
 *     takes the value that reproduces the most outputs of a fast subset of
 *     the plan, until all agree; then the whole plan is replayed, and each
 *     feature is tried at its other values to tell which features the plan
 *     actually determined (e.g. FP8 sums never need FP32's last bits, so
 *     hopper-fp8's final rounding mode is invisible).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mxprobe/probe.h"

typedef struct {
    char *buf;
    size_t len, used;
} rep;

static void say(rep *r, const char *fmt, ...)
{
    if (!r->buf || r->len == 0 || r->used + 1 >= r->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(r->buf + r->used, r->len - r->used, fmt, ap);
    va_end(ap);
    if (w > 0)
        r->used += (size_t)w < r->len - r->used ? (size_t)w : r->len - r->used - 1;
}

/* Mismatches of q on the listed cases; stops counting past `limit`. */
static long misses(const mx_probe_plan *p, const mx_blockfma_params *q,
                   const size_t *idx, size_t n, long limit)
{
    long bad = 0;
    if (mx_blockfma_check(q) != MX_OK)
        return LONG_MAX;
    for (size_t t = 0; t < n; t++)
        if (mx_probe_case_run(p, q, idx[t]) != p->d[idx[t]] && ++bad > limit)
            break;
    return bad;
}

static long find_case(const mx_probe_plan *p, int test, int i, int j, int v,
                      int w)
{
    for (size_t q = 0; q < p->ncase; q++) {
        const mx_probe_tag *t = &p->tag[q];
        if (t->test == test && t->i == i && t->j == j && t->v == v && t->w == w)
            return (long)q;
    }
    return -1;
}

static double f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- stage 2: structure ------------------------------------------------- */

/* Fills cls[0..2k) with class ids (by first member) from the ORDER results;
 * returns 0 if ORDER is incomplete. */
static int order_classes(const mx_probe_plan *p, int *cls)
{
    int n = 2 * p->k;
    uint32_t *m = calloc((size_t)n * n, sizeof *m);
    char *have = calloc((size_t)n * n, 1);
    if (!m || !have) {
        free(m);
        free(have);
        return 0;
    }
    for (size_t q = 0; q < p->ncase; q++)
        if (p->tag[q].test == MX_PT_ORDER) {
            m[p->tag[q].i * n + p->tag[q].j] = p->d[q];
            have[p->tag[q].i * n + p->tag[q].j] = 1;
        }
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        for (int j = 0; j < n; j++)
            if (i != j && !have[i * n + j])
                ok = 0;
    for (int i = 0; i < n && ok; i++) {
        cls[i] = i;
        for (int c = 0; c < i; c++) {
            if (cls[c] != c)
                continue;
            int same = 1;
            for (int j = 0; j < n && same; j++) {
                if (j == i || j == c)
                    continue;
                same = m[i * n + j] == m[c * n + j] && m[j * n + i] == m[j * n + c];
            }
            if (same && m[i * n + c] == m[c * n + i]) {
                cls[i] = c;
                break;
            }
        }
    }
    free(m);
    free(have);
    return ok;
}

/* Block size and deal from the classes of the first instruction. */
static int structure(const mx_probe_plan *p, const int *cls, int *block,
                     int *deal)
{
    int k = p->k, size = 0;
    for (int i = 0; i < k; i++)
        if (cls[i] == cls[0])
            size++;
    if (size == 0 || k % size)
        return 0;
    int nb = k / size;
    *block = size;
    if (nb == 1) {
        *deal = 0;
        return 1;
    }
    for (int q = 0; q <= size; q = q ? 2 * q : 1) {
        /* q == 0: contiguous; else runs of q dealt round-robin */
        int ok = 1;
        for (int i = 0; i < k && ok; i++) {
            int bi = q ? (i / q) % nb : i / size;
            int b0 = q ? 0 : 0;
            /* representative of block bi: its first index */
            int rep0 = q ? bi * q : bi * size;
            (void)b0;
            ok = cls[i] == cls[rep0];
        }
        for (int a = 0; a < nb && ok; a++)
            for (int b = a + 1; b < nb && ok; b++)
                ok = cls[q ? a * q : a * size] != cls[q ? b * q : b * size];
        if (ok) {
            *deal = q;
            return 1;
        }
        if (q >= size)
            break;
    }
    return 0;
}

/* ---- stage 3: coordinate search --------------------------------------- */

enum { F_ACC = MX_PF_ACCUM, F_F = MX_PF_FRAC_BITS, F_ALIGN = MX_PF_ALIGN_ROUND,
       F_NORM = MX_PF_PROD_NORM, F_INFMT = MX_PF_IN_FMT, F_OUT = MX_PF_OUT_PREC,
       F_FINAL = MX_PF_FINAL_ROUND, F_OVF = MX_PF_OVF_INF, F_ZERO = MX_PF_ZERO_SIGN,
       F_FTZIN = MX_PF_FTZ_IN, F_FTZOUT = MX_PF_FTZ_OUT, F_POVF = MX_PF_PROD_OVF,
       NFEAT = MX_PF_COUNT };
static const char *const feat_names[NFEAT] = {
    "accumulator", "alignment bits F", "alignment rounding",
    "product normalisation", "input conversion", "output precision",
    "final rounding", "overflow to inf", "zero sign", "input flush",
    "output flush", "product overflow"};

const char *mx_probe_feature_name(int f)
{
    return f >= 0 && f < NFEAT ? feat_names[f] : "?";
}

static int nvalues(int f, const mx_probe_plan *p)
{
    switch (f) {
    case F_ACC: return 4;
    case F_F: return 38;         /* 4..40, exact */
    case F_ALIGN: return 4;
    case F_NORM: return 2;
    case F_INFMT: return (p->fa->bits == 8 || p->fb->bits == 8) ? 2 : 1;
    case F_OUT: return 17;       /* 8..23, 64 (24 and more: no cut) */
    case F_FINAL: return 4;
    default: return 2;
    }
}

/* Sets feature f of q to its v-th value. */
static void setv(mx_blockfma_params *q, int f, int v)
{
    static const mx_round finals[4] = {MX_RTZ, MX_RNE, MX_RDOWN, MX_RUP};
    switch (f) {
    case F_ACC:
        q->late_c = v == 1 || v == 2;
        q->odd_even = v == 2;
        q->c_fadd = v == 3;
        q->late_round = MX_ALIGN_RD;
        q->group_round = MX_ALIGN_RD;
        q->late_sum_frac_bits = 31;
        q->late_norm_frac_bits = MX_BFMA_EXACT;
        q->late_c_cutoff = v == 2 ? 25 : 0;
        break;
    case F_F: q->frac_bits = v < 37 ? 4 + v : MX_BFMA_EXACT; break;
    case F_ALIGN:
        q->align_round = v == 2 ? MX_ALIGN_RD : v == 3 ? MX_ALIGN_RNE : MX_ALIGN_TRUNC;
        q->sticky = v == 1;
        break;
    case F_NORM: q->prod_norm = v; break;
    case F_INFMT: q->in_fmt = v ? MX_FP16 + 1 : 0; break;
    case F_OUT: q->out_prec = v < 16 ? 8 + v : 64; break;
    case F_FINAL: q->final_round = finals[v]; break;
    case F_OVF: q->ovf_inf = v; break;
    case F_ZERO: q->zero_pos = v; break;
    case F_FTZIN: q->ftz_in = v; break;
    case F_FTZOUT: q->ftz_out = v; break;
    case F_POVF: q->prod_ovf_inf = v; break;
    }
}

static int getv(const mx_blockfma_params *q, int f)
{
    switch (f) {
    case F_ACC: return q->c_fadd ? 3 : q->odd_even ? 2 : q->late_c ? 1 : 0;
    case F_F: return q->frac_bits == MX_BFMA_EXACT ? 37 : q->frac_bits - 4;
    case F_ALIGN: return q->sticky ? 1 : q->align_round == MX_ALIGN_RD ? 2
                       : q->align_round == MX_ALIGN_RNE ? 3 : 0;
    case F_NORM: return q->prod_norm;
    case F_INFMT: return q->in_fmt ? 1 : 0;
    case F_OUT: return q->out_prec >= 24 ? 16 : q->out_prec - 8;
    case F_FINAL: return q->final_round == MX_RTZ ? 0 : q->final_round == MX_RNE ? 1
                       : q->final_round == MX_RDOWN ? 2 : 3;
    case F_OVF: return q->ovf_inf;
    case F_ZERO: return q->zero_pos;
    case F_FTZIN: return q->ftz_in;
    case F_FTZOUT: return q->ftz_out;
    default: return q->prod_ovf_inf;
    }
}

/* The fast subset of the plan: every designed single-feature case first
 * (they reject wrong candidates after a few cases), then a sample of ORDER
 * and GROUP.  Returns its size; idx holds p->ncase entries. */
static size_t fast_subset(const mx_probe_plan *p, size_t *idx)
{
    size_t nf = 0;
    for (size_t i = 0; i < p->ncase; i++) {
        int t = p->tag[i].test;
        if (t != MX_PT_ORDER && t != MX_PT_GROUP)
            idx[nf++] = i;
    }
    for (size_t i = 0, no = 0, ng = 0; i < p->ncase; i++) {
        int t = p->tag[i].test;
        if ((t == MX_PT_ORDER && no++ % 9 == 0) || (t == MX_PT_GROUP && ng++ % 13 == 0))
            idx[nf++] = i;
    }
    return nf;
}

/* Bit f: feature f of q has another value that reproduces every case. */
static unsigned open_features(const mx_probe_plan *p, const mx_blockfma_params *q,
                              const size_t *fast, size_t nf, const size_t *all,
                              size_t nall)
{
    unsigned mask = 0;
    for (int f = 0; f < NFEAT; f++) {
        int cur = getv(q, f);
        for (int v = 0; v < nvalues(f, p) && !(mask >> f & 1); v++) {
            if (v == cur)
                continue;
            mx_blockfma_params t = *q;
            setv(&t, f, v);
            if (misses(p, &t, fast, nf, 0) == 0 && misses(p, &t, all, nall, 0) == 0)
                mask |= 1u << f;
        }
    }
    return mask;
}

unsigned mx_probe_undetermined(const mx_probe_plan *p, const mx_blockfma_params *q)
{
    if (!p || !q || !p->d || p->ncase == 0)
        return 0;
    size_t *fast = malloc(p->ncase * sizeof *fast), *all = malloc(p->ncase * sizeof *all);
    unsigned mask = 0;
    if (fast && all) {
        for (size_t i = 0; i < p->ncase; i++)
            all[i] = i;
        size_t nf = fast_subset(p, fast);
        mask = open_features(p, q, fast, nf, all, p->ncase);
    }
    free(fast);
    free(all);
    return mask;
}

static void describe(rep *r, const mx_blockfma_params *q)
{
    static const char *const al[] = {"truncate", "round down", "nearest even"};
    static const char *const fr[] = {"RNE", "RNA", "RTZ", "RUP", "RDOWN", "?"};
    say(r, "  k=%d block=%d deal=%d; ", q->k, q->block, q->deal);
    if (q->frac_bits == MX_BFMA_EXACT)
        say(r, "alignment exact; ");
    else
        say(r, "alignment F=%d bits (n_eab=%d), %s%s%s; ", q->frac_bits,
            q->frac_bits - 23, al[q->align_round], q->sticky ? " + sticky" : "",
            q->prod_norm ? ", products normalised" : "");
    say(r, "c %s%s; ", q->c_fadd ? "added by a final FP32 FADD" : q->late_c ? "added late" : "aligned with the products",
        q->odd_even ? ", odd/even groups" : "");
    if (q->in_fmt)
        say(r, "inputs widened to %s; ", mx_format_get((mx_format_id)(q->in_fmt - 1))->name);
    say(r, "sum kept to %d bits, final %s; overflow->%s, zero %s, NaN %08x\n",
        q->out_prec >= 25 ? 24 : q->out_prec, fr[q->final_round < 5 ? q->final_round : 5],
        q->ovf_inf ? "inf" : "IEEE", q->zero_pos ? "+0" : "IEEE",
        (unsigned)q->nan_code);
}

mx_status mx_probe_infer(const mx_probe_plan *p, mx_blockfma_params *out,
                         char *report, size_t len)
{
    return mx_probe_infer_ex(p, out, NULL, report, len);
}

mx_status mx_probe_infer_ex(const mx_probe_plan *p, mx_blockfma_params *out,
                            unsigned *undetermined, char *report, size_t len)
{
    rep r = {report, len, 0};
    if (undetermined)
        *undetermined = 0;
    if (report && len)
        report[0] = 0;
    if (!p || !out || p->version != MX_PROBE_PLAN_VERSION || !p->d)
        return MX_EINVAL;

    mx_blockfma_params q;
    memset(&q, 0, sizeof q);
    q.name = "probed";
    q.source = "inferred by mx_probe_infer";
    q.k = p->k;
    q.out_prec = 64;
    q.final_round = MX_RTZ;
    q.ovf_inf = 1;
    q.frac_bits = 24;

    say(&r, "probe plan v%d: %s x %s, k=%d, %zu cases\n", p->version,
        p->fa->name, p->fb->name, p->k, p->ncase);

    /* stage 1: direct read-outs */
    long c;
    if ((c = find_case(p, MX_PT_SPECIAL, 0, 0, 0, 0)) >= 0) {
        q.nan_code = p->d[c];
        say(&r, "NaN input -> %08x\n", (unsigned)q.nan_code);
    }
    if ((c = find_case(p, MX_PT_ZERO, 2, 0, 0, 0)) >= 0) {
        q.zero_pos = p->d[c] == 0;
        say(&r, "(-0)*x summed with c=-0 -> %s: zero results are %s\n",
            p->d[c] == 0 ? "+0" : "-0", q.zero_pos ? "always +0" : "IEEE-signed");
    }
    if ((c = find_case(p, MX_PT_SUBN, 0, 0, 0, 0)) >= 0) {
        q.ftz_in = p->d[c] == 0;
        say(&r, "smallest subnormal a times 1 -> %a: subnormal inputs %s\n",
            f32(p->d[c]), q.ftz_in ? "flushed" : "kept");
    }
    int F0 = -1; /* ALIGN: the largest j whose +2^(eB-j) survives */
    for (int j = 0; j <= 44; j++) {
        long a = find_case(p, MX_PT_ALIGN, 0, j, 0, 0);
        if (a < 0)
            continue;
        if (f32(p->d[a]) == ldexp(1.0, p->eb - j))
            F0 = j;
        else
            break;
    }
    say(&r, "ALIGN: +2^(eB-j) beside a cancelling pair +-2^eB survives up to j=%d\n", F0);

    /* stage 2: structure */
    int *cls = calloc(2 * (size_t)p->k, sizeof *cls);
    int block = p->k, deal = 0;
    if (!cls)
        return MX_ENOMEM;
    if (order_classes(p, cls) && structure(p, cls, &block, &deal)) {
        say(&r, "ORDER: products of an instruction fall into %d block(s) of %d", p->k / block, block);
        if (p->k / block > 1)
            say(&r, deal ? ", dealt in runs of %d" : ", contiguous", deal);
        say(&r, " (block of product 0:");
        for (int i = 0; i < p->k; i++)
            if (cls[i] == cls[0])
                say(&r, " %d", i);
        say(&r, ")\n");
    } else {
        say(&r, "ORDER: results do not split the instruction into equal blocks\n");
        free(cls);
        *out = q;
        return MX_ERANGE;
    }
    free(cls);
    q.block = block;
    q.deal = deal;
    if (F0 >= 4 && F0 <= 40)
        q.frac_bits = F0;
    else if (F0 > 40)
        q.frac_bits = MX_BFMA_EXACT;

    /* stage 3: coordinate search on a fast subset */
    size_t *fast = malloc(p->ncase * sizeof *fast), *all = malloc(p->ncase * sizeof *all);
    if (!fast || !all) {
        free(fast);
        free(all);
        return MX_ENOMEM;
    }
    size_t nall = p->ncase, nf = fast_subset(p, fast);
    for (size_t i = 0; i < p->ncase; i++)
        all[i] = i;
    long best = misses(p, &q, fast, nf, LONG_MAX);
    for (int round = 0; round < 6 && best > 0; round++) {
        int changed = 0;
        for (int f = 0; f < NFEAT && best > 0; f++) {
            int cur = getv(&q, f);
            for (int v = 0; v < nvalues(f, p); v++) {
                if (v == cur)
                    continue;
                mx_blockfma_params t = q;
                setv(&t, f, v);
                long m = misses(p, &t, fast, nf, best - 1);
                if (m < best) {
                    best = m;
                    q = t;
                    cur = v;
                    changed = 1;
                }
            }
        }
        if (!changed)
            break;
    }
    long full = misses(p, &q, all, nall, LONG_MAX);
    say(&r, "model search: %ld of %zu plan results reproduced\n", (long)nall - full, nall);
    describe(&r, &q);
    mx_status st = MX_OK;
    if (full) {
        int cnt[MX_PT_COUNT] = {0};
        for (size_t i = 0; i < nall; i++)
            if (mx_probe_case_run(p, &q, i) != p->d[i])
                cnt[p->tag[i].test]++;
        say(&r, "NO FIT: mismatching tests:");
        for (int t = 0; t < MX_PT_COUNT; t++)
            if (cnt[t])
                say(&r, " %s=%d", mx_probe_test_name(t), cnt[t]);
        say(&r, "\n");
        st = MX_ERANGE;
    } else {
        /* which features did the plan pin down? */
        say(&r, "not determined by this plan (other values fit as well):");
        unsigned open = open_features(p, &q, fast, nf, all, nall);
        if (undetermined)
            *undetermined = open;
        for (int f = 0, first = 1; f < NFEAT; f++)
            if (open >> f & 1) {
                say(&r, "%s %s", first ? "" : ";", feat_names[f]);
                first = 0;
            }
        say(&r, "%s\n", open ? "" : " none");
    }
    free(fast);
    free(all);
    *out = q;
    return st;
}
