# tools/pool_schedule.py: a pool trace (MXREF_POOL_TRACE) scheduled on N threads
# (docs/scaling.md, "Where the time goes").
EXTRA_DIST += tools/pool_schedule.py

# Matrix-unit probe tools (tools/probe/; docs/blockfma.md).  The GPU side
# (tc_probe.cu, h100_triton.py, run_h100.sh) runs on an NVIDIA machine and is
# shipped as source; the host tools below build here:
#   mkplan    writes the probe plans (mxprobe/probe.h) for tc_probe
#   fit       replays tc_probe's .mxtd results through a (modified) preset
#   mkgolden  writes golden/h100/*.vec and *.probe from .mxtd results
noinst_PROGRAMS += tools/probe/mkplan tools/probe/fit tools/probe/mkgolden
tools_probe_mkplan_SOURCES = tools/probe/mkplan.c
tools_probe_mkplan_LDADD = $(MXV_IO_LIBS)
tools_probe_fit_SOURCES = tools/probe/fit.c tools/probe/mxtd.h \
	tools/probe/casegen.h
tools_probe_fit_LDADD = $(MXV_IO_LIBS)
tools_probe_mkgolden_SOURCES = tools/probe/mkgolden.c tools/probe/mxtd.h \
	tools/probe/casegen.h
tools_probe_mkgolden_LDADD = $(MXV_IO_LIBS)
EXTRA_DIST += tools/probe/tc_probe.cu tools/probe/tc_layout.h \
	tools/probe/test_layout.cc tools/probe/h100_triton.py tools/probe/h200_triton_bugs.py \
	tools/probe/run_h100.sh tools/probe/run_h200.sh

# tc_probe, the NVIDIA side of `mxverify probe --gpu`: built when configure
# found nvcc, always for sm_90a (wgmma exists only there, whatever
# --with-cuda-arch says), installed in $(pkglibexecdir), where mxverify
# looks for it after $$MXVERIFY_TC_PROBE and this build tree.
if MXK_GPU_CUDA
tcprobedir = $(pkglibexecdir)
tcprobe_SCRIPTS = tools/probe/tc_probe
CLEANFILES += tools/probe/tc_probe
tools/probe/tc_probe: tools/probe/tc_probe.cu tools/probe/tc_layout.h \
		tools/probe/casegen.h
	@$(MKDIR_P) tools/probe
	$(AM_V_GEN)$(NVCC) -O2 -std=c++17 -gencode=arch=compute_90a,code=sm_90a \
		-o $@ $(srcdir)/tools/probe/tc_probe.cu
endif
