// index.cl — integer tensors: gathers by index, comparisons, selection and casts.
//
// Integer tensors hold every logical type (int64, int32, int8, bool) as int on the device; the
// host refuses values that do not fit 32 bits before they get here.
//
// Kernels:
//   gather_f32(x, idx, out, outer, v, k, inner)
//                                x seen as [outer, v, inner], idx as [k]; out [outer, k, inner]:
//                                out[o, p, j] = x[o, idx[p], j]. Embedding is outer 1, inner D.
//                                The host has checked 0 ≤ idx[p] < v (index_first_outside).
//   gather_backward_f32(dy, starts, positions, dx, outer, v, k, inner)
//                                dx[o, r, j] = Σ dy[o, p, j] over the positions p with idx[p] = r,
//                                taken in the order positions[starts[r] ..< starts[r + 1]] lists
//                                them (the host sorts them ascending): one work-item per element of
//                                dx, no atomics, so the sum is the same on every run and device.
//   index_first_outside(idx, first, n, lo, hi)
//                                first[0] = min(first[0], p) for every p with idx[p] ∉ [lo, hi)
//                                (the host sets first[0] = n before; an int atomic, so the answer
//                                is the smallest such p whatever the order).
//   compare_f32(a, b, out, op, n, inner, bcount), compare_i32(…)
//                                out[i] = a[i] op b[(i / inner) % bcount] as 0 or 1: 0 equal,
//                                1 less, 2 greater (NaN compares false, as in IEEE and PyTorch).
//                                The broadcast is elementwise.cl's binary_f32's.
//   where_f32(cond, a, b, out, n)              out[i] = cond[i] != 0 ? a[i] : b[i]
//   where_backward_f32(cond, dy, da, db, n)    da[i] = cond ? dy[i] : 0, db[i] = cond ? 0 : dy[i]
//   i32_to_f32(x, y, n)          y[i] = (float)x[i] (round to nearest; exact for |x| < 2^24)
//   f32_to_i32(x, y, first, n, mode, lo, hi)
//                                mode 0: y[i] = trunc(x[i]), toward zero; an element that is NaN,
//                                infinite or whose truncation lies outside [lo, hi) (floats, exact:
//                                the host passes powers of two and small integers) is recorded in
//                                first[0] as in index_first_outside, and y[i] is 0.
//                                mode 1 (bool): y[i] = x[i] != 0; NaN is recorded.
//                                mode 2 (whole numbers): as mode 0, and a value that is not a whole
//                                number is recorded too (token ids passed as floats).
// Backward kernels overwrite their outputs.
//
// Layout: flat, contiguous arrays. Launch, 1-D, any global size ≥ the work (one work-item per
// output element), any local size; every work-item guards its index. Sizes fit int (the host
// checks). Remainders are written as a − (a / b)·b (Oclgrind cannot check the `freeze` a paired
// `%` becomes). One variant on every device and no tunables: each kernel is a single pass over
// memory.

__kernel void gather_f32(__global const float *x, __global const int *idx, __global float *out,
                         const int outer, const int v, const int k, const int inner) {
    const int i = (int)get_global_id(0);
    if (i >= outer * k * inner) return;
    const int row = i / inner;
    const int j = i - row * inner;
    const int o = row / k;
    const int p = row - o * k;
    out[i] = x[((long)o * v + idx[p]) * inner + j];
}

__kernel void gather_backward_f32(__global const float *dy, __global const int *starts, __global const int *positions,
                                  __global float *dx, const int outer, const int v, const int k, const int inner) {
    const int i = (int)get_global_id(0);
    if (i >= outer * v * inner) return;
    const int row = i / inner;
    const int j = i - row * inner;
    const int o = row / v;
    const int r = row - o * v;
    float sum = 0.0f;
    for (int q = starts[r]; q < starts[r + 1]; ++q) {
        sum += dy[((long)o * k + positions[q]) * inner + j];
    }
    dx[i] = sum;
}

__kernel void index_first_outside(__global const int *idx, __global int *first, const int n, const int lo, const int hi) {
    const int p = (int)get_global_id(0);
    if (p >= n) return;
    const int value = idx[p];
    if (value < lo || value >= hi) atomic_min(first, p);
}

#define COMPARE(a, b, op) ((op) == 0 ? (a) == (b) : (op) == 1 ? (a) < (b) : (a) > (b))

__kernel void compare_f32(__global const float *a, __global const float *b, __global int *out,
                          const int op, const int n, const int inner, const int bcount) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const int q = i / inner;
    const int bi = q - (q / bcount) * bcount;
    out[i] = COMPARE(a[i], b[bi], op) ? 1 : 0;
}

__kernel void compare_i32(__global const int *a, __global const int *b, __global int *out,
                          const int op, const int n, const int inner, const int bcount) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const int q = i / inner;
    const int bi = q - (q / bcount) * bcount;
    out[i] = COMPARE(a[i], b[bi], op) ? 1 : 0;
}

__kernel void where_f32(__global const int *cond, __global const float *a, __global const float *b,
                        __global float *out, const int n) {
    const int i = (int)get_global_id(0);
    if (i < n) out[i] = cond[i] != 0 ? a[i] : b[i];
}

__kernel void where_backward_f32(__global const int *cond, __global const float *dy, __global float *da,
                                 __global float *db, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const int c = cond[i] != 0;
    da[i] = c ? dy[i] : 0.0f;
    db[i] = c ? 0.0f : dy[i];
}

__kernel void i32_to_f32(__global const int *x, __global float *y, const int n) {
    const int i = (int)get_global_id(0);
    if (i < n) y[i] = (float)x[i];
}

__kernel void f32_to_i32(__global const float *x, __global int *y, __global int *first, const int n,
                         const int mode, const float lo, const float hi) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float value = x[i];
    if (mode == 1) {
        if (isnan(value)) atomic_min(first, i);
        y[i] = value != 0.0f ? 1 : 0;
        return;
    }
    const float t = trunc(value);
    // NaN fails both comparisons; ±inf fall outside any finite range.
    if (t >= lo && t < hi && (mode == 0 || t == value)) {
        y[i] = (int)t;
    } else {
        atomic_min(first, i);
        y[i] = 0;
    }
}
