/* exactnum.c -- exact parsing and printing of numbers (see exactnum.h). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "exactnum.h"

void mxv_num_init(mxv_num *n)
{
    n->kind = MXV_NUM_FINITE;
    n->negative = 0;
    n->is_hex = 0;
    mpq_init(n->q);
}

void mxv_num_clear(mxv_num *n) { mpq_clear(n->q); }

static int digit_val(int c, int base)
{
    int v = isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : 99;
    return v < base ? v : -1;
}

/* Optional sign and decimal digits; returns -1 on a malformed or too large
 * exponent. */
static int parse_exp(const char *s, long *out)
{
    int neg = 0;
    long v = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!isdigit((unsigned char)*s))
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
        if (v > MXV_NUM_MAX_EXP)
            return -1;
    }
    *out = neg ? -v : v;
    return 0;
}

int mxv_num_parse(mxv_num *n, const char *s)
{
    const char *p = s;
    n->negative = 0;
    n->is_hex = 0;
    n->kind = MXV_NUM_FINITE;
    mpq_set_ui(n->q, 0, 1);
    if (*p == '+' || *p == '-')
        n->negative = *p++ == '-';
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        n->kind = MXV_NUM_INF;
        return 0;
    }
    if (strcasecmp(p, "nan") == 0) {
        n->kind = MXV_NUM_NAN;
        return 0;
    }
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        n->is_hex = 1;
        p += 2;
    }
    /* Digits of the significand, with the point removed, into an mpz. */
    mpz_t m;
    mpz_init(m);
    long frac_digits = 0;
    int ndig = 0, seen_point = 0;
    for (; *p; p++) {
        if (*p == '.' && !seen_point) {
            seen_point = 1;
            continue;
        }
        int d = digit_val((unsigned char)*p, base);
        if (d < 0)
            break;
        mpz_mul_ui(m, m, (unsigned long)base);
        mpz_add_ui(m, m, (unsigned long)d);
        ndig++;
        frac_digits += seen_point;
    }
    long e = 0;
    int ok = ndig > 0;
    if (ok && *p) {
        int marker = base == 16 ? (*p == 'p' || *p == 'P')
                                : (*p == 'e' || *p == 'E');
        ok = marker && parse_exp(p + 1, &e) == 0;
    }
    if (!ok) {
        mpz_clear(m);
        return -1;
    }
    mpq_set_z(n->q, m);
    mpz_clear(m);
    if (base == 16) {
        long p2 = e - 4 * frac_digits;
        if (p2 >= 0)
            mpq_mul_2exp(n->q, n->q, (mp_bitcnt_t)p2);
        else
            mpq_div_2exp(n->q, n->q, (mp_bitcnt_t)-p2);
    } else {
        long p10 = e - frac_digits; /* |p10| <= 1e5 + argument length */
        mpz_t t;
        mpz_init(t);
        mpz_ui_pow_ui(t, 10, (unsigned long)labs(p10));
        if (p10 >= 0)
            mpz_mul(mpq_numref(n->q), mpq_numref(n->q), t);
        else
            mpz_mul(mpq_denref(n->q), mpq_denref(n->q), t);
        mpz_clear(t);
        mpq_canonicalize(n->q);
    }
    if (n->negative)
        mpq_neg(n->q, n->q);
    return 0;
}

int mxv_mpq_is_dyadic(const mpq_t q)
{
    const mpz_srcptr d = mpq_denref(q);
    return mpz_popcount(d) == 1;
}

/* C99 normalized hex float of (-1)^neg * mag * 2^e2: "0x1.cp+8". */
static char *hexfloat_z(int neg, const mpz_t mag, long e2)
{
    if (mpz_sgn(mag) == 0)
        return strdup(neg ? "-0x0p+0" : "0x0p+0");
    size_t nb = mpz_sizeinbase(mag, 2);
    long e = e2 + (long)nb - 1;
    size_t fbits = nb - 1, pad = (4 - fbits % 4) % 4;
    mpz_t frac;
    mpz_init(frac);
    mpz_tdiv_r_2exp(frac, mag, fbits);      /* drop the leading 1 */
    mpz_mul_2exp(frac, frac, pad);          /* whole hex digits   */
    size_t nd = (fbits + pad) / 4;
    char *digits = malloc(nd + 2);
    if (nd) {
        char *t = mpz_get_str(NULL, 16, frac);
        size_t tl = strlen(t);
        memset(digits, '0', nd - tl);           /* leading zeros */
        memcpy(digits + nd - tl, t, tl + 1);
        free(t);
        while (nd && digits[nd - 1] == '0')
            digits[--nd] = '\0';
    } else {
        digits[0] = '\0';
    }
    size_t len = nd + 48;
    char *out = malloc(len);
    snprintf(out, len, "%s0x1%s%s%sp%+ld", neg ? "-" : "", nd ? "." : "",
             digits, "", e);
    free(digits);
    mpz_clear(frac);
    return out;
}

char *mxv_hexfloat_double(double x)
{
    if (isnan(x))
        return strdup("nan");
    if (isinf(x))
        return strdup(x < 0 ? "-inf" : "inf");
    int e;
    double m = frexp(fabs(x), &e); /* |x| = m * 2^e, m in [0.5, 1) */
    mpz_t z;
    mpz_init(z);
    mpz_set_d(z, ldexp(m, 53));    /* exact: 53-bit integer */
    char *s = hexfloat_z(signbit(x) != 0, z, (long)e - 53);
    mpz_clear(z);
    return s;
}

char *mxv_hexfloat_mpq(const mpq_t q)
{
    mpz_t z;
    mpz_init(z);
    mpz_abs(z, mpq_numref(q));
    char *s = hexfloat_z(mpq_sgn(q) < 0, z, -(long)mpz_scan1(mpq_denref(q), 0));
    mpz_clear(z);
    return s;
}

char *mxv_decimal_mpq(const mpq_t q)
{
    /* q = n / (2^a 5^b) = n * 2^(k-a) * 5^(k-b) / 10^k with k = max(a, b). */
    mpz_t d, n, t;
    mpz_inits(d, n, t, NULL);
    mpz_set(d, mpq_denref(q));
    unsigned long a = mpz_scan1(d, 0);
    mpz_tdiv_q_2exp(d, d, a);
    unsigned long b = 0;
    while (mpz_cmp_ui(d, 1) != 0) {
        mpz_divexact_ui(d, d, 5); /* caller's contract: d = 2^a 5^b */
        b++;
    }
    unsigned long k = a > b ? a : b;
    mpz_abs(n, mpq_numref(q));
    mpz_ui_pow_ui(t, 2, k - a);
    mpz_mul(n, n, t);
    mpz_ui_pow_ui(t, 5, k - b);
    mpz_mul(n, n, t);
    char *digits = mpz_get_str(NULL, 10, n);
    size_t len = strlen(digits);
    size_t outlen = len + k + 4;
    char *out = malloc(outlen), *o = out;
    if (mpq_sgn(q) < 0)
        *o++ = '-';
    if (k == 0) {
        strcpy(o, digits);
    } else if (len > k) {
        memcpy(o, digits, len - k);
        o += len - k;
        *o++ = '.';
        strcpy(o, digits + len - k);
    } else {
        *o++ = '0';
        *o++ = '.';
        memset(o, '0', k - len);
        o += k - len;
        strcpy(o, digits);
    }
    free(digits);
    mpz_clears(d, n, t, NULL);
    return out;
}
