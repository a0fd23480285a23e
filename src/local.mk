# mxverify: the command-line program, in three layers (HACKING.md):
#   src/lib/       reusable I/O: safetensors, captures, golden files, probe
#                  files, reports, CLI helpers, exact numbers, the safe writer
#   src/pipeline/  the verification pipeline: stage table, suites, runner,
#                  judge, backends
#   src/cmd/       one thin file per command, and main.c
# src/lib and src/pipeline are convenience libraries that tests and tools
# link; nothing compiles their sources by file list.
noinst_LIBRARIES += src/lib/libmxv.a src/pipeline/libmxvpipe.a

MXV_LIB_CPPFLAGS = $(AM_CPPFLAGS) \
	-DMXV_SRC_GOLDEN_DIR='"$(abs_top_srcdir)/golden"' \
	-DMXV_PKGLIBEXECDIR='"$(pkglibexecdir)"' \
	-DMXV_BUILD_TC_PROBE='"$(abs_top_builddir)/tools/probe/tc_probe"'

# src/model/ (model-level checks, issue 11) appends its sources here; they
# are built into libmxv.a so that tests link them like the rest.
MXV_MODEL_SOURCES = src/model/kld.c src/model/kld.h \
	src/model/stats.c src/model/stats.h \
	src/model/run.c src/model/run.h src/model/run_internal.h \
	src/model/run_jsonl.c src/model/run_safetensors.c \
	src/model/compare.c src/model/compare.h \
	src/model/score.c src/model/score.h \
	src/model/tolerance.c src/model/tolerance.h \
	src/model/mreport.c src/model/mreport.h \
	src/model/gatecheck.c src/model/gatecheck.h
# Drift localization (src/model/drift*, issue 11) judges layers with the
# pipeline's check_capture, so it is built into the pipeline layer.
MXV_DRIFT_SOURCES = src/model/drift.c src/model/drift.h src/model/drift_fp8.c \
	src/model/drift_fp8.h src/model/drift_report.c \
	src/model/drift_kld.c src/model/drift_kld.h

src_lib_libmxv_a_CPPFLAGS = $(MXV_LIB_CPPFLAGS)
src_lib_libmxv_a_SOURCES = \
	src/lib/out.c src/lib/out.h \
	src/lib/cli.c src/lib/cli.h \
	src/lib/exactnum.c src/lib/exactnum.h \
	src/lib/safetensors.c src/lib/safetensors.h src/lib/safetensors_int.h \
	src/lib/safetensors_read.c src/lib/safetensors_write.c \
	src/lib/capture.c src/lib/capture.h \
	src/lib/case_write.c src/lib/case_write.h \
	src/lib/golden.c src/lib/golden.h \
	src/lib/report.c src/lib/report.h \
	src/lib/shard.c src/lib/shard.h \
	src/lib/probe_io.c src/lib/probe_io.h \
	src/lib/probe_describe.c src/lib/probe_describe.h \
	src/lib/input.c src/lib/input.h \
	src/lib/json_strict.c src/lib/json_strict.h \
	src/lib/provenance.c src/lib/provenance.h \
	src/lib/probe_vectors.c src/lib/probe_vectors.h \
	$(MXV_MODEL_SOURCES)

src_pipeline_libmxvpipe_a_CPPFLAGS = $(MXV_LIB_CPPFLAGS)
src_pipeline_libmxvpipe_a_SOURCES = \
	src/pipeline/stages.c src/pipeline/stages.h \
	src/pipeline/judge.c src/pipeline/judge.h \
	src/pipeline/suite.c src/pipeline/suite.h \
	src/pipeline/layer_opts.c src/pipeline/layer_opts.h \
	src/pipeline/runner.c src/pipeline/runner.h \
	src/pipeline/check_capture.c src/pipeline/check_capture.h \
	src/pipeline/check_capture_moe.c src/pipeline/check_capture_internal.h \
	src/pipeline/suite_run.c \
	src/pipeline/case_pool.c src/pipeline/case_pool.h \
	src/pipeline/backend_gpu.c src/pipeline/backend_gpu.h \
	src/pipeline/probe_gpu.c src/pipeline/probe_gpu.h \
	$(MXV_DRIFT_SOURCES)

# The provenance block of reports (issue 12): src/lib/revision.h holds the
# git revision of the source tree, rewritten only when it changes; a
# tarball carries it in .tarball-revision.
BUILT_SOURCES = src/lib/revision.h
CLEANFILES += src/lib/revision.h
src/lib/revision.h: mxv-revision-force
	@$(MKDIR_P) src/lib
	@rev=`cd $(srcdir) && git rev-parse --short=12 HEAD 2>/dev/null`; \
	if test -n "$$rev"; then \
	  (cd $(srcdir) && git diff --quiet HEAD -- 2>/dev/null) || rev="$$rev-dirty"; \
	elif test -f $(srcdir)/.tarball-revision; then \
	  rev=`cat $(srcdir)/.tarball-revision`; \
	else rev=unknown; fi; \
	echo "#define MXV_GIT_REVISION \"$$rev\"" >$@.new; \
	if cmp -s $@ $@.new; then rm -f $@.new; else mv $@.new $@; fi
mxv-revision-force:
.PHONY: mxv-revision-force
dist-hook:
	@rev=`cd $(srcdir) && git rev-parse --short=12 HEAD 2>/dev/null || cat .tarball-revision 2>/dev/null`; \
	echo "$${rev:-unknown}" >$(distdir)/.tarball-revision

# What a program linking the layers needs, in link order (the pipeline
# uses the I/O layer; report.c and golden.c read the pipeline's rows).
MXV_LIBS = src/pipeline/libmxvpipe.a src/lib/libmxv.a $(MXK_LIBS) $(MXPROBE_LIBS) \
	$(CJSON_LIBS) $(NETTLE_LIBS)
# The I/O layer alone (safetensors, probe files, ...).
MXV_IO_LIBS = src/lib/libmxv.a $(MXPROBE_LIBS) $(CJSON_LIBS) $(NETTLE_LIBS)

bin_PROGRAMS += src/mxverify
src_mxverify_SOURCES = \
	src/cmd/main.c src/cmd/commands.h \
	src/cmd/cmd_formats.c \
	src/cmd/cmd_selftest.c \
	src/cmd/cmd_ref.c \
	src/cmd/cmd_bench.c \
	src/cmd/cmd_check.c \
	src/cmd/cmd_kernels.c \
	src/cmd/cmd_gate.c \
	src/cmd/cmd_golden.c \
	src/cmd/cmd_mutants.c \
	src/cmd/cmd_probe.c \
	src/cmd/cmd_model.c \
	src/cmd/cmd_drift.c \
	src/cmd/cmd_report.c
src_mxverify_LDADD = $(MXV_LIBS)
