// softmax.cl — softmax and log-softmax along the last axis, fused cross-entropy, and their backwards.
//
// Layout: x [rows, C] row-major (the last axis has C elements). One work-item per row (1-D global
// `rows`, any local size): each row is read three times (max, Σexp, write), which PoCL vectorizes
// across rows; C is small for classifiers. Every kernel guards row < rows and overwrites its output.
//
// Kernels:
//   softmax_forward        y = exp(x − max) / Σ exp(x − max)            (numerically stable)
//   log_softmax_forward    y = x − max − log Σ exp(x − max)
//   softmax_backward       dx = y ⊙ (dy − Σ dy ⊙ y)
//   log_softmax_backward   dx = dy − softmax(x) · Σ dy, with softmax = exp(y)
//   cross_entropy_forward  loss[row] = logΣexp(x) − x[label], prob = softmax(x) saved for backward;
//                          labels are int class indices checked on the host
//   cross_entropy_backward dx = (prob − onehot(label)) · dloss / rows (mean over the batch)
//   mse_forward_partial    partial[b] = Σ (x − t)² over a block of MSE_BLOCK elements
//   mse_backward           dx = 2 (x − t) · dloss / n
//   sum_scaled             out[0] = scale · Σ x (a single work-item; for the per-row losses of a batch
//                          and the MSE partials, which are short)
// Tunables: MSE_BLOCK (default 1024).

#ifndef MSE_BLOCK
#define MSE_BLOCK 1024
#endif

__kernel void softmax_forward(__global const float *x, __global float *y, const int rows, const int C) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const __global float *xr = x + (size_t)r * C;
    __global float *yr = y + (size_t)r * C;
    float m = -INFINITY;
    for (int c = 0; c < C; ++c) m = fmax(m, xr[c]);
    float s = 0.0f;
    for (int c = 0; c < C; ++c) s += exp(xr[c] - m);
    const float inv = 1.0f / s;
    for (int c = 0; c < C; ++c) yr[c] = exp(xr[c] - m) * inv;
}

__kernel void log_softmax_forward(__global const float *x, __global float *y, const int rows, const int C) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const __global float *xr = x + (size_t)r * C;
    __global float *yr = y + (size_t)r * C;
    float m = -INFINITY;
    for (int c = 0; c < C; ++c) m = fmax(m, xr[c]);
    float s = 0.0f;
    for (int c = 0; c < C; ++c) s += exp(xr[c] - m);
    const float lse = m + log(s);
    for (int c = 0; c < C; ++c) yr[c] = xr[c] - lse;
}

__kernel void softmax_backward(__global const float *y, __global const float *dy, __global float *dx, const int rows, const int C) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const size_t o = (size_t)r * C;
    float dot = 0.0f;
    for (int c = 0; c < C; ++c) dot += dy[o + c] * y[o + c];
    for (int c = 0; c < C; ++c) dx[o + c] = y[o + c] * (dy[o + c] - dot);
}

__kernel void log_softmax_backward(__global const float *y, __global const float *dy, __global float *dx, const int rows, const int C) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const size_t o = (size_t)r * C;
    float sum = 0.0f;
    for (int c = 0; c < C; ++c) sum += dy[o + c];
    for (int c = 0; c < C; ++c) dx[o + c] = dy[o + c] - exp(y[o + c]) * sum;
}

__kernel void cross_entropy_forward(__global const float *x, __global const int *labels, __global float *loss,
                                    __global float *prob, const int rows, const int C) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const size_t o = (size_t)r * C;
    float m = -INFINITY;
    for (int c = 0; c < C; ++c) m = fmax(m, x[o + c]);
    float s = 0.0f;
    for (int c = 0; c < C; ++c) s += exp(x[o + c] - m);
    const float inv = 1.0f / s;
    for (int c = 0; c < C; ++c) prob[o + c] = exp(x[o + c] - m) * inv;
    loss[r] = m + log(s) - x[o + labels[r]];
}

__kernel void cross_entropy_backward(__global const float *prob, __global const int *labels, __global const float *dloss,
                                     __global float *dx, const int rows, const int C) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const size_t o = (size_t)r * C;
    const float scale = dloss[0] / (float)rows;
    const int label = labels[r];
    for (int c = 0; c < C; ++c) dx[o + c] = (prob[o + c] - (c == label ? 1.0f : 0.0f)) * scale;
}

__kernel void mse_forward_partial(__global const float *x, __global const float *t, __global float *partial, const int n) {
    const int b = (int)get_global_id(0);
    const int start = b * MSE_BLOCK;
    if (start >= n) return;
    const int end = min(start + MSE_BLOCK, n);
    float s0 = 0.0f, s1 = 0.0f;
    int i = start;
    for (; i + 1 < end; i += 2) {
        const float d0 = x[i] - t[i], d1 = x[i + 1] - t[i + 1];
        s0 = fma(d0, d0, s0);
        s1 = fma(d1, d1, s1);
    }
    if (i < end) { const float d = x[i] - t[i]; s0 = fma(d, d, s0); }
    partial[b] = s0 + s1;
}

__kernel void mse_backward(__global const float *x, __global const float *t, __global const float *dloss, __global float *dx, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    dx[i] = 2.0f * (x[i] - t[i]) * dloss[0] / (float)n;
}

__kernel void sum_scaled(__global const float *x, __global float *out, const int n, const float scale) {
    if (get_global_id(0) != 0) return;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int i = 0;
    for (; i + 3 < n; i += 4) { s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3]; }
    for (; i < n; ++i) s0 += x[i];
    out[0] = ((s0 + s1) + (s2 + s3)) * scale;
}

/* Knowledge distillation (Hinton et al. 2015) per row: alpha · T² · KL(p_t ‖ p_s) + (1 − alpha) · CE(s, label),
   with p_s = softmax(s / T), p_t = softmax(t / T) (torch: kl_div(log_softmax(s/T), softmax(t/T)) · T²).
   Writes the row's loss and its gradient with respect to s, alpha · T · (p_s − p_t) + (1 − alpha) · (softmax(s) − onehot). */
__kernel void distillation_forward(__global const float *s, __global const float *t, __global const int *labels,
                                   __global float *loss, __global float *grad, const int rows, const int C,
                                   const float T, const float alpha) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const size_t o = (size_t)r * C;
    const float invT = 1.0f / T;
    float ms = -INFINITY, mt = -INFINITY, m1 = -INFINITY;
    for (int c = 0; c < C; ++c) {
        ms = fmax(ms, s[o + c] * invT);
        mt = fmax(mt, t[o + c] * invT);
        m1 = fmax(m1, s[o + c]);
    }
    float zs = 0.0f, zt = 0.0f, z1 = 0.0f;
    for (int c = 0; c < C; ++c) {
        zs += exp(s[o + c] * invT - ms);
        zt += exp(t[o + c] * invT - mt);
        z1 += exp(s[o + c] - m1);
    }
    const float lzs = ms + log(zs), lzt = mt + log(zt), lz1 = m1 + log(z1);
    float kl = 0.0f;
    const int label = labels[r];
    for (int c = 0; c < C; ++c) {
        const float logps = s[o + c] * invT - lzs, logpt = t[o + c] * invT - lzt;
        const float pt = exp(logpt);
        kl += pt * (logpt - logps);
        const float p1 = exp(s[o + c] - lz1);
        grad[o + c] = alpha * T * (exp(logps) - pt) + (1.0f - alpha) * (p1 - (c == label ? 1.0f : 0.0f));
    }
    loss[r] = alpha * T * T * kl + (1.0f - alpha) * (lz1 - s[o + label]);
}

/* dx = grad · dloss / rows. */
__kernel void distillation_backward(__global const float *grad, __global const float *dloss, __global float *dx,
                                    const int rows, const int C) {
    const int i = (int)get_global_id(0);
    if (i >= rows * C) return;
    dx[i] = grad[i] * dloss[0] / (float)rows;
}
