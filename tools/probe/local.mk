# libmxprobe: discovering a matrix unit's block-FMA parameters (probe plans
# and inference, mxprobe/probe.h).  Hardware discovery, not part of the
# exact reference: it builds on libmxref's block-FMA model.  Linked by
# `mxverify probe`, the probe tools below (tools/local.mk) and check_probe.
noinst_LIBRARIES += tools/probe/libmxprobe.a
tools_probe_libmxprobe_a_SOURCES = \
	tools/probe/mxprobe/probe.h \
	tools/probe/probe_plan.c \
	tools/probe/probe_infer.c \
	tools/probe/probe_replay.c
MXPROBE_LIBS = tools/probe/libmxprobe.a $(MXREF_LIBS)
