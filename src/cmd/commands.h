/* commands.h -- the subcommands of mxverify, one function each. */
#ifndef MXV_COMMANDS_H
#define MXV_COMMANDS_H

int mxv_cmd_formats(int argc, char **argv);
int mxv_cmd_selftest(int argc, char **argv);
int mxv_cmd_ref(int argc, char **argv);
int mxv_cmd_bench(int argc, char **argv);
int mxv_cmd_check(int argc, char **argv);
int mxv_cmd_kernels(int argc, char **argv);
int mxv_cmd_gate(int argc, char **argv);
int mxv_cmd_golden(int argc, char **argv);
int mxv_cmd_mutants(int argc, char **argv);
int mxv_cmd_probe(int argc, char **argv);
int mxv_cmd_report(int argc, char **argv);
int mxv_cmd_drift(int argc, char **argv);
int mxv_cmd_model(int argc, char **argv);

#endif
