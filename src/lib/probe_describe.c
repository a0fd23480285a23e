/* probe_describe.c -- a block-FMA parameter set in words and in JSON (see
 * probe_describe.h). */
#include <string.h>
#include "mxprobe/probe.h"
#include "probe_describe.h"

static const char *align_name(mx_align_round r, int sticky)
{
    if (sticky)
        return "truncate, with a sticky bit";
    return r == MX_ALIGN_RD ? "round down (two's complement truncation)"
         : r == MX_ALIGN_RNE ? "round to nearest even"
                             : "truncate (toward zero)";
}

static const char *round_short(mx_round r)
{
    return r == MX_RNE ? "rne" : r == MX_RTZ ? "rtz" : r == MX_RUP ? "up"
         : r == MX_RDOWN ? "down" : "?";
}

static const char *accum_key(const mx_blockfma_params *q)
{
    return q->c_fadd ? "fadd" : q->late_c ? "late" : "early";
}

/* Which of the instruction's k products share block 0. */
static void block0_members(const mx_blockfma_params *q, char *buf, size_t len)
{
    size_t used = 0;
    int nb = q->block ? q->k / q->block : 1;
    buf[0] = 0;
    for (int i = 0; i < q->k && used + 8 < len; i++) {
        int b = q->deal ? (i / q->deal) % nb : (q->block ? i / q->block : 0);
        if (b == 0)
            used += (size_t)snprintf(buf + used, len - used, "%s%d", used ? " " : "", i);
    }
}

static void grouping_text(const mx_blockfma_params *q, char *buf, size_t len)
{
    int nb = q->block ? q->k / q->block : 1;
    char mem[400];
    if (q->odd_even)
        snprintf(buf, len, "even- and odd-indexed products aligned apart, "
                           "the two sums combined with round down");
    else if (nb == 1)
        snprintf(buf, len, "one alignment group: the %d products%s", q->k,
                 q->late_c || q->c_fadd ? "" : " and c");
    else if (!q->deal)
        snprintf(buf, len, "%d contiguous blocks of %d", nb, q->block);
    else {
        block0_members(q, mem, sizeof mem);
        snprintf(buf, len, "%d blocks of %d, products dealt in runs of %d "
                           "(block 0: %s)", nb, q->block, q->deal, mem);
    }
}

/* The chain of one instruction, d the FP32 accumulator and B0, B1, ... its
 * block FMAs (each takes an FP32 addend and its products):
 *   d <- B1(B0(d))        blocks chained through FP32, c enters the first;
 *   d <- d + B1(B0(0))    c_fadd: blocks from zero, c added by one FADD. */
static void tree_text(const mx_blockfma_params *q, char *buf, size_t len)
{
    int nb = q->block ? q->k / q->block : 1;
    if (nb == 1) {
        snprintf(buf, len, "d <- B0(d): c and the %d products in one block FMA; "
                           "chained instructions pass d in FP32", q->k);
        return;
    }
    if (nb > 4) {
        snprintf(buf, len, "%d block FMAs per instruction, chained through FP32%s", nb,
                 q->c_fadd ? " from zero, c added by one FP32 FADD" : "");
        return;
    }
    char open[64] = "", close[8] = "";
    size_t u = 0;
    for (int b = nb - 1; b >= 0; b--)
        u += (size_t)snprintf(open + u, sizeof open - u, "B%d(", b);
    memset(close, ')', (size_t)nb);
    close[nb] = 0;
    snprintf(buf, len, "d <- %s%s%s%s: %d block FMAs per instruction, %s", q->c_fadd ? "d + " : "",
             open, q->c_fadd ? "0" : "d", close, nb,
             q->c_fadd ? "chained from zero, c added by one FP32 FADD"
                       : "chained through FP32");
}

typedef struct {
    const char *label;
    char value[300];
    int feature; /* mx_probe_feature deciding it, or -1 */
    int assumed; /* not searched by mx_probe_infer        */
} row;

static size_t param_rows(const mx_blockfma_params *q, row *r)
{
    size_t n = 0;
#define ROW(lbl, feat, ...) do { r[n].label = lbl; r[n].feature = feat; r[n].assumed = 0; \
        snprintf(r[n].value, sizeof r[n].value, __VA_ARGS__); n++; } while (0)
    ROW("instruction", -1, "k = %d products", q->k);
    ROW("block size", -1, "%d products per alignment and rounding", q->block);
    grouping_text(q, r[n].value, sizeof r[n].value);
    r[n].label = "grouping";
    r[n].feature = q->odd_even ? MX_PF_ACCUM : -1;
    r[n++].assumed = 0;
    tree_text(q, r[n].value, sizeof r[n].value);
    r[n].label = "accumulation tree";
    r[n].feature = MX_PF_ACCUM;
    r[n++].assumed = 0;
    if (q->frac_bits == MX_BFMA_EXACT)
        ROW("alignment bits", MX_PF_FRAC_BITS, "all kept (exact alignment)");
    else
        ROW("alignment bits", MX_PF_FRAC_BITS,
            "F = %d below the largest exponent: %+d extra bits (n_eab) vs FP32's 23",
            q->frac_bits, q->frac_bits - 23);
    ROW("alignment rounding", MX_PF_ALIGN_ROUND, "%s", align_name(q->align_round, 0));
    ROW("sticky bit", MX_PF_ALIGN_ROUND, "%s", q->sticky ? "yes" : "no");
    ROW("product exponent", MX_PF_PROD_NORM, "%s",
        q->prod_norm ? "normalised (leading bit of the product)"
                     : "unnormalised (e_a + e_b)");
    ROW("accumulator c", MX_PF_ACCUM, "%s",
        q->c_fadd ? "late: one FP32 addition after the blocks"
        : q->late_c ? (q->late_c_cutoff ? "late: added to the aligned sum, dropped "
                                          "past 25 binades (CDNA3 style)"
                                        : "late: added to the aligned sum (CDNA3 style)")
                    : "early: aligned with the products");
    if (q->in_fmt)
        ROW("input conversion", MX_PF_IN_FMT, "inputs widened to %s first",
            mx_format_get((mx_format_id)(q->in_fmt - 1))->name);
    else
        ROW("input conversion", MX_PF_IN_FMT, "none");
    ROW("subnormal inputs", MX_PF_FTZ_IN, "%s", q->ftz_in ? "flushed to zero" : "kept");
    ROW("subnormal products", -1, "%s", q->ftz_prod ? "flushed to zero" : "kept");
    r[n - 1].assumed = 1;
    ROW("subnormal outputs", MX_PF_FTZ_OUT, "%s", q->ftz_out ? "flushed to zero" : "kept");
    ROW("products >= 2^128", MX_PF_PROD_OVF, "%s",
        q->prod_ovf_inf ? "infinite" : "held exactly");
    if (q->out_prec >= 24)
        ROW("sum kept", MX_PF_OUT_PREC, "every bit, to the final rounding");
    else
        ROW("sum kept", MX_PF_OUT_PREC, "%d significant bits (the rest truncated)",
            q->out_prec);
    ROW("final rounding", MX_PF_FINAL_ROUND, "%s",
        q->final_round == MX_RNE ? "RNE" : q->final_round == MX_RTZ ? "RTZ (toward zero)"
        : q->final_round == MX_RUP ? "toward +inf" : "toward -inf");
    ROW("overflow", MX_PF_OVF_INF, "%s",
        q->ovf_inf ? "to infinity in every rounding mode" : "IEEE 754");
    ROW("zero results", MX_PF_ZERO_SIGN, "%s", q->zero_pos ? "always +0" : "IEEE 754 signs");
    ROW("NaN result", -1, "%08x", (unsigned)q->nan_code);
#undef ROW
    return n;
}

cJSON *mxv_params_json(const mx_blockfma_params *q)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "k", q->k);
    cJSON_AddNumberToObject(o, "block", q->block);
    cJSON_AddNumberToObject(o, "deal", q->deal);
    cJSON_AddBoolToObject(o, "odd_even", q->odd_even);
    cJSON_AddStringToObject(o, "accumulator", accum_key(q));
    if (q->frac_bits == MX_BFMA_EXACT)
        cJSON_AddStringToObject(o, "frac_bits", "exact");
    else {
        cJSON_AddNumberToObject(o, "frac_bits", q->frac_bits);
        cJSON_AddNumberToObject(o, "extra_alignment_bits", q->frac_bits - 23);
    }
    cJSON_AddStringToObject(o, "align_round", q->align_round == MX_ALIGN_RD ? "rd"
                                              : q->align_round == MX_ALIGN_RNE ? "rne"
                                                                               : "trunc");
    cJSON_AddBoolToObject(o, "sticky", q->sticky);
    cJSON_AddBoolToObject(o, "prod_norm", q->prod_norm);
    if (q->in_fmt)
        cJSON_AddStringToObject(o, "in_fmt", mx_format_get((mx_format_id)(q->in_fmt - 1))->name);
    else
        cJSON_AddNullToObject(o, "in_fmt");
    cJSON_AddBoolToObject(o, "ftz_in", q->ftz_in);
    cJSON_AddBoolToObject(o, "ftz_prod", q->ftz_prod);
    cJSON_AddBoolToObject(o, "ftz_out", q->ftz_out);
    cJSON_AddBoolToObject(o, "prod_ovf_inf", q->prod_ovf_inf);
    cJSON_AddNumberToObject(o, "out_prec", q->out_prec >= 24 ? 24 : q->out_prec);
    cJSON_AddStringToObject(o, "final_round", round_short(q->final_round));
    cJSON_AddBoolToObject(o, "ovf_inf", q->ovf_inf);
    cJSON_AddBoolToObject(o, "zero_pos", q->zero_pos);
    char nan[16];
    snprintf(nan, sizeof nan, "%08x", (unsigned)q->nan_code);
    cJSON_AddStringToObject(o, "nan", nan);
    return o;
}


void mxv_params_print(FILE *out, const mx_blockfma_params *q, unsigned open,
                      const char *pad)
{
    row rows[32];
    size_t n = param_rows(q, rows);
    for (size_t i = 0; i < n; i++) {
        const char *note = rows[i].assumed ? "   (assumed: not searched)"
                           : rows[i].feature >= 0 && (open >> rows[i].feature & 1)
                               ? "   (not determined: other values fit too)"
                               : "";
        fprintf(out, "%s%-20s %s%s\n", pad, rows[i].label, rows[i].value, note);
    }
}
