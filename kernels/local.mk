# kernels/: the kernels' C API (mxk.h), its CPU backend (libmxk.a: a C
# emulation of every kernel and the table of planted bugs), and the GPU
# library libmxk_gpu.so built from the HIP sources by nvcc or hipcc
# (configure --with-cuda / --with-hip), installed in $(pkglibdir) and loaded
# with dlopen by src/pipeline/backend_gpu.c.
MXK_CPPFLAGS = -I$(top_srcdir)/kernels \
	-DMXK_PKGLIBDIR='"$(pkglibdir)"' \
	-DMXK_BUILD_GPU_LIB='"$(abs_top_builddir)/kernels/libmxk_gpu.so"'

lib_LIBRARIES += kernels/libmxk.a
include_HEADERS += kernels/mxk.h
kernels_libmxk_a_CFLAGS = $(AM_CFLAGS) -ffp-contract=off
kernels_libmxk_a_SOURCES = \
	kernels/mxk_numerics.h \
	kernels/mxk_check.h \
	kernels/cpu/cpu.h \
	kernels/cpu/ops.c \
	kernels/cpu/mutants.c \
	kernels/cpu/mx_quant.c \
	kernels/cpu/fn_to_fnuz.c \
	kernels/cpu/moe_align.c \
	kernels/cpu/mxfp8_group_gemm.c \
	kernels/cpu/bf16_group_gemm.c \
	kernels/cpu/swiglu_quant.c \
	kernels/cpu/moe_sum.c
MXK_LIBS = kernels/libmxk.a -lm

# One HIP source per kernel, plus the host-pointer backend (gpu_ops.hip).
MXK_HIP_SRC = \
	kernels/mx_quant.hip \
	kernels/fn_to_fnuz.hip \
	kernels/moe_align.hip \
	kernels/mxfp8_group_gemm.hip \
	kernels/bf16_group_gemm.hip \
	kernels/swiglu_quant.hip \
	kernels/moe_sum.hip \
	kernels/gpu_slice.hip \
	kernels/gpu_walk.hip \
	kernels/gpu_ops.hip
MXK_HIP_SRCPATHS = \
	$(srcdir)/kernels/mx_quant.hip \
	$(srcdir)/kernels/fn_to_fnuz.hip \
	$(srcdir)/kernels/moe_align.hip \
	$(srcdir)/kernels/mxfp8_group_gemm.hip \
	$(srcdir)/kernels/bf16_group_gemm.hip \
	$(srcdir)/kernels/swiglu_quant.hip \
	$(srcdir)/kernels/moe_sum.hip \
	$(srcdir)/kernels/gpu_slice.hip \
	$(srcdir)/kernels/gpu_walk.hip \
	$(srcdir)/kernels/gpu_ops.hip
MXK_HIP_HDR = kernels/mxk.h kernels/mxk_numerics.h kernels/mxk_check.h \
	kernels/mxk_gpu.h kernels/hip_compat.h reference/mxref/blockwalk.h
EXTRA_DIST += $(MXK_HIP_SRC) kernels/mxk_gpu.h kernels/hip_compat.h \
	kernels/hip_emu.h

# The numerics must not be contracted (no a*b+c -> fma) nor flushed to zero:
# the portable path is bit-identical to the C emulation only then.
MXK_NVCC_FLAGS = -x cu -arch=$(NVCC_ARCH) -O2 -std=c++17 -fmad=false \
	-Xcompiler -fPIC -shared
MXK_HIPCC_FLAGS = --offload-arch=$(OFFLOAD_ARCH) -O2 -std=c++17 \
	-ffp-contract=off -DMXK_NO_CONTRACT -fPIC -shared $(MXK_HIP_DEFS)

if MXK_GPU
mxkgpudir = $(pkglibdir)
mxkgpu_DATA = kernels/libmxk_gpu.so
CLEANFILES += kernels/libmxk_gpu.so
endif
if MXK_GPU_CUDA
kernels/libmxk_gpu.so: $(MXK_HIP_SRC) $(MXK_HIP_HDR)
	@$(MKDIR_P) kernels
	$(AM_V_GEN)$(NVCC) $(MXK_NVCC_FLAGS) -I$(srcdir)/kernels -o $@ \
		$(MXK_HIP_SRCPATHS)
endif
if MXK_GPU_HIP
kernels/libmxk_gpu.so: $(MXK_HIP_SRC) $(MXK_HIP_HDR)
	@$(MKDIR_P) kernels
	$(AM_V_GEN)$(HIPCC) $(MXK_HIPCC_FLAGS) -I$(srcdir)/kernels -o $@ \
		$(MXK_HIP_SRCPATHS)
endif
