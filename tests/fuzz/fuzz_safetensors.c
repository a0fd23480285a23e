/* fuzz_safetensors.c -- the safetensors reader on arbitrary bytes: every
 * tensor and metadata pair of an accepted file is read in full, so a
 * tensor that points outside the buffer is an ASan report. */
#include "safetensors.h"
#include "fuzz.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
    mxv_st_file *f;
    mxv_st_err err;
    if (mxv_st_open_buffer(data, size, "fuzz.safetensors", &f, &err) != MXV_ST_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort(); /* every refusal is one non-empty line */
        return 0;
    }
    volatile unsigned sum = 0;
    for (size_t i = 0; i < mxv_st_count(f); i++) {
        const mxv_st_tensor *t = mxv_st_tensor_at(f, i);
        const unsigned char *p = t->data;
        for (uint64_t b = 0; b < t->nbytes; b++)
            sum += p[b];
        if (mxv_st_find(f, t->name) != t)
            abort();
        sum += (unsigned)strlen(t->name);
    }
    for (size_t i = 0; i < mxv_st_meta_count(f); i++) {
        const char *k, *v;
        if (mxv_st_meta_at(f, i, &k, &v) == 0)
            sum += (unsigned)(strlen(k) + strlen(v));
    }
    mxv_st_close(f);
    return 0;
}
