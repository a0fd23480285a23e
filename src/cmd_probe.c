/* cmd_probe.c -- `mxverify probe`: infer a matrix unit's block-FMA
 * parameters from its results on the probe plan (mxref/probe.h), either
 * recorded (--replay FILE.probe) or measured here on the GPU (--gpu, through
 * the NVIDIA probe tools/probe/tc_probe), and name the presets that
 * reproduce every result bit for bit.
 *
 * --gpu writes the plan files into a private temporary folder, runs
 * tc_probe once per instruction variant (a process each, so a fault in one
 * cannot take the others down), reads its result files back (checking that
 * their input checksum is the plan's), and removes the folder.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "mxref/probe.h"
#include "cli.h"
#include "commands.h"
#include "probe_io.h"

#ifndef MXV_PKGLIBEXECDIR
#define MXV_PKGLIBEXECDIR ""
#endif
#ifndef MXV_BUILD_TC_PROBE
#define MXV_BUILD_TC_PROBE ""
#endif

/* Exit code of --gpu when this machine cannot run the probe (no GPU, no
 * probe binary, a GPU other than sm_90): what test harnesses read as
 * "skipped". */
#define EXIT_NO_GPU 77

/* Seconds one tc_probe run may take (it needs about a second). */
#define TC_PROBE_TIMEOUT 300

static const char *usage_probe =
    "usage: mxverify probe --replay FILE.probe... [--json]\n"
    "       mxverify probe --gpu [--variants wgmma|mma|all] [--formats LIST]\n"
    "                      [--save DIR] [--json]\n"
    "\n"
    "Infers how a matrix unit computes c + sum a_i*b_i -- block size and\n"
    "grouping (the accumulation tree), alignment width and rounding, sticky\n"
    "bit, accumulator timing, subnormals, final rounding -- from its results\n"
    "on the designed inputs of the probe plan (mxref/probe.h), and names the\n"
    "block-FMA presets that reproduce every result bit for bit.\n"
    "\n"
    "  --replay        read recorded results: files with the keys fa, fb, k,\n"
    "                  plan, ncase and then one FP32 result (8 hex digits) per\n"
    "                  line, in plan order (golden/h100/*.probe)\n"
    "  --gpu           run the plan on this machine's GPU with tc_probe\n"
    "                  (NVIDIA Hopper, sm_90a: wgmma and mma.sync), built by\n"
    "                  ./configure --with-cuda; looked up in $MXVERIFY_TC_PROBE,\n"
    "                  the build tree, then " MXV_PKGLIBEXECDIR "\n"
    "  --variants V    wgmma, mma or all (default all)\n"
    "  --formats LIST  comma-separated among e4m3, e5m2, e4m3xe5m2, bf16,\n"
    "                  fp16 (default: all five)\n"
    "  --save DIR      also write each variant's results as DIR/VARIANT.probe\n"
    "                  (replayable with --replay)\n"
    "  --json          print the results as one JSON array\n"
    "\n"
    "AMD GPUs: on an MI300X the same plan would run through the MFMA builtins\n"
    "(__builtin_amdgcn_mfma_f32_16x16x32_fp8_fp8, ..._16x16x16bf16_1k), and the\n"
    "inference, which knows no architecture, would read those results as it\n"
    "reads NVIDIA's.  That device side is not written: --gpu runs on NVIDIA\n"
    "Hopper only, and no AMD GPU has been probed.  What the inference makes of\n"
    "results simulated from the published CDNA3 model is tested\n"
    "(tests/check_probe.c).\n"
    "\n"
    "exit: 0 inferred, 1 no parameter set reproduces the results, 2 usage,\n"
    "3 bad .probe file, 4 the GPU probe failed, 77 no GPU or no probe binary\n";

/* ---- describing a parameter set ------------------------------------------ */

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

static cJSON *params_json(const mx_blockfma_params *q)
{
    cJSON *o = cJSON_CreateObject();
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

/* ---- replaying a parameter set over the plan ------------------------------ */

/* Results of q on the plan that differ from p->d; -1 when q cannot run the
 * plan (its k does not divide a case's product count). */
static long plan_misses(const mx_probe_plan *p, const mx_blockfma_params *q)
{
    if (mx_blockfma_check(q) != MX_OK)
        return -1;
    for (size_t i = 0; i < p->ncase; i++)
        if (q->block && p->n[i] % q->k)
            return -1;
    size_t ea = p->fa->bits / 8, eb = p->fb->bits / 8;
    long bad = 0;
    for (size_t i = 0; i < p->ncase; i++)
        bad += mx_blockfma_dot_bits(q, p->fa, (const char *)p->a + i * p->stride * ea,
                                    p->fb, (const char *)p->b + i * p->stride * eb,
                                    (size_t)p->n[i], p->c[i]) != p->d[i];
    return bad;
}

/* ---- one analysis ----------------------------------------------------------- */

typedef struct {
    const char *source;            /* file, or "gpu"                       */
    const mxv_tc_variant *variant; /* --gpu only                           */
    const char *device;            /* --gpu only                           */
} origin;

static void indent(const char *text, const char *pad)
{
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        printf("%s%.*s\n", pad, (int)n, s);
        s += n + (e != NULL);
    }
}

/* Infers, prints (or adds to json) and returns the exit code. */
static int analyse(const origin *o, const mx_probe_plan *p, cJSON *json)
{
    mx_blockfma_params q;
    static char rep[16384];
    unsigned open;
    mx_status st = mx_probe_infer_ex(p, &q, &open, rep, sizeof rep);
    if (st != MX_OK && st != MX_ERANGE)
        return mxv_error(MXV_EXIT_INTERNAL, "%s: inference failed (status %d)",
                         o->source, (int)st);
    /* no model when the search stopped before it had a block structure
     * (ORDER unreadable: block stays 0) */
    int have_model = q.block != 0 && mx_blockfma_check(&q) == MX_OK;
    long miss = have_model ? plan_misses(p, &q) : -1;

    size_t npre = 0;
    while (mx_blockfma_preset_at(npre))
        npre++;
    long *pm = calloc(npre ? npre : 1, sizeof *pm);
    if (!pm)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    for (size_t i = 0; i < npre; i++)
        pm[i] = plan_misses(p, mx_blockfma_preset_at(i));

    row rows[32];
    size_t nrows = have_model ? param_rows(&q, rows) : 0;

    if (json) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "source", o->source);
        if (o->variant) {
            cJSON_AddStringToObject(e, "variant", o->variant->name);
            cJSON_AddStringToObject(e, "instruction", o->variant->insn);
            cJSON_AddStringToObject(e, "device", o->device ? o->device : "");
        }
        cJSON_AddStringToObject(e, "fa", p->fa->name);
        cJSON_AddStringToObject(e, "fb", p->fb->name);
        cJSON_AddNumberToObject(e, "k", p->k);
        cJSON_AddNumberToObject(e, "plan_version", p->version);
        cJSON_AddNumberToObject(e, "cases", (double)p->ncase);
        cJSON_AddStringToObject(e, "status", st == MX_OK ? "inferred" : "no fit");
        if (have_model) {
            cJSON_AddNumberToObject(e, "reproduced", (double)((long)p->ncase - miss));
            cJSON_AddItemToObject(e, "params", params_json(&q));
        } else {
            cJSON_AddNullToObject(e, "reproduced");
            cJSON_AddNullToObject(e, "params");
        }
        cJSON *u = cJSON_AddArrayToObject(e, "undetermined");
        for (int f = 0; f < MX_PF_COUNT; f++)
            if (open >> f & 1)
                cJSON_AddItemToArray(u, cJSON_CreateString(mx_probe_feature_name(f)));
        cJSON *m = cJSON_AddArrayToObject(e, "matching_presets");
        cJSON *all = cJSON_AddArrayToObject(e, "presets");
        for (size_t i = 0; i < npre; i++) {
            const mx_blockfma_params *pre = mx_blockfma_preset_at(i);
            if (pm[i] == 0)
                cJSON_AddItemToArray(m, cJSON_CreateString(pre->name));
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", pre->name);
            if (pm[i] < 0)
                cJSON_AddNullToObject(x, "mismatches");
            else
                cJSON_AddNumberToObject(x, "mismatches", (double)pm[i]);
            cJSON_AddItemToArray(all, x);
        }
        cJSON_AddStringToObject(e, "report", rep);
        cJSON_AddItemToArray(json, e);
    } else {
        if (o->variant)
            printf("%s (%s)\n  on %s\n", o->variant->name, o->variant->insn,
                   o->device ? o->device : "the GPU");
        else
            printf("%s\n", o->source);
        printf("  %s x %s, k=%d, probe plan v%d, %zu results\n\n", p->fa->name,
               p->fb->name, p->k, p->version, p->ncase);
        indent(rep, "  | ");
        if (have_model) {
            printf("\n  inferred parameters%s\n",
                   st == MX_OK ? "" : " (the closest found: NOT a fit)");
            for (size_t i = 0; i < nrows; i++) {
                const char *note = rows[i].assumed ? "   (assumed: not searched)"
                                   : rows[i].feature >= 0 && (open >> rows[i].feature & 1)
                                       ? "   (not determined: other values fit too)"
                                       : "";
                printf("    %-20s %s%s\n", rows[i].label, rows[i].value, note);
            }
        }
        printf("\n");
        int any = 0;
        for (size_t i = 0; i < npre; i++)
            if (pm[i] == 0) {
                printf("  matches preset %s: all %zu results bit for bit\n",
                       mx_blockfma_preset_at(i)->name, p->ncase);
                any = 1;
            }
        if (!any)
            printf("  no preset reproduces all %zu results\n", p->ncase);
        printf("  other presets:");
        for (size_t i = 0, first = 1; i < npre; i++) {
            if (pm[i] == 0)
                continue;
            if (pm[i] < 0)
                printf("%s %s (k=%d: not applicable)", first ? "" : ",",
                       mx_blockfma_preset_at(i)->name, mx_blockfma_preset_at(i)->k);
            else
                printf("%s %s (%ld mismatches)", first ? "" : ",",
                       mx_blockfma_preset_at(i)->name, pm[i]);
            first = 0;
        }
        printf("\n\n");
    }
    free(pm);
    return st == MX_OK ? MXV_EXIT_OK : MXV_EXIT_FAIL;
}

/* ---- --replay ---------------------------------------------------------------- */

/* The plan with the file's results in d, or an exit code after the error. */
static int load_replay(const char *path, mx_probe_plan **out)
{
    mxv_probe_file g;
    char err[700];
    *out = NULL;
    if (mxv_probe_file_read(path, &g, err, sizeof err))
        return mxv_error(MXV_EXIT_BADINPUT, "%s", err);
    int rc = 0;
    mx_probe_plan *p = NULL;
    if (g.plan != MX_PROBE_PLAN_VERSION) {
        rc = mxv_error(MXV_EXIT_BADINPUT,
                       "%s:%ld: results of probe plan v%d; this mxverify builds "
                       "plan v%d (record them again)",
                       path, g.line_plan, g.plan, MX_PROBE_PLAN_VERSION);
    } else {
        mx_status st = mx_probe_plan_make(g.fa, g.fb, g.k, &p);
        if (st == MX_ENOMEM)
            rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
        else if (st != MX_OK)
            rc = mxv_error(MXV_EXIT_BADINPUT,
                           "%s:%ld: no probe plan for %s x %s with k=%d (k must "
                           "be even, 4..128)", path, g.line_k, g.fa->name,
                           g.fb->name, g.k);
        else if (p->ncase != g.ncase)
            rc = mxv_error(MXV_EXIT_BADINPUT,
                           "%s:%ld: ncase %zu, but plan v%d for %s x %s k=%d has "
                           "%zu cases", path, g.line_ncase, g.ncase, p->version,
                           g.fa->name, g.fb->name, g.k, p->ncase);
    }
    if (!rc) {
        memcpy(p->d, g.d, g.ncase * sizeof *g.d);
        *out = p;
    } else {
        mx_probe_plan_free(p);
    }
    mxv_probe_file_free(&g);
    return rc;
}

static int run_replay(char **files, int nfiles, cJSON *json)
{
    mx_probe_plan **plans = calloc((size_t)nfiles, sizeof *plans);
    if (!plans)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    int rc = 0;
    /* every file is read before anything is printed */
    for (int i = 0; i < nfiles && !rc; i++)
        rc = load_replay(files[i], &plans[i]);
    for (int i = 0; i < nfiles && !(rc && rc != MXV_EXIT_FAIL); i++) {
        origin o = {files[i], NULL, NULL};
        int r = analyse(&o, plans[i], json);
        if (r > rc)
            rc = r;
    }
    for (int i = 0; i < nfiles; i++)
        mx_probe_plan_free(plans[i]);
    free(plans);
    return rc;
}

/* ---- --gpu ------------------------------------------------------------------- */

static int is_exec(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

/* The tc_probe to run, or an exit code (77) after saying why there is none. */
static int find_tc_probe(char *out, size_t len)
{
    const char *env = getenv("MXVERIFY_TC_PROBE");
    if (env && *env) {
        if (!is_exec(env))
            return mxv_error(EXIT_NO_GPU, "MXVERIFY_TC_PROBE=%s is not an "
                             "executable file", env);
        snprintf(out, len, "%s", env);
        return 0;
    }
    char inst[4096];
    snprintf(inst, sizeof inst, "%s/tc_probe", MXV_PKGLIBEXECDIR);
    if (*MXV_BUILD_TC_PROBE && is_exec(MXV_BUILD_TC_PROBE)) {
        snprintf(out, len, "%s", MXV_BUILD_TC_PROBE);
        return 0;
    }
    if (*MXV_PKGLIBEXECDIR && is_exec(inst)) {
        snprintf(out, len, "%s", inst);
        return 0;
    }
    return mxv_error(EXIT_NO_GPU,
                     "no GPU probe binary: tc_probe is built only when configure "
                     "finds nvcc (./configure --with-cuda); looked for "
                     "$MXVERIFY_TC_PROBE, %s, %s (the AMD probe is not written)",
                     *MXV_BUILD_TC_PROBE ? MXV_BUILD_TC_PROBE : "(no build tree)", inst);
}

/* The last non-empty line of a text file containing `want` (any line when
 * want is NULL), into buf ("" when none). */
static void log_line(const char *path, const char *want, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    buf[0] = 0;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] && (!want || strstr(line, want)))
            snprintf(buf, len, "%s", line);
    }
    fclose(f);
}

/* Runs tc_probe OUTDIR PLANDIR 0 VARIANT with its output in logpath.
 * Returns its exit status, 128 + signal, or -1 (could not run, timeout). */
static int run_tc_probe(const char *bin, const char *dir, int variant,
                        const char *logpath)
{
    char var[16];
    snprintf(var, sizeof var, "%d", variant);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execl(bin, bin, dir, dir, "0", var, (char *)NULL);
        fprintf(stderr, "tc_probe: cannot run %s: %s\n", bin, strerror(errno));
        _exit(126);
    }
    close(fd);
    int status = 0;
    struct timespec nap = {0, 20 * 1000 * 1000};
    for (long waited = 0;; waited += 20) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -1;
        if (waited > TC_PROBE_TIMEOUT * 1000L) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status)
         : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/* Removes the probe's private folder and the files in it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

typedef struct {
    const char *name;
    mx_format_id fa, fb;
} fmt_pair;

static const fmt_pair pairs[] = {
    {"e4m3", MX_E4M3FN, MX_E4M3FN}, {"e5m2", MX_E5M2, MX_E5M2},
    {"e4m3xe5m2", MX_E4M3FN, MX_E5M2}, {"bf16", MX_BF16, MX_BF16},
    {"fp16", MX_FP16, MX_FP16},
};
#define NPAIRS (sizeof pairs / sizeof pairs[0])

static int parse_formats(const char *list, int *chosen)
{
    memset(chosen, 0, NPAIRS * sizeof *chosen);
    if (!list) {
        for (size_t i = 0; i < NPAIRS; i++)
            chosen[i] = (int)i + 1;
        return 0;
    }
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf)
        return mxv_error(MXV_EXIT_USAGE, "--formats: list too long");
    int order = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        const char *name = !strcasecmp(t, "e4m3fn") ? "e4m3" : !strcasecmp(t, "f16") ? "fp16" : t;
        while (i < NPAIRS && strcasecmp(pairs[i].name, name))
            i++;
        if (i == NPAIRS)
            return mxv_error(MXV_EXIT_USAGE, "--formats: unknown format '%s' (known: "
                             "e4m3, e5m2, e4m3xe5m2, bf16, fp16)", t);
        if (!chosen[i])
            chosen[i] = ++order;
    }
    if (!order)
        return mxv_error(MXV_EXIT_USAGE, "--formats: empty list");
    return 0;
}

/* The variant of tc_probe for (wgmma, pair); -1 if none. */
static int variant_of(int wgmma, const fmt_pair *fp)
{
    for (int v = 0; v < MXV_TC_NVARIANTS; v++)
        if (mxv_tc_variants[v].wgmma == wgmma && mxv_tc_variants[v].fa == fp->fa &&
            mxv_tc_variants[v].fb == fp->fb)
            return v;
    return -1;
}

/* Runs one variant and fills p->d from its result file. */
static int measure(const char *bin, const char *dir, int v, mx_probe_plan *p,
                   char *device, size_t devlen)
{
    const mxv_tc_variant *tv = &mxv_tc_variants[v];
    char logpath[4400], res[4400], line[1024], err[700];
    snprintf(logpath, sizeof logpath, "%s/%s.log", dir, tv->name);
    int st = run_tc_probe(bin, dir, v, logpath);
    if (st == EXIT_NO_GPU) {
        log_line(logpath, "tc_probe:", line, sizeof line);
        return mxv_error(EXIT_NO_GPU, "no GPU to probe: %s", line[0] ? line : "tc_probe exit 77");
    }
    if (st == 5) {
        log_line(logpath, "mismatches", line, sizeof line);
        return mxv_error(MXV_EXIT_INTERNAL, "%s: tc_probe's operand layout check "
                         "failed, results not used (%s)", tv->name, line);
    }
    if (st != 0) {
        log_line(logpath, NULL, line, sizeof line);
        if (st < 0)
            return mxv_error(MXV_EXIT_INTERNAL, "%s: tc_probe %s did not finish within "
                             "%d s or could not start", tv->name, bin, TC_PROBE_TIMEOUT);
        return mxv_error(MXV_EXIT_INTERNAL, "%s: tc_probe exited with status %d: %s",
                         tv->name, st, line[0] ? line : "(no output)");
    }
    log_line(logpath, "device ", line, sizeof line);
    snprintf(device, devlen, "%.200s", line[0] ? line + 7 : "an unnamed GPU");
    snprintf(res, sizeof res, "%s/%s_plan.mxtd", dir, tv->name);
    mxv_mxtd m;
    if (mxv_mxtd_read(res, &m, err, sizeof err))
        return mxv_error(MXV_EXIT_INTERNAL, "%s: tc_probe's result: %s", tv->name, err);
    const char *why = m.variant != (uint32_t)v ? "another instruction variant"
                      : m.kind != 1 ? "not a plan run"
                      : m.n != p->stride || m.ncase != p->ncase ? "another plan size"
                      : m.checksum != mxv_plan_checksum(p) ? "inputs other than the plan's"
                                                            : NULL;
    if (why) {
        mxv_mxtd_free(&m);
        return mxv_error(MXV_EXIT_INTERNAL, "%s: tc_probe's result %s holds %s",
                         tv->name, res, why);
    }
    memcpy(p->d, m.d, p->ncase * sizeof *p->d);
    mxv_mxtd_free(&m);
    return 0;
}

static int save_probe(const char *dir, const mxv_tc_variant *tv, const char *device,
                      const mx_probe_plan *p)
{
    char path[4400], comment[2048], stamp[64], err[700];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M UTC", gmtime_r(&now, &tmv));
    snprintf(path, sizeof path, "%s/%s.probe", dir, tv->name);
    snprintf(comment, sizeof comment,
             "# matrix-unit probe results recorded by mxverify probe --gpu\n"
             "# gpu: %s\n# date: %s\n# instruction: %s\n"
             "# probe: tools/probe/tc_probe (%s); the unit's results for every case "
             "of the probe plan (mx_probe_plan_make(fa, fb, k)), in plan order\n",
             device, stamp, tv->insn, tv->name);
    if (mxv_probe_file_write(path, comment, p->fa, p->fb, p->k, p->version, p->ncase,
                             p->d, err, sizeof err))
        return mxv_error(MXV_EXIT_INTERNAL, "--save: %s", err);
    return 0;
}

static int run_gpu(const char *variants, const char *formats, const char *save,
                   cJSON *json)
{
    int want_wg = 1, want_mma = 1;
    if (variants) {
        if (!strcmp(variants, "wgmma"))
            want_mma = 0;
        else if (!strcmp(variants, "mma"))
            want_wg = 0;
        else if (strcmp(variants, "all"))
            return mxv_error(MXV_EXIT_USAGE, "--variants '%s': one of wgmma, mma, all",
                             variants);
    }
    int chosen[NPAIRS];
    int rc = parse_formats(formats, chosen);
    if (rc)
        return rc;
    struct stat sb;
    if (save && (stat(save, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return mxv_error(MXV_EXIT_USAGE, "--save %s: not a folder", save);
    char bin[4096];
    if ((rc = find_tc_probe(bin, sizeof bin)))
        return rc;

    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/mxverify-probe-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return mxv_error(MXV_EXIT_INTERNAL, "cannot create a folder in %s: %s",
                         tmp && *tmp ? tmp : "/tmp", strerror(errno));
    /* pairs in the order given; per pair the plan, then its variants */
    for (int ord = 1; ord <= (int)NPAIRS && (rc == 0 || rc == MXV_EXIT_FAIL); ord++) {
        size_t i = 0;
        while (i < NPAIRS && chosen[i] != ord)
            i++;
        if (i == NPAIRS)
            break;
        const fmt_pair *fp = &pairs[i];
        int vw = variant_of(1, fp), vm = variant_of(0, fp);
        mx_probe_plan *p;
        if (mx_probe_plan_make(mx_format_get(fp->fa), mx_format_get(fp->fb),
                               mxv_tc_variants[vw].k, &p) != MX_OK) {
            rc = mxv_error(MXV_EXIT_INTERNAL, "cannot build the %s plan", fp->name);
            break;
        }
        char name[256], path[4400], err[700];
        mxv_plan_file_name(p, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (mxv_plan_write(path, p, err, sizeof err)) {
            mx_probe_plan_free(p);
            rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
            break;
        }
        int runs[2] = {want_wg ? vw : -1, want_mma ? vm : -1};
        for (int r = 0; r < 2; r++) {
            if (runs[r] < 0)
                continue;
            char device[512];
            int m = measure(bin, dir, runs[r], p, device, sizeof device);
            if (!m && save)
                m = save_probe(save, &mxv_tc_variants[runs[r]], device, p);
            if (m) {
                rc = m;
                break;
            }
            origin o = {"gpu", &mxv_tc_variants[runs[r]], device};
            int a = analyse(&o, p, json);
            if (a > rc)
                rc = a;
            if (rc != 0 && rc != MXV_EXIT_FAIL)
                break;
        }
        mx_probe_plan_free(p);
    }
    remove_dir(dir);
    return rc;
}

/* ---- the command -------------------------------------------------------------- */

int mxv_cmd_probe(int argc, char **argv)
{
    const char *replay = NULL, *gpu = NULL, *variants = NULL, *formats = NULL,
               *save = NULL, *json = NULL, *help = NULL;
    const mxv_opt opts[] = {{"replay", 0, &replay, 0},     {"gpu", 0, &gpu, 0},
                            {"variants", 1, &variants, 0}, {"formats", 1, &formats, 0},
                            {"save", 1, &save, 0},         {"json", 0, &json, 0},
                            {"help", 0, &help, 'h'},       {NULL, 0, NULL, 0}};
    char **files = calloc((size_t)argc + 1, sizeof *files);
    if (!files)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    int nfiles, rc = mxv_parse_opts(argc, argv, opts, files, &nfiles, "probe");
    if (rc) {
        free(files);
        return rc;
    }
    if (help) {
        fputs(usage_probe, stdout);
        free(files);
        return MXV_EXIT_OK;
    }
    if (!replay == !gpu)
        rc = mxv_error(MXV_EXIT_USAGE, "probe: give --replay FILE.probe... or --gpu "
                       "(see 'mxverify probe --help')");
    else if (replay && nfiles == 0)
        rc = mxv_error(MXV_EXIT_USAGE, "probe --replay: no .probe file given");
    else if (replay && (variants || formats || save))
        rc = mxv_error(MXV_EXIT_USAGE, "probe --replay: --%s applies to --gpu only",
                       variants ? "variants" : formats ? "formats" : "save");
    else if (gpu && nfiles)
        rc = mxv_error(MXV_EXIT_USAGE, "probe --gpu takes no file ('%s')", files[0]);
    if (rc) {
        free(files);
        return rc;
    }
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    rc = replay ? run_replay(files, nfiles, arr) : run_gpu(variants, formats, save, arr);
    if (arr) {
        if (rc == MXV_EXIT_OK || rc == MXV_EXIT_FAIL) {
            char *s = cJSON_Print(arr);
            if (s)
                puts(s);
            else
                rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
            free(s);
        }
        cJSON_Delete(arr);
    }
    free(files);
    return rc;
}
