/* cmd_selftest.c -- `mxverify selftest`: a fast consistency pass over the
 * reference library, for a first run on a new machine.  The real tests are
 * the Check suites under tests/; this only shows the build is sane. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "mxref/format.h"
#include "mxref/fnuz.h"
#include "cli.h"

static int fails, checks;

static void expect(int ok, const char *what, unsigned code)
{
    checks++;
    if (!ok && fails++ < 10)
        fprintf(stderr, "selftest: FAIL %s (code 0x%X)\n", what, code);
}

int mxv_cmd_selftest(int argc, char **argv)
{
    const char *help = NULL;
    const mxv_opt opts[] = {{"help", 0, &help, 'h'}, {NULL, 0, NULL, 0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos, rc = pos ? mxv_parse_opts(argc, argv, opts, pos, &npos, "selftest")
                       : mxv_error(MXV_EXIT_INTERNAL, "out of memory");
    free(pos);
    if (rc)
        return rc;
    if (help) {
        puts("usage: mxverify selftest\n"
             "  a quick consistency check of the reference library (every code of\n"
             "  every format round-trips, FN -> FNUZ, a few GEMMs); exit 0 or 1\n"
             "  -h, --help  this text");
        return MXV_EXIT_OK;
    }
    if (npos)
        return mxv_error(MXV_EXIT_USAGE, "selftest takes no arguments");
    mx_encode_opts o = mx_encode_defaults();
    for (int id = 0; id < MX_FORMAT_COUNT; id++) {
        const mx_format *f = mx_format_get((mx_format_id)id);
        if (f->bits > 16)
            continue;
        for (uint32_t c = 0; c < mx_format_ncodes(f); c++) {
            uint32_t back;
            double x = mx_decode_double(f, c);
            if (isnan(x))
                continue;
            mx_encode_double(f, x, &o, &back);
            expect(back == c, f->name, c);
        }
    }
    for (uint32_t c = 0; c < 65536; c++) {
        float x = mx_bf16_to_float((uint16_t)c);
        if (!isnan(x))
            expect(mx_bf16_from_float(x) == c, "bf16 round trip", c);
    }
    for (unsigned s = 0; s < 254; s++)
        for (unsigned b = 0; b < 256; b++) {
            uint8_t v = (uint8_t)b, sc = (uint8_t)s, ov, os;
            size_t bad;
            mx_fn_to_fnuz_mx(&v, 1, &sc, 1, 1, &ov, &os, &bad);
            int nan = b == 0x7F || b == 0xFF;
            expect((mx_fnuz_check_preserved(&v, &sc, &ov, &os, 1, 1) < 0) != nan,
                   "fn->fnuz value preservation", b | s << 8);
        }
    printf("selftest: %d checks, %d failed\n", checks, fails);
    return fails ? MXV_EXIT_FAIL : MXV_EXIT_OK;
}
