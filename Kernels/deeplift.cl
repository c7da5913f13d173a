// deeplift.cl — the element-wise steps of DeepLIFT's multiplier rules (PrismExplain's `DeepLift`).
// Every pair of an input and a reference runs as one row of a batch; multipliers m = ∂ⁿΔ out / ∂Δ in
// flow from the output back to the input, and a value's contribution is m ⊙ (x − x_ref).
//
// Kernels (1-D, one work-item per element, any local size; each overwrites its output):
//   deeplift_rescale(m, x, xr, y, yr, g, out, eps, n)
//       the rescale rule of an element-wise function y = f(x): out = m · (y − yr) / (x − xr) where
//       |x − xr| > eps, else g (the caller passes g = m · f′(x), the gradient, as shap and Captum
//       fall back to where input and reference agree).
//   deeplift_divide(c, dx, out, eps, n)
//       out = c / dx where |dx| > eps, else 0: multipliers from contributions c (max pooling hands
//       each window's Δ to the positions of its two maxima, shap's rule).
//   deeplift_row_dot(m, d, out, rows, width)
//       out[row] = Σ over the row's `width` elements of m · d (a node's contributions, for the
//       conservation check) and out[rows + row] = Σ |m · d| (the scale of its rounding error; one
//       buffer, so the host reads both at once), one work-item per row (local size 1: a CPU walks the
//       row with vector loads), in eight partial sums; overwrites out[0 ..< 2·rows].
// Layout: flat float arrays of n (rows · width) elements. No tunables.

__kernel void deeplift_rescale(__global const float *m, __global const float *x, __global const float *xr,
                               __global const float *y, __global const float *yr, __global const float *g,
                               __global float *out, const float eps, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float dx = x[i] - xr[i];
    out[i] = fabs(dx) > eps ? m[i] * ((y[i] - yr[i]) / dx) : g[i];
}

__kernel void deeplift_divide(__global const float *c, __global const float *dx, __global float *out, const float eps,
                              const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float d = dx[i];
    out[i] = fabs(d) > eps ? c[i] / d : 0.0f;
}

__kernel void deeplift_row_dot(__global const float *m, __global const float *d, __global float *out, const int rows,
                               const int width) {
    const int row = (int)get_global_id(0);
    if (row >= rows) return;
    const __global float *a = m + (size_t)row * width, *b = d + (size_t)row * width;
    float8 s = (float8)(0.0f), t = (float8)(0.0f);
    int i = 0;
    for (; i + 8 <= width; i += 8) {
        const float8 p = vload8(0, a + i) * vload8(0, b + i);
        s += p;
        t += fabs(p);
    }
    float tail = 0.0f, tailMagnitude = 0.0f;
    for (; i < width; ++i) {
        const float p = a[i] * b[i];
        tail += p;
        tailMagnitude += fabs(p);
    }
    out[row] = (((s.s0 + s.s1) + (s.s2 + s.s3)) + ((s.s4 + s.s5) + (s.s6 + s.s7))) + tail;
    out[rows + row] = (((t.s0 + t.s1) + (t.s2 + t.s3)) + ((t.s4 + t.s5) + (t.s6 + t.s7))) + tailMagnitude;
}
