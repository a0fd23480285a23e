/* probe_replay.c -- a block-FMA parameter set run over a probe plan: one
 * case, the count of results that differ from the recorded ones, or a
 * simulated unit (see mxprobe/probe.h).  Shared by the inference, `mxverify
 * probe` and the tests. */
#include "mxprobe/probe.h"

uint32_t mx_probe_case_run(const mx_probe_plan *p, const mx_blockfma_params *q,
                           size_t i)
{
    size_t ea = p->fa->bits / 8, eb = p->fb->bits / 8;
    return mx_blockfma_dot_bits(q, p->fa, (const char *)p->a + i * p->stride * ea,
                                p->fb, (const char *)p->b + i * p->stride * eb,
                                (size_t)p->n[i], p->c[i]);
}

long mx_probe_plan_misses(const mx_probe_plan *p, const mx_blockfma_params *q)
{
    if (mx_blockfma_check(q) != MX_OK)
        return -1;
    for (size_t i = 0; i < p->ncase; i++)
        if (q->block && p->n[i] % q->k)
            return -1;
    long bad = 0;
    for (size_t i = 0; i < p->ncase; i++)
        bad += mx_probe_case_run(p, q, i) != p->d[i];
    return bad;
}

void mx_probe_plan_simulate(mx_probe_plan *p, const mx_blockfma_params *q)
{
    for (size_t i = 0; i < p->ncase; i++)
        p->d[i] = mx_probe_case_run(p, q, i);
}
