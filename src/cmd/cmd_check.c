/* cmd_check.c -- `mxverify check FILE...`: recompute the exact reference for
 * each capture and judge every element of the kernel's outputs
 * (check_capture.h does the judging; this file reads the command line and
 * writes the reports).  Exit 0 when everything passes, 1 when an element
 * fails, 3 when an input is bad (one line naming file, tensor and field).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "provenance.h"
#include "capture.h"
#include "check_capture.h"
#include "case_pool.h"
#include "cli.h"
#include "runner.h"
#include "commands.h"
#include "judge.h"
#include "out.h"

/* ---- reporting -------------------------------------------------------------- */

static cJSON *judge_json(const mxv_judge *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tensor", j->name);
    cJSON_AddBoolToObject(o, "pass", mxv_judge_pass(j));
    cJSON_AddStringToObject(o, "judged_by", j->by_bytes ? "bytes" : "bound");
    cJSON_AddNumberToObject(o, "elements", (double)j->n);
    cJSON_AddNumberToObject(o, "outside", (double)j->outside);
    cJSON_AddNumberToObject(o, "bit_exact_share", j->n ? (double)j->bit_exact / (double)j->n : 1);
    if (!j->by_bytes) {
        cJSON_AddNumberToObject(o, "max_err_over_bound", isfinite(j->max_ratio) ? j->max_ratio : 1e308);
        cJSON_AddStringToObject(o, "output_type", j->f32 ? "f32" : "bf16");
        cJSON_AddNumberToObject(o, j->f32 ? "max_f32_ulp" : "max_bf16_ulp",
                                isfinite(j->max_ulp) ? j->max_ulp : 1e308);
        cJSON_AddNumberToObject(o, "rel_l2", isfinite(j->rel_l2) ? j->rel_l2 : 1e308);
        cJSON_AddNumberToObject(o, "sqnr_db", isfinite(j->sqnr_db) ? j->sqnr_db : 1e308);
        cJSON_AddBoolToObject(o, "torch_allclose_bf16", j->allclose);
        cJSON_AddNumberToObject(o, "aiter_mismatch", j->aiter_mismatch);
        cJSON *vc = cJSON_AddObjectToObject(o, "verdict_classes");
        cJSON_AddNumberToObject(vc, "bound", (double)j->cls_bound);
        cJSON_AddNumberToObject(vc, "overflow_edge", (double)j->cls_ovf_edge);
        cJSON_AddNumberToObject(vc, "model_special", (double)j->cls_model_special);
        cJSON_AddNumberToObject(vc, "bound_infinite", (double)j->cls_bound_inf);
        cJSON_AddNumberToObject(vc, "exact_special", (double)j->cls_exact_special);
        cJSON *h = cJSON_AddArrayToObject(o, "histogram_err_over_bound");
        for (int b = 0; b < MXV_HIST_BINS; b++) {
            cJSON *bin = cJSON_CreateObject();
            cJSON_AddNumberToObject(bin, "from", mxv_hist_edges[b]);
            cJSON_AddNumberToObject(bin, "count", (double)j->hist[b]);
            cJSON_AddItemToArray(h, bin);
        }
    } else {
        cJSON_AddNumberToObject(o, "alternative_taken", (double)j->ambiguous);
    }
    cJSON *bad = cJSON_AddArrayToObject(o, "first_outside");
    for (size_t b = 0; b < j->nbad; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "row", (double)(j->bad[b].index / j->cols));
        cJSON_AddNumberToObject(e, "col", (double)(j->bad[b].index % j->cols));
        cJSON_AddNumberToObject(e, "value", j->bad[b].out);
        cJSON_AddNumberToObject(e, "reference", j->bad[b].exact);
        cJSON_AddNumberToObject(e, "bound", j->bad[b].bound);
        cJSON_AddItemToArray(bad, e);
    }
    return o;
}

int mxv_cmd_check(int argc, char **argv)
{
    const char *json = NULL, *rjson = NULL, *svg = NULL, *hist = NULL, *help = NULL,
               *quiet = NULL, *model = NULL, *bonly = NULL, *jobs = NULL, *ref = NULL;
    const mxv_opt opts[] = {{"json", 0, &json, 0},        {"report-json", 1, &rjson, 0},
                            {"svg", 1, &svg, 0},          {"model", 1, &model, 0},
                            {"bound-only", 0, &bonly, 0},
                            {"hist", 0, &hist, 0},        {"quiet", 0, &quiet, 'q'},
                            {"jobs", 1, &jobs, 'j'},      {"reference", 1, &ref, 0},
                            {"help", 0, &help, 'h'},      {NULL, 0, NULL, 0}};
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles, rc = mxv_parse_opts(argc, argv, opts, files, &nfiles, "check");
    if (rc || help || nfiles == 0) {
        if (help) {
            puts("usage: mxverify check FILE... [--hist] [--svg FILE.svg] [--json]\n"
                 "                      [--report-json FILE] [--model NAME] [--bound-only]\n"
                 "                      [--jobs N] [--reference cpu|gpu|auto] [-q]\n"
                 "  FILE                 capture files (docs/capture-format.md)\n"
                 "  --json               print the report as JSON on stdout (no text)\n"
                 "  --report-json FILE   also write the JSON report to FILE\n"
                 "  --svg FILE           the |err|/bound histogram of the last\n"
                 "                       bound-judged tensor as an SVG chart\n"
                 "  --hist               print the histograms as text\n"
                 "  -q, --quiet          no per-tensor table\n"
                 "  -j, --jobs N         threads (default: the processors available)");
            mxv_print_model_help(stdout, "the capture's accum_model");
            puts("  --bound-only         under a model measured on the device\n"
                 "                       (block:hopper-*), accept GEMM elements within\n"
                 "                       their bound that are not bit-exact to the model\n"
                 "                       (by default they fail: within bound, not the\n"
                 "                       device's arithmetic)");
            puts("  --reference R        cpu or auto (default: all on the CPU), or gpu:\n"
                 "                       the block models' walks and the exact-only GEMMs\n"
                 "                       on the GPU, the fused CPU kernels for the rest\n"
                 "                       (exit 4 without a usable GPU); the same report\n"
                 "                       either way (docs/reference.md)");
            puts("  -h, --help           this text");
        } else if (!rc)
            rc = mxv_error(MXV_EXIT_USAGE, "check: no capture file given");
        free(files);
        return rc ? rc : MXV_EXIT_OK;
    }
    if ((rc = mxv_jobs_apply(jobs)) != 0) {
        free(files);
        return rc;
    }
    mxv_ref_mode refm;
    const char *ref_used = "cpu";
    if ((rc = mxv_reference_parse(ref, &refm)) != 0 ||
        (rc = mxv_check_reference_apply(refm, &ref_used)) != 0) {
        free(files);
        return rc;
    }
    mx_accum_model override;
    if ((rc = mxv_parse_model(model)) != 0) {
        free(files);
        return rc;
    }
    if (model)
        mx_accum_parse(model, &override);
    /* no output may overwrite a capture of this run */
    for (int fi = 0; fi < nfiles; fi++)
        mxv_out_register_input(files[fi]);
    const char *outs[2] = {rjson, svg}, *what[2] = {"--report-json", "--svg"};
    for (int i = 0; i < 2; i++)
        if (outs[i] && mxv_out_is_input(outs[i])) {
            free(files);
            return mxv_error(MXV_EXIT_USAGE, "%s %s names an input of this run", what[i],
                             outs[i]);
        }
    int any_bad_input = 0, any_fail = 0;
    /* {"tool", "provenance", "files": [one object per capture]} */
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "mxverify check");
    cJSON_AddItemToObject(root, "provenance",
                          mxv_provenance_json(!strcmp(ref_used, "gpu") ? "reference (gpu)"
                                                                         : "reference (cpu)",
                                              NULL, NULL));
    cJSON *report = cJSON_AddArrayToObject(root, "files");
    for (int fi = 0; fi < nfiles; fi++) {
        mxv_capture c;
        mxv_st_err err;
        mxv_check_result res;
        memset(&res, 0, sizeof res);
        res.bound_only = bonly != NULL;
        mxv_st_status st = mxv_capture_open(files[fi], &c, &err);
        if (st == MXV_ST_OK && model)
            c.model = override;
        if (st == MXV_ST_OK)
            st = mxv_check_capture(&c, &res, &err);
        cJSON *fo = cJSON_CreateObject();
        char relp[4096];
        cJSON_AddStringToObject(fo, "file", mxv_relpath(files[fi], relp, sizeof relp));
        if (st != MXV_ST_OK) {
            mxv_error(mxv_st_exit_code(st), "%s", err.msg);
            any_bad_input |= mxv_st_exit_code(st) == MXV_EXIT_BADINPUT;
            any_fail |= mxv_st_exit_code(st) != MXV_EXIT_BADINPUT;
            cJSON_AddStringToObject(fo, "error", err.msg);
            cJSON_AddItemToArray(report, fo);
            mxv_capture_close(&c);
            continue;
        }
        int pass = res.route_mismatch == 0 && res.not_device == 0;
        for (size_t i = 0; i < res.n; i++)
            pass &= mxv_judge_pass(&res.j[i]);
        any_fail |= !pass;
        /* in the order of mxv_cap_kind (src/lib/capture.h) */
        static const char *kn[] = {"mxfp8_group_gemm", "bf16_group_gemm", "mx_quant",
                                   "moe_layer", "mxfp8_gemm", "bf16_gemm"};
        if (!json) { /* the text report; --json prints JSON alone */
            printf("%s: %s, model %s, %s\n", files[fi], kn[c.kind], c.model.name,
                   pass ? "PASS" : "FAIL");
            if (!quiet) {
                mxv_judge_print_header(stdout);
                for (size_t i = 0; i < res.n; i++)
                    mxv_judge_print_row(stdout, res.j[i].name, &res.j[i]);
            }
            if (res.has_route)
                printf("routing: %zu tokens with another expert set (%zu more where "
                       "the reference marks a near tie)\n",
                       res.route_mismatch, res.route_ambiguous);
            for (size_t i = 0; i < res.n; i++)
                if (!mxv_judge_pass(&res.j[i]))
                    mxv_judge_print_bad(stdout, &res.j[i]);
            if (res.not_device)
                printf("out: %zu elements within their bound, not the device's "
                       "arithmetic (not bit-exact to %s, a model measured on the device; "
                       "--bound-only accepts them)\n", res.not_device, c.model.name);
            if (res.explain[0])
                printf("model: the output is not explained by %s; %s\n", c.model.name,
                       res.explain);
            if (res.has_e2e)
                printf("end to end: out vs the reference chain: rel L2 %.3g, max %.1f "
                       "BF16 ulp (information; verdicts are stage-wise)\n",
                       res.e2e_rel_l2, res.e2e_max_ulp);
            if (hist && res.n)
                for (size_t i = 0; i < res.n; i++)
                    if (!res.j[i].by_bytes)
                        mxv_judge_print_hist(stdout, &res.j[i]);
        }
        if (svg && res.n) {
            /* the histogram of the last bound-judged tensor (the output) */
            for (size_t i = res.n; i-- > 0;)
                if (!res.j[i].by_bytes) {
                    char title[512];
                    snprintf(title, sizeof title, "%s: %s", files[fi], res.j[i].name);
                    if (mxv_judge_write_svg(svg, &res.j[i], title) != 0)
                        rc = mxv_error(MXV_EXIT_INTERNAL, "cannot write %s", svg);
                    break;
                }
        }
        cJSON_AddStringToObject(fo, "kind", kn[c.kind]);
        cJSON_AddStringToObject(fo, "accum_model", c.model.name);
        cJSON_AddBoolToObject(fo, "pass", pass);
        cJSON_AddNumberToObject(fo, "within_bound_not_device", (double)res.not_device);
        if (res.explain[0])
            cJSON_AddStringToObject(fo, "model_explanation", res.explain);
        if (res.has_route) {
            cJSON_AddNumberToObject(fo, "routing_mismatch", (double)res.route_mismatch);
            cJSON_AddNumberToObject(fo, "routing_near_tie", (double)res.route_ambiguous);
        }
        if (res.has_e2e) {
            cJSON_AddNumberToObject(fo, "e2e_rel_l2", res.e2e_rel_l2);
            cJSON_AddNumberToObject(fo, "e2e_max_bf16_ulp", res.e2e_max_ulp);
        }
        cJSON *arr = cJSON_AddArrayToObject(fo, "tensors");
        for (size_t i = 0; i < res.n; i++)
            cJSON_AddItemToArray(arr, judge_json(&res.j[i]));
        cJSON_AddItemToArray(report, fo);
        mxv_capture_close(&c);
    }
    if (rjson || json) {
        char *s = cJSON_Print(root);
        char werr[512] = "out of memory";
        if (!s)
            rc = mxv_error(MXV_EXIT_INTERNAL, "cannot build the JSON report: out of memory");
        else if (json)
            puts(s);
        if (s && rjson && mxv_out_write_text(rjson, s, werr, sizeof werr) != 0)
            rc = mxv_error(MXV_EXIT_INTERNAL, "cannot write the report: %s", werr);
        cJSON_free(s);
    }
    cJSON_Delete(root);
    free(files);
    if (rc)
        return rc;
    return any_bad_input ? MXV_EXIT_BADINPUT : any_fail ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
