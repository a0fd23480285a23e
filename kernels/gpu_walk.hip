/* gpu_walk.hip -- a block:NAME model's walk on the device (--reference
 * gpu): reference/blockfma_gemm.c's group_tile, one output element per
 * thread instead of 16 lanes per loop, for scaled 8-bit operands with K a
 * multiple of 32 (mxref/blockwalk.h has the call).
 *
 * Why the same bits.  Every operation of the walk is a binary64 add,
 * multiply or compare, a conversion binary64 -> int32 of a value below
 * 2^31 in magnitude (truncation, as C's cast), binary64 -> FP32 (round to
 * nearest even), FP32 adds and multiplies, or bit operations on the
 * patterns: IEEE 754 gives each one result, on the CPU and on a GPU, as
 * long as nothing is contracted into an FMA (the library is built with
 * -fmad=false / -ffp-contract=off) and nothing is flushed to zero (nvcc's
 * default; HIP's too).  The statements below are group_tile's, lane
 * variables turned into scalars, in the same order.  A group whose result
 * the walk cannot give (a result outside FP32's normal range, an early c
 * below it, a possible product overflow: the CPU's "bad" lanes) flags the
 * element, and the host walks that element again on the CPU.
 *
 * Each thread copies its 32 codes of B for the group into shared memory
 * (two 128-bit loads for 8-bit codes, four for 16-bit ones; stored at a
 * stride of the block's width, so the passes read them without bank
 * conflicts), and the passes read them from there.
 *
 * Calls run on slots (mxk_gpu.h: streams with their own grow-only arenas,
 * so several overlap).  Any runtime failure returns nonzero and the host
 * walks the call itself.
 */
#include <mutex>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "mxk_gpu.h"
#include "../reference/mxref/blockwalk.h" /* plain C: the call, shared with the reference */

#define WK_T 64 /* threads per block: consecutive columns of one row */
#define WK_FLT_MAX 0x1.fffffep127
#define WK_FLT_MAX_BITS 0x47efffffe0000000ull

struct walk_k { /* the call's constants, by value */
    int mode, odd_even, c_fadd, cutoff, prod_ovf, nblk, inorder, chain, xs;
    uint64_t mask;
    double twoF, twomF, cut_pw2, two_late, mtwo_late, infl;
    double ea, late, fin, eta, lin_g, lin_c, sabs_infl;
    unsigned char idx[64], start[65];
};

__device__ static inline uint64_t wk_d2u(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

__device__ static inline double wk_u2d(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

__device__ static inline double wk_inf(void) { return wk_u2d(0x7ff0000000000000ull); }

/* mxb_up: the next binary64 up (0 -> the least subnormal; inf, NaN stay) */
__device__ static inline double up_d(double x)
{
    uint64_t u = wk_d2u(x);
    double y = wk_u2d(x > 0 ? u + 1 : u - 1);
    y = x < wk_inf() ? y : x;
    return x == 0 ? 0x1p-1074 : y;
}

__device__ static inline double recip_d(double x)
{
    return wk_u2d(0x7fe0000000000000ull - wk_d2u(x));
}

__device__ static inline double floor_d(double x)
{
    double m = x < 0 ? -0x1p52 : 0x1p52;
    double r = (x + m) - m;
    r = fabs(x) < 0x1p52 ? r : x;
    return r > x ? r - 1.0 : r;
}

__device__ static inline double add_up_d(double a, double b) { return up_d(a + b); }
__device__ static inline double mul_up_d(double a, double b) { return up_d(a * b); }
__device__ static inline double max2_d(double a, double b) { return a > b ? a : b; }

__device__ static inline double block_err_d(const walk_k &w, double nz, double wmax,
                                            double s, double dabs)
{
    double W = max2_d(max2_d(wmax, dabs), 0x1p-126);
    double eA = mul_up_d(mul_up_d(add_up_d(nz, 2.0), w.ea), W);
    double base = add_up_d(dabs, s);
    double eL = mul_up_d(w.late, base);
    double S1 = add_up_d(add_up_d(base, eA), eL);
    return add_up_d(add_up_d(add_up_d(eA, eL), mul_up_d(w.fin, S1)), w.eta);
}

/* 16 bytes, for one 128-bit load of a thread's codes */
struct alignas(16) wk_q {
    uint32_t w[4];
};

/* CT: the codes' type, uint8_t (scaled operands, the decode tables in
 * shared memory) or uint16_t (an unscaled chain, the tables of 65536
 * codes read from global memory) */
template <typename CT>
__global__ void block_walk_kernel(walk_k w, const CT *a, const CT *b,
                                  const double *dec_a, const double *dec_b,
                                  const double *sa, const double *sb, const float *fa,
                                  const float *fb, const float *rw, float *macc,
                                  double *sum_b, double *sum_p, unsigned char *flag_out,
                                  int M, int N, int K)
{
    __shared__ double sta[3 * 256], stb[3 * 256];
    /* this thread's 32 codes of B in the current group, at stride WK_T
     * (element i of thread t at [i WK_T + t]): read from global memory
     * with 128-bit loads once per group, then by every pass from here --
     * consecutive threads read consecutive bytes, one bank, where the
     * threads' byte loads from their own rows of B (K bytes apart) each
     * touched 32 cache lines per warp, twice per product (three
     * times where sum |ab| has its own pass) */
    __shared__ CT sbc[32 * WK_T];
    const double *ta = dec_a, *tb = dec_b;
    if (sizeof(CT) == 1) {
        for (int i = threadIdx.x; i < 3 * 256; i += blockDim.x) {
            sta[i] = dec_a[i];
            stb[i] = dec_b[i];
        }
        ta = sta;
        tb = stb;
    }
    __syncthreads();
    int m = blockIdx.y, n = blockIdx.x * WK_T + threadIdx.x;
    if (m >= M || n >= N)
        return;
    int G = K / 32;
    const CT *ar = a + (size_t)m * K, *br = b + (size_t)n * K;
    float acc = 0.0f;
    double sbm = 0.0, spm = 0.0;
    int64_t eflag = 0;
    /* the chain's state from group to group: c, the bound walk's P and D,
     * the sum |ab| so far (scaled operands: every group from 0) */
    double cin = 0.0, cP = 0.0, cD = 0.0, csa = 0.0;
    CT *bg = sbc + threadIdx.x; /* element i at bg[i * WK_T] */
    for (int g = 0; g < G; g++) {
        const CT *ag = ar + 32 * g;
        {
            /* br is 16-byte aligned (the launcher checks the base; rows and
             * groups are multiples of 32 codes) */
            const wk_q *src = (const wk_q *)(br + 32 * g);
            for (int q = 0; q < (int)(32 * sizeof(CT) / 16); q++) {
                wk_q u = src[q];
                CT c16[16 / sizeof(CT)];
                memcpy(c16, &u, sizeof u);
                for (int e = 0; e < (int)(16 / sizeof(CT)); e++)
                    bg[(q * (int)(16 / sizeof(CT)) + e) * WK_T] = c16[e];
            }
        }
        if (!w.chain)
            cin = cP = cD = csa = 0.0;
        double cf = fabs(cin) <= WK_FLT_MAX ? cin : 0.0;
        double d = w.c_fadd ? 0.0 : cf;
        double Pi = w.c_fadd ? 0.0 : cP;
        double Di = w.c_fadd ? 0.0 : cD;
        double sa_ = csa, sinst = 0.0;
        int64_t flag = (int64_t)!(fabs(cin) <= WK_FLT_MAX);
        for (int bk = 0; bk < w.nblk; bk++) {
            const unsigned char *ix = w.idx + w.start[bk];
            int cnt = w.start[bk + 1] - w.start[bk];
            double W, W1, cv, S, S1, inv, inv1, v;
            double nz, wm, s;
            {
                double cr = wk_u2d(wk_d2u(d) & 0x7ff0000000000000ull);
                cr = d == 0 ? 0.0 : cr > 0x1p-126 ? cr : 0x1p-126;
                cv = d;
                W = w.mode == MX_WALK_EARLY ? cr : 0.0;
                W1 = 0.0;
                flag |= (int64_t)((w.mode == MX_WALK_EARLY) & (d != 0) & (d < 0x1p-126) &
                                  (d > -0x1p-126));
                nz = wm = s = 0.0;
            }
            for (int j = 0; j < cnt; j++) {
                int i = ix[j];
                int ca = ag[i], cb = bg[i * WK_T];
                double pa = ta[3 * ca + 2], aa = ta[3 * ca + 1];
                double rp = pa * tb[3 * cb + 2], t = aa * tb[3 * cb + 1];
                double r = max2_d(t, rp);
                uint64_t on = t > 0;
                if (w.odd_even && (j & 1))
                    W1 = rp > W1 ? rp : W1;
                else
                    W = rp > W ? rp : W;
                nz += t > 0 ? 1.0 : 0.0;
                wm = max2_d(wm, r);
                s = w.xs ? s + r : wk_u2d(wk_d2u(s + r) + on);
                sa_ += w.inorder ? r : 0.0;
            }
            if (w.mode == MX_WALK_EXACT) {
                v = cv;
                for (int j = 0; j < cnt; j++) {
                    int i = ix[j];
                    v += ta[3 * ag[i]] * tb[3 * bg[i * WK_T]];
                }
            } else {
                double q = w.twoF * recip_d(W > 0 ? W : 1.0);
                double q1 = w.twoF * recip_d(W1 > 0 ? W1 : 1.0);
                inv = W > 0 ? q : 0.0;
                inv1 = W1 > 0 ? q1 : 0.0;
                S = (double)(int32_t)(w.mode == MX_WALK_EARLY ? cv * inv : 0.0);
                S1 = 0.0;
                for (int j = 0; j < cnt; j++) {
                    int i = ix[j];
                    double av = ta[3 * ag[i]], bv = tb[3 * bg[i * WK_T]];
                    if (w.odd_even && (j & 1))
                        S1 += (double)(int32_t)(av * bv * inv1);
                    else
                        S += (double)(int32_t)(av * bv * inv);
                }
                if (w.mode == MX_WALK_EARLY) {
                    v = S * (W * w.twomF);
                } else {
                    double Wb = W >= W1 ? W : W1;
                    double Ws = W >= W1 ? W1 : W;
                    double Sb = W >= W1 ? S : S1;
                    double Ss = W >= W1 ? S1 : S;
                    double rb = recip_d(Wb > 0 ? Wb : 1.0);
                    double ratio = Ws * rb;
                    double sum = Sb + floor_d(Ss * ratio);
                    double unit = Wb * w.twomF, ib = w.twoF * rb;
                    double c = cv;
                    double Wc = wk_u2d(wk_d2u(c) & 0x7ff0000000000000ull);
                    Wc = Wc > 0x1p-126 ? Wc : 0x1p-126;
                    int drop = (c == 0) | ((w.cutoff > 0) & (Wb > Wc * w.cut_pw2));
                    double cd = floor_d(c * ib);
                    double v_ge = (sum + (drop ? 0.0 : cd)) * unit;
                    double qc = w.two_late * recip_d(Wc);
                    double v_lt = (floor_d(sum * unit * qc) + c * qc) * (Wc * w.mtwo_late);
                    double vv = Wb >= Wc ? v_ge : v_lt;
                    v = Wb > 0 ? vv : c;
                }
            }
            {
                uint64_t mb = wk_d2u(fabs(v)) & w.mask;
                double mm = wk_u2d(mb);
                double f = (double)(float)wk_u2d(mb < WK_FLT_MAX_BITS ? mb : WK_FLT_MAX_BITS);
                flag |= (int64_t)(((mm != 0) & (mm < 0x1p-126)) | (mb > WK_FLT_MAX_BITS) |
                                  (w.prod_ovf & (wm >= 0x1p128)));
                d = v < 0 ? -f : f;
                double dabs = add_up_d(Pi, Di);
                Di = add_up_d(Di, block_err_d(w, nz, wm, s, dabs));
                Pi = add_up_d(Pi, s);
                sinst = add_up_d(sinst, s);
            }
        }
        float part;
        {
            float f = (float)d;
            float fs = (float)cin + f;
            double fab = fabs((double)fs);
            f = w.c_fadd ? fs : f;
            flag |= (int64_t)(w.c_fadd &
                              (((fab != 0) & (fab < 0x1p-126)) | (fab > WK_FLT_MAX)));
            part = f;
        }
        if (!w.inorder)
            for (int i = 0; i < 32; i++) {
                double t = ta[3 * ag[i] + 1] * tb[3 * bg[i * WK_T] + 1];
                double r = ta[3 * ag[i] + 2] * tb[3 * bg[i * WK_T] + 2];
                sa_ += t > r ? t : r;
            }
        if (w.c_fadd) {
            double sum = add_up_d(add_up_d(cP, cD), add_up_d(sinst, Di));
            double fadd = add_up_d(mul_up_d(0x1p-24, sum), 0x1p-150);
            Di = add_up_d(add_up_d(cD, Di), fadd);
            Pi = add_up_d(cP, sinst);
        }
        eflag |= flag;
        if (w.chain) { /* the accumulator is the chain's c */
            cin = (double)part;
            cP = Pi;
            cD = Di;
            csa = sa_;
            acc = part;
            continue;
        }
        {
            double Sg = sa_ * w.sabs_infl;
            double bdot = Di < wk_inf() ? Di : wk_inf();
            double lin = (w.lin_g * (0.0 + Sg) + w.lin_c) * w.infl;
            double bS = Sg < wk_inf() ? lin : wk_inf();
            double Bg = bdot < bS ? bdot : bS;
            double scd = sa[(size_t)m * G + g] * sb[(size_t)n * G + g];
            sbm += scd * Bg;
            spm += scd * (Sg + Bg);
        }
        float tt = part * (fa[(size_t)m * G + g] * fb[(size_t)n * G + g]);
        acc = acc + tt;
    }
    size_t o = (size_t)m * N + n;
    macc[o] = rw ? acc * rw[m] : acc;
    sum_b[o] = w.chain ? cD : sbm;
    sum_p[o] = w.chain ? csa : spm;
    flag_out[o] = eflag != 0;
}

namespace {
mxk_gpu_stats walk_stats("block walk");
mxk_gpu_slots walk_slots;
} // namespace

/* mx_walk_provider (mxref/blockwalk.h). */
extern "C" int mxk_gpu_block_walk(void *ctx, const mx_walk_call *c, float *macc,
                                  double *sum_b, double *sum_p, unsigned char *flag)
{
    (void)ctx;
    size_t M = c->M, N = c->N, K = c->K, G = K / 32;
    if (M == 0 || N == 0 || K == 0 || K % 32 || M > 65535 || N > 0x7fffffff ||
        K > 0x7fffffff || c->nblk < 0 || c->nblk > 64 || (c->chain != 0 && c->chain != 1))
        return -1;
    int chain = c->chain;
    size_t cb = chain ? 2 : 1, ntab = chain ? 3 * 65536 : 3 * 256; /* code bytes; table */
    walk_k w;
    memset(&w, 0, sizeof w);
    w.mode = c->mode;
    w.odd_even = c->odd_even;
    w.c_fadd = c->c_fadd;
    w.cutoff = c->cutoff;
    w.prod_ovf = c->prod_ovf;
    w.nblk = c->nblk;
    w.inorder = c->inorder;
    w.xs = c->xs;
    w.chain = chain;
    w.mask = c->mask;
    w.twoF = c->twoF;
    w.twomF = c->twomF;
    w.cut_pw2 = c->cut_pw2;
    w.two_late = c->two_late;
    w.mtwo_late = c->mtwo_late;
    w.infl = c->infl;
    w.ea = c->cf_ea;
    w.late = c->cf_late;
    w.fin = c->cf_fin;
    w.eta = c->cf_eta;
    w.lin_g = c->lin_g;
    w.lin_c = c->lin_c;
    w.sabs_infl = c->sabs_infl;
    memcpy(w.idx, c->idx, sizeof w.idx);
    memcpy(w.start, c->start, sizeof w.start);
    size_t MN = M * N;
    size_t ns = chain ? 0 : G; /* no scales when chained */
    /* up: codes of A and B, the decode tables, the scales (binary64 and
     * FP32), the row weights; down: macc, sum_b, sum_p, the flags */
    mxk_gpu_layout L;
    size_t oca = L.add(M * K * cb), ocb = L.add(N * K * cb);
    size_t oda = L.add(ntab * sizeof(double)), odb = L.add(ntab * sizeof(double));
    size_t osa = L.add(M * ns * sizeof(double)), osb = L.add(N * ns * sizeof(double));
    size_t ofa = L.add(M * ns * sizeof(float)), ofb = L.add(N * ns * sizeof(float));
    size_t orw = L.add(M * sizeof(float));
    L.uploads_done();
    size_t omc = L.add(MN * sizeof(float)), osum_b = L.add(MN * sizeof(double));
    size_t osum_p = L.add(MN * sizeof(double)), oflag = L.add(MN);
    long long t = walk_stats.now();
    mxk_gpu_slot *sl = walk_slots.take(L.end);
    walk_stats.lap(0, &t);
    if (!sl)
        return -1;
    if ((uintptr_t)(sl->dev + ocb) % 16 != 0) { /* the kernel's 128-bit loads of B */
        walk_slots.give(sl);
        return -1;
    }
    walk_stats.calls++;
    unsigned char *pin = sl->pin, *dev = sl->dev;
    memcpy(pin + oca, chain ? (const void *)c->a16 : (const void *)c->a, M * K * cb);
    memcpy(pin + ocb, chain ? (const void *)c->b16 : (const void *)c->b, N * K * cb);
    memcpy(pin + oda, c->dec_a, ntab * sizeof(double));
    memcpy(pin + odb, c->dec_b, ntab * sizeof(double));
    if (!chain) {
        memcpy(pin + osa, c->sa, M * G * sizeof(double));
        memcpy(pin + osb, c->sb, N * G * sizeof(double));
        memcpy(pin + ofa, c->fa, M * G * sizeof(float));
        memcpy(pin + ofb, c->fb, N * G * sizeof(float));
    }
    if (c->row_weight)
        memcpy(pin + orw, c->row_weight, M * sizeof(float));
    int rc = -1;
    if (hipMemcpyAsync(dev, pin, L.up, hipMemcpyHostToDevice, sl->stream) != hipSuccess)
        goto out;
    walk_stats.lap(1, &t);
    {
        dim3 grid(mxk_cdiv((int64_t)N, WK_T), (unsigned)M);
        dim3 block(WK_T);
        const double *dda = (const double *)(dev + oda), *ddb = (const double *)(dev + odb);
        const double *dsa = (const double *)(dev + osa), *dsb = (const double *)(dev + osb);
        const float *dfa = (const float *)(dev + ofa), *dfb = (const float *)(dev + ofb);
        const float *drw = c->row_weight ? (const float *)(dev + orw) : nullptr;
        float *dmacc = (float *)(dev + omc);
        double *dsum_b = (double *)(dev + osum_b), *dsum_p = (double *)(dev + osum_p);
        unsigned char *dflag = dev + oflag;
        if (chain)
            hipLaunchKernelGGL(block_walk_kernel<uint16_t>, grid, block, 0, sl->stream, w,
                               (const uint16_t *)(dev + oca), (const uint16_t *)(dev + ocb),
                               dda, ddb, dsa, dsb, dfa, dfb, drw, dmacc, dsum_b, dsum_p,
                               dflag, (int)M, (int)N, (int)K);
        else
            hipLaunchKernelGGL(block_walk_kernel<uint8_t>, grid, block, 0, sl->stream, w,
                               (const uint8_t *)(dev + oca), (const uint8_t *)(dev + ocb),
                               dda, ddb, dsa, dsb, dfa, dfb, drw, dmacc, dsum_b, dsum_p,
                               dflag, (int)M, (int)N, (int)K);
    }
    if (hipGetLastError() != hipSuccess)
        goto out;
    if (walk_stats.on && hipStreamSynchronize(sl->stream) != hipSuccess)
        goto out;
    walk_stats.lap(2, &t);
    if (hipMemcpyAsync(pin + L.up, dev + L.up, L.end - L.up, hipMemcpyDeviceToHost,
                       sl->stream) != hipSuccess ||
        hipStreamSynchronize(sl->stream) != hipSuccess)
        goto out;
    memcpy(macc, pin + omc, MN * sizeof(float));
    memcpy(sum_b, pin + osum_b, MN * sizeof(double));
    memcpy(sum_p, pin + osum_p, MN * sizeof(double));
    memcpy(flag, pin + oflag, MN);
    rc = 0;
out:
    walk_slots.give(sl);
    walk_stats.lap(3, &t);
    return rc;
}
