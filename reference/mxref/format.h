/* mxref/format.h -- number formats: what real number a code means, and which
 * code a real number becomes.
 *
 * Every format mxverify models is one row of a parameter table (mx_format).
 * One decoder and one round-and-pack routine serve all rows; adding a format
 * means adding a row, never a copy of the rounding code.
 *
 * Codes are carried in uint32_t (8, 16 or 32 significant bits).  Values are
 * exact: every code of every format here is a dyadic rational that fits a
 * binary64 exactly, and the MPFR entry points never round.
 */
#ifndef MXREF_FORMAT_H
#define MXREF_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <gmp.h>
#include <mpfr.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MX_E4M3FN = 0, /* OCP FP8: bias 7, no inf, NaN = S.1111.111, has -0   */
    MX_E4M3FNUZ,   /* AMD gfx94x FP8: bias 8, NaN = 0x80 only, no -0      */
    MX_E5M2,       /* OCP FP8: bias 15, IEEE-like (inf and NaNs)          */
    MX_E5M2FNUZ,   /* bias 16, NaN = 0x80 only, no inf, no -0             */
    MX_E8M0,       /* OCP MX scale: unsigned 2^(s-127), 0xFF = NaN        */
    MX_BF16,
    MX_FP16,
    MX_FP32,
    MX_FORMAT_COUNT
} mx_format_id;

/* How the all-ones and sign patterns are spent. */
typedef enum {
    MX_SPECIAL_IEEE, /* exp all ones: inf (mant 0) or NaN; signed zero    */
    MX_SPECIAL_FN,   /* only exp and mant all ones is NaN; no inf         */
    MX_SPECIAL_FNUZ, /* only the negative-zero pattern is NaN; no inf/-0  */
    MX_SPECIAL_E8M0  /* unsigned, no zero, 0xFF is NaN                    */
} mx_special;

typedef struct {
    mx_format_id id;
    const char *name;        /* CLI name, lower case: "e4m3fnuz"          */
    int bits;                /* total width: 8, 16 or 32                  */
    int ebits;               /* exponent field width                      */
    int mbits;               /* stored fraction bits (precision - 1)      */
    int bias;
    int is_signed;           /* 0 only for E8M0                           */
    mx_special special;
    /* Derived once from the fields above (see mx_format_get). */
    int emin;                /* exponent of the smallest normal: 1 - bias */
    int emax;                /* exponent of the largest finite value      */
    uint32_t max_finite_code;/* positive largest finite                   */
    uint32_t nan_code;       /* canonical quiet NaN this layer produces   */
    uint32_t inf_code;       /* +inf, or 0 when the format has none       */
    int has_inf;
    int has_negzero;
    int has_subnormals;
} mx_format;

typedef enum {
    MX_CLASS_ZERO = 0,
    MX_CLASS_SUBNORMAL,
    MX_CLASS_NORMAL,
    MX_CLASS_INF,
    MX_CLASS_NAN
} mx_class;

typedef enum {
    MX_RNE = 0,  /* nearest, ties to even (default; torch, ml_dtypes, HW)  */
    MX_RNA,      /* nearest, ties away from zero (OCP microxcaling)        */
    MX_RTZ,      /* toward zero                                            */
    MX_RUP,      /* toward +inf                                            */
    MX_RDOWN,    /* toward -inf                                            */
    MX_RSTOCH    /* stochastic, from explicit random bits (mx_encode_opts) */
} mx_round;

/* What replaces a result whose rounded magnitude exceeds the largest finite
 * value.  Overflow follows IEEE 754 first: a mode that rounds toward zero
 * for this sign returns the largest finite value and does not overflow. */
typedef enum {
    MX_OVF_DEFAULT = 0, /* what a plain cast does in torch and ml_dtypes:
                           inf where the format has one, else NaN         */
    MX_OVF_SATURATE,    /* largest finite value of the right sign         */
    MX_OVF_NAN,
    MX_OVF_INF          /* only for formats with an infinity              */
} mx_overflow;

typedef struct {
    mx_round round;
    mx_overflow overflow;
    /* MX_RSTOCH only: the result is rounded away from zero iff
     * floor(frac * 2^rbits_n) + rbits >= 2^rbits_n, where frac in [0,1) is
     * the discarded part in units of the result's last place.
     * 1 <= rbits_n <= 32 and rbits < 2^rbits_n. */
    uint32_t rbits;
    int rbits_n;
} mx_encode_opts;

/* Status codes of this library; 0 is success. */
typedef enum {
    MX_OK = 0,
    MX_EINVAL,      /* argument out of range for this format/operation    */
    MX_ERANGE,      /* value out of a representable or accepted range     */
    MX_ENOMEM,
    MX_EFORMAT      /* malformed input data                               */
} mx_status;

/* Elements to allocate for an array of n: n, or 1 when n is 0, so that an
 * empty array (a case with no tokens) still gets a valid pointer (malloc(0)
 * may return NULL). */
static inline size_t mx_nz(size_t n) { return n ? n : 1; }

/* The row for an id, or NULL when id is out of range. */
const mx_format *mx_format_get(mx_format_id id);
/* The row named name (case-insensitive; accepts the aliases "fp8e4m3fn",
 * "float8_e4m3fnuz", "bfloat16", "half", "float", ...), or NULL. */
const mx_format *mx_format_by_name(const char *name);
/* Number of codes of the format (2^bits). */
uint64_t mx_format_ncodes(const mx_format *f);
const char *mx_class_name(mx_class c);
const char *mx_round_name(mx_round r);
int mx_round_by_name(const char *name, mx_round *out);       /* 0 on success */
const char *mx_overflow_name(mx_overflow o);
int mx_overflow_by_name(const char *name, mx_overflow *out); /* 0 on success */
/* The policy MX_OVF_DEFAULT stands for in this format. */
mx_overflow mx_overflow_resolve(const mx_format *f, mx_overflow o);

/* ---- decoding ------------------------------------------------------- */

/* Class of a code (bits above f->bits must be zero). */
mx_class mx_classify(const mx_format *f, uint32_t code);
/* Exact value of a code into out (any precision >= 24 holds every value
 * exactly; NaN sets out to NaN, infinities to +-inf, -0 to -0). */
mx_class mx_decode_mpfr(const mx_format *f, uint32_t code, mpfr_t out);
/* Exact value as an integer significand and exponent: finite codes are
 * *m * 2^*e exactly (*m signed, |*m| < 2^24; zero gives *m = 0).  The class
 * is returned; *m and *e are 0 for NaN and inf. */
mx_class mx_decode_int(const mx_format *f, uint32_t code, int32_t *m, int *e);
/* Exact value as a binary64 (every value of every format fits). */
double mx_decode_double(const mx_format *f, uint32_t code);
/* Integer fields of a code: for finite nonzero codes the magnitude is
 * *m * 2^*e exactly (m < 2^24; m has bit mbits set iff the code is normal);
 * *sign is the sign bit.  Zeros, infinities and NaNs give *m = 0, *e = 0.
 * For integer-only arithmetic on codes (the block-FMA models). */
mx_class mx_decode_fields(const mx_format *f, uint32_t code, int *sign,
                          uint32_t *m, int *e);
/* Production E8M0 decode of gfx94x kernels: the byte is shifted into a BF16
 * exponent field (s << 7), so 0 -> +0.0 and 255 -> +inf; 1..254 agree with
 * the spec decode 2^(s-127).  Compare mx_decode_double(MX_E8M0,...): 0 ->
 * 2^-127, 255 -> NaN. */
double mx_e8m0_decode_production(uint8_t s);
/* Spec decode of E8M0, for symmetry: 2^(s-127), NaN for 255. */
double mx_e8m0_decode_spec(uint8_t s);

/* ---- encoding ------------------------------------------------------- */

/* Default options: RNE, MX_OVF_DEFAULT. */
mx_encode_opts mx_encode_defaults(void);

/* The one rounding routine.  Encodes (-1)^sign * sig * 2^(exp - 63),
 * with sig normalized (bit 63 set) or zero, plus a sticky flag that says
 * the true magnitude is strictly above that (by less than 2^(exp-63)).
 * Returns MX_EINVAL for bad options (e.g. MX_OVF_INF on a format without
 * infinity), else MX_OK with the code in *code. */
mx_status mx_round_pack(const mx_format *f, int sign, uint64_t sig, int exp,
                        int sticky, const mx_encode_opts *o, uint32_t *code);

/* Front ends: reduce the input exactly to (sign, sig, exp, sticky) and call
 * mx_round_pack.  NaN inputs give the format's NaN; infinities follow the
 * overflow policy (E8M0 and the FNUZ/FN formats have no inf). */
mx_status mx_encode_double(const mx_format *f, double x,
                           const mx_encode_opts *o, uint32_t *code);
mx_status mx_encode_mpfr(const mx_format *f, const mpfr_t x,
                         const mx_encode_opts *o, uint32_t *code);
/* x exact rational; neg_zero says that a zero x was written as -0. */
mx_status mx_encode_mpq(const mx_format *f, const mpq_t x, int neg_zero,
                        const mx_encode_opts *o, uint32_t *code);

/* A table-driven encoder of FP32 inputs into an 8-bit format, built from
 * mx_round_pack (so exact by construction): for 8-bit targets every float
 * bit below bit 16 is a sticky bit, so the code is a function of the top 16
 * bits and of whether the low 16 are zero.  Any mode but MX_RSTOCH. */
typedef struct {
    const mx_format *f;
    uint8_t t0[65536];   /* low 16 bits zero     */
    uint8_t t1[65536];   /* low 16 bits nonzero  */
} mx_enc8_table;
mx_status mx_enc8_table_init(mx_enc8_table *t, const mx_format *f,
                             const mx_encode_opts *o);
static inline uint8_t mx_enc8_f32bits(const mx_enc8_table *t, uint32_t bits)
{
    return (bits & 0xFFFF) ? t->t1[bits >> 16] : t->t0[bits >> 16];
}

/* Fast paths for the common cases (RNE, default overflow). */
uint32_t mx_encode_rne(const mx_format *f, double x);
/* float32 -> bfloat16 RNE, as torch's .to(torch.bfloat16) on finite values
 * (a NaN gives the quiet NaN 0x7fc0 with its sign); and back (exact).
 * Inline: the layer's element loops (the combine, SwiGLU, the judges) call
 * them once or more per element. */
static inline uint16_t mx_bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: canonical, sign kept */
        return (uint16_t)(((u >> 16) & 0x8000u) | 0x7fc0u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float mx_bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
/* binary64 -> binary32 with RNE via the same routine (exact, no FPU mode). */
float mx_fp32_round(double x);

#ifdef __cplusplus
}
#endif
#endif /* MXREF_FORMAT_H */
