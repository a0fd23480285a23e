# mxverify: the command-line program.
bin_PROGRAMS += src/mxverify
src_mxverify_SOURCES = \
	src/main.c \
	src/cli.c src/cli.h \
	src/commands.h \
	src/exactnum.c src/exactnum.h \
	src/cmd_formats.c \
	src/cmd_selftest.c \
	src/backend_gpu.c src/backend_gpu.h
src_mxverify_LDADD = $(MXK_LIBS) $(MXREF_LIBS) $(CJSON_LIBS)
