/* testutil.h -- helpers shared by the Check suites.
 *
 * Check's ck_assert* records a checkpoint (one write(2)) on every call, which
 * dominates exhaustive loops of millions of cases.  EXPECT costs nothing
 * until it fails, and then fails the test exactly like ck_assert_msg. */
#ifndef MXV_TESTUTIL_H
#define MXV_TESTUTIL_H

#include <check.h>

#define EXPECT(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            ck_abort_msg(__VA_ARGS__);                                         \
    } while (0)
#define EXPECT1(cond) EXPECT(cond, "Assertion '%s' failed", #cond)

#endif
