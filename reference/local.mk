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
	reference/blockfma_bound_dot.c \
	reference/probe_plan.c \
	reference/probe_infer.c
MXREF_LIBS = reference/libmxref.a $(MPFR_LIBS) $(GMP_LIBS) $(GSL_LIBS) $(BLAS_LIBS) $(LIBS)
mxrefinclude_HEADERS += \
	reference/mxref/mxquant.h \
	reference/mxref/accum.h \
	reference/mxref/gemm.h
reference_libmxref_a_SOURCES += \
	reference/mxquant.c \
	reference/accum.c \
	reference/gemm_internal.h \
	reference/gemm.c \
	reference/gemm_direct.c
mxrefinclude_HEADERS += reference/mxref/moe.h
reference_libmxref_a_SOURCES += \
	reference/moe.c \
	reference/moe_route.c \
	reference/moe_act.c
mxrefinclude_HEADERS += reference/mxref/casegen.h
reference_libmxref_a_SOURCES += reference/casegen.c
