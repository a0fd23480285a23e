/* cmd_report.c -- `mxverify report merge -o OUT PART...`: join the partial
 * reports of a sharded gate, kernels or mutants run (shard.h) into the
 * report the unsharded run writes.
 *
 * The shards must be the N shares of one run: the same command, shard
 * count, configuration and report header, every index 1..N once, and
 * their items the positions 0..total-1 once each.  The results are put in
 * the order of their items' positions (a case's rows keep their order),
 * passed and failed are counted again, and "seconds" is the sum of the
 * shards' seconds (machine time, the only field that differs from an
 * unsharded run besides each row's kernel_ms).  A mutants run's "(correct
 * kernels)" entry must be the same in every shard.  Exit 0 when every
 * result passes (every planted bug caught, for mutants), 1 otherwise, 3 for
 * partial reports that do not fit together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "commands.h"
#include "out.h"
#include "shard.h"

typedef struct {
    size_t position, seq;
    const cJSON *item;
} placed;

static int cmp_placed(const void *a, const void *b)
{
    const placed *x = a, *y = b;
    if (x->position != y->position)
        return x->position < y->position ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, k;
    do {
        if (len + 65536 > cap) {
            char *nb = realloc(buf, cap = 2 * cap + 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
    } while (k > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    *n = (long)len;
    return buf;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int num_field(const cJSON *o, const char *name, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v))
        return -1;
    *out = v->valuedouble;
    return 0;
}

/* The header fields of a kernels/gate report, in the writer's order. */
static const char *const header[] = {"tool", "suite", "backend", "device", "golden"};

static int merge(int nfiles, char **files, const char *out)
{
    cJSON **doc = calloc((size_t)nfiles, sizeof *doc);
    placed *all = NULL;
    size_t nall = 0, cap = 0, total = 0;
    unsigned count = 0;
    const char *command = NULL, *config = NULL;
    unsigned char *seen_shard = NULL, *seen_pos = NULL;
    int rc = MXV_EXIT_BADINPUT, is_mutants = 0;
    double seconds = 0;
    cJSON *merged = NULL;
    char *base0 = NULL;
    if (!doc)
        return mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    for (int fi = 0; fi < nfiles; fi++) {
        const char *f = files[fi];
        long len;
        char *text = slurp(f, &len);
        if (!text) {
            mxv_error(MXV_EXIT_BADINPUT, "%s: cannot read", f);
            goto done;
        }
        doc[fi] = cJSON_Parse(text);
        free(text);
        double ver, idx, cnt, tot;
        cJSON *d = doc[fi];
        if (!cJSON_IsObject(d) || num_field(d, "mxverify_partial_report", &ver) || ver != 1) {
            mxv_error(MXV_EXIT_BADINPUT, "%s: not a partial report (written with --shard K/N)",
                      f);
            goto done;
        }
        const char *cmd = str_field(d, "command"), *cfg = str_field(d, "config");
        cJSON *items = cJSON_GetObjectItemCaseSensitive(d, "items");
        cJSON *rep = cJSON_GetObjectItemCaseSensitive(d, "report");
        if (!cmd || !cfg || num_field(d, "index", &idx) || num_field(d, "count", &cnt) ||
            num_field(d, "total_items", &tot) || !cJSON_IsArray(items) || !rep ||
            cnt < 1 || cnt > 100000 || idx < 1 || idx > cnt || tot < 0 || tot > 1e7) {
            mxv_error(MXV_EXIT_BADINPUT, "%s: field \"command\", \"config\", \"index\", "
                      "\"count\", \"total_items\", \"items\" or \"report\" missing or out "
                      "of range", f);
            goto done;
        }
        if (!command) {
            command = cmd;
            config = cfg;
            count = (unsigned)cnt;
            total = (size_t)tot;
            is_mutants = !strcmp(cmd, "mutants");
            if (strcmp(cmd, "gate") && strcmp(cmd, "kernels") && !is_mutants) {
                mxv_error(MXV_EXIT_BADINPUT, "%s: field \"command\": '%s' is not gate, "
                          "kernels or mutants", f, cmd);
                goto done;
            }
            seen_shard = calloc(count + 1, 1);
            seen_pos = calloc(total + 1, 1);
            if (!seen_shard || !seen_pos) {
                rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
                goto done;
            }
        } else if (strcmp(cmd, command) || strcmp(cfg, config) || (unsigned)cnt != count ||
                   (size_t)tot != total) {
            mxv_error(MXV_EXIT_BADINPUT, "%s: not a shard of the same run as %s (command, "
                      "config, shard count or item count differ)", f, files[0]);
            goto done;
        }
        if (seen_shard[(unsigned)idx]++) {
            mxv_error(MXV_EXIT_BADINPUT, "%s: shard %u/%u given twice", f, (unsigned)idx,
                      count);
            goto done;
        }
        /* the items: positions, once each */
        size_t nitems = (size_t)cJSON_GetArraySize(items);
        const char **iname = calloc(nitems + 1, sizeof *iname);
        size_t *ipos = calloc(nitems + 1, sizeof *ipos);
        if (!iname || !ipos) {
            free(iname);
            free(ipos);
            rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
            goto done;
        }
        size_t k = 0;
        const cJSON *it;
        int bad = 0;
        cJSON_ArrayForEach(it, items) {
            double p;
            iname[k] = str_field(it, "name");
            if (!iname[k] || num_field(it, "position", &p) || p < 0 || p >= (double)total ||
                seen_pos[(size_t)p]++) {
                bad = 1;
                break;
            }
            ipos[k++] = (size_t)p;
        }
        if (bad) {
            free(iname);
            free(ipos);
            mxv_error(MXV_EXIT_BADINPUT, "%s: field \"items\": an item without a name, "
                      "outside 0..%zu or already in another shard", f, total);
            goto done;
        }
        /* the results */
        cJSON *res;
        if (is_mutants) {
            if (!cJSON_IsArray(rep) || cJSON_GetArraySize(rep) < 1) {
                free(iname);
                free(ipos);
                mxv_error(MXV_EXIT_BADINPUT, "%s: field \"report\": not a mutants report", f);
                goto done;
            }
            char *b = cJSON_PrintUnformatted(cJSON_GetArrayItem(rep, 0));
            if (!base0) {
                base0 = b;
            } else {
                int same = b && !strcmp(b, base0);
                cJSON_free(b);
                if (!same) {
                    free(iname);
                    free(ipos);
                    mxv_error(MXV_EXIT_BADINPUT, "%s: the correct kernels' entry differs "
                              "from %s's", f, files[0]);
                    goto done;
                }
            }
            res = rep;
        } else {
            res = cJSON_GetObjectItemCaseSensitive(rep, "results");
            double sec;
            if (!cJSON_IsObject(rep) || !cJSON_IsArray(res) || num_field(rep, "seconds", &sec)) {
                free(iname);
                free(ipos);
                mxv_error(MXV_EXIT_BADINPUT, "%s: field \"report\": not a %s report", f,
                          command);
                goto done;
            }
            seconds += sec;
            for (size_t h = 0; h < sizeof header / sizeof header[0]; h++) {
                const char *a = str_field(rep, header[h]);
                const char *b = str_field(cJSON_GetObjectItemCaseSensitive(doc[0], "report"),
                                          header[h]);
                if ((a == NULL) != (b == NULL) || (a && strcmp(a, b))) {
                    free(iname);
                    free(ipos);
                    mxv_error(MXV_EXIT_BADINPUT, "%s: field \"report\".\"%s\" differs from "
                              "%s's", f, header[h], files[0]);
                    goto done;
                }
            }
        }
        size_t seq = 0;
        cJSON_ArrayForEach(it, res) {
            if (is_mutants && seq++ == 0)
                continue; /* the correct kernels */
            const char *key = str_field(it, is_mutants ? "mutant" : "case");
            size_t j = 0;
            while (key && j < k && strcmp(iname[j], key))
                j++;
            if (!key || j == k) {
                free(iname);
                free(ipos);
                mxv_error(MXV_EXIT_BADINPUT, "%s: a result of '%s', which is not an item of "
                          "this shard", f, key ? key : "(no name)");
                goto done;
            }
            if (nall == cap) {
                placed *na = realloc(all, (cap = 2 * cap + 64) * sizeof *na);
                if (!na) {
                    free(iname);
                    free(ipos);
                    rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
                    goto done;
                }
                all = na;
            }
            all[nall] = (placed){ipos[j], nall, it};
            nall++;
        }
        free(iname);
        free(ipos);
    }
    for (unsigned i = 1; i <= count; i++)
        if (!seen_shard[i]) {
            mxv_error(MXV_EXIT_BADINPUT, "shard %u/%u is missing", i, count);
            goto done;
        }
    for (size_t p = 0; p < total; p++)
        if (!seen_pos[p]) {
            mxv_error(MXV_EXIT_BADINPUT, "item %zu of %zu is in no shard", p, total);
            goto done;
        }
    qsort(all, nall, sizeof *all, cmp_placed);
    size_t pass = 0, fail = 0;
    cJSON *arr;
    if (is_mutants) {
        merged = cJSON_CreateArray();
        cJSON_AddItemToArray(merged, cJSON_Duplicate(cJSON_GetArrayItem(
                             cJSON_GetObjectItemCaseSensitive(doc[0], "report"), 0), 1));
        cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(doc[0], "report"), 0), "pass");
        fail += !cJSON_IsTrue(b);
        arr = merged;
    } else {
        const cJSON *r0 = cJSON_GetObjectItemCaseSensitive(doc[0], "report");
        merged = cJSON_CreateObject();
        for (size_t h = 0; h < sizeof header / sizeof header[0]; h++)
            if (str_field(r0, header[h]))
                cJSON_AddStringToObject(merged, header[h], str_field(r0, header[h]));
        /* the provenance of the run (versions, backend, seed: the same in
         * every part; the command line is the first part's) */
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(r0, "provenance");
        if (cJSON_IsObject(pv))
            cJSON_AddItemToObject(merged, "provenance", cJSON_Duplicate(pv, 1));
        cJSON_AddNumberToObject(merged, "seconds", seconds);
        for (size_t i = 0; i < nall; i++)
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(all[i].item, "pass")))
                pass++;
            else
                fail++;
        cJSON_AddNumberToObject(merged, "passed", (double)pass);
        cJSON_AddNumberToObject(merged, "failed", (double)fail);
        arr = cJSON_AddArrayToObject(merged, "results");
    }
    for (size_t i = 0; i < nall; i++) {
        if (is_mutants && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(all[i].item, "caught")))
            pass++;
        else if (is_mutants)
            fail++;
        cJSON_AddItemToArray(arr, cJSON_Duplicate(all[i].item, 1));
    }
    char *text = cJSON_Print(merged), err[512];
    if (!text) {
        rc = mxv_error(MXV_EXIT_INTERNAL, "out of memory");
        goto done;
    }
    if (mxv_out_write_text(out, text, err, sizeof err) != 0) {
        cJSON_free(text);
        rc = mxv_error(MXV_EXIT_INTERNAL, "%s", err);
        goto done;
    }
    cJSON_free(text);
    printf("report merge: %s, %u shards, %zu items, %zu results: %zu %s, %zu %s -> %s\n",
           command, count, total, nall, pass, is_mutants ? "caught" : "passed", fail,
           is_mutants ? "missed or failing" : "failed", out);
    rc = fail ? MXV_EXIT_FAIL : MXV_EXIT_OK;
done:
    for (int fi = 0; fi < nfiles; fi++)
        cJSON_Delete(doc[fi]);
    free(doc);
    free(all);
    free(seen_shard);
    free(seen_pos);
    cJSON_free(base0);
    cJSON_Delete(merged);
    return rc;
}

int mxv_cmd_report(int argc, char **argv)
{
    const char *out = NULL, *help = NULL;
    const mxv_opt opts[] = {{"output", 1, &out, 'o'}, {"help", 0, &help, 'h'},
                            {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = mxv_parse_opts(argc, argv, opts, pos, &npos, "report");
    if (rc) {
        free(pos);
        return rc;
    }
    if (help) {
        free(pos);
        if (help)
            puts("usage: mxverify report merge -o REPORT.json PART.json...\n"
                 "  joins the partial reports of `gate`, `kernels` or `mutants` run as\n"
                 "  shards 1/N ... N/N into the report of the unsharded run\n"
                 "  -o, --output FILE    the merged report to write\n"
                 "  -h, --help           this text");
        return MXV_EXIT_OK;
    }
    if (npos < 1 || strcmp(pos[0], "merge")) {
        free(pos);
        return mxv_error(MXV_EXIT_USAGE, "report: the subcommand is 'merge' (mxverify "
                                         "report merge -o OUT PART...)");
    }
    if (!out || npos < 2) {
        free(pos);
        return mxv_error(MXV_EXIT_USAGE, "report merge: -o OUT and at least one partial "
                                         "report are required");
    }
    for (int i = 1; i < npos; i++)
        if (!strcmp(pos[i], out)) {
            free(pos);
            return mxv_error(MXV_EXIT_USAGE, "report merge: -o %s names an input", out);
        }
    rc = merge(npos - 1, pos + 1, out);
    free(pos);
    return rc;
}
