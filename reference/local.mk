# libmxref: the exact reference (formats, quantization, GEMMs, MoE layer).
lib_LIBRARIES += reference/libmxref.a
mxrefincludedir = $(includedir)/mxref
mxrefinclude_HEADERS = \
	reference/mxref/format.h \
	reference/mxref/fnuz.h \
	reference/mxref/blockfma.h
reference_libmxref_a_SOURCES = \
	reference/names.c reference/names.h \
	reference/format_table.c \
	reference/decode.c \
	reference/round_pack.c \
	reference/encode.c \
	reference/fnuz.c \
	reference/blockfma_fx.h \
	reference/blockfma_fx.c \
	reference/blockfma.c \
	reference/blockfma_presets.c \
	reference/blockfma_bound.c \
	reference/blockfma_bound_dot.c \
	reference/blockfma_mag.c
MXREF_LIBS = reference/libmxref.a $(MPFR_LIBS) $(GMP_LIBS) $(GSL_LIBS) $(BLAS_LIBS) $(LIBS)
mxrefinclude_HEADERS += \
	reference/mxref/mxquant.h \
	reference/mxref/accum.h \
	reference/mxref/gemm.h \
	reference/mxref/blockwalk.h \
	reference/mxref/pool.h
# The group GEMM: one file per part (gemm_internal.h lists them).
reference_libmxref_a_SOURCES += \
	reference/mxquant.c \
	reference/accum.c \
	reference/operand.h \
	reference/gemm_internal.h \
	reference/gemm_check.c \
	reference/code_table.c \
	reference/gemm_prep.c \
	reference/gemm_engine.c \
	reference/gemm_residual.c \
	reference/round_int.c \
	reference/model_fp32_group.c \
	reference/model_fp32_seq.c \
	reference/model_block.c \
	reference/gemm_direct.c \
	reference/gemm_bound.c \
	reference/gemm_bound_fp32.c \
	reference/gemm_bound_block.c \
	reference/blockfma_gemm.c \
	reference/gemm_bound_dequant.c \
	reference/model_dequant.c \
	reference/gemm_fused.c \
	reference/gemm_split.c \
	reference/pool.c \
	reference/gemm.c
mxrefinclude_HEADERS += reference/mxref/moe.h
reference_libmxref_a_SOURCES += \
	reference/moe.c \
	reference/moe_config.c \
	reference/moe_route.c \
	reference/moe_act.c
mxrefinclude_HEADERS += reference/mxref/casegen.h
reference_libmxref_a_SOURCES += reference/casegen.c reference/mt19937.c reference/mt19937.h
