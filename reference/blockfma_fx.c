/* blockfma_fx.c -- the wide fixed-point integers of the block-FMA model
 * (see blockfma_fx.h).  Every operation is exact except the rounding of
 * mxb_fx_rescale onto a coarser grid, in the mode the caller names. */
#include <string.h>
#include "blockfma_fx.h"

/* Only the low n limbs are stored; the value is their two's complement.
 * Every operation first widens s so that its result fits with a spare
 * sign bit, which keeps sums of a few 64-bit terms (the common case) in
 * one or two limbs while the exact modes may use all FX_LIMBS. */
void mxb_fx_zero(fx *s, int exp)
{
    s->l[0] = 0;
    s->n = 1;
    s->exp = exp;
}

static int fx_is_neg(const fx *s) { return (int)(s->l[s->n - 1] >> 63); }

static void fx_grow(fx *s, int n)
{
    if (n > FX_LIMBS)
        n = FX_LIMBS;
    uint64_t ext = fx_is_neg(s) ? ~UINT64_C(0) : 0;
    for (int i = s->n; i < n; i++)
        s->l[i] = ext;
    if (n > s->n)
        s->n = n;
}

int mxb_fx_is_zero(const fx *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->l[i])
            return 0;
    return 1;
}

static void fx_negate(fx *s)
{
    unsigned carry = 1;
    fx_grow(s, s->n + 1); /* -(-2^(64n-1)) needs one more limb */
    for (int i = 0; i < s->n; i++) {
        uint64_t v = ~s->l[i] + carry;
        carry = carry && v == 0;
        s->l[i] = v;
    }
}

/* s += (neg ? -1 : 1) * m * 2^sh (units of s's grid), sh >= 0. */
void mxb_fx_add_mag(fx *s, int neg, uint64_t m, int sh)
{
    if (m == 0)
        return;
    int li = sh / 64, off = sh % 64;
    fx_grow(s, li + 3);
    uint64_t lo = m << off, hi = off ? m >> (64 - off) : 0;
    unsigned carry = 0;
    if (!neg) {
        for (int i = li; i < s->n; i++) {
            uint64_t add = i == li ? lo : i == li + 1 ? hi : 0;
            uint64_t a = s->l[i], t = a + add;
            unsigned c1 = t < a;
            uint64_t u = t + carry;
            carry = c1 | (u < t);
            s->l[i] = u;
            if (!carry && i > li)
                break;
        }
    } else {
        unsigned borrow = 0;
        for (int i = li; i < s->n; i++) {
            uint64_t sub = i == li ? lo : i == li + 1 ? hi : 0;
            uint64_t a = s->l[i], t = a - sub;
            unsigned b1 = a < sub;
            uint64_t u = t - borrow;
            borrow = b1 | (t < borrow);
            s->l[i] = u;
            if (!borrow && i > li)
                break;
        }
    }
    (void)carry;
}

void mxb_fx_add(fx *s, const fx *t) /* same exp */
{
    fx u = *t;
    int n = (s->n > u.n ? s->n : u.n) + 1;
    fx_grow(s, n);
    fx_grow(&u, n);
    unsigned carry = 0;
    for (int i = 0; i < s->n; i++) {
        uint64_t a = s->l[i], v = a + u.l[i];
        unsigned c1 = v < a;
        uint64_t w = v + carry;
        unsigned c2 = w < v;
        s->l[i] = w;
        carry = c1 | c2;
    }
}

/* Magnitude as an unsigned FX_LIMBS-limb array. */
void mxb_fx_abs(const fx *s, uint64_t out[FX_LIMBS], int *neg)
{
    fx t = *s;
    *neg = fx_is_neg(s);
    if (*neg)
        fx_negate(&t);
    for (int i = 0; i < FX_LIMBS; i++)
        out[i] = i < t.n ? t.l[i] : 0;
}

int mxb_limbs_bitlen(const uint64_t *l)
{
    for (int i = FX_LIMBS - 1; i >= 0; i--)
        if (l[i])
            return 64 * i + 64 - __builtin_clzll(l[i]);
    return 0;
}

static int limbs_bit(const uint64_t *l, int b)
{
    return b >= 0 && b < FX_BITS ? (int)((l[b / 64] >> (b % 64)) & 1) : 0;
}

/* Any bit of l below position b set? */
int mxb_limbs_any_below(const uint64_t *l, int b)
{
    if (b <= 0)
        return 0;
    if (b > FX_BITS)
        b = FX_BITS;
    int li = b / 64, off = b % 64;
    for (int i = 0; i < li; i++)
        if (l[i])
            return 1;
    return off && (l[li] & ((UINT64_C(1) << off) - 1));
}

void mxb_limbs_shr(uint64_t *l, int r) /* logical, r >= 0 */
{
    if (r >= FX_BITS) {
        memset(l, 0, FX_LIMBS * sizeof *l);
        return;
    }
    int li = r / 64, off = r % 64;
    for (int i = 0; i < FX_LIMBS; i++) {
        uint64_t lo = i + li < FX_LIMBS ? l[i + li] : 0;
        uint64_t hi = i + li + 1 < FX_LIMBS ? l[i + li + 1] : 0;
        l[i] = off ? (lo >> off) | (hi << (64 - off)) : lo;
    }
}

static void limbs_shl(uint64_t *l, int r) /* r >= 0, caller keeps it in range */
{
    int li = r / 64, off = r % 64;
    for (int i = FX_LIMBS - 1; i >= 0; i--) {
        uint64_t hi = i - li >= 0 ? l[i - li] : 0;
        uint64_t lo = i - li - 1 >= 0 ? l[i - li - 1] : 0;
        l[i] = off ? (hi << off) | (lo >> (64 - off)) : hi;
    }
}

static void limbs_inc(uint64_t *l)
{
    for (int i = 0; i < FX_LIMBS; i++)
        if (++l[i])
            break;
}

/* Rounds a nonnegative magnitude l * 2^0 to a multiple of 2^r, r > 0, in
 * the direction mode says for a value of sign neg; leaves l / 2^r. */
static void mag_round_shr(uint64_t *l, int r, int neg, mx_align_round mode)
{
    int half = limbs_bit(l, r - 1), rest = mxb_limbs_any_below(l, r - 1);
    mxb_limbs_shr(l, r);
    int inc = 0;
    switch (mode) {
    case MX_ALIGN_TRUNC:
        break;
    case MX_ALIGN_RD:
        inc = neg && (half || rest);
        break;
    case MX_ALIGN_RNE:
        inc = half && (rest || (l[0] & 1));
        break;
    }
    if (inc)
        limbs_inc(l);
}

/* Moves s onto the grid 2^new_exp, rounding with mode when bits drop. */
void mxb_fx_rescale(fx *s, int new_exp, mx_align_round mode)
{
    if (new_exp == s->exp)
        return;
    uint64_t m[FX_LIMBS];
    int neg;
    mxb_fx_abs(s, m, &neg);
    if (new_exp < s->exp)
        limbs_shl(m, s->exp - new_exp);
    else
        mag_round_shr(m, new_exp - s->exp, neg, mode);
    memcpy(s->l, m, sizeof m);
    s->n = (mxb_limbs_bitlen(m) + 1) / 64 + 1;
    if (s->n > FX_LIMBS)
        s->n = FX_LIMBS;
    s->exp = new_exp;
    if (neg)
        fx_negate(s);
}

/* s += t on the finer of their grids (exact). */
void mxb_fx_add_any(fx *s, const fx *t)
{
    fx u = *t;
    if (u.exp > s->exp)
        mxb_fx_rescale(&u, s->exp, MX_ALIGN_TRUNC);
    else if (s->exp > u.exp)
        mxb_fx_rescale(s, u.exp, MX_ALIGN_TRUNC);
    mxb_fx_add(s, &u);
}
