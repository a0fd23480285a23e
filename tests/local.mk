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

check_PROGRAMS += tests/check_safetensors
tests_check_safetensors_SOURCES = tests/check_safetensors.c tests/testutil.h \
	$(MXV_ST_SOURCES)
tests_check_safetensors_CFLAGS = $(TESTS_CFLAGS)
tests_check_safetensors_LDADD = $(TESTS_LIBS) $(CJSON_LIBS)
TESTS += tests/check_safetensors

# Test-only driver of the safetensors module for the Python cross-check.
check_PROGRAMS += tests/st_tool
tests_st_tool_SOURCES = tests/st_tool.c $(MXV_ST_SOURCES)
tests_st_tool_LDADD = $(MXREF_LIBS) $(CJSON_LIBS)

TESTS += tests/cli_formats.test tests/python_formats.test tests/python_check.test tests/cli_ref.test tests/cli_check.test \
	tests/python_safetensors.test tests/python_capture.test
EXTRA_DIST += tests/testutil.h tests/run_python.sh tests/python \
	tests/cli_formats.test tests/python_formats.test tests/python_check.test tests/cli_ref.test tests/cli_check.test \
	tests/python_safetensors.test tests/python_capture.test

# tools/capture: the Python capture writer (tests/python_capture.test).
EXTRA_DIST += tools/capture/README.md tools/capture/make_golden_example.py \
	tools/capture/examples/torch_mxfp8_gemm.py \
	tools/capture/mxverify_capture/__init__.py \
	tools/capture/mxverify_capture/_validate.py \
	tools/capture/mxverify_capture/capture.py \
	tools/capture/mxverify_capture/emulate.py \
	tools/capture/mxverify_capture/formats.py \
	tools/capture/mxverify_capture/rng.py \
	tools/capture/mxverify_capture/stfile.py \
	tools/capture/mxverify_capture/tensors.py
AM_TESTS_ENVIRONMENT = srcdir='$(srcdir)'; PYTHON='$(PYTHON)'; \
	export srcdir PYTHON;

check_PROGRAMS += tests/check_mxquant
tests_check_mxquant_SOURCES = tests/check_mxquant.c tests/testutil.h
tests_check_mxquant_CFLAGS = $(TESTS_CFLAGS)
tests_check_mxquant_LDADD = $(TESTS_LIBS)
TESTS += tests/check_mxquant

check_PROGRAMS += tests/check_gemm
tests_check_gemm_SOURCES = tests/check_gemm.c tests/testutil.h
tests_check_gemm_CFLAGS = $(TESTS_CFLAGS)
tests_check_gemm_LDADD = $(TESTS_LIBS)
TESTS += tests/check_gemm

check_PROGRAMS += tests/check_moe
tests_check_moe_SOURCES = tests/check_moe.c tests/testutil.h
tests_check_moe_CFLAGS = $(TESTS_CFLAGS)
tests_check_moe_LDADD = $(TESTS_LIBS)
TESTS += tests/check_moe
