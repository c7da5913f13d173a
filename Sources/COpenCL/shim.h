// Prism talks to OpenCL through the ICD loader. The API level is pinned so that the same
// binary runs on 1.2 drivers (deprecated 1.2 entry points stay visible) and on 3.0 drivers.
#ifndef PRISM_COPENCL_SHIM_H
#define PRISM_COPENCL_SHIM_H
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#endif
