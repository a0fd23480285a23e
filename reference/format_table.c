/* format_table.c -- the one table of format parameters, and the names.
 *
 * Each row gives width, field widths, bias, signedness and how the special
 * patterns are spent; everything else (emin, emax, largest finite code, NaN
 * and inf codes) is derived here, once, by format_derive().
 */
#include <strings.h>
#include <string.h>
#include "mxref/format.h"
#include "names.h"

static mx_format table[MX_FORMAT_COUNT] = {
    /* id           name        bits e  m  bias signed special */
    {MX_E4M3FN,   "e4m3fn",    8, 4, 3,   7, 1, MX_SPECIAL_FN,   0,0,0,0,0,0,0,0},
    {MX_E4M3FNUZ, "e4m3fnuz",  8, 4, 3,   8, 1, MX_SPECIAL_FNUZ, 0,0,0,0,0,0,0,0},
    {MX_E5M2,     "e5m2",      8, 5, 2,  15, 1, MX_SPECIAL_IEEE, 0,0,0,0,0,0,0,0},
    {MX_E5M2FNUZ, "e5m2fnuz",  8, 5, 2,  16, 1, MX_SPECIAL_FNUZ, 0,0,0,0,0,0,0,0},
    {MX_E8M0,     "e8m0",      8, 8, 0, 127, 0, MX_SPECIAL_E8M0, 0,0,0,0,0,0,0,0},
    {MX_BF16,     "bf16",     16, 8, 7, 127, 1, MX_SPECIAL_IEEE, 0,0,0,0,0,0,0,0},
    {MX_FP16,     "fp16",     16, 5,10,  15, 1, MX_SPECIAL_IEEE, 0,0,0,0,0,0,0,0},
    {MX_FP32,     "fp32",     32, 8,23, 127, 1, MX_SPECIAL_IEEE, 0,0,0,0,0,0,0,0},
};

static void format_derive(mx_format *f)
{
    uint32_t eall = (1u << f->ebits) - 1, mall = (1u << f->mbits) - 1;
    uint32_t sign = f->is_signed ? 1u << (f->bits - 1) : 0;

    f->has_subnormals = f->special != MX_SPECIAL_E8M0;
    f->emin = f->has_subnormals ? 1 - f->bias : -f->bias;
    f->has_inf = f->special == MX_SPECIAL_IEEE;
    f->has_negzero = f->is_signed && f->special != MX_SPECIAL_FNUZ;
    switch (f->special) {
    case MX_SPECIAL_IEEE:
        f->emax = (int)(eall - 1) - f->bias;
        f->max_finite_code = ((eall - 1) << f->mbits) | mall;
        f->nan_code = (eall << f->mbits) | (1u << (f->mbits - 1));
        f->inf_code = eall << f->mbits;
        break;
    case MX_SPECIAL_FN:
        f->emax = (int)eall - f->bias;
        f->max_finite_code = (eall << f->mbits) | (mall - 1);
        f->nan_code = (eall << f->mbits) | mall;
        break;
    case MX_SPECIAL_FNUZ:
        f->emax = (int)eall - f->bias;
        f->max_finite_code = (eall << f->mbits) | mall;
        f->nan_code = sign;
        break;
    case MX_SPECIAL_E8M0:
        f->emax = (int)(eall - 1) - f->bias;
        f->max_finite_code = eall - 1;
        f->nan_code = eall;
        break;
    }
}

static void table_init(void)
{
    static int done;
    if (done)
        return;
    for (int i = 0; i < MX_FORMAT_COUNT; i++)
        format_derive(&table[i]);
    done = 1;
}

/* Runs before main so that lookups from several threads never race. */
__attribute__((constructor)) static void table_init_ctor(void) { table_init(); }

const mx_format *mx_format_get(mx_format_id id)
{
    if ((int)id < 0 || id >= MX_FORMAT_COUNT)
        return NULL;
    table_init();
    return &table[id];
}

static const struct { const char *alias; mx_format_id id; } aliases[] = {
    {"float8_e4m3fn", MX_E4M3FN},     {"fp8e4m3fn", MX_E4M3FN},
    {"f8_e4m3", MX_E4M3FN},           {"float8_e4m3fnuz", MX_E4M3FNUZ},
    {"fp8e4m3fnuz", MX_E4M3FNUZ},     {"f8_e4m3fnuz", MX_E4M3FNUZ},
    {"float8_e5m2", MX_E5M2},         {"fp8e5m2", MX_E5M2},
    {"f8_e5m2", MX_E5M2},             {"float8_e5m2fnuz", MX_E5M2FNUZ},
    {"fp8e5m2fnuz", MX_E5M2FNUZ},     {"f8_e5m2fnuz", MX_E5M2FNUZ},
    {"float8_e8m0fnu", MX_E8M0},      {"f8_e8m0", MX_E8M0},
    {"bfloat16", MX_BF16},            {"float16", MX_FP16},
    {"half", MX_FP16},                {"f16", MX_FP16},
    {"float32", MX_FP32},             {"float", MX_FP32},
    {"f32", MX_FP32},
};

const mx_format *mx_format_by_name(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < MX_FORMAT_COUNT; i++)
        if (strcasecmp(name, table[i].name) == 0)
            return mx_format_get((mx_format_id)i);
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].alias) == 0)
            return mx_format_get(aliases[i].id);
    return NULL;
}

uint64_t mx_format_ncodes(const mx_format *f) { return (uint64_t)1 << f->bits; }

const char *mx_class_name(mx_class c)
{
    static const char *const n[] = {"zero", "subnormal", "normal", "inf", "nan"};
    return mxr_name_of(n, 5, (int)c);
}

static const char *const round_names[] = {"rne", "rna", "rtz", "up", "down", "stochastic"};
static const char *const ovf_names[] = {"default", "saturate", "nan", "inf"};

const char *mx_round_name(mx_round r)
{
    return mxr_name_of(round_names, 6, (int)r);
}

int mx_round_by_name(const char *name, mx_round *out)
{
    int i = mxr_name_index(round_names, 6, name);
    if (i < 0)
        return -1;
    *out = (mx_round)i;
    return 0;
}

const char *mx_overflow_name(mx_overflow o)
{
    return mxr_name_of(ovf_names, 4, (int)o);
}

int mx_overflow_by_name(const char *name, mx_overflow *out)
{
    int i = mxr_name_index(ovf_names, 4, name);
    if (i < 0)
        return -1;
    *out = (mx_overflow)i;
    return 0;
}

mx_overflow mx_overflow_resolve(const mx_format *f, mx_overflow o)
{
    if (o != MX_OVF_DEFAULT)
        return o;
    return f->has_inf ? MX_OVF_INF : MX_OVF_NAN;
}
