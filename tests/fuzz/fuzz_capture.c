/* fuzz_capture.c -- the capture loader: open a capture and validate every
 * tensor its kind names (docs/capture-format.md), as check does before any
 * arithmetic. */
#include "capture.h"
#include "fuzz.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".safetensors");
    mxv_capture c;
    mxv_st_err err;
    if (mxv_capture_open(path, &c, &err) != MXV_ST_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort();
        return 0;
    }
    static const char *names[] = {"a", "b", "a_scale", "b_scale", "topk_ids",
                                  "topk_weights", "expert_ids", "out", "x", "q",
                                  "q_scale", "experts_present"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const mxv_st_tensor *t;
        if (mxv_capture_optional(&c, names[i], MXV_ST_ANY_DTYPE, -1, NULL, &t,
                                 &err) != MXV_ST_OK || !t)
            continue;
        if (t->dtype == MXV_ST_U8 || t->dtype == MXV_ST_F8_E8M0)
            mxv_capture_check_scales(&c, t, &err);
        if (t->dtype == MXV_ST_F32)
            mxv_capture_check_f32(&c, t, &err);
        if ((t->dtype == MXV_ST_I32 || t->dtype == MXV_ST_I64) && t->rank == 2) {
            int32_t *ids = NULL;
            if (mxv_capture_topk(&c, t, 64, &ids, &err) == MXV_ST_OK)
                free(ids);
        }
        if (t->dtype == MXV_ST_I32 || t->dtype == MXV_ST_I64) {
            int32_t *v = NULL;
            if (mxv_capture_ints(&c, t, &v, &err) == MXV_ST_OK)
                free(v);
        }
    }
    mxv_capture_close(&c);
    return 0;
}
