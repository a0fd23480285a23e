/* gemm_fused.c -- the fused exact kernel for FP8 group GEMMs (E4M3FN and
 * E4M3FNUZ operands): exact values, the fp32-group model and the sums the
 * bounds need, in one pass over the weight bytes.
 *
 * Why it is exact.  Every E4M3 value is an integer multiple of the format's
 * smallest subnormal 2^u below 2^(u+18), so with I = value / 2^u the
 * product of two codes is an integer below 2^36 and a 32-wide group dot an
 * integer below 2^41: binary64 holds every product and every partial sum
 * exactly, in any order, whatever the vector width or the use of FMA.  The
 * group partial P is then added, shifted by the two scale exponents, into a
 * 128-bit fixed-point accumulator whose unit is the lowest scaled unit of
 * the element's two rows (GMP when the rows' scale spread does not fit 126
 * bits: the "slow" elements), and rounded once at the end.
 *
 * How it is fast.  The activation rows (the small M of a routed GEMM) are
 * decoded once into binary64 integers.  The weights are read as bytes, 8
 * rows (output columns) at a time: for each 32-wide group the 8 rows'
 * codes are looked up into a small transposed tile that stays in L1, and
 * four activation rows at a time run their dots against it with the
 * tile's vectors loaded once.  In the same pass each group's P feeds the
 * fp32-group model (RN32(P 2^(2u)) times the FP32 scale product, added to
 * the FP32 accumulator in group order) and each group's sum |a b| (the
 * same dot on magnitudes) feeds the bound: the very operations, in the
 * very order, of the engine in gemm.c, so every output is bit-identical to
 * it (tests/check_gemm.c compares the two and both with the MPFR oracle).
 * The cross-group sum runs in int64 vectors when the rows' scale spreads
 * leave room (every partial sum then fits: see bits64), else in 128 bits.
 * No BLAS call, no operand copy of the weights.
 *
 * (Over 600 lines on purpose: the FP8 kernel and the 16-bit one below share
 * the static hot tile helpers -- tile_dots, tile_abs, tile_sabs, pow2i --
 * which must inline into both inner loops; one file keeps them static.)
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "mxref/pool.h"
#include "gemm_internal.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FUSED_HOT __attribute__((optimize("O3"), target_clones("avx512f", "avx2", "default")))
/* the exact dots alone may contract a * b + c to an FMA (same bits: every
 * product and partial sum is an exact integer); the model steps may not */
#define FUSED_DOTS8 __attribute__((optimize("O3", "fp-contract=fast"), target("avx512f")))
#define FUSED_DOTS4 __attribute__((optimize("O3", "fp-contract=fast")))
#define FUSED_FMA __attribute__((target("avx2,fma")))
/* which tile_dots body this processor runs: 2 AVX-512 (3: and the tile
 * lookup of tile_decode_vbmi), 1 AVX2 + FMA, 0 the baseline */
#define DOTS_KIND()                                                            \
    (__builtin_cpu_supports("avx512f")                                         \
         ? (__builtin_cpu_supports("avx512bw") &&                              \
                    __builtin_cpu_supports("avx512vbmi")                       \
                ? 3                                                            \
                : 2)                                                           \
         : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0)
#define HAVE_DECODE_VBMI 1
/* tile_steps8, the steps of a tile row in one AVX-512 vector */
#define HAVE_STEPS8 1
/* ftile_round8, the vector rounding of a tile row's int64 sums */
#define HAVE_ROUND_DQ 1
/* the AVX2 body's tile vectors loaded once per k into registers: without
 * this GCC folds each load into every FMA that uses it, one load per
 * activation row (a load-bound loop on two load ports) */
#define PIN_REGS(x, y) __asm__("" : "+x"(x), "+x"(y))
#else
#define FUSED_HOT
#define FUSED_DOTS8
#define FUSED_DOTS4
#define FUSED_FMA
#define DOTS_KIND() 0
#define PIN_REGS(x, y) ((void)0)
#endif
static int dots_kind; /* DOTS_KIND(), set once in ftabs_init */
#ifdef HAVE_ROUND_DQ
static int has_dq; /* AVX-512 DQ (64-bit integer to binary64, in vectors) */
#endif

/* Per-code facts of an 8-bit format with a fixed unit. */
typedef struct {
    int ok;              /* every finite value on the grid 2^unit, < 2^24 of it */
    int unit, top;       /* values are multiples of 2^unit, below 2^top         */
    double val[256];     /* value / 2^unit (0 for zero, NaN and inf codes)       */
    double aval[256];    /* |val|                                               */
    double mag[256];     /* |value| (unscaled), for the rows' amax              */
    unsigned char nz[256], bad[256];
    /* tile_decode_vbmi's tables: bytes 6 and 7 of val[c]'s binary64
     * pattern; vb_ok: its other six bytes are zero for every code (values
     * of at most 4 significant bits, as E4M3's and E5M2's are) */
    unsigned char vb[2][256];
    int vb_ok;
} ftab;

static ftab ftabs[MX_FORMAT_COUNT];
/* 2^e for |e| <= 1100, by table (exact; no libm in the loops) */
static double pow2_tab[2201];
static inline double pow2i(int e) { return pow2_tab[e + 1100]; }
/* FP32 scale per byte, per decode */
static float scale_tab[2][256];
static pthread_once_t ftabs_once = PTHREAD_ONCE_INIT;
#ifdef HAVE_DECODE_VBMI
static unsigned char vbmi_x[2][64], vbmi_t[2][64];
#endif

static void ftabs_init(void)
{
    dots_kind = DOTS_KIND();
#ifdef HAVE_ROUND_DQ
    has_dq = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#endif
#ifdef HAVE_DECODE_VBMI
    /* tile_decode_vbmi's transposition: rows 0-3 (and 4-7) side by side,
     * 32 codes each, to 16 k of 4 rows (r: which 16); then the two halves
     * merged to 8 k of 8 rows (h: which 8 of the 16) */
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 64; j++)
            vbmi_x[r][j] = (unsigned char)((j % 4) * 32 + 16 * r + j / 4);
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 64; i++) {
            int kl = 8 * h + i / 8, l = i % 8;
            vbmi_t[h][i] = (unsigned char)(l < 4 ? kl * 4 + l : 64 + kl * 4 + (l - 4));
        }
#endif
    for (int e = -1100; e <= 1100; e++)
        pow2_tab[e + 1100] = ldexp(1.0, e);
    for (int b = 0; b < 256; b++) {
        scale_tab[MX_E8M0_PRODUCTION][b] = (float)mx_scale_value(MX_E8M0_PRODUCTION, (uint8_t)b);
        scale_tab[MX_E8M0_SPEC][b] = (float)mx_scale_value(MX_E8M0_SPEC, (uint8_t)b);
    }
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        ftab *t = &ftabs[id];
        if (f->bits != 8 || !f->is_signed)
            continue;
        int lo = INT_MAX, hi = INT_MIN;
        int32_t m[256];
        int e[256];
        for (int c = 0; c < 256; c++) {
            mx_class k = mx_decode_int(f, (uint32_t)c, &m[c], &e[c]);
            t->bad[c] = k == MX_CLASS_NAN || k == MX_CLASS_INF;
            t->nz[c] = m[c] != 0;
            if (!m[c] || t->bad[c])
                continue;
            int bl = 32 - __builtin_clz((uint32_t)abs(m[c]));
            lo = e[c] < lo ? e[c] : lo;
            hi = e[c] + bl > hi ? e[c] + bl : hi;
        }
        t->unit = lo;
        t->top = hi;
        t->ok = hi - lo <= 24;
        for (int c = 0; c < 256; c++) {
            /* row_facts reads a group's facts from its largest low-7-bit
             * pattern: |value| must not decrease with it, NaN and inf codes
             * must come last in that order (sign ignored) or be 0x80, and
             * both signs of a pattern must agree on being a NaN or inf */
            int lo7 = c & 0x7F;
            if (c != 0x80 && t->bad[c] != t->bad[lo7])
                t->ok = 0;
            if (lo7 && !t->bad[lo7] && !t->bad[lo7 - 1] &&
                ldexp(fabs((double)m[lo7]), e[lo7]) < ldexp(fabs((double)m[lo7 - 1]), e[lo7 - 1]))
                t->ok = 0;
            if (lo7 && t->bad[lo7 - 1] && !t->bad[lo7])
                t->ok = 0;
            if (!t->bad[lo7] && t->nz[lo7] != (lo7 != 0))
                t->ok = 0;
        }
        for (int c = 0; c < 256; c++) {
            t->val[c] = m[c] && !t->bad[c] ? ldexp((double)m[c], e[c] - lo) : 0.0;
            t->aval[c] = fabs(t->val[c]);
            t->mag[c] = m[c] && !t->bad[c] ? ldexp(fabs((double)m[c]), e[c]) : 0.0;
        }
        t->vb_ok = t->ok;
        for (int c = 0; c < 256; c++) {
            uint64_t bits;
            memcpy(&bits, &t->val[c], sizeof bits);
            t->vb_ok &= (bits & 0x0000FFFFFFFFFFFFull) == 0;
            t->vb[0][c] = (unsigned char)(bits >> 48);
            t->vb[1][c] = (unsigned char)(bits >> 56);
        }
    }
}

const float *mxg_scale_table(mx_e8m0_decode d)
{
    pthread_once(&ftabs_once, ftabs_init);
    return scale_tab[d];
}

static _Atomic int fused_on = 1;
static _Atomic unsigned long fused_calls;

void mxg_fused_enable(int on) { fused_on = on; }
unsigned long mxg_fused_count(void) { return fused_calls; }

int mxg_fused_dots(int kind)
{
    pthread_once(&ftabs_once, ftabs_init);
    int best = DOTS_KIND();
    if (kind < 0)
        return best;
    dots_kind = kind < best ? kind : best;
    return dots_kind;
}

int mxg_fused_applies(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B)
{
    if (!fused_on || A->fmt->bits != 8 || B->fmt->bits != 8 || !A->fmt->is_signed ||
        !B->fmt->is_signed || !A->scales != !B->scales)
        return 0;
    if (s->model.kind == MX_ACC_FP32_SEQ || s->model.kind == MX_ACC_DEQUANT_FP32)
        return 0; /* the engine's sequential models stay there */
    pthread_once(&ftabs_once, ftabs_init);
    return ftabs[A->fmt->id].ok && ftabs[B->fmt->id].ok;
}

#define NT 8 /* output columns per tile: two vectors of 4 */

typedef double v4d __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64), aligned(64)));
typedef long long v4i __attribute__((vector_size(32)));

/* P[m][0..7] = sum_k a[m][k] bt[k][0..7] over one group, and the same on
 * magnitudes into Q when aa is not NULL.  Exact in any order (see the
 * top).  Two bodies, chosen once per process (tile_dots below): one
 * 8-lane vector per k in a zmm register with AVX-512 (or, slowly, on the
 * baseline instruction set), or two 4-lane halves in ymm registers with
 * AVX2 -- an 8-lane vector type compiled for AVX2 lives in memory, not in
 * registers, and runs several times slower. */

/* AVX-512: four activation rows at a time; each vector of the tile,
 * loaded once, serves eight accumulators (P and Q of four rows) held in
 * registers. */
static inline __attribute__((always_inline)) FUSED_DOTS4 void
dots8_body(size_t M, const double *ad, const double *aa, size_t lda, const v4d *bt4,
           const v4d *bta4, v4d *P4, v4d *Q4)
{
    const v8d *bt = (const v8d *)bt4, *bta = (const v8d *)bta4;
    v8d *P = (v8d *)P4, *Q = (v8d *)Q4;
    size_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const double *a0 = ad + m * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        v8d p0 = {0}, p1 = p0, p2 = p0, p3 = p0;
        if (!aa) {
            for (int k = 0; k < MX_BLOCK; k++) {
                v8d b = bt[k];
                p0 += a0[k] * b;
                p1 += a1[k] * b;
                p2 += a2[k] * b;
                p3 += a3[k] * b;
            }
        } else {
            const double *b0 = aa + m * lda, *b1 = b0 + lda, *b2 = b1 + lda, *b3 = b2 + lda;
            v8d q0 = {0}, q1 = q0, q2 = q0, q3 = q0;
            for (int k = 0; k < MX_BLOCK; k++) {
                v8d b = bt[k], c = bta[k];
                p0 += a0[k] * b;
                p1 += a1[k] * b;
                p2 += a2[k] * b;
                p3 += a3[k] * b;
                q0 += b0[k] * c;
                q1 += b1[k] * c;
                q2 += b2[k] * c;
                q3 += b3[k] * c;
            }
            Q[m] = q0;
            Q[m + 1] = q1;
            Q[m + 2] = q2;
            Q[m + 3] = q3;
        }
        P[m] = p0;
        P[m + 1] = p1;
        P[m + 2] = p2;
        P[m + 3] = p3;
    }
    for (; m < M; m++) {
        const double *a = ad + m * lda;
        v8d p0 = {0}, p1 = p0, p2 = p0, p3 = p0;
        for (int k = 0; k < MX_BLOCK; k += 4) {
            p0 += a[k] * bt[k];
            p1 += a[k + 1] * bt[k + 1];
            p2 += a[k + 2] * bt[k + 2];
            p3 += a[k + 3] * bt[k + 3];
        }
        P[m] = (p0 + p1) + (p2 + p3);
        if (!aa)
            continue;
        const double *b = aa + m * lda;
        v8d q0 = {0}, q1 = q0, q2 = q0, q3 = q0;
        for (int k = 0; k < MX_BLOCK; k += 4) {
            q0 += b[k] * bta[k];
            q1 += b[k + 1] * bta[k + 1];
            q2 += b[k + 2] * bta[k + 2];
            q3 += b[k + 3] * bta[k + 3];
        }
        Q[m] = (q0 + q1) + (q2 + q3);
    }
}

/* Sixteen 4-lane registers (AVX2): without magnitudes four rows at a time
 * (eight accumulators: both halves of four rows), with them two rows at a
 * time (eight accumulators: P and Q, both halves, of two rows), so that
 * accumulators, tile vectors and broadcasts all stay in registers. */
static FUSED_DOTS4 FUSED_FMA void tile_dots4(size_t M, const double *ad, const double *aa,
                                             size_t lda, const v4d *bt, const v4d *bta,
                                             v4d *P, v4d *Q)
{
    size_t m = 0;
    if (!aa) {
        for (; m + 4 <= M; m += 4) {
            const double *a0 = ad + m * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            v4d p0l = {0}, p0h = p0l, p1l = p0l, p1h = p0l;
            v4d p2l = p0l, p2h = p0l, p3l = p0l, p3h = p0l;
            for (int k = 0; k < MX_BLOCK; k++) {
                v4d bl = bt[2 * k], bh = bt[2 * k + 1];
                PIN_REGS(bl, bh);
                p0l += a0[k] * bl;
                p0h += a0[k] * bh;
                p1l += a1[k] * bl;
                p1h += a1[k] * bh;
                p2l += a2[k] * bl;
                p2h += a2[k] * bh;
                p3l += a3[k] * bl;
                p3h += a3[k] * bh;
            }
            P[2 * m] = p0l;
            P[2 * m + 1] = p0h;
            P[2 * m + 2] = p1l;
            P[2 * m + 3] = p1h;
            P[2 * m + 4] = p2l;
            P[2 * m + 5] = p2h;
            P[2 * m + 6] = p3l;
            P[2 * m + 7] = p3h;
        }
    } else {
        for (; m + 2 <= M; m += 2) {
            const double *a0 = ad + m * lda, *a1 = a0 + lda;
            const double *b0 = aa + m * lda, *b1 = b0 + lda;
            v4d p0l = {0}, p0h = p0l, p1l = p0l, p1h = p0l;
            v4d q0l = p0l, q0h = p0l, q1l = p0l, q1h = p0l;
            for (int k = 0; k < MX_BLOCK; k++) {
                v4d bl = bt[2 * k], bh = bt[2 * k + 1];
                v4d cl = bta[2 * k], ch = bta[2 * k + 1];
                PIN_REGS(bl, bh);
                PIN_REGS(cl, ch);
                p0l += a0[k] * bl;
                p0h += a0[k] * bh;
                p1l += a1[k] * bl;
                p1h += a1[k] * bh;
                q0l += b0[k] * cl;
                q0h += b0[k] * ch;
                q1l += b1[k] * cl;
                q1h += b1[k] * ch;
            }
            P[2 * m] = p0l;
            P[2 * m + 1] = p0h;
            P[2 * m + 2] = p1l;
            P[2 * m + 3] = p1h;
            Q[2 * m] = q0l;
            Q[2 * m + 1] = q0h;
            Q[2 * m + 2] = q1l;
            Q[2 * m + 3] = q1h;
        }
    }
    for (; m < M; m++) {
        const double *a = ad + m * lda;
        v4d pl = {0}, ph = pl, ql = pl, qh = pl;
        for (int k = 0; k < MX_BLOCK; k++) {
            pl += a[k] * bt[2 * k];
            ph += a[k] * bt[2 * k + 1];
        }
        P[2 * m] = pl;
        P[2 * m + 1] = ph;
        if (!aa)
            continue;
        const double *b = aa + m * lda;
        for (int k = 0; k < MX_BLOCK; k++) {
            ql += b[k] * bta[2 * k];
            qh += b[k] * bta[2 * k + 1];
        }
        Q[2 * m] = ql;
        Q[2 * m + 1] = qh;
    }
}

static FUSED_DOTS8 void tile_dots8(size_t M, const double *ad, const double *aa,
                                   size_t lda, const v4d *bt, const v4d *bta, v4d *P,
                                   v4d *Q)
{
    dots8_body(M, ad, aa, lda, bt, bta, P, Q);
}

/* the eight-lane body on the baseline instruction set (no AVX2): slow,
 * and only there */
static FUSED_DOTS4 void tile_dots_plain(size_t M, const double *ad, const double *aa,
                                        size_t lda, const v4d *bt, const v4d *bta, v4d *P,
                                        v4d *Q)
{
    dots8_body(M, ad, aa, lda, bt, bta, P, Q);
}

static inline void tile_dots(size_t M, const double *ad, const double *aa, size_t lda,
                             const v4d *bt, const v4d *bta, v4d *P, v4d *Q)
{
    if (dots_kind >= 2)
        tile_dots8(M, ad, aa, lda, bt, bta, P, Q);
    else if (dots_kind == 1)
        tile_dots4(M, ad, aa, lda, bt, bta, P, Q);
    else
        tile_dots_plain(M, ad, aa, lda, bt, bta, P, Q);
}

typedef long long v8i __attribute__((vector_size(64), aligned(64)));
typedef unsigned long long v8u __attribute__((vector_size(64), aligned(64)));

/* The lane helpers below work on an 8-lane tile row as two 4-lane halves
 * (256-bit vectors): an 8-lane vector variable compiled for AVX2 lives in
 * memory, not in registers, and the helpers run in every clone. */
typedef unsigned long long v4u __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef uint32_t v4u32 __attribute__((vector_size(16)));

/* acc[0..7] += P[0..7] 2^(da + db[0..7]) modulo 2^64, for group partials
 * P (integers, |P| < 2^51) and shifts in 0..63 where P != 0 (taken modulo
 * 64 elsewhere: they shift a zero).  P's bits come from the
 * binary64 P + 1.5 2^52, whose significand's low bits hold P in two's
 * complement exactly (the sum lies in [2^52, 2^53), where the spacing is
 * 1): no float-to-integer conversion, which x86 lacks in vector form before
 * AVX-512.  The caller guarantees that every partial sum of the true
 * values fits int64, so the modular sum is the true sum. */
static inline void tile_acc64(const v4d *P4, long long da, const v8i *db, v8u *acc)
{
    const v4d magic = (v4d){0} + 0x1.8p52;
    const v4i *dbh = (const v4i *)db;
    v4u *acch = (v4u *)acc;
    for (int h = 0; h < 2; h++) {
        v4d t = P4[h] + magic;
        v4u v = (v4u)t - (v4u)magic;
        v4u sh = (v4u)(dbh[h] + da) & 63;
        acch[h] += v << sh;
    }
}

/* lo/hi[0..3] += v[0..3] 2^s[0..3] modulo 2^128, the low and high halves
 * of four two's complement accumulators: for the 16-bit kernel's group
 * partials (integers, |v| < 2^53) and shifts in 0..127 where v != 0
 * (taken modulo 128 elsewhere: they shift a zero).  The caller guarantees
 * that every partial sum of the true values fits int128, so the modular
 * sum is the true sum. */
static inline __attribute__((always_inline)) void add128(const v4i *vp, const v4i *shp,
                                                        v4u *lo, v4u *hi)
{
    v4i v = *vp, s = *shp & 127, s6 = s & 63;
    v4i low = s < 64; /* -1 where the term's low half is v 2^s */
    v4u tl = ((v4u)v << (v4u)s6) & (v4u)low;
    /* the high half: v's bits above 64 - s (sign included) below 2^64, or
     * v 2^(s - 64) */
    v4u th = ((v4u)((v >> 1) >> (63 - s6)) & (v4u)low) | (((v4u)v << (v4u)s6) & ~(v4u)low);
    v4u nl = *lo + tl;
    *hi = *hi + th - (v4u)(nl < tl);
    *lo = nl;
}

/* v = P[0..3] as integers (exact: below 2^53).  When every |P| is below
 * 2^51, from the binary64 P + 1.5 2^52 (tile_acc64: no vector
 * float-to-integer conversion before AVX-512DQ), else lane by lane. */
static inline __attribute__((always_inline)) void lanes_i64(const double *P, v4i *v)
{
    const v4d magic = (v4d){0} + 0x1.8p52, lim = (v4d){0} + 0x1p51;
    v4d p;
    memcpy(&p, P, sizeof p);
    v4i big = (v4i)((v4u)p & ((v4u){0} + 0x7FFFFFFFFFFFFFFFull)) >= (v4i)lim;
    if (!(big[0] | big[1] | big[2] | big[3])) {
        *v = (v4i)((v4u)(p + magic) - (v4u)magic);
        return;
    }
    *v = (v4i){(long long)P[0], (long long)P[1], (long long)P[2], (long long)P[3]};
}

/* lo/hi[0..7] += P[0..7] 2^sh[0..7] modulo 2^128 (add128, half by half) */
static inline __attribute__((always_inline)) void acc128_steps(const double *P,
                                                               const v8i *sh, v8u *lo,
                                                               v8u *hi)
{
    const v4i *shh = (const v4i *)sh;
    v4u *loh = (v4u *)lo, *hih = (v4u *)hi;
    for (int h = 0; h < 2; h++) {
        v4i v;
        // cppcheck-suppress objectIndex ; sh is one v8i, read as two v4i halves
        v4i s = shh[h];
        v4u l = loh[h], u = hih[h];
        lanes_i64(P + 4 * h, &v);
        add128(&v, &s, &l, &u);
        loh[h] = l;
        hih[h] = u;
    }
}

static FUSED_HOT void tile_acc128(const double *P, const v8i *sh, v8u *lo, v8u *hi)
{
    acc128_steps(P, sh, lo, hi);
}

static const uint8_t zero_codes[MX_BLOCK];

/* bt[k][l] = val[cp[l][k]]: one 32-wide group of eight rows looked up into
 * the transposed tile, k by k, so that each k's eight values form one
 * vector store. */
static FUSED_HOT void tile_decode(const double *val, const uint8_t *const *cp, v4d *bt4)
{
    const uint8_t *c0 = cp[0], *c1 = cp[1], *c2 = cp[2], *c3 = cp[3];
    const uint8_t *c4 = cp[4], *c5 = cp[5], *c6 = cp[6], *c7 = cp[7];
    for (int k = 0; k < MX_BLOCK; k++) {
        bt4[2 * k] = (v4d){val[c0[k]], val[c1[k]], val[c2[k]], val[c3[k]]};
        bt4[2 * k + 1] = (v4d){val[c4[k]], val[c5[k]], val[c6[k]], val[c7[k]]};
    }
}

#ifdef HAVE_DECODE_VBMI
#include <immintrin.h>
/* (8 binary64 patterns from 8 16-bit words, lane L of w: the words' bits
 * as the patterns' top 16) */
#define VBMI_STORE8(w, L, p)                                                                  \
    _mm512_storeu_si512((p), _mm512_slli_epi64(                                              \
                                 _mm512_cvtepu16_epi64(_mm512_extracti32x4_epi32((w), (L))), \
                                 48))

/* the 64 patterns of one k-range: words 0-7 and 8-15 of each 16 (wl, wh)
 * to p[0..63] in k order */
#define VBMI_STORE64(wl, wh, p)                                                \
    do {                                                                       \
        VBMI_STORE8(wl, 0, (p));                                               \
        VBMI_STORE8(wh, 0, (p) + 8);                                           \
        VBMI_STORE8(wl, 1, (p) + 16);                                          \
        VBMI_STORE8(wh, 1, (p) + 24);                                          \
        VBMI_STORE8(wl, 2, (p) + 32);                                          \
        VBMI_STORE8(wh, 2, (p) + 40);                                          \
        VBMI_STORE8(wl, 3, (p) + 48);                                          \
        VBMI_STORE8(wh, 3, (p) + 56);                                          \
    } while (0)

/* tile_decode for a format whose values have only their top 16 bits set
 * (vb_ok), with AVX-512 VBMI: the eight rows' 256 codes transposed to k
 * order by byte permutations, each code's two top bytes looked up in
 * 256-entry tables (two 128-byte permutations and a blend on the code's
 * top bit), widened to 64 bits in place.  tests/check_gemm.c runs the
 * fused pass under every dots kind the processor has (this one is kind 3)
 * against the engine. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void
tile_decode_vbmi(const ftab *t, const uint8_t *const *cp, v4d *bt4, v4d *bta4)
{
    __m512i s[4], t6[4], t7[4];
    for (int i = 0; i < 4; i++) {
        s[i] = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const void *)cp[2 * i])),
            _mm256_loadu_si256((const void *)cp[2 * i + 1]), 1);
        t6[i] = _mm512_loadu_si512(t->vb[0] + 64 * i);
        t7[i] = _mm512_loadu_si512(t->vb[1] + 64 * i);
    }
    double *o = (double *)bt4, *oa = bta4 ? (double *)bta4 : NULL;
    const __m512i nosign = _mm512_set1_epi16(0x7FFF);
    for (int r = 0; r < 2; r++) {
        __m512i xi = _mm512_loadu_si512(vbmi_x[r]);
        __m512i x = _mm512_permutex2var_epi8(s[0], xi, s[1]);
        __m512i y = _mm512_permutex2var_epi8(s[2], xi, s[3]);
        for (int h = 0; h < 2; h++, o += 64, oa = oa ? oa + 64 : NULL) {
            /* codes of k = 16 r + 8 h .. + 7, rows 0..7: o[0..63] */
            __m512i c = _mm512_permutex2var_epi8(x, _mm512_loadu_si512(vbmi_t[h]), y);
            __mmask64 top = _mm512_movepi8_mask(c);
            __m512i b6 = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(t6[0], c, t6[1]),
                                                _mm512_permutex2var_epi8(t6[2], c, t6[3]));
            __m512i b7 = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(t7[0], c, t7[1]),
                                                _mm512_permutex2var_epi8(t7[2], c, t7[3]));
            /* 16-bit words b7:b6 of codes 0-7 and 8-15 of each 16 */
            __m512i wl = _mm512_unpacklo_epi8(b6, b7), wh = _mm512_unpackhi_epi8(b6, b7);
            VBMI_STORE64(wl, wh, o);
            if (!oa)
                continue;
            /* and |bt| (tile_abs): the words' sign bits cleared */
            wl = _mm512_and_si512(wl, nosign);
            wh = _mm512_and_si512(wh, nosign);
            VBMI_STORE64(wl, wh, oa);
        }
    }
}
#undef VBMI_STORE8
#undef VBMI_STORE64
#endif

/* bta = |bt| for the 32 x 8 tile (clears the sign bits) */
static FUSED_HOT void tile_abs(const v4d *bt, v4d *bta)
{
    const v4i m = {0x7FFFFFFFFFFFFFFFll, 0x7FFFFFFFFFFFFFFFll, 0x7FFFFFFFFFFFFFFFll,
                   0x7FFFFFFFFFFFFFFFll};
    for (int i = 0; i < 2 * MX_BLOCK; i++)
        bta[i] = (v4d)((v4i)bt[i] & m);
}

/* The lanes' fp32-group step and bound sum for one activation row and one
 * group: elementwise over the 8 lanes, in the engine's operation order
 * (each lane's operations and their order as in the engine's scalar
 * code: no reassociation, no contraction), in vectors loaded and stored
 * through memcpy (the arrays' alignment is not a vector's). */
static inline __attribute__((always_inline)) void tile_model(const double *p, double pab,
                                                            float sa, const float *sb,
                                                            float *gt)
{
    for (int h = 0; h < 2; h++) {
        v4d pv;
        v4f sbv, gv;
        memcpy(&pv, p + 4 * h, sizeof pv);
        memcpy(&sbv, sb + 4 * h, sizeof sbv);
        memcpy(&gv, gt + 4 * h, sizeof gv);
        v4f pf = __builtin_convertvector(pv * pab, v4f);
        gv = gv + pf * (sa * sbv); /* mxg_scale_mul(sa, sb[l]) = sa * sb[l] */
        memcpy(gt + 4 * h, &gv, sizeof gv);
    }
}

static inline __attribute__((always_inline)) void tile_model_unscaled(const double *p,
                                                                     double pab, float *gt)
{
    for (int h = 0; h < 2; h++) {
        v4d pv;
        v4f gv;
        memcpy(&pv, p + 4 * h, sizeof pv);
        memcpy(&gv, gt + 4 * h, sizeof gv);
        gv = gv + __builtin_convertvector(pv * pab, v4f);
        memcpy(gt + 4 * h, &gv, sizeof gv);
    }
}

static inline __attribute__((always_inline)) void sabs_steps(const double *q, double fa,
                                                            const double *fb, double *qt)
{
    for (int h = 0; h < 2; h++) {
        v4d qv, fv, tv;
        memcpy(&qv, q + 4 * h, sizeof qv);
        memcpy(&fv, fb + 4 * h, sizeof fv);
        memcpy(&tv, qt + 4 * h, sizeof tv);
        tv = tv + qv * fa * fv;
        memcpy(qt + 4 * h, &tv, sizeof tv);
    }
}

/* sabs_steps for the 16-bit kernel's loop */
static FUSED_HOT void tile_sabs(const double *q, double fa, const double *fb, double *qt)
{
    sabs_steps(q, fa, fb, qt);
}

/* The FP8 kernel's steps of one group for each activation row m < M after
 * its dots: the fp32-group step (gt, when want_group), the bound's sum
 * (qt, when want_sabs) and, when acc64 is not NULL, the int64 exact sums;
 * rows with a zero scale in the group skip the last two, all-zero rows
 * (lo = INT_MAX, the marker: never in exponent arithmetic) the last.  One
 * function, so that the steps inline into each clone. */
static FUSED_HOT void tile_steps(size_t M, size_t G, size_t g, const v4d *P, const v4d *Q,
                                 int want_group, int scaled, double pab, const float *sca,
                                 const float *scb, float *gt, int want_sabs, const int *sxa,
                                 const double *fa, const double *fb, double *qt, v8u *acc64,
                                 const int *loa, int units, const v8i *db)
{
    for (size_t m = 0; m < M; m++) {
        const double *pm = (const double *)&P[2 * m];
        int xa = sxa[m * G + g];
        if (want_group) {
            /* the engine's fp32-group step: RN32 of the exact partial,
             * times the FP32 scale product, added */
            if (scaled)
                tile_model(pm, pab, sca[m * G + g], scb, gt + m * NT);
            else
                tile_model_unscaled(pm, pab, gt + m * NT);
        }
        if (xa == MXG_ZERO_SCALE)
            continue;
        if (want_sabs)
            sabs_steps((const double *)&Q[2 * m], fa[m * G + g], fb, qt + m * NT);
        /* a lane with p != 0 has both groups among its rows' nonzero
         * ones: 0 <= da + db <= spa + spb there; zero-scale and padding
         * lanes have p == 0 */
        if (acc64 && loa[m] != INT_MAX)
            tile_acc64(&P[2 * m], units + xa - loa[m], db, &acc64[m]);
    }
}

#ifdef HAVE_STEPS8
typedef float v8f __attribute__((vector_size(32)));

/* tile_steps with a row's eight lanes in one AVX-512 vector (the clones
 * above work on two 4-lane halves): lane by lane the same operations in
 * the same order -- RN32(P 2^(2u)) times (sa times sb), added; the bound
 * sum's step; the int64 sum by the P + 1.5 2^52 reading (tile_acc64).  For
 * the AVX-512 dots kind; tests that force a lower kind hold the 4-lane
 * steps to the engine as well. */
__attribute__((optimize("O3"), target("avx512f"))) static void
tile_steps8(size_t M, size_t G, size_t g, const v4d *P, const v4d *Q, int want_group,
            int scaled, double pab, const float *sca, const float *scb, float *gt,
            int want_sabs, const int *sxa, const double *fa, const double *fb, double *qt,
            v8u *acc64, const int *loa, int units, const v8i *db)
{
    const v8d magic = (v8d){0} + 0x1.8p52;
    v8f sbv;
    v8d fbv;
    memcpy(&sbv, scb, sizeof sbv);
    memcpy(&fbv, fb, sizeof fbv);
    for (size_t m = 0; m < M; m++) {
        const v8d pv = *(const v8d *)&P[2 * m]; /* P: 64-byte aligned rows */
        int xa = sxa[m * G + g];
        if (want_group) {
            v8f gv, pf = __builtin_convertvector(pv * pab, v8f);
            memcpy(&gv, gt + m * NT, sizeof gv);
            if (scaled)
                gv = gv + pf * (sca[m * G + g] * sbv);
            else
                gv = gv + pf;
            memcpy(gt + m * NT, &gv, sizeof gv);
        }
        if (xa == MXG_ZERO_SCALE)
            continue;
        if (want_sabs) {
            v8d tv, qv = *(const v8d *)&Q[2 * m];
            memcpy(&tv, qt + m * NT, sizeof tv);
            tv = tv + qv * fa[m * G + g] * fbv;
            memcpy(qt + m * NT, &tv, sizeof tv);
        }
        if (acc64 && loa[m] != INT_MAX) {
            v8u v = (v8u)(pv + magic) - (v8u)magic;
            v8u sh = (v8u)(*db + (long long)(units + xa - loa[m])) & 63;
            acc64[m] += v << sh;
        }
    }
}
#endif


/* Row facts of one operand side (the engine's prep, without the values). */
typedef struct {
    int *sx;        /* rows x G: scale exponent or MXG_ZERO_SCALE (0 unscaled) */
    float *sc;      /* rows x G: the FP32 scale production computes           */
    double *f;      /* rows x G: 2^(unit + sx), 0 for a zero scale            */
    int lo, hi;     /* per row, filled by row_facts                           */
    double amax;
} side;

/* Scale facts of row r (logical) of o into sx/sc/f[g * stride] for g < G,
 * and lo, hi, amax as the engine's prep computes them; 1 when a NaN or inf
 * code is present (zero-scale groups included).
 *
 * Magnitudes grow with the code's low 7 bits, NaN and inf patterns come
 * last in that order (or are 0x80), and every other nonzero pattern is a
 * nonzero value (checked when the tables are built).  So a group holds a
 * nonzero value when one of its bytes has nonzero low 7 bits, the row's
 * amax is the magnitude of the largest low-7-bit pattern over its groups
 * of nonzero scale, and the row holds a NaN or inf when that pattern over
 * all its groups is one, or 0x80 occurs and is one: the per-group work is
 * a byte-wise max and compare into vectors, reduced once per row. */
typedef uint8_t v32u8 __attribute__((vector_size(32)));
typedef uint64_t v4u64 __attribute__((vector_size(32)));

/* *acc = max(*acc, v) bytewise (pointers: a 32-byte vector passed by
 * value changes the ABI of the default clone) */
static inline __attribute__((always_inline)) void vmax32(v32u8 *acc, const v32u8 *v)
{
    v32u8 gt = (v32u8)(*v > *acc);
    *acc = (*v & gt) | (*acc & ~gt);
}

static inline __attribute__((always_inline)) uint8_t hmax32(const v32u8 *v)
{
    uint8_t m = 0;
    for (int i = 0; i < 32; i++)
        m = (*v)[i] > m ? (*v)[i] : m;
    return m;
}

/* Row r's facts, group by group, into sx, sc and f (g * stride apart):
 * scale exponent (mxg_scale_exp), FP32 scale, 2^(unit + x) (0 for a zero
 * scale); *lo_out / *hi_out: the lowest unit and highest top of its
 * nonzero groups (INT_MAX / INT_MIN: none), *amax_out its largest |value|
 * unscaled, *xmin_out its smallest scale exponent, zero scales left out
 * (INT_MAX: every scale zero); 1 when it holds a NaN or inf code.  Branch
 * free per group: the scale byte read in place, the 32 codes in one
 * vector, a group that adds nothing (zero scale or zero codes) masked out
 * of lo, hi and amax. */
static FUSED_HOT int row_facts(const mx_operand *o, const ftab *t, mx_e8m0_decode d, size_t r,
                     size_t G, size_t stride, int *sx, float *sc, double *f,
                     int *lo_out, int *hi_out, double *amax_out, int *xmin_out)
{
    size_t K = o->K;
    const uint8_t *codes = (const uint8_t *)o->codes + mxg_row(o, r) * o->ld;
    const uint8_t *sb = o->scales ? o->scales + mxg_row(o, r) * o->srs : NULL;
    size_t sgs = o->sgs;
    const float *stab = scale_tab[d];
    int xlo = INT_MAX, xhi = INT_MIN, xmin = INT_MAX;
    const v32u8 m7 = (v32u8){0} + 0x7F, c80 = (v32u8){0} + 0x80;
    v32u8 vall = {0}, vsc = {0}, v80 = {0};
    for (size_t g = 0; g < G; g++) {
        size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
        int x = 0;
        float scv = 1.0f;
        if (sb) {
            uint8_t byte = sb[g * sgs];
            x = mxg_scale_exp_byte(d, byte);
            scv = stab[byte];
        }
        int zs = x == MXG_ZERO_SCALE;
        sx[g * stride] = x;
        sc[g * stride] = scv;
        f[g * stride] = zs ? 0.0 : pow2i(t->unit + x);
        xmin = !zs && x < xmin ? x : xmin;
        v32u8 c = {0}; /* a short last group: zero bytes are neutral */
        if (len == MX_BLOCK)
            memcpy(&c, codes + k0, MX_BLOCK); /* one unaligned load */
        else
            memcpy(&c, codes + k0, len);
        v32u8 c7 = c & m7;
        vmax32(&vall, &c7);
        v80 |= (v32u8)(c == c80);
        v4u64 w = (v4u64)c7;
        int keep = !zs && (w[0] | w[1] | w[2] | w[3]) != 0;
        v32u8 ck = c7 & (v32u8)((v32u8){0} + (uint8_t)-keep);
        vmax32(&vsc, &ck);
        xlo = keep && x < xlo ? x : xlo;
        xhi = keep && x > xhi ? x : xhi;
    }
    v4u64 w80 = (v4u64)v80;
    *lo_out = xlo == INT_MAX ? INT_MAX : t->unit + xlo;
    *hi_out = xhi == INT_MIN ? INT_MIN : t->top + xhi;
    *amax_out = t->mag[hmax32(&vsc)];
    *xmin_out = xmin;
    return t->bad[hmax32(&vall)] | (t->bad[0x80] & ((w80[0] | w80[1] | w80[2] | w80[3]) != 0));
}

static int clog2z(size_t x)
{
    int b = 0;
    while (((size_t)1 << b) < x)
        b++;
    return b;
}

/* v * 2^s without the undefined behaviour of shifting a negative value */
static inline unsigned __int128 shl(int64_t v, int s)
{
    return (unsigned __int128)(__int128)v << s;
}

/* The spread of a row's scale exponents over its nonzero groups (from
 * row_facts' lo and hi; 0 for an all-zero row). */
static long row_spread(const ftab *t, int lo, int hi)
{
    return lo <= hi ? ((long)hi - lo) - (t->top - t->unit) : 0;
}

/* The int64 that a two's complement sum modulo 2^64 stands for. */
static inline __int128 u64_signed(unsigned long long v)
{
    return v <= 0x7FFFFFFFFFFFFFFFull ? (__int128)v : -(__int128)(~v) - 1;
}

/* The activation side of a call, decoded once (mxg_fused_rows in
 * gemm_internal.h): values and magnitudes as integers of the grid
 * ([M][KP], zero past K and in zero-scale groups), the scale facts
 * ([M][G]) and each row's lo, hi, amax, spread and smallest scale
 * exponent; st is MX_ERANGE when a row holds a NaN or inf code. */
struct mxg_fused_rows {
    const mx_operand *A;
    size_t M, G, KP;
    double *ad, *aa, *fa, *amaxa;
    int *sxa, *loa, *hia, *xna;
    float *sca;
    long *spa;
    mx_status st;
    int view; /* rows of another's arrays (mxg_fused_rows_view): not freed */
};

static void rows_release(mxg_fused_rows *r)
{
    free(r->ad);
    free(r->aa);
    free(r->fa);
    free(r->amaxa);
    free(r->sxa);
    free(r->loa);
    free(r->hia);
    free(r->xna);
    free(r->sca);
    free(r->spa);
}

/* Rows [m0, m1) of r; 1 when one holds a NaN or inf code. */
static int rows_fill(mxg_fused_rows *r, const ftab *ta, mx_e8m0_decode d, size_t m0,
                     size_t m1)
{
    const mx_operand *A = r->A;
    size_t G = r->G, KP = r->KP, K = A->K;
    int bad = 0;
    for (size_t m = m0; m < m1; m++) {
        if (row_facts(A, ta, d, m, G, 1, r->sxa + m * G, r->sca + m * G, r->fa + m * G,
                      &r->loa[m], &r->hia[m], &r->amaxa[m], &r->xna[m])) {
            bad = 1;
            continue; /* its facts are not read: the call fails */
        }
        r->spa[m] = row_spread(ta, r->loa[m], r->hia[m]);
        const uint8_t *codes = (const uint8_t *)A->codes + mxg_row(A, m) * A->ld;
        const int *sx = r->sxa + m * G;
        double *adm = r->ad + m * KP, *aam = r->aa + m * KP;
        for (size_t k = 0; k < K; k++)
            if (sx[k / MX_BLOCK] != MXG_ZERO_SCALE) {
                adm[k] = ta->val[codes[k]];
                aam[k] = ta->aval[codes[k]];
            }
    }
    return bad;
}

/* rows_build's rows by blocks on the pool (a split's shared rows are
 * decoded before its blocks start: on every thread, not one) */
#define ROWS_BLOCK ((size_t)16)

typedef struct {
    mxg_fused_rows *r;
    const ftab *ta;
    mx_e8m0_decode d;
    _Atomic int bad;
} rows_ctx;

static void rows_task(void *v, size_t b)
{
    rows_ctx *c = v;
    size_t m0 = b * ROWS_BLOCK, m1 = m0 + ROWS_BLOCK < c->r->M ? m0 + ROWS_BLOCK : c->r->M;
    if (rows_fill(c->r, c->ta, c->d, m0, m1))
        c->bad = 1;
}

/* Fills r for (s, A), by blocks of rows on the pool when par; r->st says
 * how it went (MX_ENOMEM, MX_ERANGE). */
static void rows_build(const mx_gemm_spec *s, const mx_operand *A, mxg_fused_rows *r,
                       int par)
{
    pthread_once(&ftabs_once, ftabs_init);
    const ftab *ta = &ftabs[A->fmt->id];
    size_t M = A->rows, K = A->K, G = (K + MX_BLOCK - 1) / MX_BLOCK, KP = G * MX_BLOCK;
    memset(r, 0, sizeof *r); /* st MX_OK */
    r->A = A;
    r->M = M;
    r->G = G;
    r->KP = KP;
    r->ad = calloc(M * KP + 1, sizeof *r->ad);
    r->aa = calloc(M * KP + 1, sizeof *r->aa);
    r->sxa = malloc((M * G + 1) * sizeof *r->sxa);
    r->loa = malloc((M + 1) * sizeof *r->loa);
    r->hia = malloc((M + 1) * sizeof *r->hia);
    r->sca = malloc((M * G + 1) * sizeof *r->sca);
    r->fa = malloc((M * G + 1) * sizeof *r->fa);
    r->amaxa = malloc((M + 1) * sizeof *r->amaxa);
    r->spa = malloc((M + 1) * sizeof *r->spa);
    r->xna = malloc((M + 1) * sizeof *r->xna);
    if (!r->ad || !r->aa || !r->sxa || !r->loa || !r->hia || !r->sca || !r->fa ||
        !r->amaxa || !r->spa || !r->xna) {
        r->st = MX_ENOMEM;
        return;
    }
    if (par && M > ROWS_BLOCK && mx_pool_threads() > 1) {
        rows_ctx c = {r, ta, s->decode, 0};
        mx_parallel_for((M + ROWS_BLOCK - 1) / ROWS_BLOCK, rows_task, &c);
        r->st = c.bad ? MX_ERANGE : MX_OK;
    } else {
        r->st = rows_fill(r, ta, s->decode, 0, M) ? MX_ERANGE : MX_OK;
    }
}

mxg_fused_rows *mxg_fused_rows_new(const mx_gemm_spec *s, const mx_operand *A)
{
    mxg_fused_rows *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    rows_build(s, A, r, 1);
    if (r->st == MX_ENOMEM) { /* the kernel will try (and report) again */
        mxg_fused_rows_free(r);
        return NULL;
    }
    return r;
}

mxg_fused_rows *mxg_fused_rows_view(const mxg_fused_rows *r, size_t m0, size_t mr,
                                    const mx_operand *A)
{
    mxg_fused_rows *v = r && m0 + mr <= r->M ? malloc(sizeof *v) : NULL;
    if (!v)
        return NULL;
    size_t G = r->G, KP = r->KP;
    *v = *r;
    v->A = A;
    v->M = mr;
    v->view = 1;
    v->ad = r->ad + m0 * KP;
    v->aa = r->aa + m0 * KP;
    v->sxa = r->sxa + m0 * G;
    v->sca = r->sca + m0 * G;
    v->fa = r->fa + m0 * G;
    v->loa = r->loa + m0;
    v->hia = r->hia + m0;
    v->amaxa = r->amaxa + m0;
    v->spa = r->spa + m0;
    v->xna = r->xna + m0;
    return v;
}

void mxg_fused_rows_free(mxg_fused_rows *r)
{
    if (!r)
        return;
    if (!r->view)
        rows_release(r);
    free(r);
}

/* One tile of NT weight rows in flight in mxg_gemm_fused: its rows' facts,
 * its current group decoded, its dots and its elements' sums. */
typedef struct {
    size_t n0, nt;
    int lob[NT], hib[NT], xnb[NT];
    long spb[NT];
    double amaxb[NT];
    const uint8_t *rowp[NT];
    /* the weight rows two tiles on, fetched into L2 while this one runs
     * (row_facts reads them first: a stream from memory otherwise) */
    const uint8_t *nextp[NT];
    int *sxb;    /* [G][NT]: B's facts lane-major */
    float *scb;
    double *fb;
    v4d *bt, *bta, *P, *Q;
    unsigned __int128 *acc;
    mpz_t *big;
    unsigned char *slow;
    float *gt;
    double *qt;
    /* int64 sums, or 128-bit sums as low and high vectors (a tile past
     * int64 with no GMP element) */
    v8u *acc64, *acl, *ach;
    int fast64, any_slow, vec128;
    v8i db; /* B's part of each lane's shift in the current group */
} ftile;

/* What every tile of one mxg_gemm_fused call shares. */
typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A, *B;
    mx_gemm_out *out;
    const ftab *ta, *tb;
    size_t M, N, K, G, KP;
    int want_group, want_bnd, want_sabs, want_exact;
    const mxg_fused_rows *R;
    double *exact;
    float *gacc;
    int cg;
    long bits64, spa_max; /* spa_max: the widest activation row's spread */
    mxg_bound_call bc;    /* the bounds' constants */
    double pab;
    size_t nslow;
} fcall;

/* The dots of two tiles over one group (tile_dots for each): with
 * AVX-512 in one pass, each activation value loaded once for both tiles
 * and every accumulator in a register, so that the loop is bound by the
 * multiply-adds and not by the loads; elsewhere tile_dots twice.  Exact in
 * any order, as tile_dots. */
static FUSED_DOTS8 void tile_dots8_two(size_t M, const double *ad, const double *aa,
                                       size_t lda, const v4d *bt0, const v4d *bta0,
                                       const v4d *bt1, const v4d *bta1, v4d *P0, v4d *Q0,
                                       v4d *P1, v4d *Q1)
{
    const v8d *u = (const v8d *)bt0, *v = (const v8d *)bt1;
    const v8d *cu = (const v8d *)bta0, *cv = (const v8d *)bta1;
    v8d *p0 = (v8d *)P0, *q0 = (v8d *)Q0, *p1 = (v8d *)P1, *q1 = (v8d *)Q1;
    size_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const double *x0 = ad + m * lda, *x1 = x0 + lda, *x2 = x1 + lda, *x3 = x2 + lda;
        v8d r0 = {0}, r1 = r0, r2 = r0, r3 = r0; /* tile 0, rows m .. m + 3 */
        v8d t0 = r0, t1 = r0, t2 = r0, t3 = r0;  /* tile 1 */
        if (!aa) {
            for (int k = 0; k < MX_BLOCK; k++) {
                v8d bu = u[k], bv = v[k];
                double a0 = x0[k], a1 = x1[k], a2 = x2[k], a3 = x3[k];
                r0 += a0 * bu;
                r1 += a1 * bu;
                r2 += a2 * bu;
                r3 += a3 * bu;
                t0 += a0 * bv;
                t1 += a1 * bv;
                t2 += a2 * bv;
                t3 += a3 * bv;
            }
        } else {
            const double *y0 = aa + m * lda, *y1 = y0 + lda, *y2 = y1 + lda, *y3 = y2 + lda;
            v8d s0 = r0, s1 = r0, s2 = r0, s3 = r0; /* magnitudes, tile 0 */
            v8d w0 = r0, w1 = r0, w2 = r0, w3 = r0; /* magnitudes, tile 1 */
            for (int k = 0; k < MX_BLOCK; k++) {
                v8d bu = u[k], bv = v[k], du = cu[k], dv = cv[k];
                double a0 = x0[k], a1 = x1[k], a2 = x2[k], a3 = x3[k];
                double z0 = y0[k], z1 = y1[k], z2 = y2[k], z3 = y3[k];
                r0 += a0 * bu;
                r1 += a1 * bu;
                r2 += a2 * bu;
                r3 += a3 * bu;
                t0 += a0 * bv;
                t1 += a1 * bv;
                t2 += a2 * bv;
                t3 += a3 * bv;
                s0 += z0 * du;
                s1 += z1 * du;
                s2 += z2 * du;
                s3 += z3 * du;
                w0 += z0 * dv;
                w1 += z1 * dv;
                w2 += z2 * dv;
                w3 += z3 * dv;
            }
            q0[m] = s0;
            q0[m + 1] = s1;
            q0[m + 2] = s2;
            q0[m + 3] = s3;
            q1[m] = w0;
            q1[m + 1] = w1;
            q1[m + 2] = w2;
            q1[m + 3] = w3;
        }
        p0[m] = r0;
        p0[m + 1] = r1;
        p0[m + 2] = r2;
        p0[m + 3] = r3;
        p1[m] = t0;
        p1[m + 1] = t1;
        p1[m + 2] = t2;
        p1[m + 3] = t3;
    }
    for (; m < M; m++) {
        /* one row: two accumulators per sum (k even, k odd) */
        const double *x = ad + m * lda;
        v8d r0 = {0}, r1 = r0, t0 = r0, t1 = r0;
        for (int k = 0; k < MX_BLOCK; k += 2) {
            r0 += x[k] * u[k];
            r1 += x[k + 1] * u[k + 1];
            t0 += x[k] * v[k];
            t1 += x[k + 1] * v[k + 1];
        }
        p0[m] = r0 + r1;
        p1[m] = t0 + t1;
        if (!aa)
            continue;
        const double *y = aa + m * lda;
        v8d s0 = {0}, s1 = s0, w0 = s0, w1 = s0;
        for (int k = 0; k < MX_BLOCK; k += 2) {
            s0 += y[k] * cu[k];
            s1 += y[k + 1] * cu[k + 1];
            w0 += y[k] * cv[k];
            w1 += y[k + 1] * cv[k + 1];
        }
        q0[m] = s0 + s1;
        q1[m] = w0 + w1;
    }
}

/* Two tiles' dots (bt0/bta0 into P0/Q0, bt1/bta1 into P1/Q1): in one
 * pass with AVX-512, else one tile after the other.  Both kernels' pairs. */
static void tile_dots_two(size_t M, const double *ad, const double *aa, size_t lda,
                          const v4d *bt0, const v4d *bta0, const v4d *bt1, const v4d *bta1,
                          v4d *P0, v4d *Q0, v4d *P1, v4d *Q1)
{
    if (dots_kind >= 2) {
        tile_dots8_two(M, ad, aa, lda, bt0, bta0, bt1, bta1, P0, Q0, P1, Q1);
        return;
    }
    tile_dots(M, ad, aa, lda, bt0, bta0, P0, Q0);
    tile_dots(M, ad, aa, lda, bt1, bta1, P1, Q1);
}

static void ftile_free(ftile *t)
{
    free(t->sxb);
    free(t->scb);
    free(t->fb);
    free(t->bt);
    free(t->bta);
    free(t->P);
    free(t->Q);
    free(t->acc);
    free(t->big);
    free(t->slow);
    free(t->gt);
    free(t->qt);
    free(t->acc64);
    free(t->acl);
    free(t->ach);
}

static int ftile_alloc(ftile *t, size_t M, size_t G)
{
    memset(t, 0, sizeof *t);
    t->bt = aligned_alloc(64, MX_BLOCK * 2 * sizeof(v4d));
    t->bta = aligned_alloc(64, MX_BLOCK * 2 * sizeof(v4d));
    t->P = aligned_alloc(64, (2 * M + 2) * sizeof(v4d));
    t->Q = aligned_alloc(64, (2 * M + 2) * sizeof(v4d));
    t->sxb = malloc(NT * G * sizeof *t->sxb);
    t->scb = malloc(NT * G * sizeof *t->scb);
    t->fb = malloc(NT * G * sizeof *t->fb);
    t->acc = malloc((M * NT + 1) * sizeof *t->acc);
    t->big = malloc((M * NT + 1) * sizeof *t->big);
    t->slow = malloc(M * NT + 1);
    t->gt = malloc((M * NT + 1) * sizeof *t->gt);
    t->qt = malloc((M * NT + 1) * sizeof *t->qt);
    t->acc64 = aligned_alloc(64, (M + 1) * sizeof *t->acc64);
    t->acl = aligned_alloc(64, (M + 1) * sizeof *t->acl);
    t->ach = aligned_alloc(64, (M + 1) * sizeof *t->ach);
    return t->bt && t->bta && t->P && t->Q && t->sxb && t->scb && t->fb && t->acc &&
           t->big && t->slow && t->gt && t->qt && t->acc64 && t->acl && t->ach;
}

/* The facts of the tile's weight rows n0 .. n0 + nt - 1 (padding lanes:
 * zero codes, zero scale); MX_ERANGE when a row holds a NaN or inf code. */
static mx_status ftile_facts(const fcall *c, ftile *t, size_t n0)
{
    const mx_operand *B = c->B;
    size_t N = c->N, G = c->G;
    mx_status st = MX_OK;
    t->n0 = n0;
    t->nt = N - n0 < NT ? N - n0 : NT;
    for (size_t l = 0; l < NT; l++)
        t->nextp[l] = n0 + 2 * NT + l < N
                          ? (const uint8_t *)B->codes + mxg_row(B, n0 + 2 * NT + l) * B->ld
                          : NULL;
    for (size_t l = 0; l < NT; l++) {
        if (l >= t->nt) {
            t->rowp[l] = NULL;
            t->lob[l] = t->xnb[l] = INT_MAX; /* no nonzero group (read, masked, by ftile_round8) */
            t->hib[l] = INT_MIN;
            t->spb[l] = 0;
            t->amaxb[l] = 0.0;
            for (size_t g = 0; g < G; g++) {
                t->sxb[g * NT + l] = MXG_ZERO_SCALE;
                t->scb[g * NT + l] = 0.0f;
                t->fb[g * NT + l] = 0.0;
            }
            continue;
        }
        if (row_facts(B, c->tb, c->s->decode, n0 + l, G, NT, t->sxb + l, t->scb + l,
                      t->fb + l, &t->lob[l], &t->hib[l], &t->amaxb[l], &t->xnb[l]))
            st = MX_ERANGE;
        t->rowp[l] = (const uint8_t *)B->codes + mxg_row(B, n0 + l) * B->ld;
        t->spb[l] = row_spread(c->tb, t->lob[l], t->hib[l]);
    }
    return st;
}

/* The tile's sums cleared, and how its elements sum: all in int64 (the
 * common case: scale spreads of a few binades), or each in 128 bits or
 * GMP (slow: GMP, counted into c->nslow). */
static void ftile_start(fcall *c, ftile *t)
{
    const mxg_fused_rows *R = c->R;
    size_t M = c->M, nt = t->nt, MT = M * NT;
    long spb = 0;
    for (size_t l = 0; l < nt; l++)
        spb = t->spb[l] > spb ? t->spb[l] : spb;
    /* every element in int64 when the widest pair of rows fits; then none
     * is slow either (span = bits64 + both spreads + 1 <= 64) */
    t->fast64 = c->want_exact && (M == 0 || c->bits64 + c->spa_max + spb <= 63);
    t->any_slow = 0;
    memset(t->gt, 0, MT * sizeof *t->gt);
    memset(t->qt, 0, MT * sizeof *t->qt);
    memset(t->slow, 0, MT);
    for (size_t m = 0; m < M && !t->fast64; m++)
        for (size_t l = 0; l < NT; l++) {
            size_t j = m * NT + l;
            t->acc[j] = 0;
            if (l >= nt)
                continue;
            /* in long: an all-zero row's INT_MAX/INT_MIN markers overflow int */
            long span = ((long)R->hia[m] - R->loa[m]) + ((long)t->hib[l] - t->lob[l]) + c->cg;
            t->slow[j] = c->want_exact && R->loa[m] <= R->hia[m] && t->lob[l] <= t->hib[l] &&
                         span > 126;
            if (t->slow[j]) {
                mpz_init(t->big[j]);
                c->nslow++;
                t->any_slow = 1;
            }
        }
    /* past int64 but no element to GMP: the 128-bit sums in vectors */
    t->vec128 = c->want_exact && !t->fast64 && !t->any_slow;
    for (size_t m = 0; m < M; m++)
        t->acc64[m] = t->acl[m] = t->ach[m] = (v8u){0};
}

/* Group g of the tile's rows decoded into bt (and |bt| into bta). */
static void ftile_decode(const fcall *c, ftile *t, size_t g)
{
    const ftab *tb = c->tb;
    size_t K = c->K;
    size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
    const int *sxb = t->sxb + g * NT;
    double *b = (double *)t->bt;
    if (!(g & 1))
        for (size_t l = 0; l < NT; l++)
            if (t->nextp[l])
                __builtin_prefetch(t->nextp[l] + k0, 0, 2);
    /* B's part of each lane's shift (0 where the lane adds nothing: a zero
     * scale, an all-zero row, padding) */
    t->db = (v8i){0};
    for (size_t l = 0; l < t->nt; l++)
        if (sxb[l] != MXG_ZERO_SCALE && t->lob[l] <= t->hib[l])
            t->db[l] = sxb[l] - t->lob[l];
    int abs_done = 0;
    if (len == MX_BLOCK) {
        /* a lane that adds nothing reads zero codes */
        const uint8_t *cp[NT];
        for (size_t l = 0; l < NT; l++)
            cp[l] = !t->rowp[l] || sxb[l] == MXG_ZERO_SCALE ? zero_codes : t->rowp[l] + k0;
#ifdef HAVE_DECODE_VBMI
        if (dots_kind >= 3 && tb->vb_ok) {
            tile_decode_vbmi(tb, cp, t->bt, c->want_sabs ? t->bta : NULL);
            abs_done = c->want_sabs;
        } else
#endif
            tile_decode(tb->val, cp, t->bt);
    } else {
        for (size_t l = 0; l < NT; l++) {
            size_t k = 0;
            if (t->rowp[l] && sxb[l] != MXG_ZERO_SCALE)
                for (; k < len; k++)
                    b[k * NT + l] = tb->val[t->rowp[l][k0 + k]];
            for (; k < MX_BLOCK; k++)
                b[k * NT + l] = 0.0;
        }
    }
    if (c->want_sabs && !abs_done)
        tile_abs(t->bt, t->bta);
}

/* Group g's dots (in P, Q) taken into the tile's sums and model steps. */
static void ftile_steps(const fcall *c, ftile *t, size_t g)
{
    const mxg_fused_rows *R = c->R;
    const ftab *ta = c->ta, *tb = c->tb;
    size_t M = c->M, G = c->G, nt = t->nt;
#ifdef HAVE_STEPS8
    if (dots_kind >= 2)
        tile_steps8(M, G, g, t->P, t->Q, c->want_group, c->A->scales != NULL, c->pab, R->sca,
                    t->scb + g * NT, t->gt, c->want_sabs, R->sxa, R->fa, t->fb + g * NT,
                    t->qt, t->fast64 ? t->acc64 : NULL, R->loa, ta->unit + tb->unit, &t->db);
    else
#endif
        tile_steps(M, G, g, t->P, t->Q, c->want_group, c->A->scales != NULL, c->pab, R->sca,
                   t->scb + g * NT, t->gt, c->want_sabs, R->sxa, R->fa, t->fb + g * NT, t->qt,
                   t->fast64 ? t->acc64 : NULL, R->loa, ta->unit + tb->unit, &t->db);
    if (!c->want_exact || t->fast64)
        return;
    const int *xb = t->sxb + g * NT;
    for (size_t m = 0; m < M; m++) {
        const double *pm = (const double *)&t->P[2 * m];
        int xa = R->sxa[m * G + g];
        if (xa == MXG_ZERO_SCALE || R->loa[m] == INT_MAX)
            continue;
        int da = ta->unit + xa - R->loa[m] + tb->unit;
        unsigned __int128 *am = t->acc + m * NT;
        if (t->vec128) {
            /* a lane with P != 0 has its shift in 0..126 (no element is
             * slow); the others add 0 whatever it is */
            v8i sh = t->db + (long long)da;
            tile_acc128(pm, &sh, &t->acl[m], &t->ach[m]);
            continue;
        }
        for (size_t l = 0; l < nt; l++) {
            size_t j = m * NT + l;
            if (pm[l] == 0)
                continue;
            int sh = da + xb[l] - t->lob[l];
            if (!t->slow[j]) {
                am[l] += shl((int64_t)pm[l], sh);
            } else {
                mpz_t v;
                mpz_init_set_d(v, pm[l]);
                mpz_mul_2exp(v, v, (mp_bitcnt_t)sh);
                mpz_add(t->big[j], t->big[j], v);
                mpz_clear(v);
            }
        }
    }
}

#ifdef HAVE_ROUND_DQ
/* The exact values of one tile row from its int64 sums: lane l's
 * v 2^(loa + lob[l]) w rounded once to binary64, where that rounding is
 * one conversion and exact scalings -- w == 1 or |v| < 2^53 (the
 * conversion exact, the multiply by w the one rounding), 2^e a normal
 * number, the result well inside the normal range (a zero or subnormal
 * result is left to the scalar function; the second is out of the FP8
 * formats' reach anyway) -- for eight lanes at once: the fast path of
 * mxg_round_weighted_f64, which gives the same bits there.  Stores those
 * lanes of out[0 .. nt) and returns the mask of the lanes it left. */
__attribute__((target("avx512f,avx512dq"))) static unsigned
ftile_round8(const v8u *acc, int loa, const int *lob, double w, size_t nt, double *out)
{
    __m512i v = _mm512_load_si512((const void *)acc);
    __m512i e = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm256_loadu_si256((const void *)lob)),
                                 _mm512_set1_epi64(loa));
    __mmask8 lanes = (__mmask8)((1u << nt) - 1);
    __mmask8 ok = lanes & _mm512_cmp_epi64_mask(e, _mm512_set1_epi64(-1022), _MM_CMPINT_NLT);
    ok &= _mm512_cmp_epi64_mask(e, _mm512_set1_epi64(960), _MM_CMPINT_LE);
    if (w != 1.0)
        ok &= _mm512_cmp_epu64_mask(_mm512_abs_epi64(v), _mm512_set1_epi64((long long)1 << 53),
                                    _MM_CMPINT_LT);
    /* 2^e from its bits (lanes outside the range masked off above) */
    __m512d p = _mm512_castsi512_pd(
        _mm512_slli_epi64(_mm512_add_epi64(e, _mm512_set1_epi64(1023)), 52));
    __m512d r = _mm512_mul_pd(_mm512_mul_pd(_mm512_cvtepi64_pd(v), p), _mm512_set1_pd(w));
    __m512d ra = _mm512_abs_pd(r);
    ok &= _mm512_cmp_pd_mask(ra, _mm512_set1_pd(0x1p-1020), _CMP_GE_OQ);
    ok &= _mm512_cmp_pd_mask(ra, _mm512_set1_pd(0x1p1020), _CMP_LE_OQ);
    _mm512_mask_storeu_pd(out, ok, r);
    return (unsigned)(lanes & ~ok);
}
#endif

/* The tile's elements: one rounding each, the model's accumulator and the
 * bounds; the GMP sums cleared. */
static void ftile_finish(const fcall *c, ftile *t)
{
    const mxg_fused_rows *R = c->R;
    const mx_gemm_spec *s = c->s;
    mx_gemm_out *out = c->out;
    size_t M = c->M, N = c->N, nt = t->nt, n0 = t->n0;
    unsigned char uf[NT];
    for (size_t m = 0; t->vec128 && m < M; m++)
        for (size_t l = 0; l < NT; l++)
            t->acc[m * NT + l] = (unsigned __int128)t->ach[m][l] << 64 | t->acl[m][l];
    for (size_t m = 0; m < M; m++) {
        double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
        int loa = R->loa[m], hia = R->hia[m];
        unsigned left = (1u << nt) - 1; /* lanes whose exact value is still to come */
#ifdef HAVE_ROUND_DQ
        /* with the AVX-512 dots only: tests that force a lower dots kind
         * (mxg_fused_dots) then hold the scalar rounding to the engine too */
        if (c->want_exact && t->fast64 && has_dq && dots_kind >= 2 && loa <= hia)
            left = ftile_round8(&t->acc64[m], loa, t->lob, w, nt, c->exact + m * N + n0);
#endif
        for (size_t l = 0; l < nt; l++) {
            size_t j = m * NT + l, i = m * N + n0 + l;
            int lob = t->lob[l], hib = t->hib[l];
            if (c->want_exact && (left >> l & 1)) {
                if (loa > hia || lob > hib)
                    c->exact[i] = 0.0 * w;
                else if (t->fast64)
                    c->exact[i] =
                        mxg_round_weighted_f64(u64_signed(t->acc64[m][l]), loa + lob, w);
                else
                    c->exact[i] = t->slow[j]
                                      ? mxg_round_mpz_f64(t->big[j], (long)loa + lob, w)
                                      : mxg_round_weighted_f64((__int128)t->acc[j], loa + lob, w);
            }
            if (t->slow[j])
                mpz_clear(t->big[j]);
            if (c->want_group)
                c->gacc[i] = t->gt[j];
            /* no group's scale product can be below 2^-149 when the rows'
             * smallest scale exponents sum to -149 or more */
            uf[l] = c->A->scales && R->xna[m] != INT_MAX && t->xnb[l] != INT_MAX &&
                    (long)R->xna[m] + t->xnb[l] < -149;
        }
        if (c->want_bnd) {
            size_t i = m * N + n0;
            mxg_bound_lanes(&c->bc, m, n0, nt, c->want_sabs ? t->qt + m * NT : NULL,
                            R->amaxa[m], t->amaxb, c->exact + i,
                            uf, out->bound ? out->bound + i : NULL,
                            out->bound_acc ? out->bound_acc + i : NULL,
                            out->sum_abs ? out->sum_abs + i : NULL);
        }
    }
}

mx_status mxg_gemm_fused(const mx_gemm_spec *s, const mx_operand *A,
                         const mx_operand *B, mx_gemm_out *out, mx_gemm_stats *stats)
{
    pthread_once(&ftabs_once, ftabs_init);
    fused_calls++;
    fcall c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.A = A;
    c.B = B;
    c.out = out;
    c.ta = &ftabs[A->fmt->id];
    c.tb = &ftabs[B->fmt->id];
    size_t M = A->rows, N = B->rows, K = A->K, G = (K + MX_BLOCK - 1) / MX_BLOCK;
    size_t KP = G * MX_BLOCK, MN = M * N > 0 ? M * N : 1;
    c.M = M;
    c.N = N;
    c.K = K;
    c.G = G;
    c.KP = KP;
    c.want_group = (out->model_acc || out->model_out) && s->model.kind == MX_ACC_FP32_GROUP;
    /* bounds wanted; the sum |ab| dots only where a bound reads them: a
     * block model's bound takes its sum from the model's own walk
     * (mxg_acc_block), so there they are computed for out->sum_abs alone */
    c.want_bnd = out->bound || out->sum_abs || out->bound_acc;
    c.want_sabs = out->sum_abs ||
                  ((out->bound || out->bound_acc) && s->model.kind != MX_ACC_BLOCK);
    c.want_exact = out->exact || c.want_bnd;
    mx_status st = MX_OK;

    /* the activation rows: decoded once for the whole call by the split
     * (gemm_split.c) when it ran this block, else here */
    mxg_fused_rows own;
    memset(&own, 0, sizeof own);
    const mxg_fused_rows *R = mxg_shared_rows_fused(s, A);
    if (!R) {
        rows_build(s, A, &own, 0);
        R = &own;
    }
    c.R = R;
    c.exact = out->exact ? out->exact : c.want_exact ? malloc(MN * sizeof *c.exact) : NULL;
    c.gacc = c.want_group ? malloc(MN * sizeof *c.gacc) : NULL;
    /* two tiles at a time: each activation value loaded serves both */
    ftile T[2];
    int ok0 = ftile_alloc(&T[0], M, G), ok1 = ftile_alloc(&T[1], M, G);
    if (R->st != MX_OK) {
        st = R->st;
        goto done;
    }
    if ((c.want_exact && !c.exact) || (c.want_group && !c.gacc) || !ok0 || !ok1) {
        st = MX_ENOMEM;
        goto done;
    }

    c.cg = clog2z(G) + 5 + 1;
    mxg_bound_call_init(&c.bc, s, A, B);
    /* bits of |P| (a group's dot) plus those of G carries: with the two
     * rows' scale spreads, what an element's int64 sum needs */
    c.bits64 = (c.ta->top - c.ta->unit) + (c.tb->top - c.tb->unit) + 5 + clog2z(G);
    c.pab = pow2i(c.ta->unit + c.tb->unit);
    for (size_t m = 0; m < M; m++)
        c.spa_max = R->spa[m] > c.spa_max ? R->spa[m] : c.spa_max;
    const double *ad = R->ad, *aa = c.want_sabs ? R->aa : NULL;
    for (size_t n0 = 0; n0 < N; n0 += 2 * NT) {
        int nt2 = n0 + NT < N ? 2 : 1;
        for (int i = 0; i < nt2; i++)
            if (ftile_facts(&c, &T[i], n0 + (size_t)i * NT) != MX_OK)
                st = MX_ERANGE;
        if (st != MX_OK)
            break;
        for (int i = 0; i < nt2; i++)
            ftile_start(&c, &T[i]);
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK;
            for (int i = 0; i < nt2; i++)
                ftile_decode(&c, &T[i], g);
            if (nt2 == 2)
                tile_dots_two(M, ad + k0, aa ? aa + k0 : NULL, KP, T[0].bt, T[0].bta, T[1].bt,
                              T[1].bta, T[0].P, T[0].Q, T[1].P, T[1].Q);
            else
                tile_dots(M, ad + k0, aa ? aa + k0 : NULL, KP, T[0].bt, T[0].bta, T[0].P,
                          T[0].Q);
            for (int i = 0; i < nt2; i++)
                ftile_steps(&c, &T[i], g);
        }
        for (int i = 0; i < nt2; i++)
            ftile_finish(&c, &T[i]);
    }
    if (st == MX_OK && (out->model_acc || out->model_out)) {
        float *macc = out->model_acc ? out->model_acc : malloc(MN * sizeof *macc);
        if (!macc) {
            st = MX_ENOMEM;
            goto done;
        }
        if (c.want_group) {
            for (size_t m = 0; m < M; m++)
                for (size_t n = 0; n < N; n++)
                    macc[m * N + n] = s->row_weight ? c.gacc[m * N + n] * s->row_weight[m]
                                                    : c.gacc[m * N + n];
        } else {
            st = mx_gemm_model_direct(s, A, B, macc); /* the unit, element by element */
        }
        if (out->model_out)
            for (size_t i = 0; i < M * N; i++)
                out->model_out[i] = mx_bf16_from_float(macc[i]);
        if (!out->model_acc)
            free(macc);
    }
    if (st == MX_OK && stats) {
        stats->elements = M * N;
        stats->slow_elements = c.nslow;
        stats->irregular_groups = 0;
    }
done:
    rows_release(&own);
    if (c.exact != out->exact)
        free(c.exact);
    free(c.gacc);
    ftile_free(&T[0]);
    ftile_free(&T[1]);
    return st;
}

/* ---- exact values from group partials formed elsewhere (mxg_xsum) ----- */

static unsigned long xsum_calls[2];

unsigned long mxg_xsum_calls(int wide)
{
    return __atomic_load_n(&xsum_calls[wide != 0], __ATOMIC_RELAXED);
}

void mxg_xsum_count(int wide) { __atomic_fetch_add(&xsum_calls[wide != 0], 1, __ATOMIC_RELAXED); }

void mxg_xsum_free(mxg_xsum *x)
{
    if (!x)
        return;
    free(x->da);
    free(x->db);
    free(x->loa);
    free(x->hia);
    free(x->lob);
    free(x->hib);
    free(x->xna);
    free(x->xnb);
    free(x->amaxa);
    free(x->amaxb);
    free(x);
}

/* One side's row facts (row_facts) for rows rows of o: the shifts sh
 * ([rows][G]: unit + scale exponent - lo, or MXG_XSUM_SKIP for a zero
 * scale), lo, hi, amax, the smallest scale exponent and the largest
 * spread; 1 at a NaN or infinite code or when memory is short. */
static int xsum_side(const mx_operand *o, const ftab *t, mx_e8m0_decode d, size_t rows,
                     size_t G, int *sh, int *lo, int *hi, double *amax, int *xn,
                     long *spmax)
{
    float *sc = malloc(G * sizeof *sc);
    double *f = malloc(G * sizeof *f);
    int bad = !sc || !f;
    *spmax = 0;
    for (size_t r = 0; !bad && r < rows; r++) {
        int *x = sh + r * G;
        bad |= row_facts(o, t, d, r, G, 1, x, sc, f, &lo[r], &hi[r], &amax[r], &xn[r]);
        long sp = row_spread(t, lo[r], hi[r]);
        *spmax = sp > *spmax ? sp : *spmax;
        /* a group with nonzero codes sits at or above lo; one without
         * any adds a zero partial, whatever its shift */
        for (size_t g = 0; g < G; g++)
            x[g] = x[g] == MXG_ZERO_SCALE || lo[r] == INT_MAX ? MXG_XSUM_SKIP
                   : t->unit + x[g] - lo[r] >= 0             ? t->unit + x[g] - lo[r]
                                                             : 0;
    }
    free(sc);
    free(f);
    return bad;
}

mxg_xsum *mxg_xsum_new(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B)
{
    if (!A->scales || !B->scales || A->K == 0 || !mxg_fused_applies(s, A, B))
        return NULL;
    pthread_once(&ftabs_once, ftabs_init);
    const ftab *ta = &ftabs[A->fmt->id], *tb = &ftabs[B->fmt->id];
    size_t M = A->rows, N = B->rows, G = (A->K + MX_BLOCK - 1) / MX_BLOCK;
    mxg_xsum *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->M = M;
    x->N = N;
    x->G = G;
    x->ua = ta->unit;
    x->ub = tb->unit;
    x->inv = pow2i(-(ta->unit + tb->unit));
    x->da = malloc(mx_nz(M * G) * sizeof *x->da);
    x->db = malloc(mx_nz(N * G) * sizeof *x->db);
    x->loa = malloc(mx_nz(M) * sizeof *x->loa);
    x->hia = malloc(mx_nz(M) * sizeof *x->hia);
    x->xna = malloc(mx_nz(M) * sizeof *x->xna);
    x->amaxa = malloc(mx_nz(M) * sizeof *x->amaxa);
    x->lob = malloc(mx_nz(N) * sizeof *x->lob);
    x->hib = malloc(mx_nz(N) * sizeof *x->hib);
    x->xnb = malloc(mx_nz(N) * sizeof *x->xnb);
    x->amaxb = malloc(mx_nz(N) * sizeof *x->amaxb);
    long spa, spb;
    if (!x->da || !x->db || !x->loa || !x->hia || !x->xna || !x->amaxa || !x->lob ||
        !x->hib || !x->xnb || !x->amaxb ||
        xsum_side(A, ta, s->decode, M, G, x->da, x->loa, x->hia, x->amaxa, x->xna, &spa) ||
        xsum_side(B, tb, s->decode, N, G, x->db, x->lob, x->hib, x->amaxb, x->xnb, &spb)) {
        mxg_xsum_free(x);
        return NULL;
    }
    /* the fused kernel's int64 test (fast64) for the widest pair; else
     * its test for GMP (slow: span > 126) for the widest pair, a row's
     * span hi - lo being its spread plus top - unit (an all-zero side
     * counted as if it had a row: a little stricter than the kernel's
     * per-element test, never looser) */
    long wa = spa + (ta->top - ta->unit), wb = spb + (tb->top - tb->unit);
    x->wide = wa + wb + 5 + clog2z(G) > 63;
    if (x->wide && wa + wb + clog2z(G) + 5 + 1 > 126) {
        mxg_xsum_free(x);
        return NULL;
    }
    return x;
}

double mxg_xsum_value(const mxg_xsum *x, size_t m, size_t n, uint64_t lo, uint64_t hi,
                      double w)
{
    if (x->loa[m] > x->hia[m] || x->lob[n] > x->hib[n])
        return 0.0 * w;
    __int128 v = x->wide ? (__int128)((unsigned __int128)hi << 64 | lo) : u64_signed(lo);
    return mxg_round_weighted_f64(v, x->loa[m] + x->lob[n], w);
}

void mxg_xsum_bounds(const mxg_xsum *x, const mx_gemm_spec *s, const mx_operand *A,
                     const mx_operand *B, const double *exact, mx_gemm_out *out)
{
    size_t N = x->N;
    for (size_t m = 0; m < x->M; m++)
        for (size_t n = 0; n < N; n++) {
            size_t i = m * N + n;
            /* as mxg_gemm_fused: no group's scale product can be below
             * 2^-149 when the rows' smallest scale exponents sum to -149
             * or more */
            int uf = x->xna[m] != INT_MAX && x->xnb[n] != INT_MAX &&
                     (long)x->xna[m] + x->xnb[n] < -149;
            mxg_bound_elem_n(s, A, B, m, n, 0.0, x->amaxa[m], x->amaxb[n], exact[i],
                             out->bound ? &out->bound[i] : NULL,
                             out->bound_acc ? &out->bound_acc[i] : NULL, NULL, uf);
        }
}

/* ---- 16-bit operands (BF16, FP16) -------------------------------------- */

/* The same pass for unscaled 16-bit operands, the shared expert's and the
 * bf16 policy's GEMMs.  Their values do not sit on one grid, so each (row,
 * 32-group) gets its own unit u (its lowest nonzero value's exponent, as
 * the engine's prep chooses it) and its integers v / 2^u; when the
 * operands' windows (gemm.c: at most 48 bits between the two sides) hold
 * every group, a group dot is again a sum of 32 integer products below 2^48
 * each, exact in binary64 in any order.  A group wider than its side's
 * window is split as the engine's prep splits it (gemm_prep.c): its bits
 * at and above 2^u go into the tile, those below are residual terms, added
 * as gemm_residual.c adds them -- the same exact sums, the same model
 * partials, and the bound's binary64 sum |a b| in the same order. */
typedef struct {
    int32_t m[65536];
    int16_t e[65536], top[65536];
    unsigned char bad[65536];
    int bf16; /* m and e of the nonzero codes follow from the BF16 fields */
    int ordered16; /* and bad_from: the format's code table's (mxg_scan16) */
    uint32_t bad_from;
} ftab16;

static ftab16 *ftabs16[MX_FORMAT_COUNT];

/* A BF16 code's m 2^e from its fields (the table's, for nonzero finite
 * codes: ftabs16_init checks every code), with no table to miss in cache. */
static inline void bf16_fields(uint16_t c, int32_t *m, int *e)
{
    uint32_t E = (c >> 7) & 0xFF, F = c & 0x7F;
    int32_t v = E ? (int32_t)(0x80 | F) : (int32_t)F;
    *m = c & 0x8000 ? -v : v;
    *e = E ? (int)E - 134 : -133;
    mxg_trim(m, e);
}

/* m 2^e of code c: by its fields for BF16, else by the table. */
static inline void code16(const ftab16 *t, uint16_t c, int32_t *m, int *e)
{
    if (t->bf16) {
        bf16_fields(c, m, e);
        return;
    }
    *m = t->m[c];
    *e = t->e[c];
}
static pthread_once_t ftabs16_once = PTHREAD_ONCE_INIT;

static void ftabs16_init(void)
{
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        if (f->bits != 16 || !f->is_signed)
            continue;
        ftab16 *t = malloc(sizeof *t);
        if (!t)
            continue;
        for (uint32_t c = 0; c < 65536; c++) {
            int32_t m;
            int e;
            mx_class k = mx_decode_int(f, c, &m, &e);
            mxg_trim(&m, &e);
            t->bad[c] = k == MX_CLASS_NAN || k == MX_CLASS_INF;
            t->m[c] = t->bad[c] ? 0 : m;
            t->e[c] = (int16_t)e;
            t->top[c] = (int16_t)(m ? e + 32 - __builtin_clz((uint32_t)abs(m)) : e);
        }
        const mxg_code_table *ct = mxg_code_table_get(f);
        t->ordered16 = ct && ct->ordered16;
        t->bad_from = ct ? ct->bad_from : 0;
        for (uint32_t c = 0; c < 65536 && t->ordered16; c++) /* the same e and top */
            t->ordered16 = t->bad[c] == ct->bad[c] &&
                           (t->bad[c] || (t->e[c] == ct->e[c] && t->top[c] == ct->top[c]));
        t->bf16 = id == MX_BF16;
        for (uint32_t c = 0; c < 65536 && t->bf16; c++) {
            int32_t m;
            int e;
            bf16_fields((uint16_t)c, &m, &e);
            if (t->m[c] && (t->m[c] != m || t->e[c] != e))
                t->bf16 = 0;
        }
        ftabs16[id] = t;
    }
}

static inline __attribute__((always_inline)) void model16_steps(const double *p, double pa,
                                                                const double *pb, float *gt)
{
    for (int h = 0; h < 2; h++) {
        v4d pv, bv;
        v4f gv;
        memcpy(&pv, p + 4 * h, sizeof pv);
        memcpy(&bv, pb + 4 * h, sizeof bv);
        memcpy(&gv, gt + 4 * h, sizeof gv);
        gv = gv + __builtin_convertvector(pv * pa * bv, v4f);
        memcpy(gt + 4 * h, &gv, sizeof gv);
    }
}

static FUSED_HOT void tile_model16(const double *p, double pa, const double *pb, float *gt)
{
    model16_steps(p, pa, pb, gt);
}

/* The 16-bit kernel's steps of group g for each activation row m < M whose
 * group fits its window (irra 0), when every lane's B group fits its
 * window and no element of the tile is slow: the engine's fp32-group step
 * (gt), the bound's sum (qt) and the exact sums -- in int64 (acc64) when it
 * is not NULL (the tile's sums all fit), else in 128 bits (acl/ach) -- as
 * the kernel's loop takes them row by row.  One function, so that the
 * steps inline into each clone (tile_steps's reason). */
static FUSED_HOT void tile_steps16(size_t M, size_t G, size_t g, const v4d *P, const v4d *Q,
                                   const unsigned char *irra, const int *ua, const int *loa,
                                   const int *hia, int want_group, int want_sabs,
                                   int want_exact, const double *pb, const double *fb,
                                   const v8i *dbv, float *gt, double *qt, v8u *acc64,
                                   v8u *acl, v8u *ach)
{
    for (size_t m = 0; m < M; m++) {
        size_t i = m * G + g;
        if (irra[i])
            continue;
        const double *pm = (const double *)&P[2 * m];
        double pa = pow2i(ua[i]);
        if (want_group)
            model16_steps(pm, pa, pb, gt + m * NT);
        if (want_sabs)
            sabs_steps((const double *)&Q[2 * m], pa, fb, qt + m * NT);
        /* a lane with P != 0 has its shift in 0..126; the others add 0
         * whatever the shift */
        if (want_exact && loa[m] <= hia[m] && acc64) {
            tile_acc64(&P[2 * m], ua[i] - loa[m], dbv, &acc64[m]);
        } else if (want_exact && loa[m] <= hia[m]) {
            v8i sh = *dbv + (long long)(ua[i] - loa[m]);
            acc128_steps(pm, &sh, &acl[m], &ach[m]);
        }
    }
}

/* Units of row r's groups into u[g * stride] as the engine's prep chooses
 * them (the lowest exponent of a nonzero value, or top - window for a
 * group wider than window, which irr[g * stride] marks; 0 for a group
 * without a nonzero value), lo/hi/amax of the row; -1 for a NaN or inf
 * code, else the number of wide groups. */
static int row_facts16(const mx_operand *o, const ftab16 *t, size_t r, size_t G,
                       size_t stride, int window, int *u, int *umin_out,
                       unsigned char *irr, int *lo_out, int *hi_out, double *amax_out)
{
    size_t K = o->K;
    const uint16_t *codes = (const uint16_t *)o->codes + mxg_row(o, r) * o->ld;
    int lo = INT_MAX, hi = INT_MIN, wide = 0;
    double amax = 0;
    for (size_t g = 0; g < G; g++) {
        size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
        int umin = INT_MAX, top = INT_MIN;
        if (t->ordered16) { /* the group's facts from its widest magnitude */
            uint16_t mx;
            umin = mxg_scan16(codes + k0, len, t->e, &mx);
            if (mx >= t->bad_from)
                return -1;
            if (mx) {
                double av = fabs((double)t->m[mx]) * pow2i(t->e[mx]); /* exact */
                amax = av > amax ? av : amax;
                top = t->top[mx];
            }
        }
        for (size_t i = 0; i < len && !t->ordered16; i++) {
            uint16_t c = codes[k0 + i];
            if (t->bad[c])
                return -1;
            if (!t->m[c])
                continue;
            double av = fabs((double)t->m[c]) * pow2i(t->e[c]); /* exact */
            amax = av > amax ? av : amax;
            umin = t->e[c] < umin ? t->e[c] : umin;
            top = t->top[c] > top ? t->top[c] : top;
        }
        u[g * stride] = umin == INT_MAX ? 0 : umin;
        if (umin_out)
            umin_out[g * stride] = u[g * stride];
        irr[g * stride] = 0;
        if (umin == INT_MAX)
            continue;
        if (top - umin > window) {
            u[g * stride] = top - window;
            irr[g * stride] = 1;
            wide++;
        }
        lo = umin < lo ? umin : lo;
        hi = top > hi ? top : hi;
    }
    *lo_out = lo;
    *hi_out = hi;
    *amax_out = amax;
    return wide;
}

/* Code c in a group of unit u as the engine's prep splits it: the bits at
 * and above 2^u as an integer (the value), those below as *lo 2^e(c). */
static inline double split16(const ftab16 *t, uint16_t c, int u, int32_t *lo)
{
    int32_t m = t->m[c];
    int e = t->e[c];
    *lo = 0;
    if (!m)
        return 0.0;
    if (e >= u)
        return (double)m * pow2i(e - u);
    int sh = u - e, neg = m < 0;
    uint32_t am = (uint32_t)abs(m);
    uint32_t hi = sh >= 31 ? 0 : am >> sh;
    uint32_t lo_m = am - (sh >= 31 ? 0 : hi << sh);
    *lo = neg ? -(int32_t)lo_m : (int32_t)lo_m;
    return neg ? -(double)hi : (double)hi;
}

/* The value of a finite BF16 code: the top half of an FP32. */
static inline float bf16_value(uint16_t c)
{
    uint32_t b = (uint32_t)c << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static const uint16_t zero_codes16[MX_BLOCK];

/* bt[k][l] = value(cp[l][k]) f[l] for a whole group of eight BF16 rows in
 * their windows: each value times 2^-u is an integer (exact), as the lane
 * by lane loop of mxg_gemm_fused16 computes it; k by k, the eight codes
 * widened to the FP32 whose top half they are and converted together. */
static FUSED_HOT void tile_decode_bf16(const uint16_t *const *cp, const double *f, v4d *bt4)
{
    const v4d f0 = {f[0], f[1], f[2], f[3]}, f1 = {f[4], f[5], f[6], f[7]};
    const uint16_t *c0 = cp[0], *c1 = cp[1], *c2 = cp[2], *c3 = cp[3];
    const uint16_t *c4 = cp[4], *c5 = cp[5], *c6 = cp[6], *c7 = cp[7];
    for (int k = 0; k < MX_BLOCK; k++) {
        v4u32 w0 = {c0[k], c1[k], c2[k], c3[k]}, w1 = {c4[k], c5[k], c6[k], c7[k]};
        bt4[2 * k] = __builtin_convertvector((v4f)(w0 << 16), v4d) * f0;
        bt4[2 * k + 1] = __builtin_convertvector((v4f)(w1 << 16), v4d) * f1;
    }
}

/* Adds v 2^sh to element j's exact sum (128-bit, or GMP when slow). */
static void add_exact(unsigned __int128 *acc, mpz_t *big, const unsigned char *slow,
                      size_t j, int64_t v, int sh)
{
    if (!slow[j]) {
        acc[j] += shl(v, sh);
        return;
    }
    mpz_t t;
    mpz_init_set_si(t, (long)v);
    mpz_mul_2exp(t, t, (mp_bitcnt_t)sh);
    mpz_add(big[j], big[j], t);
    mpz_clear(t);
}

/* The part of |x| 2^e (x < 2^24) in [2^lo, 2^hi), over 2^lo. */
static int64_t plane_part(uint32_t x, int e, int lo, int hi)
{
    if (e >= hi || lo - e >= 32)
        return 0;
    unsigned __int128 v = e >= lo ? (unsigned __int128)x << (e - lo) : x >> (lo - e);
    return (int64_t)(v & (((unsigned __int128)1 << (hi - lo)) - 1));
}

/* A wide A group's bits below its unit u (the residual entries) are also
 * dotted with the tile, as up to NPL planes of at most wa bits each: plane
 * p (1 <= p <= NPL) holds the bits at and above up = max(u - p wa, umin)
 * and below u - (p - 1) wa, umin the group's lowest exponent.  A plane's
 * integers are below 2^wa and a regular B group's below 2^wb, wa + wb <=
 * 48, so each plane's dot is exact in binary64 like the main one.  A group
 * holds few such entries (the real layer's shared expert: 1 to 10 of 32),
 * so a plane's dot runs over the group's entries alone (planes_dots).
 * Groups that need more planes keep the term-by-term path. */
#define NPL 3

/* The planes of A's wide groups: pv[p][r] is residual entry r's integer in
 * plane p + 1, signed (set for the entries of groups with planes), np[i]
 * the planes of (row, group) i = m G + g: 1 to NPL, or 0 (not wide, or
 * more than NPL planes). */
typedef struct {
    double *pv[NPL];
    unsigned char *np;
} planes16;

static void planes16_free(planes16 *q)
{
    for (int p = 0; p < NPL; p++)
        free(q->pv[p]);
    free(q->np);
}

static int planes_of(int u, int umin, int wa)
{
    return (u - umin + wa - 1) / wa;
}

static mx_status planes16_build(planes16 *q, size_t M, size_t G, int wa, const int *ua,
                                const int *umina, const unsigned char *irra,
                                const size_t *roff, const int32_t *rla, const int16_t *rea)
{
    memset(q, 0, sizeof *q);
    size_t nres = roff[M * G];
    q->np = calloc(M * G + 1, 1);
    if (!q->np)
        return MX_ENOMEM;
    for (int p = 0; p < NPL; p++)
        if (!(q->pv[p] = calloc(nres + 1, sizeof(double))))
            return MX_ENOMEM;
    for (size_t i = 0; i < M * G; i++) {
        int np = irra[i] && wa >= 8 ? planes_of(ua[i], umina[i], wa) : 0;
        if (np < 1 || np > NPL)
            continue;
        q->np[i] = (unsigned char)np;
        for (size_t r = roff[i]; r < roff[i + 1]; r++) {
            uint32_t x = (uint32_t)abs(rla[r]);
            for (int p = 1; p <= np; p++) { /* each plane below 2^hi, above 2^lo */
                int hi = ua[i] - (p - 1) * wa, lo = ua[i] - p * wa;
                lo = lo > umina[i] ? lo : umina[i];
                int64_t v = plane_part(x, rea[r], lo, hi);
                q->pv[p - 1][r] = rla[r] < 0 ? -(double)v : (double)v;
            }
        }
    }
    return MX_OK;
}

/* The np planes of one wide A group, its residual entries r0 to r1 (at
 * columns rka[r] of the group), dotted with the tile's eight lanes: lp[p]
 * plane p + 1's partials, lq[p] its magnitudes' (zero when bta is NULL).
 * Exact in any order, as the full dots are: integers below 2^53. */
static FUSED_HOT void planes_dots(int np, size_t r0, size_t r1, const unsigned char *rka,
                                  double *const *pv, const v4d *bt, const v4d *bta,
                                  v4d (*lp)[2], v4d (*lq)[2])
{
    for (int p = 0; p < np; p++) {
        const double *v = pv[p];
        v4d s0 = {0}, s1 = {0}, q0 = {0}, q1 = {0};
        for (size_t r = r0; r < r1; r++) {
            size_t k = rka[r];
            s0 += v[r] * bt[2 * k];
            s1 += v[r] * bt[2 * k + 1];
            if (bta) {
                double a = fabs(v[r]);
                q0 += a * bta[2 * k];
                q1 += a * bta[2 * k + 1];
            }
        }
        lp[p][0] = s0;
        lp[p][1] = s1;
        lq[p][0] = q0;
        lq[p][1] = q1;
    }
}

/* One wide A group (its np planes' partials lp, magnitudes' lq) against
 * nt lanes whose B groups fit their window, none of them slow: what the
 * general residual path does for such lanes -- the group's exact value v
 * (main part and planes, in the element's frame) into acc, its sum |a b|
 * (main part, then the planes' exact sum rounded once) into qt, RN32(v)
 * into gt -- with no choice made per lane and the 128-bit sums of the
 * eight lanes side by side.  A lane's terms that are zero add zero
 * whatever their shift (masked to 0..127; the span test keeps the others
 * there). */
static FUSED_HOT void planes_lanes(size_t nt, int u, int wa, int umin, int lo, int np,
                                   const v4d (*lp)[2], const v4d (*lq)[2],
                                   const double *pm, const double *qm, double pa,
                                   const double *fb, const v8i *db, const int *lob,
                                   unsigned __int128 *acc, double *qt, float *gt)
{
    const v4i *dbh = (const v4i *)db;
    for (int h = 0; h < 2 && 4 * (size_t)h < nt; h++) {
        v4u vl = {0}, vh = {0}, al = {0}, ah = {0};
        v4i t;
        // cppcheck-suppress objectIndex ; db is one v8i, read as two v4i halves
        v4i sh = dbh[h] + (long long)(u - lo);
        lanes_i64(pm + 4 * h, &t);
        add128(&t, &sh, &vl, &vh);
        for (int p = 0; p < np; p++) {
            int e = u - (p + 1) * wa;
            sh = dbh[h] + (long long)((e > umin ? e : umin) - lo);
            lanes_i64((const double *)&lp[p][h], &t);
            add128(&t, &sh, &vl, &vh);
            lanes_i64((const double *)&lq[p][h], &t);
            add128(&t, &sh, &al, &ah);
        }
        size_t l0 = 4 * (size_t)h;
        if (l0 + 4 <= nt) {
            /* four lanes at once; a lane the four-lane roundings leave
             * (ok 0) rounded by the scalar function */
            v4i e = (v4i){lob[l0], lob[l0 + 1], lob[l0 + 2], lob[l0 + 3]} + (long long)lo;
            mxg_v4i ok;
            if (qt) {
                v4d r, q, qa, fa;
                mxg_round_f64_pos_x4(&al, &ah, &e, &r, &ok);
                for (int i = 0; i < 4; i++)
                    if (!ok[i])
                        r[i] = mxg_round_f64_pos((unsigned __int128)ah[i] << 64 | al[i],
                                                 (int)e[i]);
                memcpy(&q, qt + l0, sizeof q);
                memcpy(&qa, qm + l0, sizeof qa);
                memcpy(&fa, fb + l0, sizeof fa);
                q += qa * pa * fa;
                q += r;
                memcpy(qt + l0, &q, sizeof q);
            }
            if (acc)
                for (int i = 0; i < 4; i++)
                    acc[l0 + i] += (unsigned __int128)vh[i] << 64 | vl[i];
            if (gt) {
                v4f f, g;
                mxg_round_f32_x4(&vl, &vh, &e, &f, &ok);
                for (int i = 0; i < 4; i++)
                    if (!ok[i])
                        f[i] = mxg_round_f32((__int128)((unsigned __int128)vh[i] << 64 | vl[i]),
                                             (int)e[i]);
                memcpy(&g, gt + l0, sizeof g);
                g += f;
                memcpy(gt + l0, &g, sizeof g);
            }
            continue;
        }
        for (size_t i = 0; i < 4 && 4 * (size_t)h + i < nt; i++) {
            size_t l = 4 * (size_t)h + i;
            unsigned __int128 v = (unsigned __int128)vh[i] << 64 | vl[i];
            unsigned __int128 va = (unsigned __int128)ah[i] << 64 | al[i];
            int base = lo + lob[l];
            if (qt) {
                qt[l] += qm[l] * pa * fb[l];
                qt[l] += mxg_round_f64_pos(va, base);
            }
            if (acc)
                acc[l] += v;
            if (gt)
                gt[l] = gt[l] + mxg_round_f32_fast((__int128)v, base);
        }
    }
}

/* f = RN32(x + y) lane by lane for exact binary64 x and y (VD, VU, VI,
 * VF: the lanes' binary64, unsigned, signed and FP32 vector types): the
 * exact sum s + e (TwoSum, s = RN64(x + y)), then s one binary64 step
 * toward e where s is an FP32 midpoint and e != 0 -- away from zero where
 * e has s's sign, else toward -- and converted.  slow: the lanes below
 * FP32's normal range (other midpoints there), left to the caller. */
#define RN32_TWO_SUM(VD, VU, VI, VF, x, y, f, slow)                                        \
    do {                                                                                   \
        VD sv_ = (x) + (y), bb_ = sv_ - (x), ev_ = ((x) - (sv_ - bb_)) + ((y) - bb_);     \
        VU sb_ = (VU)sv_, eb_ = (VU)ev_, mag_ = sb_ & 0x7FFFFFFFFFFFFFFFull;               \
        VU mid_ = (VU)((sb_ & 0x1FFFFFFFull) == 0x10000000ull) & (VU)((eb_ << 1) != 0);   \
        sb_ += (1 - (((sb_ ^ eb_) >> 63) << 1)) & mid_;                                   \
        (f) = __builtin_convertvector((VD)sb_, VF);                                       \
        (slow) = (VI)(mag_ < 0x3810000000000000ull) & (VI)(mag_ != 0);                    \
    } while (0)

/* RN32 of lane l's exact value pm 2^shm + pl 2^shp (frame 2^(lo + lob[l]))
 * through its 128-bit integer: plane1_lanes's lanes below FP32's normal
 * range. */
static float plane1_slow(const double *pm, const double *pl, const v8i *shm, const v8i *shp,
                         int lo, const int *lob, size_t l)
{
    __int128 v = mxg_shl128((int64_t)pm[l], (int)(*shm)[l]) +
                 mxg_shl128((int64_t)pl[l], (int)(*shp)[l]);
    return mxg_round_f32(v, lo + lob[l]);
}

/* planes_lanes for a group of one plane (np = 1), its partials pp and
 * magnitudes' qp in units 2^up, with no 128-bit sum where it can: the
 * exact value pm 2^u + pp 2^up (times the lane's 2^ub) goes into the row's
 * lane sums acl/ach as two terms (tile_acc128; shm, shp their shifts); the
 * magnitudes' sum of the plane, qp 2^(up + ub), is one binary64 number,
 * the value planes_lanes rounds, so qt adds it as is; and the model's step
 * RN32(x + y), x = pm 2^(u + ub) and y = pp 2^(up + ub) exact binary64
 * numbers, from their exact sum s + e (s = RN64(x + y)): RN32(s) is
 * RN32(x + y) unless s is an FP32 midpoint and e != 0
 * (mxg_round_f32_fast's argument), and there s one binary64 step toward e
 * rounds as x + y does.  A lane below the FP32 normal range (other
 * midpoints there) goes to mxg_round_f32 with its 128-bit value (frame
 * 2^(lo + lob[l])). */
static FUSED_HOT void plane1_lanes(size_t nt, const double *pm, const double *qm,
                                   const v4d *pp, const v4d *qp, double pa, double pup,
                                   const double *pb, const double *fb, const v8i *shm,
                                   const v8i *shp, int lo, const int *lob, v8u *acl,
                                   v8u *ach, double *qt, float *gt)
{
    if (acl) {
        tile_acc128(pm, shm, acl, ach);
        tile_acc128((const double *)pp, shp, acl, ach);
    }
    for (int h = 0; h < 2; h++) {
        v4d pv, bv;
        memcpy(&pv, pm + 4 * h, sizeof pv);
        memcpy(&bv, pb + 4 * h, sizeof bv);
        if (qt) {
            v4d qv, fv, tv;
            memcpy(&qv, qm + 4 * h, sizeof qv);
            memcpy(&fv, fb + 4 * h, sizeof fv);
            memcpy(&tv, qt + 4 * h, sizeof tv);
            tv = tv + qv * pa * fv;
            tv = tv + qp[h] * pup * fv;
            memcpy(qt + 4 * h, &tv, sizeof tv);
        }
        if (!gt)
            continue;
        v4d x = pv * pa * bv, y = pp[h] * pup * bv;
        v4f f;
        v4i slow;
        RN32_TWO_SUM(v4d, v4u, v4i, v4f, x, y, f, slow);
        for (int i = 0; i < 4 && 4 * (size_t)h + i < nt; i++)
            if (slow[i])
                f[i] = plane1_slow(pm, (const double *)pp, shm, shp, lo, lob,
                                   4 * (size_t)h + (size_t)i);
        v4f g;
        memcpy(&g, gt + 4 * h, sizeof g);
        g += f;
        memcpy(gt + 4 * h, &g, sizeof g);
    }
}

#if defined(HAVE_STEPS8) && defined(HAVE_ROUND_DQ)
/* The 16-bit kernel's per-row steps with a row's eight lanes in one
 * AVX-512 vector (64-bit integer conversions from AVX-512 DQ): the same
 * operations, lane by lane, as the 4-lane helpers tile_steps16 and
 * plane1_lanes inline, for the AVX-512 dots kind on a DQ processor (tests
 * that force a lower kind hold the 4-lane ones to the engine too). */
#define STEPS8_DQ __attribute__((optimize("O3"), target("avx512f,avx512dq")))

/* acc128_steps on eight lanes: lo/hi += P 2^sh modulo 2^128, P integers
 * below 2^53 (converted exactly), shifts in 0..127 where P != 0 */
static inline __attribute__((always_inline)) STEPS8_DQ void acc128_8(v8d p, v8i sh, v8u *lo,
                                                                  v8u *hi)
{
    v8i v = __builtin_convertvector(p, v8i), s = sh & 127, s6 = s & 63;
    v8i low = s < 64;
    v8u tl = ((v8u)v << (v8u)s6) & (v8u)low;
    v8u th = ((v8u)((v >> 1) >> (63 - s6)) & (v8u)low) | (((v8u)v << (v8u)s6) & ~(v8u)low);
    v8u nl = *lo + tl;
    *hi = *hi + th - (v8u)(nl < tl);
    *lo = nl;
}

static STEPS8_DQ void tile_steps16_8(size_t M, size_t G, size_t g, const v4d *P, const v4d *Q,
                                     const unsigned char *irra, const int *ua, const int *loa,
                                     const int *hia, int want_group, int want_sabs,
                                     int want_exact, const double *pb, const double *fb,
                                     const v8i *dbv, float *gt, double *qt, v8u *acc64,
                                     v8u *acl, v8u *ach)
{
    const v8d magic = (v8d){0} + 0x1.8p52;
    v8d bv, fv;
    memcpy(&bv, pb, sizeof bv);
    memcpy(&fv, fb, sizeof fv);
    for (size_t m = 0; m < M; m++) {
        size_t i = m * G + g;
        if (irra[i])
            continue;
        const v8d pv = *(const v8d *)&P[2 * m]; /* P: 64-byte aligned rows */
        double pa = pow2i(ua[i]);
        if (want_group) {
            v8f gv;
            memcpy(&gv, gt + m * NT, sizeof gv);
            gv = gv + __builtin_convertvector(pv * pa * bv, v8f);
            memcpy(gt + m * NT, &gv, sizeof gv);
        }
        if (want_sabs) {
            v8d tv, qv = *(const v8d *)&Q[2 * m];
            memcpy(&tv, qt + m * NT, sizeof tv);
            tv = tv + qv * pa * fv;
            memcpy(qt + m * NT, &tv, sizeof tv);
        }
        if (!want_exact || loa[m] > hia[m])
            continue;
        if (acc64) { /* tile_acc64's reading: |P| < 2^51 there */
            v8u v = (v8u)(pv + magic) - (v8u)magic;
            v8u sh = (v8u)(*dbv + (long long)(ua[i] - loa[m])) & 63;
            acc64[m] += v << sh;
        } else {
            acc128_8(pv, *dbv + (long long)(ua[i] - loa[m]), &acl[m], &ach[m]);
        }
    }
}

static STEPS8_DQ void plane1_lanes8(size_t nt, const double *pm, const double *qm,
                                    const v4d *pp, const v4d *qp, double pa, double pup,
                                    const double *pb, const double *fb, const v8i *shm,
                                    const v8i *shp, int lo, const int *lob, v8u *acl,
                                    v8u *ach, double *qt, float *gt)
{
    v8d pv, yv, bv;
    memcpy(&pv, pm, sizeof pv);
    memcpy(&yv, pp, sizeof yv); /* the plane's partials (two 4-lane halves) */
    memcpy(&bv, pb, sizeof bv);
    if (acl) {
        acc128_8(pv, *shm, acl, ach);
        acc128_8(yv, *shp, acl, ach);
    }
    if (qt) {
        v8d qv, qpv, fv, tv;
        memcpy(&qv, qm, sizeof qv);
        memcpy(&qpv, qp, sizeof qpv);
        memcpy(&fv, fb, sizeof fv);
        memcpy(&tv, qt, sizeof tv);
        tv = tv + qv * pa * fv;
        tv = tv + qpv * pup * fv;
        memcpy(qt, &tv, sizeof tv);
    }
    if (!gt)
        return;
    v8d x = pv * pa * bv, y = yv * pup * bv;
    v8f f;
    v8i slow;
    RN32_TWO_SUM(v8d, v8u, v8i, v8f, x, y, f, slow);
    for (size_t l = 0; l < nt; l++)
        if (slow[l])
            f[l] = plane1_slow(pm, (const double *)pp, shm, shp, lo, lob, l);
    v8f gv;
    memcpy(&gv, gt, sizeof gv);
    gv += f;
    memcpy(gt, &gv, sizeof gv);
}
#endif

/* The activation side of a 16-bit call under window wa, decoded once
 * (a split's shared rows, gemm_internal.h): each (row, group)'s unit and
 * integers at and above it ([M][KP]), the residual entries below it, the
 * planes of wide groups, and each row's lo, hi, amax; st is MX_ERANGE
 * when a row holds a NaN or inf code. */
struct mxg_fused16_rows {
    double *ad, *aa, *amaxa;
    /* A's bits below 2^u (its residual entries, as the engine's prep
     * lists them): value rla 2^rea at column k0 + rka, group (m, g)'s from
     * roff[m G + g] to roff[m G + g + 1] */
    int32_t *rla;
    int16_t *rea;
    unsigned char *rka, *irra;
    size_t *roff;
    int *ua, *umina, *loa, *hia;
    planes16 pq;
    int wide; /* 1 when a group of A is wider than its window (irra) */
    mx_status st;
};

static void rows16_release(mxg_fused16_rows *r)
{
    planes16_free(&r->pq);
    free(r->ad);
    free(r->aa);
    free(r->amaxa);
    free(r->rla);
    free(r->rea);
    free(r->rka);
    free(r->irra);
    free(r->roff);
    free(r->ua);
    free(r->umina);
    free(r->loa);
    free(r->hia);
}

/* 1 when mxg_gemm_fused16 takes operands of these formats under s
 * (windows aside); sets its code tables. */
static int fused16_applies(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                           const ftab16 **ta, const ftab16 **tb)
{
    if (!fused_on || A->fmt->bits != 16 || B->fmt->bits != 16 || !A->fmt->is_signed ||
        !B->fmt->is_signed || A->scales || B->scales || s->model.kind == MX_ACC_FP32_SEQ ||
        s->model.kind == MX_ACC_DEQUANT_FP32)
        return 0;
    pthread_once(&ftabs_once, ftabs_init);
    pthread_once(&ftabs16_once, ftabs16_init);
    *ta = ftabs16[A->fmt->id];
    *tb = ftabs16[B->fmt->id];
    return *ta && *tb;
}

/* rows16_build's rows m0 .. m0 + n - 1, each on its own: row facts, the
 * split values (zeros past K), and the row's residual entries listed from
 * m KP (at most KP of them) with roff[m G + g + 1] counted from the row's
 * start; rows16_build then packs them in row order. */
typedef struct {
    const mx_operand *A;
    const ftab16 *ta;
    int wa;
    size_t G, KP;
    mxg_fused16_rows *r;
    size_t *nrow; /* residual entries of each row */
} rows16_ctx;

static mx_status rows16_part(void *v, size_t m0, size_t n)
{
    const rows16_ctx *c = v;
    mxg_fused16_rows *r = c->r;
    const mx_operand *A = c->A;
    size_t K = A->K, G = c->G, KP = c->KP;
    for (size_t m = m0; m < m0 + n; m++) {
        if (row_facts16(A, c->ta, m, G, 1, c->wa, r->ua + m * G, r->umina + m * G,
                        r->irra + m * G, &r->loa[m], &r->hia[m], &r->amaxa[m]) < 0)
            return MX_ERANGE;
        const uint16_t *codes = (const uint16_t *)A->codes + mxg_row(A, m) * A->ld;
        size_t nres = m * KP;
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
            for (size_t k = k0; k < k0 + len; k++) {
                size_t i = m * KP + k;
                int32_t lo;
                r->ad[i] = split16(c->ta, codes[k], r->ua[m * G + g], &lo);
                r->aa[i] = fabs(r->ad[i]);
                if (lo) {
                    r->rla[nres] = lo;
                    r->rea[nres] = c->ta->e[codes[k]];
                    r->rka[nres++] = (unsigned char)(k - k0);
                }
            }
            for (size_t k = k0 + len; k < k0 + MX_BLOCK; k++)
                r->ad[m * KP + k] = r->aa[m * KP + k] = 0.0;
            r->roff[m * G + g + 1] = nres - m * KP;
        }
        c->nrow[m] = nres - m * KP;
    }
    return MX_OK;
}

/* A's rows for the 16-bit kernel, by blocks of rows on the pool (every
 * row on its own; the residual entries then packed in row order, so the
 * arrays are the same for any thread count). */
static void rows16_build(const mx_operand *A, const ftab16 *ta, int wa,
                         mxg_fused16_rows *r)
{
    size_t M = A->rows, K = A->K, G = (K + MX_BLOCK - 1) / MX_BLOCK, KP = G * MX_BLOCK;
    memset(r, 0, sizeof *r); /* st MX_OK */
    size_t *nrow = malloc((M + 1) * sizeof *nrow);
    r->ad = malloc((M * KP + 1) * sizeof *r->ad);
    r->aa = malloc((M * KP + 1) * sizeof *r->aa);
    r->rla = malloc((M * KP + 1) * sizeof *r->rla);
    r->rea = malloc((M * KP + 1) * sizeof *r->rea);
    r->rka = malloc(M * KP + 1);
    r->roff = malloc((M * G + 1) * sizeof *r->roff);
    r->ua = malloc((M * G + 1) * sizeof *r->ua);
    r->umina = malloc((M * G + 1) * sizeof *r->umina);
    r->loa = malloc((M + 1) * sizeof *r->loa);
    r->hia = malloc((M + 1) * sizeof *r->hia);
    r->irra = malloc(M * G + 1);
    r->amaxa = malloc((M + 1) * sizeof *r->amaxa);
    if (!nrow || !r->ad || !r->aa || !r->rla || !r->rea || !r->rka || !r->roff || !r->ua ||
        !r->umina || !r->loa || !r->hia || !r->irra || !r->amaxa) {
        free(nrow);
        r->st = MX_ENOMEM;
        return;
    }
    r->ad[M * KP] = r->aa[M * KP] = 0.0;
    rows16_ctx c = {A, ta, wa, G, KP, r, nrow};
    if ((r->st = mx_parallel_rows(M, 4, rows16_part, &c)) != MX_OK) {
        free(nrow);
        return;
    }
    for (size_t i = 0; i < M * G && !r->wide; i++)
        r->wide = r->irra[i] != 0;
    size_t nres = 0; /* row m's entries from m KP to nres (nres <= m KP) */
    r->roff[0] = 0;
    for (size_t m = 0; m < M; m++) {
        memmove(r->rla + nres, r->rla + m * KP, nrow[m] * sizeof *r->rla);
        memmove(r->rea + nres, r->rea + m * KP, nrow[m] * sizeof *r->rea);
        memmove(r->rka + nres, r->rka + m * KP, nrow[m]);
        for (size_t g = 0; g < G; g++)
            r->roff[m * G + g + 1] += nres;
        nres += nrow[m];
    }
    free(nrow);
    r->st = planes16_build(&r->pq, M, G, wa, r->ua, r->umina, r->irra, r->roff, r->rla,
                           r->rea);
}

mxg_fused16_rows *mxg_fused16_rows_new(const mx_gemm_spec *s, const mx_operand *A,
                                       const mx_operand *B, int wa)
{
    const ftab16 *ta, *tb;
    if (!fused16_applies(s, A, B, &ta, &tb))
        return NULL;
    mxg_fused16_rows *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    rows16_build(A, ta, wa, r);
    if (r->st == MX_ENOMEM) { /* the kernel will try (and report) again */
        mxg_fused16_rows_free(r);
        return NULL;
    }
    return r;
}

int mxg_fused16_a_wide(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                       int wa)
{
    const ftab16 *ta, *tb;
    if (!fused16_applies(s, A, B, &ta, &tb))
        return 0;
    size_t G = (A->K + MX_BLOCK - 1) / MX_BLOCK;
    int *u = malloc((G + 1) * sizeof *u);
    unsigned char *irr = malloc(G + 1);
    int wide = 0;
    for (size_t m = 0; u && irr && m < A->rows && !wide; m++) {
        int lo, hi;
        double amax;
        int w = row_facts16(A, ta, m, G, 1, wa, u, NULL, irr, &lo, &hi, &amax);
        if (w < 0)
            break; /* a NaN or inf code: the kernels report it */
        wide = w > 0;
    }
    free(u);
    free(irr);
    return wide;
}

int mxg_fused16_rows_wide(const mxg_fused16_rows *r)
{
    return r && r->st == MX_OK && r->wide;
}

void mxg_fused16_rows_free(mxg_fused16_rows *r)
{
    if (!r)
        return;
    rows16_release(r);
    free(r);
}

/* One tile of mxg_gemm_fused16: its eight weight rows (rowp, nt of them
 * from n0), their scale-free powers pbt/fbt by group, the elements' sums
 * (acc, big: 128-bit and GMP; acl/ach: the regular groups' 128-bit halves;
 * acc64: int64 when fast64), which are slow, the model's and the bound's
 * sums (gt, qt); and the group in flight: its decoded tile bt, |bt|, the
 * dots P and Q, B's bits below the window (rlb), the lanes' shifts (db,
 * dbv) and whether a lane's group is wider than its window (birr). */
typedef struct {
    v8i dbv;
    size_t n0, nt;
    const uint16_t *rowp[NT];
    int any_slow, fast64, birr;
    int db[NT];
    int32_t rlb[NT][MX_BLOCK];
    double *pbt, *fbt;
    unsigned __int128 *acc;
    mpz_t *big;
    unsigned char *slow, *eslow;
    float *gt;
    double *qt;
    v8u *acl, *ach, *acc64;
    v4d *bt, *bta, *P, *Q;
} t16;

/* Tile ti's part of the call's storage (each array two tiles long). */
static void t16_bind(t16 *t, int ti, size_t M, size_t G, v4d *bt, v4d *bta, v4d *P, v4d *Q,
                     double *pbt, double *fbt, unsigned __int128 *acc, mpz_t *big,
                     unsigned char *slow, unsigned char *eslow, float *gt, double *qt,
                     v8u *acl, v8u *ach, v8u *acc64)
{
    size_t i = (size_t)ti, MT = M * NT + 1;
    t->bt = bt + i * 2 * MX_BLOCK;
    t->bta = bta + i * 2 * MX_BLOCK;
    t->P = P + i * (2 * M + 2);
    t->Q = Q + i * (2 * M + 2);
    t->pbt = pbt + i * NT * G;
    t->fbt = fbt + i * NT * G;
    t->acc = acc + i * MT;
    t->big = big + i * MT;
    t->slow = slow + i * MT;
    t->eslow = eslow + i * MT;
    t->gt = gt + i * MT;
    t->qt = qt + i * MT;
    t->acl = acl + i * (M + 1);
    t->ach = ach + i * (M + 1);
    t->acc64 = acc64 + i * (M + 1);
}

/* A call of mxg_gemm_fused16: its operands and what it wants, the
 * activation rows (R), the weight rows' units, windows and facts (irrb,
 * ub, lob, hib, amaxb), the outputs it fills (exact, gacc), the bounds'
 * constants, and the GMP elements counted (nslow). */
typedef struct {
    const mx_gemm_spec *s;
    const mx_operand *A, *B;
    mx_gemm_out *out;
    const ftab16 *tb;
    size_t M, N, K, G, KP;
    int wa, wb, want_group, want_bnd, want_sabs, want_exact, cg, bf16_b;
    long spa; /* the widest activation row's span (fast64) */
    size_t nslow;
    const mxg_fused16_rows *R;
    const unsigned char *irrb;
    const int *ub, *lob, *hib;
    const double *amaxb;
    double *exact;
    float *gacc;
    mxg_bound_call bc;
} f16call;

/* Tile t (n0, nt set) started: its rows, scale-free powers, cleared sums,
 * its slow elements (GMP) and whether its sums fit int64 (fast64). */
static void t16_start(f16call *c, t16 *t)
{
    const mx_operand *B = c->B;
    size_t M = c->M, G = c->G;
    int wa = c->wa, wb = c->wb, want_exact = c->want_exact, cg = c->cg;
    long spa = c->spa;
    const int *loa = c->R->loa, *hia = c->R->hia, *ub = c->ub, *lob = c->lob, *hib = c->hib;
    size_t n0 = t->n0, nt = t->nt;
    double *pbt = t->pbt, *fbt = t->fbt;
    unsigned __int128 *acc = t->acc;
    mpz_t *big = t->big;
    unsigned char *slow = t->slow, *eslow = t->eslow;
    float *gt = t->gt;
    double *qt = t->qt;
    v8u *acl = t->acl, *ach = t->ach, *acc64 = t->acc64;
    const uint16_t **rowp = t->rowp;
    for (size_t l = 0; l < NT; l++) {
        rowp[l] = l < nt ? (const uint16_t *)B->codes + mxg_row(B, n0 + l) * B->ld : NULL;
        for (size_t g = 0; g < G; g++) {
            int u = l < nt ? ub[(n0 + l) * G + g] : 0;
            pbt[g * NT + l] = pow2i(u);
            fbt[g * NT + l] = l < nt ? pow2i(u) : 0.0;
        }
    }
    t->any_slow = 0;
    for (size_t m = 0; m < M; m++)
        for (size_t l = 0; l < NT; l++) {
            size_t j = m * NT + l;
            acc[j] = 0;
            gt[j] = 0.0f;
            qt[j] = 0.0;
            slow[j] = eslow[j] = 0;
            if (l >= nt)
                continue;
            size_t n = n0 + l;
            long span = ((long)hia[m] - loa[m]) + ((long)hib[n] - lob[n]) + cg;
            /* the engine's slow elements (the order of their bound's
             * sums differs), and those this call sums in GMP */
            eslow[j] = loa[m] <= hia[m] && lob[n] <= hib[n] && span > 126;
            slow[j] = want_exact && eslow[j];
            if (slow[j]) {
                mpz_init(big[j]);
                c->nslow++;
                t->any_slow = 1;
            }
        }
    /* every partial sum of every element's terms below 2^(span - 6)
     * when the widest rows' span fits 63 bits, none slow then; and a
     * group partial below 2^(wa + wb + 5) <= 2^51 (tile_acc64's
     * reading of it) */
    long spb = 0;
    for (size_t l = 0; l < nt; l++)
        if (lob[n0 + l] <= hib[n0 + l] && hib[n0 + l] - lob[n0 + l] > spb)
            spb = hib[n0 + l] - lob[n0 + l];
    t->fast64 = want_exact && wa + wb <= 46 && spa + spb + cg <= 63;
    for (size_t m = 0; m < M; m++)
        acl[m] = ach[m] = acc64[m] = (v8u){0};
}

/* Group g of tile t's rows decoded into bt (|bt| into bta when the bound
 * sums are wanted), with B's bits below the window (rlb), the lanes'
 * shifts (db, dbv) and whether a lane's group is wider than its window. */
static void t16_decode(const f16call *c, t16 *t, size_t g)
{
    const ftab16 *tb = c->tb;
    size_t K = c->K, G = c->G;
    int want_sabs = c->want_sabs, bf16_b = c->bf16_b;
    const unsigned char *irrb = c->irrb;
    const int *ub = c->ub, *lob = c->lob, *hib = c->hib;
    size_t n0 = t->n0, nt = t->nt;
    size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
    const uint16_t *const *rowp = t->rowp;
    v4d *bt = t->bt, *bta = t->bta;
    double *b = (double *)bt;
    int32_t(*rlb)[MX_BLOCK] = t->rlb; /* B's bits below 2^u, per lane */
    int birr = 0;
    int *db = t->db; /* B's part of a lane's shift (0: the lane adds nothing) */
    /* every lane a BF16 group within its window (or padding), a
     * whole group: the tile in one vector pass */
    int tile16 = bf16_b && len == MX_BLOCK;
    for (size_t l = 0; l < nt && tile16; l++)
        tile16 = !irrb[(n0 + l) * G + g];
    if (tile16) {
        const uint16_t *cp[NT];
        double f8[NT];
        for (size_t l = 0; l < NT; l++) {
            size_t n = n0 + l;
            db[l] = l < nt && lob[n] <= hib[n] ? ub[n * G + g] - lob[n] : 0;
            cp[l] = rowp[l] ? rowp[l] + k0 : zero_codes16;
            f8[l] = rowp[l] ? pow2i(-ub[n * G + g]) : 0.0;
        }
        tile_decode_bf16(cp, f8, bt);
    }
    for (size_t l = 0; l < NT && !tile16; l++) {
        size_t k = 0, n = n0 + l;
        db[l] = l < nt && lob[n] <= hib[n] ? ub[n * G + g] - lob[n] : 0;
        if (rowp[l]) {
            const uint16_t *c = rowp[l] + k0;
            int u = ub[n * G + g];
            birr |= irrb[n * G + g];
            if (bf16_b && !irrb[n * G + g]) {
                /* every value is v 2^u with v an integer below
                 * 2^wb: exact from the FP32 the code is the top
                 * half of, with no table */
                double f = pow2i(-u);
                for (; k < len; k++) /* rlb: read for irregular lanes only */
                    b[k * NT + l] = (double)bf16_value(c[k]) * f;
            }
            for (; k < len; k++)
                b[k * NT + l] = split16(tb, c[k], u, &rlb[l][k]);
        }
        for (; k < MX_BLOCK; k++) {
            b[k * NT + l] = 0.0;
            rlb[l][k] = 0;
        }
    }
    for (size_t l = 0; l < NT; l++)
        t->dbv[l] = db[l];
    t->birr = birr;
    if (want_sabs)
        tile_abs(bt, bta);
}

/* Group g's dots (t->P, t->Q) taken into tile t's sums and model steps:
 * the regular rows at once where the tile allows, the wide ones by their
 * planes or term by term, as the engine's residual path. */
static void t16_steps(f16call *c, t16 *t, size_t g)
{
    const ftab16 *tb = c->tb;
    size_t M = c->M, K = c->K, G = c->G, KP = c->KP;
    int wa = c->wa, want_group = c->want_group, want_sabs = c->want_sabs;
    int want_exact = c->want_exact;
    const double *ad = c->R->ad;
    const int32_t *rla = c->R->rla;
    const int16_t *rea = c->R->rea;
    const unsigned char *rka = c->R->rka, *irra = c->R->irra;
    const size_t *roff = c->R->roff;
    const int *ua = c->R->ua, *umina = c->R->umina, *loa = c->R->loa, *hia = c->R->hia;
    const planes16 *pq = &c->R->pq;
    const unsigned char *irrb = c->irrb;
    const int *ub = c->ub, *lob = c->lob, *hib = c->hib;
    size_t n0 = t->n0, nt = t->nt;
    double *pbt = t->pbt, *fbt = t->fbt;
    unsigned __int128 *acc = t->acc;
    mpz_t *big = t->big;
    unsigned char *slow = t->slow, *eslow = t->eslow;
    float *gt = t->gt;
    double *qt = t->qt;
    v8u *acl = t->acl, *ach = t->ach, *acc64 = t->acc64;
    size_t k0 = g * MX_BLOCK, len = K - k0 < MX_BLOCK ? K - k0 : MX_BLOCK;
    const uint16_t *const *rowp = t->rowp;
    const v4d *bt = t->bt, *bta = t->bta, *P = t->P, *Q = t->Q;
    const int32_t(*rlb)[MX_BLOCK] = t->rlb;
    const int *db = t->db;
    v8i dbv = t->dbv;
    int birr = t->birr, any_slow = t->any_slow, fast64 = t->fast64;
    /* the rows whose group fits its window, all at once where the
     * tile leaves them nothing to choose */
    int steps16 = !birr && !any_slow;
#if defined(HAVE_STEPS8) && defined(HAVE_ROUND_DQ)
    if (steps16 && dots_kind >= 2 && has_dq)
        tile_steps16_8(M, G, g, P, Q, irra, ua, loa, hia, want_group, want_sabs,
                       want_exact, pbt + g * NT, fbt + g * NT, &dbv, gt, qt,
                       fast64 ? acc64 : NULL, acl, ach);
    else
#endif
    if (steps16)
        tile_steps16(M, G, g, P, Q, irra, ua, loa, hia, want_group, want_sabs,
                     want_exact, pbt + g * NT, fbt + g * NT, &dbv, gt, qt,
                     fast64 ? acc64 : NULL, acl, ach);
    for (size_t m = 0; m < M; m++) {
        const double *pm = (const double *)&P[2 * m];
        const double *qm = (const double *)&Q[2 * m];
        int u = ua[m * G + g], ia = irra[m * G + g];
        double pa = pow2i(u);
        if (!ia && steps16)
            continue;
        if (!ia && !birr) {
            if (want_group) /* the engine's step: RN32(P 2^(uA+uB)), added */
                tile_model16(pm, pa, pbt + g * NT, gt + m * NT);
            if (want_sabs)
                tile_sabs(qm, pa, fbt + g * NT, qt + m * NT);
            if (!want_exact || loa[m] > hia[m])
                continue;
            if (!any_slow) {
                /* a lane with P != 0 has its shift in 0..126; the
                 * others add 0 whatever the shift */
                v8i sh = dbv + (long long)(u - loa[m]);
                tile_acc128(pm, &sh, &acl[m], &ach[m]);
                continue;
            }
            for (size_t l = 0; l < nt; l++)
                if (pm[l] != 0)
                    add_exact(acc, big, slow, m * NT + l, (int64_t)pm[l],
                              (u - loa[m]) + db[l]);
            continue;
        }
        /* A's group in planes: their dots over its entries */
        int np = ia ? pq->np[m * G + g] : 0, umin = umina[m * G + g];
        v4d lp[NPL][2], lq[NPL][2];
        if (np)
            planes_dots(np, roff[m * G + g], roff[m * G + g + 1], rka, pq->pv, bt,
                        want_sabs ? bta : NULL, lp, lq);
        if (np && !birr && loa[m] <= hia[m]) {
            /* and every lane's B group in its window: the general
             * code below with nothing to choose per lane (each
             * lane's sums in the same order) */
            int all = 1;
            for (size_t l = 0; l < nt; l++)
                all &= !eslow[m * NT + l] && lob[n0 + l] <= hib[n0 + l];
            if (all && np == 1) {
                int up = u - wa > umin ? u - wa : umin;
                v8i shm = dbv + (long long)(u - loa[m]);
                v8i shp = dbv + (long long)(up - loa[m]);
#if defined(HAVE_STEPS8) && defined(HAVE_ROUND_DQ)
                if (dots_kind >= 2 && has_dq)
                    plane1_lanes8(nt, pm, qm, lp[0], lq[0], pa, pow2i(up),
                                  pbt + g * NT, fbt + g * NT, &shm, &shp, loa[m],
                                  lob + n0, want_exact ? &acl[m] : NULL,
                                  want_exact ? &ach[m] : NULL,
                                  want_sabs ? qt + m * NT : NULL,
                                  want_group ? gt + m * NT : NULL);
                else
#endif
                plane1_lanes(nt, pm, qm, lp[0], lq[0], pa, pow2i(up), pbt + g * NT,
                             fbt + g * NT, &shm, &shp, loa[m], lob + n0,
                             want_exact ? &acl[m] : NULL, want_exact ? &ach[m] : NULL,
                             want_sabs ? qt + m * NT : NULL,
                             want_group ? gt + m * NT : NULL);
                continue;
            }
            if (all) {
                planes_lanes(nt, u, wa, umin, loa[m], np, lp, lq, pm, qm, pa,
                             fbt + g * NT, &dbv, lob + n0,
                             want_exact ? acc + m * NT : NULL,
                             want_sabs ? qt + m * NT : NULL,
                             want_group ? gt + m * NT : NULL);
                continue;
            }
        }
        /* a group wider than its window on either side: the
         * engine's residual path (gemm_residual.c), its terms and
         * its order of the bound's sums.  Lanes whose B group fits
         * its window (residual_rows there) sum A's terms first,
         * entry by entry across the lanes (each lane's sums keep
         * the entries' order) */
        unsigned __int128 gres[NT], gabs[NT];
        int rows_lane[NT];
        for (size_t l = 0; l < NT; l++) {
            size_t n = n0 + l;
            rows_lane[l] = ia && l < nt && !irrb[n * G + g] && !eslow[m * NT + l] &&
                           lob[n] <= hib[n];
            gres[l] = 0;
            gabs[l] = 0;
        }
        /* their terms' sum and magnitudes' sum, exactly in the
         * element's frame: by planes, or term by term */
        for (int p = 0; p < np; p++) {
            int up = u - (p + 1) * wa;
            up = up > umin ? up : umin;
            const double *pp = (const double *)lp[p];
            const double *qp = (const double *)lq[p];
            for (size_t l = 0; l < nt; l++) {
                if (!rows_lane[l] || (pp[l] == 0 && (!want_sabs || qp[l] == 0)))
                    continue;
                int sh = (up - loa[m]) + db[l];
                gres[l] += shl((int64_t)pp[l], sh);
                if (want_sabs)
                    gabs[l] += shl((int64_t)qp[l], sh);
            }
        }
        for (size_t r = roff[m * G + g]; ia && !np && r < roff[m * G + g + 1]; r++) {
            for (size_t l = 0; l < nt; l++) {
                if (!rows_lane[l])
                    continue;
                int32_t bm;
                int be;
                code16(tb, rowp[l][k0 + rka[r]], &bm, &be);
                if (!bm)
                    continue;
                int64_t tv = (int64_t)rla[r] * bm;
                int sh = rea[r] + be - (loa[m] + lob[n0 + l]);
                gres[l] += shl(tv, sh);
                gabs[l] += shl(tv < 0 ? -tv : tv, sh);
            }
        }
        for (size_t l = 0; l < nt; l++) {
            size_t j = m * NT + l, n = n0 + l;
            int ubn = ub[n * G + g], ib = irrb[n * G + g];
            if (want_sabs)
                qt[j] += qm[l] * pa * fbt[g * NT + l];
            if (want_exact && pm[l] != 0)
                add_exact(acc, big, slow, j, (int64_t)pm[l],
                          (u - loa[m]) + (ubn - lob[n]));
            if (!ia && !ib) {
                if (want_group)
                    gt[j] = gt[j] + (float)(pm[l] * pa * pbt[g * NT + l]);
                continue;
            }
            if (lob[n] > hib[n]) { /* an all-zero column: p = 0 */
                if (want_group)
                    gt[j] = gt[j] + 0.0f;
                continue;
            }
            /* an all-zero row (lo = INT_MAX, the marker) has no
             * terms, and no frame */
            int base = loa[m] <= hia[m] ? loa[m] + lob[n] : 0;
            if (rows_lane[l]) {
                if (want_exact)
                    acc[j] += gres[l];
                if (want_sabs) /* below 2^127: the span test */
                    qt[j] += mxg_round_f64((__int128)gabs[l], loa[m] + lob[n]);
                if (want_group) {
                    __int128 v = mxg_shl128((int64_t)pm[l], (u - loa[m]) + (ubn - lob[n])) +
                                 (__int128)gres[l];
                    gt[j] = gt[j] + mxg_group_partial(v, base);
                }
                continue;
            }
            /* add_residual_elem: A's low bits times B's values,
             * then A's high bits times B's low bits, term by term */
            int64_t tv[2 * MX_BLOCK];
            int te[2 * MX_BLOCK];
            size_t cnt = 0;
            const uint16_t *cb = rowp[l] + k0;
            for (size_t r = roff[m * G + g]; ia && r < roff[m * G + g + 1]; r++) {
                int32_t bm;
                int be;
                code16(tb, cb[rka[r]], &bm, &be);
                if (!bm)
                    continue;
                tv[cnt] = (int64_t)rla[r] * bm;
                te[cnt++] = rea[r] + be;
            }
            const double *ah = ad + m * KP + k0;
            for (size_t k = 0; ib && k < len; k++) {
                if (!rlb[l][k] || ah[k] == 0)
                    continue;
                tv[cnt] = (int64_t)ah[k] * rlb[l][k];
                te[cnt++] = u + tb->e[cb[k]];
            }
            for (size_t t = 0; t < cnt; t++) {
                if (want_sabs)
                    qt[j] += fabs((double)tv[t]) * pow2i(te[t]);
                if (want_exact)
                    add_exact(acc, big, slow, j, tv[t], te[t] - base);
            }
            if (want_group)
                gt[j] = gt[j] + mxg_group_partial_terms(pm[l], u + ubn, tv, te, cnt);
        }
    }
}

/* Tile t's elements: one rounding each, the model's accumulator and the
 * bounds; the GMP sums cleared. */
static void t16_finish(f16call *c, t16 *t)
{
    const mx_gemm_spec *s = c->s;
    mx_gemm_out *out = c->out;
    size_t M = c->M, N = c->N;
    int want_group = c->want_group, want_bnd = c->want_bnd, want_sabs = c->want_sabs;
    int want_exact = c->want_exact;
    const double *amaxa = c->R->amaxa;
    const int *loa = c->R->loa, *hia = c->R->hia, *lob = c->lob, *hib = c->hib;
    const double *amaxb = c->amaxb;
    double *exact = c->exact;
    float *gacc = c->gacc;
    const mxg_bound_call *bc = &c->bc;
    size_t n0 = t->n0, nt = t->nt;
    unsigned __int128 *acc = t->acc;
    mpz_t *big = t->big;
    unsigned char *slow = t->slow;
    float *gt = t->gt;
    double *qt = t->qt;
    v8u *acl = t->acl, *ach = t->ach, *acc64 = t->acc64;
    int fast64 = t->fast64;
    int lobt[NT];
    for (size_t l = 0; l < NT; l++)
        lobt[l] = l < nt ? lob[n0 + l] : INT_MAX;
    for (size_t m = 0; m < M; m++) {
        double w = s->row_weight ? (double)s->row_weight[m] : 1.0;
        unsigned left = (1u << nt) - 1; /* lanes whose exact value is still to come */
#ifdef HAVE_ROUND_DQ
        /* the row's sums in int64 alone (its 128-bit ones zero): eight
         * lanes rounded at once, as the FP8 kernel's */
        int only64 = fast64 && want_exact && has_dq && dots_kind >= 2 && loa[m] <= hia[m];
        for (size_t l = 0; l < nt && only64; l++)
            only64 = !acl[m][l] && !ach[m][l] && !acc[m * NT + l];
        if (only64)
            left = ftile_round8(&acc64[m], loa[m], lobt, w, nt, exact + m * N + n0);
#endif
        for (size_t l = 0; l < nt; l++) {
            size_t j = m * NT + l, n = n0 + l, i = m * N + n;
            /* in a local: stored back, its two halves stall the load
             * that follows */
            unsigned __int128 v = acc[j] + ((unsigned __int128)ach[m][l] << 64 | acl[m][l]) +
                                  (unsigned __int128)u64_signed(acc64[m][l]);
            if (want_exact && (left >> l & 1)) {
                if (loa[m] > hia[m] || lob[n] > hib[n])
                    exact[i] = 0.0 * w;
                else
                    exact[i] = slow[j] ? mxg_round_mpz_f64(big[j], (long)loa[m] + lob[n], w)
                                       : mxg_round_weighted_f64((__int128)v,
                                                                loa[m] + lob[n], w);
            }
            if (slow[j])
                mpz_clear(big[j]);
            if (want_group)
                gacc[i] = gt[j];
        }
        if (want_bnd) { /* unscaled: no group's scale product underflows */
            size_t i = m * N + n0;
            mxg_bound_lanes(bc, m, n0, nt, want_sabs ? qt + m * NT : NULL, amaxa[m],
                            amaxb + n0, exact + i, NULL,
                            out->bound ? out->bound + i : NULL,
                            out->bound_acc ? out->bound_acc + i : NULL,
                            out->sum_abs ? out->sum_abs + i : NULL);
        }
    }
}

int mxg_gemm_fused16(const mx_gemm_spec *s, const mx_operand *A, const mx_operand *B,
                     mx_gemm_out *out, mx_gemm_stats *stats, int wa, int wb,
                     size_t *irr_a, mx_status *status)
{
    const ftab16 *ta, *tb;
    if (!fused16_applies(s, A, B, &ta, &tb))
        return 0;
    size_t M = A->rows, N = B->rows, K = A->K, G = (K + MX_BLOCK - 1) / MX_BLOCK;
    size_t KP = G * MX_BLOCK, MN = M * N > 0 ? M * N : 1;
    int want_group = (out->model_acc || out->model_out) &&
                     s->model.kind == MX_ACC_FP32_GROUP;
    /* bounds wanted; the sum |ab| dots only where a bound reads them: a
     * block model's bound takes its sum from the model's own walk
     * (mxg_acc_block), so there they are computed for out->sum_abs alone */
    int want_bnd = out->bound || out->sum_abs || out->bound_acc;
    int want_sabs = out->sum_abs ||
                    ((out->bound || out->bound_acc) && s->model.kind != MX_ACC_BLOCK);
    int want_exact = out->exact || want_bnd;
    mx_status st = MX_OK;

    /* the activation rows: decoded once for the whole call by the split
     * (gemm_split.c) when it ran this block, else here */
    mxg_fused16_rows own;
    memset(&own, 0, sizeof own);
    const mxg_fused16_rows *R = mxg_shared_rows_fused16(s, A, wa);
    if (!R) {
        rows16_build(A, ta, wa, &own);
        R = &own;
    }
    const double *ad = R->ad, *aa = R->aa;
    const unsigned char *irra = R->irra;
    const int *loa = R->loa, *hia = R->hia;
    unsigned char *irrb = malloc(N * G + 1);
    int *ub = malloc((N * G + 1) * sizeof *ub), *lob = malloc((N + 1) * sizeof *lob);
    int *hib = malloc((N + 1) * sizeof *hib);
    double *amaxb = malloc((N + 1) * sizeof *amaxb);
    double *exact = out->exact ? out->exact
                               : want_exact ? malloc(MN * sizeof *exact) : NULL;
    float *gacc = want_group ? malloc(MN * sizeof *gacc) : NULL;
    /* two tiles' storage (t16_bind) */
    size_t MT = M * NT + 1;
    v4d *bt_s = aligned_alloc(64, 2 * MX_BLOCK * 2 * sizeof(v4d));
    v4d *bta_s = aligned_alloc(64, 2 * MX_BLOCK * 2 * sizeof(v4d));
    v4d *P_s = aligned_alloc(64, 2 * (2 * M + 2) * sizeof(v4d));
    v4d *Q_s = aligned_alloc(64, 2 * (2 * M + 2) * sizeof(v4d));
    double *pbt_s = malloc(2 * NT * G * sizeof *pbt_s), *fbt_s = malloc(2 * NT * G * sizeof *fbt_s);
    unsigned __int128 *acc_s = malloc(2 * MT * sizeof *acc_s);
    mpz_t *big_s = malloc(2 * MT * sizeof *big_s);
    unsigned char *slow_s = malloc(2 * MT), *eslow_s = malloc(2 * MT);
    float *gt_s = malloc(2 * MT * sizeof *gt_s);
    double *qt_s = malloc(2 * MT * sizeof *qt_s);
    /* the regular groups' exact sums, lo and hi halves of each row's lanes
     * (added into acc at the end of the tile), and int64 sums */
    v8u *acl_s = aligned_alloc(64, 2 * (M + 1) * sizeof *acl_s);
    v8u *ach_s = aligned_alloc(64, 2 * (M + 1) * sizeof *ach_s);
    v8u *acc64_s = aligned_alloc(64, 2 * (M + 1) * sizeof *acc64_s);
    if (!acl_s || !ach_s || !acc64_s)
        st = MX_ENOMEM;
    if (st == MX_OK && R->st != MX_OK)
        st = R->st;
    if (st != MX_OK)
        goto done;
    if (!irrb || !ub || !lob || !hib || !amaxb || (want_exact && !exact) || (want_group && !gacc) ||
        !bt_s || !bta_s || !P_s || !Q_s || !pbt_s || !fbt_s || !acc_s || !big_s || !slow_s ||
        !eslow_s || !gt_s || !qt_s) {
        st = MX_ENOMEM;
        goto done;
    }
    for (size_t n = 0; n < N && st == MX_OK; n++)
        if (row_facts16(B, tb, n, G, 1, wb, ub + n * G, NULL, irrb + n * G, &lob[n], &hib[n],
                        &amaxb[n]) < 0)
            st = MX_ERANGE;
    if (st != MX_OK)
        goto done;
    f16call C = {s, A, B, out, tb, M, N, K, G, KP, wa, wb, want_group, want_bnd, want_sabs,
                 want_exact, clog2z(G) + 5 + 1, B->fmt->id == MX_BF16, 0, 0, R, irrb, ub, lob,
                 hib, amaxb, exact, gacc, {0}};
    mxg_bound_call_init(&C.bc, s, A, B);
    /* the widest activation row: with a tile's widest B row, whether the
     * tile's exact sums fit int64 (fast64) */
    for (size_t m = 0; m < M; m++)
        if (loa[m] <= hia[m] && hia[m] - loa[m] > C.spa)
            C.spa = hia[m] - loa[m];
    for (size_t p0 = 0; p0 < N; p0 += 2 * NT) {
        /* two tiles of eight weight rows at a time (the last one alone
         * when the rows run out): each activation value, loaded once,
         * serves both tiles' dots (tile_dots8_two) */
        int npair = p0 + NT < N ? 2 : 1;
        t16 T[2];
        for (int ti = 0; ti < npair; ti++) {
            t16_bind(&T[ti], ti, M, G, bt_s, bta_s, P_s, Q_s, pbt_s, fbt_s, acc_s, big_s,
                     slow_s, eslow_s, gt_s, qt_s, acl_s, ach_s, acc64_s);
            T[ti].n0 = p0 + (size_t)ti * NT;
            T[ti].nt = N - T[ti].n0 < NT ? N - T[ti].n0 : NT;
            t16_start(&C, &T[ti]);
        }
        for (size_t g = 0; g < G; g++) {
            size_t k0 = g * MX_BLOCK;
            for (int ti = 0; ti < npair; ti++)
                t16_decode(&C, &T[ti], g);
            if (npair == 2)
                tile_dots_two(M, ad + k0, want_sabs ? aa + k0 : NULL, KP, T[0].bt, T[0].bta,
                              T[1].bt, T[1].bta, T[0].P, T[0].Q, T[1].P, T[1].Q);
            else
                tile_dots(M, ad + k0, want_sabs ? aa + k0 : NULL, KP, T[0].bt, T[0].bta,
                          T[0].P, T[0].Q);
            for (int ti = 0; ti < npair; ti++)
                t16_steps(&C, &T[ti], g);
        }
        for (int ti = 0; ti < npair; ti++)
            t16_finish(&C, &T[ti]);
    }
    if (out->model_acc || out->model_out) {
        float *macc = out->model_acc ? out->model_acc : malloc(MN * sizeof *macc);
        if (!macc) {
            st = MX_ENOMEM;
            goto done;
        }
        if (want_group) {
            for (size_t m = 0; m < M; m++)
                for (size_t n = 0; n < N; n++)
                    macc[m * N + n] = s->row_weight ? gacc[m * N + n] * s->row_weight[m]
                                                    : gacc[m * N + n];
        } else {
            st = mx_gemm_model_direct(s, A, B, macc);
        }
        if (out->model_out)
            for (size_t i = 0; i < M * N; i++)
                out->model_out[i] = mx_bf16_from_float(macc[i]);
        if (!out->model_acc)
            free(macc);
    }
    if (st == MX_OK) {
        size_t na = 0, nb = 0;
        for (size_t i = 0; i < M * G; i++)
            na += irra[i];
        for (size_t i = 0; i < N * G; i++)
            nb += irrb[i];
        if (irr_a)
            *irr_a = na;
        if (stats) {
            stats->elements = M * N;
            stats->slow_elements = C.nslow;
            stats->irregular_groups = na + nb;
        }
    }
done:
    rows16_release(&own);
    free(irrb);
    free(ub);
    free(lob);
    free(hib);
    free(amaxb);
    if (exact != out->exact)
        free(exact);
    free(gacc);
    free(bt_s);
    free(bta_s);
    free(P_s);
    free(Q_s);
    free(pbt_s);
    free(fbt_s);
    free(acc_s);
    free(acl_s);
    free(ach_s);
    free(acc64_s);
    free(big_s);
    free(slow_s);
    free(eslow_s);
    free(gt_s);
    free(qt_s);
    *status = st;
    fused_calls++;
    return 1;
}
