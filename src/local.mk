# mxverify: the command-line program.
# The safetensors reader/writer, also linked into tests that need it.
MXV_ST_SOURCES = src/safetensors.c src/safetensors.h src/safetensors_int.h \
	src/safetensors_read.c src/safetensors_write.c
# The files of the matrix-unit probe, shared with tools/probe/.
MXV_PROBE_IO_SOURCES = src/probe_io.c src/probe_io.h
# Model-level checks (issue 11): log-prob readers, KLD, statistics.
MXV_MODEL_SOURCES = src/model/kld.c src/model/kld.h \
	src/model/stats.c src/model/stats.h \
	src/model/run.c src/model/run.h \
	src/model/compare.c src/model/compare.h \
	src/model/score.c src/model/score.h \
	src/model/tolerance.c src/model/tolerance.h \
	src/model/mreport.c src/model/mreport.h \
	src/model/gatecheck.c src/model/gatecheck.h
# drift localization (issue 11): analysis, FP8 statistics, reports
MXV_DRIFT_SOURCES = src/model/drift.c src/model/drift.h src/model/drift_fp8.c \
	src/model/drift_fp8.h src/model/drift_report.c
bin_PROGRAMS += src/mxverify
src_mxverify_SOURCES = \
	src/main.c \
	src/cli.c src/cli.h \
	src/commands.h \
	src/exactnum.c src/exactnum.h \
	$(MXV_ST_SOURCES) \
	src/cmd_formats.c \
	src/cmd_selftest.c \
	src/cmd_ref.c \
	src/cmd_bench.c \
	src/cmd_check.c src/check_moe.h \
	src/cmd_drift.c \
	src/capture.c src/capture.h \
	src/judge.c src/judge.h \
	src/case_write.c src/case_write.h \
	src/layer_opts.c src/layer_opts.h \
	src/suite.c src/suite.h \
	src/runner.c src/runner.h \
	src/cmd_kernels.c \
	src/cmd_mutants.c \
	src/golden.c src/golden.h \
	src/report.c src/report.h \
	src/backend_gpu.c src/backend_gpu.h \
	$(MXV_PROBE_IO_SOURCES) \
	src/probe_gpu.c src/probe_gpu.h \
	src/probe_describe.c src/probe_describe.h \
	src/cmd_probe.c \
	src/cmd_model.c \
	$(MXV_MODEL_SOURCES) \
	$(MXV_DRIFT_SOURCES)
src_mxverify_CPPFLAGS = $(AM_CPPFLAGS) -DMXV_SRC_GOLDEN_DIR='"$(abs_top_srcdir)/golden"' \
	-DMXV_PKGLIBEXECDIR='"$(pkglibexecdir)"' \
	-DMXV_BUILD_TC_PROBE='"$(abs_top_builddir)/tools/probe/tc_probe"'
src_mxverify_LDADD = $(MXK_LIBS) $(MXREF_LIBS) $(CJSON_LIBS) $(NETTLE_LIBS)
