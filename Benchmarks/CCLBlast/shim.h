// CLBlast's C API, the SGEMM peer of the kernel benchmark.
#ifndef PRISM_CCLBLAST_SHIM_H
#define PRISM_CCLBLAST_SHIM_H
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <clblast_c.h>
#endif
