/* shard.c -- shares of a run and partial reports (shard.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "out.h"
#include "shard.h"

int mxv_shard_parse(const char *s, mxv_shard *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return 0;
    unsigned k, n;
    char tail;
    if (sscanf(s, "%u/%u%c", &k, &n, &tail) != 2 || n < 1 || n > 100000 || k < 1 || k > n ||
        strspn(s, "0123456789/") != strlen(s))
        return mxv_error(MXV_EXIT_USAGE, "--shard '%s': K/N with 1 <= K <= N (e.g. 2/4)", s);
    out->on = 1;
    out->index = k;
    out->count = n;
    return 0;
}

int mxv_shard_has(const mxv_shard *s, size_t i)
{
    return !s->on || i % s->count == s->index - 1;
}

int mxv_shard_write(const char *path, const char *command, const mxv_shard *s,
                    const char *config, size_t total_items, const char *const *names,
                    const size_t *positions, size_t nitems, cJSON *report, char *err,
                    size_t len)
{
    cJSON *root = cJSON_CreateObject();
    char sh[32];
    snprintf(sh, sizeof sh, "%u/%u", s->index, s->count);
    cJSON_AddNumberToObject(root, "mxverify_partial_report", 1);
    cJSON_AddStringToObject(root, "command", command);
    cJSON_AddStringToObject(root, "shard", sh);
    cJSON_AddNumberToObject(root, "index", s->index);
    cJSON_AddNumberToObject(root, "count", s->count);
    cJSON_AddStringToObject(root, "config", config);
    cJSON_AddNumberToObject(root, "total_items", (double)total_items);
    cJSON *items = cJSON_AddArrayToObject(root, "items");
    for (size_t i = 0; i < nitems; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[i]);
        cJSON_AddNumberToObject(o, "position", (double)positions[i]);
        cJSON_AddItemToArray(items, o);
    }
    cJSON_AddItemToObject(root, "report", report);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        snprintf(err, len, "%s: out of memory", path);
        return -1;
    }
    int rc = mxv_out_write_text(path, text, err, len);
    cJSON_free(text);
    return rc;
}
