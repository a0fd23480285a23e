# libFuzzer targets (issue 12): `make fuzz` builds them with clang (libFuzzer,
# ASan, UBSan; configure's CLANG_FUZZ) and runs each for FUZZ_SECONDS from
# its committed seed corpus (tests/fuzz/run.sh states the limits).  Not part
# of make check; CI runs `make fuzz FUZZ_SECONDS=60`.
FUZZ_TARGETS = safetensors capture check golden probe vec model_run
FUZZ_SECONDS = 20
# Every library source of the program (build.sh keeps the .c files but
# src/main.c), and the .vec reader of the tests.
FUZZ_LIBSRC = $(reference_libmxref_a_SOURCES) $(kernels_libmxk_a_SOURCES) \
	$(src_lib_libmxv_a_SOURCES) $(src_pipeline_libmxvpipe_a_SOURCES) \
	$(tools_probe_libmxprobe_a_SOURCES) \
	$(src_mxverify_SOURCES) tests/golden.c
fuzz-build: config.h src/lib/revision.h
	@$(MKDIR_P) tests/fuzz/obj
	@printf '%s\n' $(DEFS) -I$(top_builddir) -I$(top_srcdir)/src/cmd $(MXV_LIB_CPPFLAGS) $(CPPFLAGS) \
		>tests/fuzz/obj/cppflags
	@printf '%s\n' $(MPFR_LIBS) $(GMP_LIBS) $(GSL_LIBS) $(BLAS_LIBS) $(CJSON_LIBS) \
		$(NETTLE_LIBS) $(LIBS) -lm >tests/fuzz/obj/libs
	@FUZZ_CC='$(CLANG_FUZZ)' srcdir='$(srcdir)' \
	$(SHELL) $(srcdir)/tests/fuzz/build.sh $(FUZZ_TARGETS) -- $(FUZZ_LIBSRC)
fuzz: fuzz-build
	srcdir='$(srcdir)' $(SHELL) $(srcdir)/tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
.PHONY: fuzz fuzz-build
EXTRA_DIST += tests/fuzz/fuzz.h tests/fuzz/build.sh tests/fuzz/run.sh \
	tests/fuzz/make_seeds.py tests/fuzz/corpus tests/fuzz/dict
EXTRA_DIST += tests/fuzz/fuzz_safetensors.c tests/fuzz/fuzz_capture.c \
	tests/fuzz/fuzz_check.c tests/fuzz/fuzz_golden.c tests/fuzz/fuzz_probe.c \
	tests/fuzz/fuzz_vec.c tests/fuzz/fuzz_model_run.c
clean-local: clean-fuzz
clean-fuzz:
	rm -rf tests/fuzz/obj tests/fuzz/work tests/fuzz/findings
	for t in $(FUZZ_TARGETS); do rm -f tests/fuzz/fuzz_$$t; done
.PHONY: clean-fuzz
