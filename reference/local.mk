# libmxref: the exact reference (formats, quantization, GEMMs, MoE layer).
lib_LIBRARIES += reference/libmxref.a
mxrefincludedir = $(includedir)/mxref
mxrefinclude_HEADERS = \
	reference/mxref/format.h \
	reference/mxref/fnuz.h \
	reference/mxref/blockfma.h \
	reference/mxref/probe.h
reference_libmxref_a_SOURCES = \
	reference/format_table.c \
	reference/decode.c \
	reference/round_pack.c \
	reference/encode.c \
	reference/fnuz.c \
	reference/blockfma.c \
	reference/blockfma_presets.c \
	reference/blockfma_bound.c \
	reference/probe_plan.c \
	reference/probe_infer.c
MXREF_LIBS = reference/libmxref.a $(MPFR_LIBS) $(GMP_LIBS) $(GSL_LIBS) $(LIBS)
