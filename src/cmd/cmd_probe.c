/* cmd_probe.c -- `mxverify probe`: infer a matrix unit's block-FMA
 * parameters from its results on the probe plan (mxprobe/probe.h), either
 * recorded (--replay FILE.probe) or measured here on the GPU (--gpu, through
 * the NVIDIA probe tools/probe/tc_probe), and name the presets that
 * reproduce every result bit for bit.
 *
 * --gpu writes the plan files into a private temporary folder, runs
 * tc_probe once per instruction variant (a process each, so a fault in one
 * cannot take the others down), reads its result files back (checking that
 * their input checksum is the plan's), and removes the folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "mxprobe/probe.h"
#include "cli.h"
#include "commands.h"
#include "probe_describe.h"
#include "probe_gpu.h"
#include "probe_io.h"
#include "lib/input.h"
#include "probe_vectors.h"

#ifndef MXV_PKGLIBEXECDIR
#define MXV_PKGLIBEXECDIR ""
#endif

/* Exit code of --gpu when this machine cannot run the probe (no GPU, no
 * probe binary, a GPU other than sm_90): what test harnesses read as
 * "skipped". */
/* no GPU, or no probe binary: an environment problem, reported like any
 * other failure to run (the test scripts turn it into a skip) */
#define EXIT_NO_GPU MXV_EXIT_INTERNAL

static const char *usage_probe =
    "usage: mxverify probe --replay FILE.probe|FILE.mxtd... [--json]\n"
    "       mxverify probe --gpu [--variants wgmma|mma|all] [--formats LIST]\n"
    "                      [--save DIR] [--json]\n"
    "       mxverify probe --vectors FILE [FILE...] --model block:PRESET\n"
    "                      [--format FMT] [--show N]\n"
    "\n"
    "Infers how a matrix unit computes c + sum a_i*b_i -- block size and\n"
    "grouping (the accumulation tree), alignment width and rounding, sticky\n"
    "bit, accumulator timing, subnormals, final rounding -- from its results\n"
    "on the designed inputs of the probe plan (mxprobe/probe.h), and names the\n"
    "block-FMA presets that reproduce every result bit for bit.\n"
    "\n"
    "  --replay        read recorded results: files with the keys fa, fb, k,\n"
    "                  plan, ncase and then one FP32 result (8 hex digits) per\n"
    "                  line, in plan order (golden/h100/*.probe); or tc_probe's\n"
    "                  result files of a plan run (VARIANT_plan.mxtd), e.g. from\n"
    "                  a GPU machine where only nvcc is installed\n"
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
    "  --vectors FILE  replay recorded dot products through a block-FMA preset:\n"
    "                  one 'k a[0..k-1] b[0..k-1] c d [category]' per line\n"
    "                  (hex codes; golden/cdna3-mi300mc/*.txt); prints the\n"
    "                  mismatch count, per category, and the first mismatches;\n"
    "                  exit 1 on any mismatch\n"
    "  --model M       the preset to replay with, block:PRESET\n"
    "  --format FMT    operand format of the vectors (default: from the file's\n"
    "                  '# ... a,b FMT codes' comment, else its name)\n"
    "  --show N        mismatches to print per file (default 10)\n"
    "  -h, --help      this text\n"
    "\n"
    "AMD GPUs: on an MI300X the same plan would run through the MFMA builtins\n"
    "(__builtin_amdgcn_mfma_f32_16x16x32_fp8_fp8, ..._16x16x16bf16_1k), and the\n"
    "inference, which knows no architecture, would read those results as it\n"
    "reads NVIDIA's.  That device side is not written: --gpu runs on NVIDIA\n"
    "Hopper only, and no AMD GPU has been probed.  What the inference makes of\n"
    "results simulated from the published CDNA3 model is tested\n"
    "(tests/check_probe.c).\n"
    "\n"
    "exit: 0 inferred (--vectors: no mismatch), 1 no parameter set reproduces\n"
    "the results (--vectors: a mismatch), 2 usage, 3 bad .probe or .mxtd file\n"
    "(--vectors: a malformed vector file), 4 the GPU probe failed or could not\n"
    "run (no GPU, no probe binary: the message says which)\n";

/* ---- one analysis ----------------------------------------------------------- */

typedef struct {
    const char *source;            /* file, or "gpu"                       */
    const mxv_tc_variant *variant; /* --gpu, or a tc_probe result file     */
    const char *device;            /* --gpu only (NULL otherwise)          */
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
    long miss = have_model ? mx_probe_plan_misses(p, &q) : -1;

    size_t npre = 0;
    while (mx_blockfma_preset_at(npre))
        npre++;
    long *pm = calloc(npre ? npre : 1, sizeof *pm);
    if (!pm)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    for (size_t i = 0; i < npre; i++)
        pm[i] = mx_probe_plan_misses(p, mx_blockfma_preset_at(i));

    if (json) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "source", o->source);
        if (o->variant) {
            cJSON_AddStringToObject(e, "variant", o->variant->name);
            cJSON_AddStringToObject(e, "instruction", o->variant->insn);
            if (o->device)
                cJSON_AddStringToObject(e, "device", o->device);
            else
                cJSON_AddNullToObject(e, "device");
        }
        cJSON_AddStringToObject(e, "fa", p->fa->name);
        cJSON_AddStringToObject(e, "fb", p->fb->name);
        cJSON_AddNumberToObject(e, "k", p->k);
        cJSON_AddNumberToObject(e, "plan_version", p->version);
        cJSON_AddNumberToObject(e, "cases", (double)p->ncase);
        cJSON_AddStringToObject(e, "status", st == MX_OK ? "inferred" : "no fit");
        if (have_model) {
            cJSON_AddNumberToObject(e, "reproduced", (double)((long)p->ncase - miss));
            cJSON_AddItemToObject(e, "params", mxv_params_json(&q));
        } else {
            cJSON_AddNullToObject(e, "reproduced");
            cJSON_AddNullToObject(e, "params");
        }
        cJSON *u = cJSON_AddArrayToObject(e, "undetermined");
        for (int f = 0; f < MX_PF_COUNT; f++)
            if (open >> f & 1)
                cJSON_AddItemToArray(u, cJSON_CreateString(mx_probe_feature_name(f)));
        /* what the search keeps fixed (see mxv_params_print) */
        cJSON *fixed = cJSON_AddArrayToObject(e, "not_searched");
        cJSON_AddItemToArray(fixed, cJSON_CreateString("ftz_prod"));
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
        if (o->variant && o->device)
            printf("%s (%s)\n  on %s\n", o->variant->name, o->variant->insn, o->device);
        else if (o->variant)
            printf("%s\n  %s (%s); tc_probe's result file names no GPU\n", o->source,
                   o->variant->name, o->variant->insn);
        else
            printf("%s\n", o->source);
        printf("  %s x %s, k=%d, probe plan v%d, %zu results\n\n", p->fa->name,
               p->fb->name, p->k, p->version, p->ncase);
        indent(rep, "  | ");
        if (have_model) {
            printf("\n  inferred parameters%s\n",
                   st == MX_OK ? "" : " (the closest found: NOT a fit)");
            mxv_params_print(stdout, &q, open, "    ");
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

/* A result file of tc_probe (binary, "MXTD"): the plan of its variant with
 * the results in d, or an exit code after the error. */
static int load_mxtd(const char *path, mx_probe_plan **out, int *variant)
{
    mxv_mxtd m;
    char err[700];
    *out = NULL;
    if (mxv_mxtd_read(path, &m, err, sizeof err))
        return mxv_error(MXV_EXIT_BADINPUT, "%s", err);
    const mxv_tc_variant *tv = &mxv_tc_variants[m.variant];
    mx_probe_plan *p = NULL;
    int rc = 0;
    if (m.kind != 1)
        rc = mxv_error(MXV_EXIT_BADINPUT, "%s: results of random cases, not of a "
                       "probe plan (replay the *_plan.mxtd files)", path);
    else if (mx_probe_plan_make(mx_format_get(tv->fa), mx_format_get(tv->fb), tv->k,
                                &p) != MX_OK)
        rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    else if (m.n != p->stride || m.ncase != p->ncase || m.checksum != mxv_plan_checksum(p))
        rc = mxv_error(MXV_EXIT_BADINPUT, "%s: %s results for inputs other than "
                       "those of probe plan v%d (%zu cases)", path, tv->name,
                       p->version, p->ncase);
    if (!rc) {
        memcpy(p->d, m.d, p->ncase * sizeof *p->d);
        *out = p;
        *variant = (int)m.variant;
    } else {
        mx_probe_plan_free(p);
    }
    mxv_mxtd_free(&m);
    return rc;
}

/* 1 when the file starts with tc_probe's result magic. */
static int is_mxtd(const char *path)
{
    char magic[4], err[600];
    FILE *f = mxv_input_fopen(path, err, sizeof err);
    int yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "MXTD", 4);
    if (f)
        fclose(f);
    return yes;
}

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
        /* the declared case count against the plan's, in constant memory,
         * before the plan (up to 300 MB for k = 128) is built */
        size_t want = 0;
        mx_status st = mx_probe_plan_count(g.fa, g.fb, g.k, &want);
        if (st == MX_OK && want != g.ncase)
            rc = mxv_error(MXV_EXIT_BADINPUT,
                           "%s:%ld: ncase %zu, but plan v%d for %s x %s k=%d has "
                           "%zu cases", path, g.line_ncase, g.ncase,
                           MX_PROBE_PLAN_VERSION, g.fa->name, g.fb->name, g.k, want);
        else if (st == MX_OK)
            st = mx_probe_plan_make(g.fa, g.fb, g.k, &p);
        if (rc)
            ;
        else if (st == MX_ENOMEM)
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
    int *var = calloc((size_t)nfiles, sizeof *var);
    int rc = var ? 0 : mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    /* every file is read before anything is printed */
    for (int i = 0; i < nfiles && !rc; i++) {
        var[i] = -1;
        rc = is_mxtd(files[i]) ? load_mxtd(files[i], &plans[i], &var[i])
                               : load_replay(files[i], &plans[i]);
    }
    for (int i = 0; i < nfiles && !(rc && rc != MXV_EXIT_FAIL); i++) {
        origin o = {files[i], var[i] >= 0 ? &mxv_tc_variants[var[i]] : NULL, NULL};
        int r = analyse(&o, plans[i], json);
        if (r > rc)
            rc = r;
    }
    for (int i = 0; i < nfiles; i++)
        mx_probe_plan_free(plans[i]);
    free(plans);
    free(var);
    return rc;
}

/* ---- --gpu ------------------------------------------------------------------- */

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
    char bin[4096], dir[4096], why[1200];
    if (mxv_tc_probe_find(bin, sizeof bin, why, sizeof why) != MXV_TC_OK)
        return mxv_error(EXIT_NO_GPU, "%s", why);
    if (mxv_tc_workdir(dir, sizeof dir, why, sizeof why))
        return mxv_error(MXV_EXIT_INTERNAL, "%s", why);
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
            mxv_tc_status ts = mxv_tc_probe_run(bin, dir, runs[r], p, device,
                                                sizeof device, why, sizeof why);
            int m = ts == MXV_TC_OK ? 0
                  : mxv_error(ts == MXV_TC_NO_GPU ? EXIT_NO_GPU : MXV_EXIT_INTERNAL,
                              "%s", why);
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
    mxv_tc_workdir_remove(dir);
    return rc;
}

/* ---- the command -------------------------------------------------------------- */

int mxv_cmd_probe(int argc, char **argv)
{
    const char *replay = NULL, *gpu = NULL, *variants = NULL, *formats = NULL,
               *save = NULL, *json = NULL, *help = NULL, *vectors = NULL,
               *model = NULL, *format = NULL, *show = NULL;
    const mxv_opt opts[] = {{"replay", 0, &replay, 0},     {"gpu", 0, &gpu, 0},
                            {"variants", 1, &variants, 0}, {"formats", 1, &formats, 0},
                            {"save", 1, &save, 0},         {"json", 0, &json, 0},
                            {"vectors", 1, &vectors, 0},   {"model", 1, &model, 0},
                            {"format", 1, &format, 0},     {"show", 1, &show, 0},
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
    if (vectors) {
        unsigned long long nshow = 10;
        if (replay || gpu || json || variants || formats || save)
            rc = mxv_error(MXV_EXIT_USAGE, "probe --vectors takes only --model, "
                           "--format, --show and more vector files");
        else if (show && mxv_parse_uint(show, 1000000, &nshow))
            rc = mxv_error(MXV_EXIT_USAGE, "probe --show: '%s' is not a count", show);
        if (!rc) {
            memmove(files + 1, files, (size_t)nfiles * sizeof *files);
            files[0] = (char *)vectors;
            rc = mxv_probe_vectors(files, nfiles + 1, model, format, (int)nshow);
        }
        free(files);
        return rc;
    }
    if (model || format || show)
        rc = mxv_error(MXV_EXIT_USAGE, "probe: --%s applies to --vectors only",
                       model ? "model" : format ? "format" : "show");
    else if (!replay == !gpu)
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
