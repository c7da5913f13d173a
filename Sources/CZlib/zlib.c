// zlib itself comes from its static archive (see the CZlib target in Package.swift); this file
// only gives the target a translation unit to build.
#include "shim.h"

const char *prism_zlib_version(void) { return zlibVersion(); }
