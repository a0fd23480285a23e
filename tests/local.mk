# Test suites (Check), run by `make check`.
TESTS_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TESTS_LIBS = $(MXREF_LIBS) $(CHECK_LIBS)
