/* check_mt19937.c -- the case generator's MT19937 (reference/mt19937.h)
 * gives GSL's gsl_rng_mt19937 words, word for word: the seeds GSL treats
 * specially (0, and 2^32 whose low word is 0), the casegen-style odd
 * seeds, and enough words to cross many refills of the state. */
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include "mt19937.h"
#include "testutil.h"

static const unsigned long seeds[] = {
    0ul, 1ul, 2ul, 4357ul, 0x9E3779B9ul, 0xFFFFFFFFul,
    0x100000000ul, 0x1234567800000001ul, /* above 32 bits: the low word */
};

/* The first index at which the two generators differ, or -1. */
static long first_difference(unsigned long seed, long n)
{
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(g);
    gsl_rng_set(g, seed);
    mxr_mt m;
    mxr_mt_seed(&m, seed);
    long at = -1;
    for (long i = 0; i < n && at < 0; i++)
        if ((unsigned long)mxr_mt_get(&m) != gsl_rng_get(g))
            at = i;
    gsl_rng_free(g);
    return at;
}

START_TEST(gsl_words)
{
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        long at = first_difference(seeds[i], 200000); /* 320 refills */
        ck_assert_msg(at < 0, "seed %#lx: word %ld differs from GSL's", seeds[i], at);
    }
}
END_TEST

/* A generator reseeded mid-stream starts over, and refill() is the twist
 * GSL applies: seeding leaves the state to be twisted before word 0, so a
 * state twisted twice by hand gives GSL's word 624. */
START_TEST(reseed_and_refill)
{
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(g);
    mxr_mt m;
    mxr_mt_seed(&m, 99);
    for (int i = 0; i < 1000; i++)
        (void)mxr_mt_get(&m);
    mxr_mt_seed(&m, 7);
    gsl_rng_set(g, 7);
    ck_assert_uint_eq(mxr_mt_get(&m), gsl_rng_get(g));
    mxr_mt_seed(&m, 7);
    mxr_mt_refill(&m); /* words 0 .. 623 */
    mxr_mt_refill(&m); /* words 624 .. 1247 */
    gsl_rng_set(g, 7);
    for (int i = 0; i < 624; i++)
        (void)gsl_rng_get(g);
    ck_assert_uint_eq(mxr_mt_get(&m), gsl_rng_get(g));
    gsl_rng_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mt19937");
    TCase *tc = tcase_create("mt19937");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gsl_words);
    tcase_add_test(tc, reseed_and_refill);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
