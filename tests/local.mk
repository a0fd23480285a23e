# Test suites (Check), run by `make check`.
TESTS_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TESTS_LIBS = $(MXREF_LIBS) $(CHECK_LIBS)

check_PROGRAMS += tests/check_formats
tests_check_formats_SOURCES = tests/check_formats.c tests/testutil.h
tests_check_formats_CFLAGS = $(TESTS_CFLAGS)
tests_check_formats_LDADD = $(TESTS_LIBS)
TESTS += tests/check_formats

check_PROGRAMS += tests/check_blockfma
tests_check_blockfma_SOURCES = tests/check_blockfma.c tests/golden.c \
	tests/golden.h tests/testutil.h
tests_check_blockfma_CFLAGS = $(TESTS_CFLAGS)
tests_check_blockfma_LDADD = $(TESTS_LIBS) $(CJSON_LIBS)
TESTS += tests/check_blockfma

check_PROGRAMS += tests/check_probe
tests_check_probe_SOURCES = tests/check_probe.c tests/golden.c tests/golden.h \
	tests/testutil.h
tests_check_probe_CFLAGS = $(TESTS_CFLAGS)
tests_check_probe_LDADD = $(TESTS_LIBS) $(CJSON_LIBS)
TESTS += tests/check_probe

TESTS += tests/cli_formats.test tests/python_formats.test
EXTRA_DIST += tests/testutil.h tests/run_python.sh tests/python \
	tests/cli_formats.test tests/python_formats.test
AM_TESTS_ENVIRONMENT = srcdir='$(srcdir)'; PYTHON='$(PYTHON)'; \
	export srcdir PYTHON;
