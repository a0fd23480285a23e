/* scan_sigmoid.c -- exhaustive accuracy of mxk_expf and mxk_sigmoidf
 * (kernels/mxk_numerics.h) over every FP32 argument, for docs/kernels.md.
 * Not part of `make check` (minutes); check_kernels_numerics checks the
 * SwiGLU arguments and random ones against MPFR in seconds.
 *
 * Reference: glibc's binary64 exp (error below 1 binary64 ulp, i.e. about
 * 2^-29 FP32 ulp: negligible here) and binary64 arithmetic for 1/(1+e^-x).
 * Reports the largest error in FP32 ulps where the exact result is a normal
 * FP32 number, and the largest absolute error where it is below 2^-126.
 *
 * usage: scan_sigmoid [STRIDE]   (every STRIDE-th bit pattern; default 1)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "mxk_numerics.h"

typedef struct {
    double ulp, abs;
    float ulp_at, abs_at;
    unsigned long n;
} stat;

static void account(stat *s, float x, float got, double want)
{
    if (isnan(want) || isinf(want))
        return;
    s->n++;
    double aw = fabs(want);
    if (aw >= 0x1p-126) {
        int e;
        frexp(aw, &e);
        double u = fabs((double)got - want) / ldexp(1.0, e - 24);
        if (u > s->ulp)
            s->ulp = u, s->ulp_at = x;
    } else {
        double a = fabs((double)got - want);
        if (a > s->abs)
            s->abs = a, s->abs_at = x;
    }
}

int main(int argc, char **argv)
{
    unsigned long stride = argc > 1 ? strtoul(argv[1], NULL, 0) : 1;
    stat se = {0}, ss = {0}, sg = {0};
    for (unsigned long u = 0; u < 0x100000000ul; u += stride) {
        float x = mxk_u2f((uint32_t)u);
        if (isnan(x))
            continue;
        double ex = exp((double)x);
        if (ex <= 0x1.fffffep127)
            account(&se, x, mxk_expf(x), ex);
        double sig = 1.0 / (1.0 + exp(-(double)x));
        account(&ss, x, mxk_sigmoidf(x), sig);
        if (x <= 1.702f * 7.0f) /* the range SwiGLU reaches: t <= 11.914 */
            account(&sg, x, mxk_sigmoidf(x), sig);
    }
    printf("exp:     %lu args, max %.4f ulp at %a (normal results), max abs "
           "%.3g at %a (below 2^-126)\n",
           se.n, se.ulp, se.ulp_at, se.abs, se.abs_at);
    printf("sigmoid: %lu args, max %.4f ulp at %a (normal results), max abs "
           "%.3g at %a (below 2^-126)\n",
           ss.n, ss.ulp, ss.ulp_at, ss.abs, ss.abs_at);
    printf("sigmoid, t <= 11.914: max %.4f ulp at %a\n", sg.ulp, sg.ulp_at);
    return 0;
}
