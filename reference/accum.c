/* accum.c -- accumulation models by name (see mxref/accum.h).  Each model's
 * arithmetic is in its own file: model_fp32_group.c, model_fp32_seq.c,
 * model_block.c, model_dequant.c. */
#include <stdio.h>
#include <string.h>
#include "mxref/accum.h"

int mx_accum_parse(const char *name, mx_accum_model *out)
{
    memset(out, 0, sizeof *out);
    if (!name || strlen(name) >= sizeof out->name)
        return -1;
    if (strcmp(name, "fp32-group") == 0)
        out->kind = MX_ACC_FP32_GROUP;
    else if (strcmp(name, "fp32-seq") == 0)
        out->kind = MX_ACC_FP32_SEQ;
    else if (strcmp(name, "dequant-fp32") == 0)
        out->kind = MX_ACC_DEQUANT_FP32;
    else if (strncmp(name, "block:", 6) == 0 && mx_blockfma_preset(name + 6)) {
        out->kind = MX_ACC_BLOCK;
        out->block = mx_blockfma_preset(name + 6);
    } else
        return -1;
    strcpy(out->name, name);
    return 0;
}

mx_accum_model mx_accum_default(void)
{
    mx_accum_model m;
    mx_accum_parse("fp32-group", &m);
    return m;
}

const char *mx_accum_names(void)
{
    static char buf[512];
    static int done;
    if (!done) {
        size_t o = (size_t)snprintf(buf, sizeof buf, "fp32-group, fp32-seq, dequant-fp32");
        const mx_blockfma_params *p;
        for (size_t i = 0; (p = mx_blockfma_preset_at(i)) && o < sizeof buf; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, ", block:%s", p->name);
        done = 1;
    }
    return buf;
}
