// elementwise.cl — element-by-element kernels over float32 vectors.
//
// Kernels:
//   fill_f32(y, value, n)        y[i] = value                     for i < n
//   copy_f32(x, y, n)            y[i] = x[i]                      for i < n
//   axpy_f32(alpha, x, y, n)     y[i] = alpha * x[i] + y[i]       for i < n  (y accumulates, +=)
//
// Layout: flat, contiguous float arrays; offsets are the caller's (pass sub-buffers).
// Launch: one work-item per PRISM_VEC elements, 1-D; any global size, any local size (or none).
// Every kernel handles every n: each work-item guards its indices, so the last, partial vector
// and surplus work-items are harmless.
// Tunables:
//   PRISM_VEC   elements per work-item (default 1). A CPU device (PoCL) vectorizes across work-items
//               itself, so 1 is right there; GPUs may prefer 4.

#ifndef PRISM_VEC
#define PRISM_VEC 1
#endif

__kernel void fill_f32(__global float *y, const float value, const int n) {
    const int base = (int)get_global_id(0) * PRISM_VEC;
    for (int k = 0; k < PRISM_VEC; ++k) {
        const int i = base + k;
        if (i < n) y[i] = value;
    }
}

__kernel void copy_f32(__global const float *x, __global float *y, const int n) {
    const int base = (int)get_global_id(0) * PRISM_VEC;
    for (int k = 0; k < PRISM_VEC; ++k) {
        const int i = base + k;
        if (i < n) y[i] = x[i];
    }
}

__kernel void axpy_f32(const float alpha, __global const float *x, __global float *y, const int n) {
    const int base = (int)get_global_id(0) * PRISM_VEC;
    for (int k = 0; k < PRISM_VEC; ++k) {
        const int i = base + k;
        if (i < n) y[i] = fma(alpha, x[i], y[i]);
    }
}
