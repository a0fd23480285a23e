# mxverify: the command-line program.
bin_PROGRAMS += src/mxverify
src_mxverify_SOURCES = \
	src/main.c \
	src/cli.c src/cli.h \
	src/commands.h \
	src/exactnum.c src/exactnum.h \
	src/cmd_formats.c \
	src/cmd_selftest.c
src_mxverify_LDADD = $(MXREF_LIBS) $(CJSON_LIBS)
