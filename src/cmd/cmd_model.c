/* cmd_model.c -- `mxverify model`: full-model checks (docs/model-checks.md).
 *   model compare BASE TEST      KLD, delta-p, same top-1, PPL ratio, divergence
 *   model score RUN [--base R]   task accuracy, Wilson bound, McNemar
 *   model tolerance set FILE     write a golden model tolerance entry */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "commands.h"
#include "golden.h"
#include "out.h"
#include "model/compare.h"
#include "model/mreport.h"
#include "model/run.h"
#include "model/score.h"
#include "model/tolerance.h"

#define MTOL_FILE "model-tolerances.json"
#define DEF_MODEL "minimax-m3"
#define DEF_POLICY "w8a8-mxfp8"
#define DEF_DEVICE "mi300x"

/* A report path must not name an input (compared by device and inode, so
 * links count), nor another report of the run. */
static int check_outputs(const char *const *outs, int nout,
                         const char *const *ins, int nin)
{
    for (int j = 0; j < nin; j++)
        if (ins[j] && mxv_out_register_input(ins[j]))
            return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    for (int i = 0; i < nout; i++) {
        if (!outs[i])
            continue;
        if (!*outs[i])
            return mxv_error(MXV_EXIT_USAGE, "empty report path");
        if (mxv_out_is_input(outs[i]))
            return mxv_error(MXV_EXIT_USAGE, "report %s names an input of this "
                             "run", outs[i]);
        for (int j = 0; j < i; j++)
            if (outs[j] && !strcmp(outs[i], outs[j]))
                return mxv_error(MXV_EXIT_USAGE, "two reports to %s", outs[i]);
    }
    return 0;
}

static int parse_prob(const char *s, const char *opt, double *out)
{
    char *end;
    double x = strtod(s, &end);
    if (!*s || *end || !(x >= 0 && x <= 1))
        return mxv_error(MXV_EXIT_USAGE, "--%s: '%s' is not a number in [0, 1]",
                         opt, s);
    *out = x;
    return 0;
}

/* Loads the tolerance entry: 0 and *e (NULL when not asked for), or an
 * exit code. */
static int load_entry(const char *golden, const char *model, const char *policy,
                      const char *device, mxv_mtol *g, const mxv_mtol_entry **e,
                      char *gpath, size_t glen)
{
    char err[1024];
    *e = NULL;
    if (!golden)
        snprintf(gpath, glen, "%s/%s", mxv_golden_dir(), MTOL_FILE);
    else
        snprintf(gpath, glen, "%s", golden);
    if (mxv_mtol_load(gpath, g, err, sizeof err) != 0)
        return mxv_error(MXV_EXIT_BADINPUT, "%s", err);
    *e = mxv_mtol_find(g, model, policy, device);
    if (!*e)
        return mxv_error(MXV_EXIT_BADINPUT, "%s: no entry for model %s, policy "
                         "%s, device %s", gpath, model, policy, device);
    return 0;
}

/* Renders every requested output first, then writes: a failure leaves no
 * report half-written (each file is atomic). */
static int emit(const char *json_stdout, const char *rj, const char *json,
                const char *rm, const char *md)
{
    char err[1024];
    if ((rj && !json) || (rm && !md) || (json_stdout && !json))
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    if (rj && mxv_write_file_atomic(rj, json, err, sizeof err))
        return mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    if (rm && mxv_write_file_atomic(rm, md, err, sizeof err))
        return mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    return 0;
}

static int cmd_compare(int argc, char **argv)
{
    const char *match = "id", *js = NULL, *rj = NULL, *rm = NULL, *golden = NULL,
               *model = NULL, *policy = NULL, *device = NULL, *help = NULL,
               *tkc = NULL;
    const mxv_opt opts[] = {{"match", 1, &match, 0},   {"json", 0, &js, 0},
                            {"topk-check", 1, &tkc, 0},
                            {"report-json", 1, &rj, 0}, {"report-md", 1, &rm, 0},
                            {"golden", 1, &golden, 0},  {"model", 1, &model, 0},
                            {"policy", 1, &policy, 0},  {"device", 1, &device, 0},
                            {"help", 0, &help, 'h'},    {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc;
    if (!pos)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    if ((rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "model compare"))) {
        free(pos);
        return rc;
    }
    if (help) {
        free(pos);
        puts("usage: mxverify model compare BASE TEST [options]\n"
             "BASE, TEST: vLLM JSONL (completions, chat, prompt_logprobs) or\n"
             "safetensors of full log-probs/logits (docs/model-checks.md).\n"
             "options:\n"
             "  --match id|prompt    key requests by id (custom_id, request_id, id;\n"
             "                       default) or by prompt_token_ids / prompt\n"
             "  --golden FILE        judge against this model tolerance file (default\n"
             "                       GOLDEN_DIR/" MTOL_FILE ")\n"
             "  --model M            tolerance entry: model (default " DEF_MODEL ")\n"
             "  --policy P           tolerance entry: policy (default " DEF_POLICY ")\n"
             "  --device D           tolerance entry: device (default " DEF_DEVICE ")\n"
             "                       (judged only when one of the four is given)\n"
             "  --json               JSON on stdout instead of text\n"
             "  --report-json FILE   write the JSON report to FILE\n"
             "  --report-md FILE     write a Markdown summary to FILE\n"
             "  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    const char *base = npos > 0 ? pos[0] : NULL, *test = npos > 1 ? pos[1] : NULL;
    free(pos);
    if (npos != 2)
        return mxv_error(MXV_EXIT_USAGE, "model compare takes BASE and TEST "
                         "(see 'mxverify model compare --help')");
    int m = !strcmp(match, "id") ? MXV_MATCH_ID
            : !strcmp(match, "prompt") ? MXV_MATCH_PROMPT : -1;
    if (m < 0)
        return mxv_error(MXV_EXIT_USAGE, "--match: '%s' is not id or prompt", match);
    const char *outs[] = {rj, rm}, *ins[] = {base, test, golden};
    if ((rc = check_outputs(outs, 2, ins, 3)))
        return rc;
    mxv_compare_opts co = {0};
    unsigned long long kv;
    if (tkc && (mxv_parse_uint(tkc, 1u << 30, &kv) != 0 || kv == 0))
        return mxv_error(MXV_EXIT_USAGE, "--topk-check: '%s' is not a positive "
                         "integer", tkc);
    if (tkc)
        co.topk_check = (size_t)kv;
    int judge = golden || model || policy || device;
    mxv_mtol g = {0};
    const mxv_mtol_entry *e = NULL;
    mxv_mverdict v = {0};
    if (judge && (rc = load_entry(golden, model ? model : DEF_MODEL,
                                  policy ? policy : DEF_POLICY,
                                  device ? device : DEF_DEVICE, &g, &e,
                                  v.golden, sizeof v.golden)))
        return rc;
    char err[2048];
    mxv_tokens *toks = mxv_tokens_new();
    mxv_run rb = {0}, rt = {0};
    mxv_compare c = {0};
    if (!toks) {
        rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
        goto out;
    }
    if ((rc = mxv_run_load(base, toks, m, &rb, err, sizeof err)) ||
        (rc = mxv_run_load(test, toks, m, &rt, err, sizeof err)) ||
        (rc = mxv_compare_runs_opt(&rb, &rt, &co, &c, err, sizeof err))) {
        rc = mxv_error(rc, "%s", err);
        goto out;
    }
    mxv_compare_judge(&c, e, &v);
    char *json = (js || rj) ? mxv_compare_json(&c, base, test, &v) : NULL;
    char *md = rm ? mxv_compare_md(&c, base, test, &v) : NULL;
    rc = emit(js, rj, json, rm, md);
    if (!rc) {
        if (js)
            printf("%s\n", json);
        else
            mxv_compare_text(stdout, &c, base, test, &v);
        rc = v.judged && !v.pass ? MXV_EXIT_FAIL : MXV_EXIT_OK;
    }
    free(json);
    free(md);
out:
    mxv_compare_free(&c);
    mxv_run_free(&rb);
    mxv_run_free(&rt);
    mxv_tokens_free(toks);
    mxv_mtol_free(&g);
    return rc;
}

static int cmd_score(int argc, char **argv)
{
    const char *basep = NULL, *metric = NULL, *filter = NULL,
               *thr = NULL, *golden = NULL, *model = NULL, *policy = NULL,
               *device = NULL, *alphas = NULL, *js = NULL, *rj = NULL,
               *rm = NULL, *help = NULL;
    const mxv_opt opts[] = {{"base", 1, &basep, 0},      {"metric", 1, &metric, 0},
                            {"filter", 1, &filter, 0},   {"threshold", 1, &thr, 0},
                            {"golden", 1, &golden, 0},   {"model", 1, &model, 0},
                            {"policy", 1, &policy, 0},   {"device", 1, &device, 0},
                            {"alpha", 1, &alphas, 0},    {"json", 0, &js, 0},
                            {"report-json", 1, &rj, 0},  {"report-md", 1, &rm, 0},
                            {"help", 0, &help, 'h'},     {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc;
    if (!pos)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    if ((rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "model score"))) {
        free(pos);
        return rc;
    }
    if (help) {
        free(pos);
        puts("usage: mxverify model score RUN [options]\n"
             "RUN: lm-eval-harness --log_samples JSONL.  Passes when the one-sided\n"
             "95% Wilson lower bound clears the threshold and, with --base, McNemar's\n"
             "exact test finds no significant drop.\n"
             "options:\n"
             "  --base RUN2          pair with this run's samples (McNemar)\n"
             "  --metric NAME        per-sample 0/1 field (default exact_match)\n"
             "  --filter NAME        lm-eval filter (default: the only one, or strict-match)\n"
             "  --threshold X        the threshold (instead of the golden entry's)\n"
             "  --golden FILE        model tolerance file (default GOLDEN_DIR/" MTOL_FILE ")\n"
             "  --model M            tolerance entry: model (default " DEF_MODEL ")\n"
             "  --policy P           tolerance entry: policy (default " DEF_POLICY ")\n"
             "  --device D           tolerance entry: device (default " DEF_DEVICE ")\n"
             "  --alpha A            McNemar's level (default 0.05)\n"
             "  --json               JSON on stdout instead of text\n"
             "  --report-json FILE   write the JSON report to FILE\n"
             "  --report-md FILE     write a Markdown summary to FILE\n"
             "  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    const char *run = npos > 0 ? pos[0] : NULL;
    free(pos);
    if (npos != 1)
        return mxv_error(MXV_EXIT_USAGE, "model score takes one RUN "
                         "(see 'mxverify model score --help')");
    double threshold = NAN, alpha = 0.05;
    if (thr && (rc = parse_prob(thr, "threshold", &threshold)))
        return rc;
    if (alphas && ((rc = parse_prob(alphas, "alpha", &alpha)) ||
                   !(alpha > 0 && alpha < 1)))
        return rc ? rc : mxv_error(MXV_EXIT_USAGE, "--alpha: must be in (0, 1)");
    if (thr && (golden || model || policy || device))
        return mxv_error(MXV_EXIT_USAGE, "--threshold and --golden/--model/"
                         "--policy/--device exclude each other");
    const char *outs[] = {rj, rm}, *ins[] = {run, basep, golden};
    if ((rc = check_outputs(outs, 2, ins, 3)))
        return rc;
    mxv_mtol g = {0};
    const mxv_mtol_entry *e = NULL;
    mxv_mverdict v = {0};
    if (!thr) {
        if ((rc = load_entry(golden, model ? model : DEF_MODEL,
                             policy ? policy : DEF_POLICY,
                             device ? device : DEF_DEVICE, &g, &e, v.golden,
                             sizeof v.golden)))
            return rc;
        if (isnan(e->min_score)) {
            rc = mxv_error(MXV_EXIT_BADINPUT, "%s: entry %s/%s/%s has no "
                           "min_score", v.golden, e->model, e->policy, e->device);
            mxv_mtol_free(&g);
            return rc;
        }
        threshold = e->min_score;
        if (!metric && e->metric[0])
            metric = e->metric;
        if (!filter && e->filter[0])
            filter = e->filter;
    }
    if (!metric)
        metric = "exact_match";
    char err[2048];
    mxv_samples st = {0}, sbase = {0};
    mxv_score s;
    if ((rc = mxv_samples_load(run, metric, filter, &st, err, sizeof err)) ||
        (basep && (rc = mxv_samples_load(basep, metric, filter ? filter : st.filter,
                                         &sbase, err, sizeof err))) ||
        (rc = mxv_score_runs(&st, basep ? &sbase : NULL, 0.95, &s, err,
                             sizeof err))) {
        rc = mxv_error(rc, "%s", err);
        goto out;
    }
    mxv_score_judge(&s, threshold, alpha, &v);
    if (e)
        snprintf(v.entry, sizeof v.entry, "%s/%s/%s (%s)", e->model, e->policy,
                 e->device, e->task);
    else
        snprintf(v.entry, sizeof v.entry, "--threshold %g", threshold);
    char *json = (js || rj) ? mxv_score_json(&s, &st, basep ? &sbase : NULL,
                                             threshold, alpha, &v) : NULL;
    char *md = rm ? mxv_score_md(&s, &st, basep ? &sbase : NULL, threshold,
                                 alpha, &v) : NULL;
    rc = emit(js, rj, json, rm, md);
    if (!rc) {
        if (js)
            printf("%s\n", json);
        else
            mxv_score_text(stdout, &s, &st, basep ? &sbase : NULL, threshold,
                           alpha, &v);
        rc = v.pass ? MXV_EXIT_OK : MXV_EXIT_FAIL;
    }
    free(json);
    free(md);
out:
    mxv_samples_free(&st);
    mxv_samples_free(&sbase);
    mxv_mtol_free(&g);
    return rc;
}

static int parse_nonneg(const char *s, const char *opt, double *out)
{
    char *end;
    double x = strtod(s, &end);
    if (!*s || *end || !(x >= 0) || !isfinite(x))
        return mxv_error(MXV_EXIT_USAGE, "--%s: '%s' is not a number >= 0",
                         opt, s);
    *out = x;
    return 0;
}

static int cmd_tolerance(int argc, char **argv)
{
    const char *model = NULL, *policy = NULL, *device = NULL, *mk = NULL,
               *pk = NULL, *t1 = NULL, *ms = NULL, *task = NULL, *metric = NULL,
               *filter = NULL, *source = NULL, *loosen = NULL, *reason = NULL,
               *help = NULL;
    const mxv_opt opts[] = {
        {"model", 1, &model, 0},          {"policy", 1, &policy, 0},
        {"device", 1, &device, 0},        {"max-mean-kld", 1, &mk, 0},
        {"max-p999-kld", 1, &pk, 0},      {"min-same-top1", 1, &t1, 0},
        {"min-score", 1, &ms, 0},         {"task", 1, &task, 0},
        {"metric", 1, &metric, 0},        {"filter", 1, &filter, 0},
        {"source", 1, &source, 0},        {"allow-loosen", 0, &loosen, 0},
        {"reason", 1, &reason, 0},        {"help", 0, &help, 'h'},
        {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc;
    if (!pos)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    if ((rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "model tolerance"))) {
        free(pos);
        return rc;
    }
    if (help) {
        free(pos);
        puts("usage: mxverify model tolerance set FILE [options]\n"
             "Creates or updates one entry of a model tolerance file; refuses to\n"
             "loosen a threshold unless --allow-loosen --reason is given (recorded in\n"
             "the history).  The file's line in the MANIFEST beside it is refreshed.\n"
             "options:\n"
             "  --model M            the entry's model (required)\n"
             "  --policy P           the entry's policy (required)\n"
             "  --device D           the entry's device (required)\n"
             "  --source TEXT        where the numbers come from (required)\n"
             "  --max-mean-kld X     largest mean KLD (nats)\n"
             "  --max-p999-kld X     largest 99.9th-percentile KLD\n"
             "  --min-same-top1 X    smallest same-top-1 share\n"
             "  --min-score X        smallest one-sided 95% Wilson lower bound\n"
             "  --task T             the task of --min-score (required with it)\n"
             "  --metric M           its per-sample metric\n"
             "  --filter F           its lm-eval filter\n"
             "  --allow-loosen       accept a looser threshold\n"
             "  --reason TEXT        why (recorded in the history)\n"
             "  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    const char *verb = npos > 0 ? pos[0] : NULL, *file = npos > 1 ? pos[1] : NULL;
    free(pos);
    if (npos != 2 || strcmp(verb, "set"))
        return mxv_error(MXV_EXIT_USAGE, "usage: mxverify model tolerance set FILE ...");
    if (!model || !policy || !device || !source)
        return mxv_error(MXV_EXIT_USAGE, "model tolerance set needs --model, "
                         "--policy, --device and --source");
    if (loosen && (!reason || !*reason))
        return mxv_error(MXV_EXIT_USAGE, "--allow-loosen needs --reason TEXT");
    mxv_mtol_entry now = {0};
    now.max_mean_kld = now.max_p999_kld = now.min_same_top1 = now.min_score = NAN;
    if ((mk && (rc = parse_nonneg(mk, "max-mean-kld", &now.max_mean_kld))) ||
        (pk && (rc = parse_nonneg(pk, "max-p999-kld", &now.max_p999_kld))) ||
        (t1 && (rc = parse_prob(t1, "min-same-top1", &now.min_same_top1))) ||
        (ms && (rc = parse_prob(ms, "min-score", &now.min_score))))
        return rc;
    if (ms && !task)
        return mxv_error(MXV_EXIT_USAGE, "--min-score needs --task");
    struct { const char *v; char *dst; size_t n; const char *name; } f[] = {
        {model, now.model, sizeof now.model, "model"},
        {policy, now.policy, sizeof now.policy, "policy"},
        {device, now.device, sizeof now.device, "device"},
        {task, now.task, sizeof now.task, "task"},
        {metric, now.metric, sizeof now.metric, "metric"},
        {filter, now.filter, sizeof now.filter, "filter"},
        {source, now.source, sizeof now.source, "source"}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!f[i].v)
            continue;
        if (!*f[i].v || strlen(f[i].v) >= f[i].n)
            return mxv_error(MXV_EXIT_USAGE, "--%s: empty or longer than %zu "
                             "bytes", f[i].name, f[i].n - 1);
        strcpy(f[i].dst, f[i].v);
    }
    char err[1024], what[64];
    mxv_mtol g = {0};
    struct stat sst;
    int exists = stat(file, &sst) == 0;
    if (exists && mxv_mtol_load(file, &g, err, sizeof err))
        return mxv_error(MXV_EXIT_BADINPUT, "%s", err);
    mxv_mtol_entry *was = (mxv_mtol_entry *)mxv_mtol_find(&g, model, policy, device);
    if (was && mxv_mtol_looser(was, &now, what, sizeof what) && !loosen) {
        mxv_mtol_free(&g);
        return mxv_error(MXV_EXIT_FAIL, "%s: entry %s/%s/%s: refusing to loosen "
                         "%s without --allow-loosen --reason TEXT", file, model,
                         policy, device, what);
    }
    if (was) {
        int looser = mxv_mtol_looser(was, &now, what, sizeof what);
        *was = now;
        char r[600];
        snprintf(r, sizeof r, "%s/%s/%s%s%s%s%s", model, policy, device,
                 looser ? ": loosened " : "", looser ? what : "",
                 reason ? ": " : "", reason ? reason : "");
        mxv_mtol_note(&g, looser ? "loosen" : "update", r);
    } else {
        mxv_mtol_entry *ne = realloc(g.e, (g.n + 1) * sizeof *ne);
        if (!ne) {
            mxv_mtol_free(&g);
            return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
        }
        g.e = ne;
        g.e[g.n++] = now;
        char r[200];
        snprintf(r, sizeof r, "%s/%s/%s%s%s", model, policy, device,
                 reason ? ": " : "", reason ? reason : "");
        mxv_mtol_note(&g, exists ? "add" : "create", r);
    }
    rc = mxv_mtol_save(file, &g, err, sizeof err);
    mxv_mtol_free(&g);
    if (rc)
        return mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    /* refresh the file's MANIFEST line when a MANIFEST sits next to it */
    char dir[4096], man[4200];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : file;
    if (slash)
        *slash = 0;
    snprintf(man, sizeof man, "%s/MANIFEST", slash ? dir : ".");
    if (stat(man, &sst) == 0 &&
        mxv_manifest_update(man, base, err, sizeof err) != 0)
        return mxv_error(MXV_EXIT_INTERNAL, "%s", err);
    printf("%s: entry %s/%s/%s written\n", file, model, policy, device);
    return MXV_EXIT_OK;
}

static void model_usage(FILE *f)
{
    fputs("usage: mxverify model compare|score|tolerance ...\n"
          "  model compare BASE TEST   two runs of a model: KLD, delta-p, same "
          "top-1, PPL ratio, divergence\n"
          "  model score RUN           task accuracy: Wilson bound vs the "
          "golden threshold, McNemar vs a base run\n"
          "  model tolerance set FILE  write a golden model tolerance entry\n"
          "options:\n"
          "  -h, --help                this text; 'mxverify model SUBCOMMAND "
          "--help' shows a subcommand's\n", f);
}

int mxv_cmd_model(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "compare"))
        return cmd_compare(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "score"))
        return cmd_score(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "tolerance"))
        return cmd_tolerance(argc - 1, argv + 1);
    const char *help = NULL;
    const mxv_opt opts[] = {{"help", 0, &help, 'h'}, {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc;
    if (!pos)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "model");
    const char *sub = npos ? pos[0] : NULL;
    free(pos);
    if (rc)
        return rc;
    if (help) {
        model_usage(stdout);
        return MXV_EXIT_OK;
    }
    if (!sub) {
        model_usage(stderr);
        return MXV_EXIT_USAGE;
    }
    return mxv_error(MXV_EXIT_USAGE, "model: unknown subcommand '%s' (compare, "
                     "score, tolerance)", sub);
}
