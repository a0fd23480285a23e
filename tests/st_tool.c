/* st_tool.c -- a test-only driver of the safetensors module, for the Python
 * cross-check (tests/python/test_safetensors.py).  Not installed.
 *
 *   st_tool dump FILE...   one JSON line per file: {"ok":true, "tensors":
 *                          [{"name","dtype","shape","offset","hex"}...],
 *                          "metadata":{...}} in the reader's order, or
 *                          {"ok":false,"status","exit","msg"}
 *   st_tool copy IN OUT    reads IN and writes its tensors and metadata to
 *                          OUT with the writer, adding them in reverse order
 *                          (the output must not depend on it)
 * Exit status: 0 when every file was valid and written, else the last
 * failure's mxverify exit code (3 bad input, 4 I/O).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "safetensors.h"

static cJSON *dump_one(const char *path, int *rc)
{
    mxv_st_err err;
    mxv_st_file *f;
    mxv_st_status st = mxv_st_open(path, &f, &err);
    cJSON *o = cJSON_CreateObject();
    if (st != MXV_ST_OK) {
        cJSON_AddBoolToObject(o, "ok", 0);
        cJSON_AddStringToObject(o, "status", mxv_st_status_name(st));
        cJSON_AddNumberToObject(o, "exit", mxv_st_exit_code(st));
        cJSON_AddStringToObject(o, "msg", err.msg);
        *rc = mxv_st_exit_code(st);
        return o;
    }
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
    for (size_t i = 0; i < mxv_st_count(f); i++) {
        const mxv_st_tensor *t = mxv_st_tensor_at(f, i);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", t->name);
        cJSON_AddStringToObject(j, "dtype", mxv_st_dtype_name(t->dtype));
        cJSON *sh = cJSON_AddArrayToObject(j, "shape");
        for (int d = 0; d < t->rank; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddNumberToObject(j, "offset", (double)t->offset);
        cJSON_AddBoolToObject(j, "aligned",
                                (uintptr_t)t->data %
                                        mxv_st_dtype_size(t->dtype) ==
                                    0);
        char *hex = malloc(2 * t->nbytes + 1);
        const unsigned char *p = t->data;
        for (uint64_t k = 0; k < t->nbytes; k++)
            sprintf(hex + 2 * k, "%02x", p[k]);
        hex[2 * t->nbytes] = '\0';
        cJSON_AddStringToObject(j, "hex", hex);
        free(hex);
        cJSON_AddItemToArray(ts, j);
    }
    cJSON *m = cJSON_AddObjectToObject(o, "metadata");
    for (size_t i = 0; i < mxv_st_meta_count(f); i++) {
        const char *k, *v;
        mxv_st_meta_at(f, i, &k, &v);
        cJSON_AddStringToObject(m, k, v);
    }
    mxv_st_close(f);
    return o;
}

static int copy(const char *in, const char *out)
{
    mxv_st_err err;
    mxv_st_file *f;
    mxv_st_status st = mxv_st_open(in, &f, &err);
    if (st != MXV_ST_OK) {
        fprintf(stderr, "st_tool: %s\n", err.msg);
        return mxv_st_exit_code(st);
    }
    mxv_st_writer *w = mxv_st_writer_new(out);
    for (size_t i = mxv_st_count(f); st == MXV_ST_OK && i-- > 0;) {
        const mxv_st_tensor *t = mxv_st_tensor_at(f, i);
        st = mxv_st_writer_add(w, t->name, t->dtype, t->rank, t->shape,
                               t->data, &err);
    }
    for (size_t i = mxv_st_meta_count(f); st == MXV_ST_OK && i-- > 0;) {
        const char *k, *v;
        mxv_st_meta_at(f, i, &k, &v);
        st = mxv_st_writer_meta(w, k, v, &err);
    }
    if (st == MXV_ST_OK)
        st = mxv_st_writer_commit(w, &err);
    mxv_st_writer_free(w);
    mxv_st_close(f);
    if (st != MXV_ST_OK) {
        fprintf(stderr, "st_tool: %s\n", err.msg);
        return mxv_st_exit_code(st);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "dump")) {
        int rc = 0;
        for (int i = 2; i < argc; i++) {
            cJSON *o = dump_one(argv[i], &rc);
            char *s = cJSON_PrintUnformatted(o);
            puts(s);
            free(s);
            cJSON_Delete(o);
        }
        return rc;
    }
    if (argc == 4 && !strcmp(argv[1], "copy"))
        return copy(argv[2], argv[3]);
    fprintf(stderr, "usage: st_tool dump FILE... | st_tool copy IN OUT\n");
    return 2;
}
