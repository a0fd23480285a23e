/* moe_config.c -- the MoE layer's configuration (see mxref/moe.h): the
 * named shapes (m3-full, m3-tp8, m3-ep8, custom:H,I,E[,k]), the precision
 * policies and production's dispatch between them, the default config. */
#include <stdio.h>
#include <string.h>
#include "mxref/moe.h"
#include "names.h"

int mx_moe_shape_by_name(const char *name, mx_moe_shape *out)
{
    memset(out, 0, sizeof *out);
    out->topk = 4;
    out->tp = out->ep = 1;
    out->routed_scaling = 2.0f;
    out->clamp = 7.0f;
    out->alpha = 1.702f;
    out->max_model_len = 4096;
    out->hybrid_high = 1024;
    out->H = 6144;
    out->E = out->E_local = 128;
    if (strcmp(name, "m3-full") == 0) {
        out->name = "m3-full";
        out->inter = out->inter_shared = 3072;
        return 0;
    }
    if (strcmp(name, "m3-tp8") == 0) {
        out->name = "m3-tp8";
        out->inter = out->inter_shared = 3072 / 8;
        out->tp = 8;
        return 0;
    }
    if (strcmp(name, "m3-ep8") == 0) {
        out->name = "m3-ep8";
        out->inter = out->inter_shared = 3072;
        out->E_local = 16;
        out->ep = 8;
        return 0;
    }
    unsigned long H, I, E, k = 4;
    char tail;
    int n = sscanf(name, "custom:%lu,%lu,%lu,%lu%c", &H, &I, &E, &k, &tail);
    if (n == 3 || n == 4) {
        if (H == 0 || I == 0 || E == 0 || k == 0 || k > 64 || k > E ||
            H % 32 || I % 32 || H > (1ul << 20) || I > (1ul << 20) || E > 4096)
            return -1;
        out->name = "custom";
        out->H = H;
        out->inter = out->inter_shared = I;
        out->E = out->E_local = E;
        out->topk = (int)k;
        return 0;
    }
    return -1;
}

static const char *const policy_names[] = {"bf16", "w8a8-mxfp8", "w8a16", "hybrid"};

const char *mx_moe_policy_name(mx_moe_policy p)
{
    return mxr_name_of(policy_names, 4, (int)p);
}

int mx_moe_policy_by_name(const char *name, mx_moe_policy *out)
{
    int i = mxr_name_index(policy_names, 4, name);
    if (i < 0)
        return -1;
    *out = (mx_moe_policy)i;
    return 0;
}

mx_moe_policy mx_moe_dispatch(const mx_moe_shape *s, mx_moe_policy p, size_t T)
{
    if (p != MX_POLICY_HYBRID)
        return p;
    if (s->ep > 1)
        return MX_POLICY_BF16;
    if (s->max_model_len > 4096 && s->layer % 5 == 0)
        return MX_POLICY_BF16;
    if (T <= 8 || T >= s->hybrid_high)
        return MX_POLICY_BF16;
    return MX_POLICY_W8A8;
}

mx_moe_config mx_moe_config_default(const mx_moe_shape *s, mx_moe_policy p)
{
    mx_moe_config c;
    memset(&c, 0, sizeof c);
    c.shape = *s;
    c.policy = p;
    c.model = mx_accum_default();
    c.sigmoid_ulps = 4;
    return c;
}
