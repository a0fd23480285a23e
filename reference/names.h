/* names.h -- the names of an enum's values and their inverse, for the short
 * name tables of libmxref's public enums (mx_round, mx_overflow,
 * mx_scale_rule, mx_moe_policy, mx_case_family); not installed.
 */
#ifndef MXREF_NAMES_H
#define MXREF_NAMES_H

/* names[v], or "?" when v is not in [0, n). */
const char *mxr_name_of(const char *const *names, int n, int v);

/* The index of name in names[0..n-1] (case-insensitive), or -1 when it is
 * not there or name is NULL. */
int mxr_name_index(const char *const *names, int n, const char *name);

#endif
