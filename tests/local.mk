# Test suites (Check), run by `make check`.
TESTS_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TESTS_LIBS = $(MXREF_LIBS) $(CHECK_LIBS)

check_PROGRAMS += tests/check_formats
tests_check_formats_SOURCES = tests/check_formats.c tests/testutil.h
tests_check_formats_CFLAGS = $(TESTS_CFLAGS)
tests_check_formats_LDADD = $(TESTS_LIBS)
TESTS += tests/check_formats

TESTS += tests/cli_formats.test tests/python_formats.test
EXTRA_DIST += tests/testutil.h tests/run_python.sh tests/python \
	tests/cli_formats.test tests/python_formats.test
AM_TESTS_ENVIRONMENT = srcdir='$(srcdir)'; PYTHON='$(PYTHON)'; \
	CLANG_HIP='$(CLANG_HIP)'; export CLANG_HIP; \
	export srcdir PYTHON;

# Kernels: the shared numerics, the CPU backend, the GPU backend (skipped
# without a GPU library and device), and the gfx942 assembly check.
KTESTS_CFLAGS = $(TESTS_CFLAGS) -ffp-contract=off
KTESTS_LIBS = $(MXK_LIBS) $(TESTS_LIBS)

check_PROGRAMS += tests/check_kernels_numerics
tests_check_kernels_numerics_SOURCES = tests/check_kernels_numerics.c \
	tests/testutil.h
tests_check_kernels_numerics_CFLAGS = $(KTESTS_CFLAGS)
tests_check_kernels_numerics_LDADD = $(KTESTS_LIBS)

check_PROGRAMS += tests/check_kernels_cpu
tests_check_kernels_cpu_SOURCES = tests/check_kernels_cpu.c tests/kcase.c \
	tests/kcase.h tests/testutil.h
tests_check_kernels_cpu_CFLAGS = $(KTESTS_CFLAGS)
tests_check_kernels_cpu_LDADD = $(KTESTS_LIBS)

check_PROGRAMS += tests/check_kernels_gpu
tests_check_kernels_gpu_SOURCES = tests/check_kernels_gpu.c tests/kcase.c \
	tests/kcase.h src/backend_gpu.c src/backend_gpu.h
tests_check_kernels_gpu_CFLAGS = $(KTESTS_CFLAGS)
tests_check_kernels_gpu_LDADD = $(KTESTS_LIBS)

# The HIP sources on host threads (kernels/hip_emu.h), as a GPU library
# for check_kernels_gpu: the GPU code paths against the C emulation.
if MXK_EMU
check_DATA = tests/libmxk_emu.so
tests/libmxk_emu.so: $(MXK_HIP_SRC) $(MXK_HIP_HDR) kernels/hip_emu.h
	@$(MKDIR_P) tests
	$(AM_V_GEN)$(CXX) -std=c++20 -x c++ -DMXK_EMU -DMXK_BUILT_FOR_GFX94=1 -O1 \
		-fPIC -shared -pthread -ffp-contract=off -I$(srcdir)/kernels -o $@ \
		$(MXK_HIP_SRCPATHS)
CLEANFILES += tests/libmxk_emu.so
endif

TESTS += tests/check_kernels_numerics tests/check_kernels_cpu \
	tests/check_kernels_gpu tests/kernels_emu.test tests/gfx942_asm.test
EXTRA_DIST += tests/gfx942_asm.test tests/kernels_emu.test

# Exhaustive accuracy scan of the kernels' exp and sigmoid (minutes; not run
# by make check): `make tests/scan_sigmoid && tests/scan_sigmoid`.
EXTRA_PROGRAMS = tests/scan_sigmoid
tests_scan_sigmoid_SOURCES = tests/scan_sigmoid.c
tests_scan_sigmoid_CFLAGS = $(KTESTS_CFLAGS)
tests_scan_sigmoid_LDADD = -lm
CLEANFILES += tests/scan_sigmoid
