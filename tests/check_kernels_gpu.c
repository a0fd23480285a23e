/* check_kernels_gpu.c -- the GPU backend against the CPU backend, bit for
 * bit.
 *
 * Loads libmxk_gpu.so the way mxverify does (src/pipeline/backend_gpu.c: env
 * MXVERIFY_GPU_LIB, the build tree, pkglibdir).  Without a library or a
 * device it prints why and exits 77 (skipped, never passed); a library
 * that does not load or cannot run on the device present fails.  Otherwise it
 * runs every kernel on seeded random inputs -- the standard shapes of
 * tests/kcase.c with every planted bug of the kernel, and MiniMax-M3-sized
 * shapes (TP8 GEMM1/GEMM2 at 64 tokens) without bugs -- on both backends,
 * and requires the same status and the same output bytes.
 *
 * GEMMs on AMD matrix cores (gemm_exact = 0): the portable path
 * (MXK_PATH_PORTABLE) must still be bit-identical; the MFMA path adds its
 * products in an undocumented order (facts §4), so it is held to
 *   |gpu - cpu| <= 2 BF16 ulps of max(|gpu|, |cpu|) + 4 m u |A||B|
 * with u = 2^-24, |A||B| the same GEMM on |a| and |b| (CPU), and m the
 * number of terms two summation orders can disagree on: 32 + K/32 for
 * MXFP8 (one 32-term dot per group, then the group sums), K + 16 for BF16.
 * Each order is within m u |A||B| of the exact sum (the standard bound for
 * recursive summation, doubled for a hardware that truncates while
 * aligning); a wrong operand layout moves elements by about |result|,
 * far more.
 *
 * usage: check_kernels_gpu [--small] [--tolerance] [--only K1,K2] [SEEDS]
 *   SEEDS: seeds per standard shape (default 3); --small: no large shapes
 *   (for the host-thread emulation in make check, tests/kernels_emu.test);
 *   --tolerance: judge the AUTO-path GEMMs by the matrix-core tolerance
 *   even on an exact backend (to exercise that check); --only: these
 *   kernels only (names as in mxk_kernel_name).
 * Prints one line per case: kernel and shape, bug, result, GPU and CPU
 * times.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend_gpu.h"
#include "kcase.h"
#include "mxk_numerics.h"

static const mxk_ops *cpu, *gpu;
static int failures, cases;
static int force_tol; /* --tolerance: judge GEMMs as on matrix cores */
static unsigned only = ~0u; /* --only: kernel bits to run */

/* MiniMax-M3 shapes: H = 6144, I = 3072, top-4; TP8 GEMM1 N = 768,
 * K = 6144; GEMM2 N = 6144, K = 384; 16 experts (an EP8 shard's count:
 * all 128 would need 0.6 GB of FP8 and 1.2 GB of BF16 weights per GEMM). */
static const kc_shape big[] = {
    {.kernel = MXK_K_MX_QUANT, .rows = 64, .k = 6144, .fmt = MXK_FP8_E4M3FNUZ},
    {.kernel = MXK_K_FN_TO_FNUZ, .experts = 2, .n = 768, .k = 6144, .packed = 1},
    {.kernel = MXK_K_MOE_ALIGN, .tokens = 1024, .topk = 4, .experts = 128,
     .block_m = 64},
    {.kernel = MXK_K_MOE_ALIGN, .tokens = 9, .topk = 4, .experts = 128,
     .block_m = 16, .ep = 1},
    {.kernel = MXK_K_MXFP8_GEMM, .tokens = 64, .topk = 4, .experts = 16,
     .block_m = 16, .n = 768, .k = 6144, .fmt = MXK_FP8_E4M3FNUZ, .packed = 1},
    {.kernel = MXK_K_MXFP8_GEMM, .tokens = 64, .topk = 4, .experts = 16,
     .block_m = 16, .n = 6144, .k = 384, .gemm2 = 1, .fmt = MXK_FP8_E4M3FNUZ,
     .packed = 1, .weights = 1},
    {.kernel = MXK_K_BF16_GEMM, .tokens = 8, .topk = 4, .experts = 16,
     .block_m = 16, .n = 768, .k = 6144},
    {.kernel = MXK_K_BF16_GEMM, .tokens = 8, .topk = 4, .experts = 16,
     .block_m = 16, .n = 6144, .k = 384, .gemm2 = 1, .weights = 1, .ep = 1},
    {.kernel = MXK_K_SWIGLU_QUANT, .rows = 256, .k = 384,
     .fmt = MXK_FP8_E4M3FNUZ},
    {.kernel = MXK_K_MOE_SUM, .tokens = 64, .topk = 4, .n = 6144},
};

static float bf(uint16_t h) { return mxk_bf16_to_f32(h); }

/* One BF16 ulp at the magnitude of x (finite). */
static double bf16_ulp(double x)
{
    int e;
    frexp(fabs(x) > 0x1p-126 ? fabs(x) : 0x1p-126, &e);
    return ldexp(1.0, e - 8);
}

/* The case's GEMM on |a| and |b| (CPU backend), for the MFMA tolerance. */
static uint16_t *abs_gemm(kc_case *c)
{
    const kc_shape *s = kc_shape_of(c);
    size_t nout = (size_t)s->tokens * s->topk * s->n;
    uint16_t *out = malloc(2 * nout);
    if (!out)
        return NULL;
    if (s->kernel == MXK_K_MXFP8_GEMM) {
        mxk_mxfp8_gemm_args a = *kc_mxfp8(c);
        size_t arows = (size_t)s->tokens * (s->gemm2 ? s->topk : 1);
        size_t na = arows * a.k, nb = (size_t)a.experts * a.n * a.k;
        uint8_t *aa = malloc(na), *bb = malloc(nb);
        for (size_t i = 0; i < na; i++)
            aa[i] = a.a[i] & 0x7f;
        for (size_t i = 0; i < nb; i++)
            bb[i] = a.b[i] & 0x7f;
        a.a = aa, a.b = bb, a.out = out, a.mutant = 0;
        a.path = MXK_PATH_PORTABLE;
        cpu->mxfp8_group_gemm(&a, NULL);
        free(aa);
        free(bb);
    } else {
        mxk_bf16_gemm_args a = *kc_bf16_args(c);
        size_t arows = (size_t)s->tokens * (s->gemm2 ? s->topk : 1);
        size_t na = arows * a.k, nb = (size_t)a.experts * a.n * a.k;
        uint16_t *aa = malloc(2 * na), *bb = malloc(2 * nb);
        for (size_t i = 0; i < na; i++)
            aa[i] = a.a[i] & 0x7fff;
        for (size_t i = 0; i < nb; i++)
            bb[i] = a.b[i] & 0x7fff;
        a.a = aa, a.b = bb, a.out = out, a.mutant = 0;
        a.path = MXK_PATH_PORTABLE;
        cpu->bf16_group_gemm(&a, NULL);
        free(aa);
        free(bb);
    }
    return out;
}

/* MFMA path: element-wise tolerance against the CPU output (snap).  Under
 * the planted bug that rounds the running accumulator to BF16 after every
 * K group, the two accumulators (matrix-core and FP32-sequential partials)
 * may round to neighbouring BF16 values at each of the G = K/32 steps:
 * |r(x) - r(y)| <= |x - y| + ulp, so the difference grows by at most one
 * BF16 ulp of the running sum per group, and the running sum is bounded by
 * the GEMM on |a|, |b| (one more binade for its own BF16 rounding). */
static const char *mfma_close(kc_case *c, const uint8_t *snap, int mutant)
{
    static char msg[200];
    kc_out o = kc_outputs(c);
    const uint16_t *g = o.p[0], *w = (const uint16_t *)snap;
    uint16_t *ab = abs_gemm(c);
    size_t n = o.len[0] / 2;
    const kc_shape *s = kc_shape_of(c);
    double m = s->kernel == MXK_K_MXFP8_GEMM ? 32 + s->k / 32 : s->k + 16;
    const mxk_mutant_info *mi = mxk_mutant_by_id(mutant);
    int bf16_acc = mi && !strcmp(mi->name, "bf16-acc-between-groups");
    msg[0] = 0;
    for (size_t i = 0; ab && i < n; i++) {
        double gv = bf(g[i]), cv = bf(w[i]);
        if (isnan(gv) && isnan(cv))
            continue;
        double tol = 2 * bf16_ulp(fmax(fabs(gv), fabs(cv))) +
                     4 * m * ldexp(fabs(bf(ab[i])), -24);
        if (bf16_acc)
            tol += (s->k / 32) * 2 * bf16_ulp(bf(ab[i]));
        if (!(fabs(gv - cv) <= tol)) {
            snprintf(msg, sizeof msg, "out[%zu] = %a, cpu %a, tolerance %a", i,
                     gv, cv, tol);
            break;
        }
    }
    free(ab);
    return ab ? msg : "out of memory";
}

static void run_case(const kc_shape *shape, uint64_t seed, int mutant)
{
    if (!(shape->kernel & only))
        return;
    char desc[256];
    kc_describe(shape, desc, sizeof desc);
    kc_case *c = kc_new(shape, seed);
    if (!c) {
        printf("FAIL %s: cannot make the case\n", desc);
        failures++;
        return;
    }
    const mxk_mutant_info *mi = mxk_mutant_by_id(mutant);
    double tc = 0, tg = 0;
    mxk_status sc = kc_run(cpu, c, mutant, &tc);
    uint8_t *snap = kc_snapshot(c, NULL);
    mxk_status sg = kc_run(gpu, c, mutant, &tg);
    int gemm = shape->kernel & (MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM);
    int exact = !gemm || shape->path == MXK_PATH_PORTABLE ||
                (gpu->gemm_exact && !force_tol);
    const char *diff = !snap ? "out of memory"
                       : exact ? kc_first_diff(c, snap)
                               : mfma_close(c, snap, mutant);
    cases++;
    int ok = sc == sg && !*diff;
    if (!ok)
        failures++;
    printf("%-4s %-70s seed=%llu %-22s %s gpu %.3f ms cpu %.1f ms", ok ? "ok" : "FAIL",
           desc, (unsigned long long)seed, mi ? mi->name : "-",
           exact ? "bit-identical" : "within-mfma-tol", tg, tc);
    if (sc != sg)
        printf(" | status cpu %d gpu %d (%s)", sc, sg, gpu->last_error());
    else if (*diff)
        printf(" | %s", diff);
    printf("\n");
    free(snap);
    kc_free(c);
}

/* The case with every bug of its kernel (and none). */
static void run_with_mutants(const kc_shape *s, uint64_t seed)
{
    int nm;
    const mxk_mutant_info *t = mxk_mutant_table(&nm);
    run_case(s, seed, 0);
    for (int m = 0; m < nm; m++)
        if (t[m].kernels & s->kernel)
            run_case(s, seed, t[m].id);
}

int main(int argc, char **argv)
{
    char why[1024];
    int seeds = 3, small = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--small"))
            small = 1;
        else if (!strcmp(argv[i], "--tolerance"))
            force_tol = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = 0;
            for (char *k = strtok(argv[++i], ","); k; k = strtok(NULL, ","))
                for (unsigned b = 1; b < 1u << MXK_NKERNELS; b <<= 1)
                    if (!strcmp(mxk_kernel_name(b), k))
                        only |= b;
            if (!only) {
                fprintf(stderr, "check_kernels_gpu: --only: no known kernel\n");
                return 2;
            }
        }
        else if ((seeds = atoi(argv[i])) < 1) {
            fprintf(stderr,
                    "usage: check_kernels_gpu [--small] [--tolerance] "
                    "[--only K1,K2] [SEEDS]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    mxv_gpu_state state;
    gpu = mxv_gpu_backend(why, sizeof why, &state);
    if (!gpu && state != MXV_GPU_BROKEN) {
        printf("SKIP: %s\n", why);
        return 77;
    }
    if (!gpu) {
        printf("FAIL: %s\n", why);
        return 1;
    }
    cpu = mxk_cpu_ops();
    printf("GPU backend: %s (library %s); GEMMs on %s\n", gpu->device,
           mxv_gpu_backend_path(),
           gpu->gemm_exact ? "the portable path" : "matrix cores");
    int n;
    const kc_shape *sh = kc_standard_shapes(&n);
    for (int i = 0; i < n; i++)
        for (int seed = 1; seed <= seeds; seed++) {
            run_with_mutants(&sh[i], (uint64_t)seed);
            if (!gpu->gemm_exact &&
                (sh[i].kernel & (MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM))) {
                kc_shape p = sh[i];
                p.path = MXK_PATH_PORTABLE;
                run_with_mutants(&p, (uint64_t)seed);
            }
        }
    for (size_t i = 0; !small && i < sizeof big / sizeof big[0]; i++) {
        run_case(&big[i], 1, 0);
        if (!gpu->gemm_exact &&
            (big[i].kernel & (MXK_K_MXFP8_GEMM | MXK_K_BF16_GEMM))) {
            kc_shape p = big[i];
            p.path = MXK_PATH_PORTABLE;
            run_case(&p, 1, 0);
        }
    }
    printf("%d cases, %d failed\n", cases, failures);
    return failures ? 1 : 0;
}
