// zlib, for reading gzip-compressed IDX files (Debian: zlib1g-dev).
#ifndef PRISM_CZLIB_SHIM_H
#define PRISM_CZLIB_SHIM_H
#include <zlib.h>

/// The version of the zlib linked in.
const char *prism_zlib_version(void);
#endif
