/* names.c -- enum value names and their inverse (see names.h). */
#include <strings.h>
#include "names.h"

const char *mxr_name_of(const char *const *names, int n, int v)
{
    return v >= 0 && v < n ? names[v] : "?";
}

int mxr_name_index(const char *const *names, int n, const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}
