# Test suites (Check), run by `make check`.
# tests/oracle: the shared oracles (MPFR rounding to a format, simple
# reference implementations), one library every suite links.
check_LIBRARIES = tests/oracle/liboracle.a
tests_oracle_liboracle_a_SOURCES = tests/oracle/oracle.h \
	tests/oracle/mpfr_round.c tests/oracle/mx_quant.c
TESTS_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TESTS_LIBS = tests/oracle/liboracle.a $(MXREF_LIBS) $(CHECK_LIBS)
# tests/libtesthelp.a: test infrastructure shared by several suites -- the
# golden/h100 vector readers (golden.h) and the seeded kernel cases
# (kcase.h) -- linked, never compiled per suite.  Its objects need cJSON
# (golden.c) and libmxk (kcase.c) after it on the link line.
check_LIBRARIES += tests/libtesthelp.a
tests_libtesthelp_a_SOURCES = tests/golden.c tests/golden.h \
	tests/kcase.c tests/kcase.h
tests_libtesthelp_a_CFLAGS = $(TESTS_CFLAGS) -ffp-contract=off

check_PROGRAMS += tests/check_formats
tests_check_formats_SOURCES = tests/check_formats.c tests/testutil.h
tests_check_formats_CFLAGS = $(TESTS_CFLAGS)
tests_check_formats_LDADD = $(TESTS_LIBS)
TESTS += tests/check_formats

check_PROGRAMS += tests/check_blockfma
tests_check_blockfma_SOURCES = tests/check_blockfma.c tests/testutil.h
tests_check_blockfma_CFLAGS = $(TESTS_CFLAGS)
tests_check_blockfma_LDADD = tests/libtesthelp.a $(TESTS_LIBS) $(CJSON_LIBS)
TESTS += tests/check_blockfma

check_PROGRAMS += tests/check_blockfast
tests_check_blockfast_SOURCES = tests/check_blockfast.c tests/testutil.h
tests_check_blockfast_CFLAGS = $(TESTS_CFLAGS)
tests_check_blockfast_LDADD = $(TESTS_LIBS)
TESTS += tests/check_blockfast

check_PROGRAMS += tests/check_probe
tests_check_probe_SOURCES = tests/check_probe.c tests/testutil.h
tests_check_probe_CFLAGS = $(TESTS_CFLAGS)
tests_check_probe_LDADD = tests/libtesthelp.a $(MXV_IO_LIBS) $(TESTS_LIBS)
TESTS += tests/check_probe

check_PROGRAMS += tests/check_safetensors
tests_check_safetensors_SOURCES = tests/check_safetensors.c tests/testutil.h
tests_check_safetensors_CFLAGS = $(TESTS_CFLAGS)
tests_check_safetensors_LDADD = $(MXV_IO_LIBS) $(TESTS_LIBS)
TESTS += tests/check_safetensors

# Test-only driver of the safetensors module for the Python cross-check.
check_PROGRAMS += tests/st_tool
tests_st_tool_SOURCES = tests/st_tool.c
tests_st_tool_LDADD = $(MXV_IO_LIBS)

TESTS += tests/cli_probe.test tests/cli_help.test tests/cli_outputs.test \
	tests/probe_vectors.test tests/h200_captures.test
EXTRA_DIST += tests/cli_probe.test tests/cli_help.test tests/cli_outputs.test \
	tests/probe_vectors.test tests/h200_captures.test
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
	tools/capture/mxverify_capture/hooks.py \
	tools/capture/mxverify_capture/rng.py \
	tools/capture/mxverify_capture/stfile.py \
	tools/capture/mxverify_capture/tensors.py
AM_TESTS_ENVIRONMENT = srcdir='$(srcdir)'; PYTHON='$(PYTHON)'; \
	CLANG_HIP='$(CLANG_HIP)'; export CLANG_HIP; \
	MXV_SLOW_TESTS='$(SLOW_TESTS)'; export MXV_SLOW_TESTS; \
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

check_PROGRAMS += tests/check_mt19937
tests_check_mt19937_SOURCES = tests/check_mt19937.c
tests_check_mt19937_CFLAGS = $(TESTS_CFLAGS)
tests_check_mt19937_LDADD = $(TESTS_LIBS)
TESTS += tests/check_mt19937

check_PROGRAMS += tests/check_pool
tests_check_pool_SOURCES = tests/check_pool.c tests/testutil.h
tests_check_pool_CFLAGS = $(TESTS_CFLAGS)
tests_check_pool_LDADD = $(TESTS_LIBS)
TESTS += tests/check_pool

# --jobs N gives the same reports for every N; sharded runs merge into the
# unsharded report.
TESTS += tests/jobs.test tests/shard.test tests/bench.test
EXTRA_DIST += tests/jobs.test tests/shard.test tests/bench.test
# the pool trace and tools/pool_schedule.py
TESTS += tests/pool_trace.test
EXTRA_DIST += tests/pool_trace.test

check_PROGRAMS += tests/check_moe
tests_check_moe_SOURCES = tests/check_moe.c tests/testutil.h
tests_check_moe_CFLAGS = $(TESTS_CFLAGS)
tests_check_moe_LDADD = $(TESTS_LIBS)
TESTS += tests/check_moe

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
tests_check_kernels_cpu_SOURCES = tests/check_kernels_cpu.c tests/testutil.h
tests_check_kernels_cpu_CFLAGS = $(KTESTS_CFLAGS)
tests_check_kernels_cpu_LDADD = tests/libtesthelp.a $(KTESTS_LIBS)

check_PROGRAMS += tests/check_kernels_gpu
tests_check_kernels_gpu_SOURCES = tests/check_kernels_gpu.c
tests_check_kernels_gpu_CFLAGS = $(KTESTS_CFLAGS)
tests_check_kernels_gpu_LDADD = tests/libtesthelp.a $(MXV_LIBS) $(KTESTS_LIBS)

# --reference gpu: the GPU library's exact group partials against the CPU
# engine (skipped without a GPU; gpuref_emu.test runs it on the emulation).
check_PROGRAMS += tests/check_gpuref
tests_check_gpuref_SOURCES = tests/check_gpuref.c
tests_check_gpuref_CFLAGS = $(KTESTS_CFLAGS)
tests_check_gpuref_LDADD = $(MXV_LIBS) $(KTESTS_LIBS)
TESTS += tests/check_gpuref tests/gpuref_emu.test tests/gpuref_cli.test
EXTRA_DIST += tests/gpuref_emu.test tests/gpuref_cli.test

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

# The gate and its golden machinery; the slow runs skip under
# --disable-slow-tests (distcheck), so CI runs them once.
TESTS += tests/golden.test tests/gate_default.test tests/seeds.test \
	tests/mutants.test
EXTRA_DIST += tests/golden.test tests/gate_default.test tests/seeds.test \
	tests/mutants.test

# Hardening (issue 12): hand-made bad inputs, the safe writer, the
# infinite-bound false pass (fixed by issue 10), reproducible reports.
TESTS += tests/bad_inputs.test tests/safe_write.test tests/infbound.test \
	tests/determinism.test
EXTRA_DIST += tests/bad_inputs.test tests/safe_write.test tests/infbound.test \
	tests/determinism.test tests/python/make_bad_inputs.py
# Verdict classes of the judge (every element judged; docs/bounds.md).
check_PROGRAMS += tests/check_judge
tests_check_judge_SOURCES = tests/check_judge.c
tests_check_judge_CPPFLAGS = $(MXV_LIB_CPPFLAGS)
tests_check_judge_CFLAGS = $(TESTS_CFLAGS)
tests_check_judge_LDADD = $(MXV_LIBS) $(TESTS_LIBS)
TESTS += tests/check_judge

# Every E8M0 scale byte pair, both decodes: reference, judge and the CPU
# kernel emulation against MPFR and a written-out FP32 oracle.
check_PROGRAMS += tests/check_scalepairs
tests_check_scalepairs_SOURCES = tests/check_scalepairs.c tests/testutil.h
tests_check_scalepairs_CPPFLAGS = $(MXV_LIB_CPPFLAGS)
tests_check_scalepairs_CFLAGS = $(KTESTS_CFLAGS) -I$(top_srcdir)/kernels/cpu
tests_check_scalepairs_LDADD = $(MXV_LIBS) $(KTESTS_LIBS)
TESTS += tests/check_scalepairs

# SwiGLU, moe_sum and router bounds against MPFR on worst-case inputs.
check_PROGRAMS += tests/check_moe_bounds
tests_check_moe_bounds_SOURCES = tests/check_moe_bounds.c tests/testutil.h
tests_check_moe_bounds_CFLAGS = $(TESTS_CFLAGS) -ffp-contract=off
tests_check_moe_bounds_LDADD = $(TESTS_LIBS)
TESTS += tests/check_moe_bounds

# Model-level checks (issue 11): KLD, statistics against scipy, compare.
check_PROGRAMS += tests/check_model
tests_check_model_SOURCES = tests/check_model.c tests/testutil.h
tests_check_model_CFLAGS = $(TESTS_CFLAGS)
tests_check_model_LDADD = $(MXV_IO_LIBS) $(TESTS_LIBS)
TESTS += tests/check_model tests/cli_model.test tests/python_model.test tests/gate_model.test
EXTRA_DIST += tests/cli_model.test tests/python_model.test tests/gate_model.test tests/data/model_stats_ref.py \
	tests/data/model_stats_ref.tsv

# mxverify drift on the tiny MiniMax-M3 runs (golden/tinym3), tools/tinym3.
TESTS += tests/cli_drift.test tests/python_drift.test tests/python_tinym3.test
EXTRA_DIST += tests/cli_drift.test tests/python_drift.test tests/python_tinym3.test \
	tools/tinym3/README.md tools/tinym3/tinym3.py \
	tools/tinym3/moe_numpy.py tools/tinym3/runio.py
