# mxverify: the command-line program.
# The safetensors reader/writer, also linked into tests that need it.
MXV_ST_SOURCES = src/safetensors.c src/safetensors.h src/safetensors_int.h \
	src/safetensors_read.c src/safetensors_write.c
# The files of the matrix-unit probe, shared with tools/probe/.
MXV_PROBE_IO_SOURCES = src/probe_io.c src/probe_io.h $(MXV_INPUT_SOURCES)
# Opening untrusted inputs, and strict JSON (issue 12).
MXV_INPUT_SOURCES = src/lib/input.c src/lib/input.h
MXV_JSON_SOURCES = src/lib/json_strict.c src/lib/json_strict.h
# The provenance block of reports; src/lib/revision.h holds the git revision
# of the source tree (rewritten only when it changes; a tarball carries it
# in .tarball-revision).
MXV_PROVENANCE_SOURCES = src/lib/provenance.c src/lib/provenance.h
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
bin_PROGRAMS += src/mxverify
src_mxverify_SOURCES = \
	src/main.c $(MXV_PROVENANCE_SOURCES) \
	src/cli.c src/cli.h \
	src/commands.h \
	src/exactnum.c src/exactnum.h \
	$(MXV_ST_SOURCES) \
	src/cmd_formats.c \
	src/cmd_selftest.c \
	src/cmd_ref.c \
	src/cmd_bench.c \
	src/cmd_check.c \
	src/capture.c src/capture.h \
	src/judge.c src/judge.h \
	src/case_write.c src/case_write.h \
	src/layer_opts.c src/layer_opts.h \
	src/suite.c src/suite.h \
	src/runner.c src/runner.h \
	src/cmd_kernels.c \
	src/cmd_mutants.c \
	src/golden.c src/golden.h $(MXV_JSON_SOURCES) \
	src/report.c src/report.h \
	src/backend_gpu.c src/backend_gpu.h \
	$(MXV_PROBE_IO_SOURCES) \
	src/probe_gpu.c src/probe_gpu.h \
	src/probe_describe.c src/probe_describe.h \
	src/cmd_probe.c
src_mxverify_CPPFLAGS = $(AM_CPPFLAGS) -DMXV_SRC_GOLDEN_DIR='"$(abs_top_srcdir)/golden"' \
	-DMXV_PKGLIBEXECDIR='"$(pkglibexecdir)"' \
	-DMXV_BUILD_TC_PROBE='"$(abs_top_builddir)/tools/probe/tc_probe"'
src_mxverify_LDADD = $(MXK_LIBS) $(MXREF_LIBS) $(CJSON_LIBS) $(NETTLE_LIBS)
