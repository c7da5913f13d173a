// optimizer.cl — in-place parameter updates and global-norm gradient clipping.
//
// Kernels (one work-item per parameter element, 1-D, any local size; every kernel guards i < n):
//   sgd_step       PyTorch's SGD: g' = g + wd·p; buf = μ·buf + g' (buf = g' on the first step,
//                  signalled by first = 1); step direction = nesterov ? g' + μ·buf : buf (or g' when
//                  μ = 0); p -= lr · direction. Updates p and buf in place.
//   adam_step      PyTorch's Adam / AdamW: AdamW first decays p -= lr·wd·p (decoupled = 1), Adam adds
//                  wd·p to the gradient (decoupled = 0); m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²;
//                  p -= lr · (m / c1) / (sqrt(v / c2) + eps) with the bias corrections c1 = 1 − β1^t,
//                  c2 = 1 − β2^t computed on the host. Updates p, m and v in place.
//   sumsq_partial  partial[g] = Σ x² over a contiguous block of SUMSQ_BLOCK elements per work-item
//                  (one work-item per block, no atomics); the host adds the partials in Double.
//   scale_inplace  x *= s.
// Tunables: SUMSQ_BLOCK (default 1024) elements per partial sum.

#ifndef SUMSQ_BLOCK
#define SUMSQ_BLOCK 1024
#endif

__kernel void sgd_step(__global float *p, __global const float *g, __global float *buf, const float lr,
                       const float momentum, const float dampening, const float wd, const int nesterov,
                       const int first, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    float grad = g[i] + wd * p[i];
    float direction = grad;
    if (momentum != 0.0f) {
        const float b = first ? grad : momentum * buf[i] + (1.0f - dampening) * grad;
        buf[i] = b;
        direction = nesterov ? grad + momentum * b : b;
    }
    p[i] -= lr * direction;
}

__kernel void adam_step(__global float *p, __global const float *g, __global float *m, __global float *v,
                        const float lr, const float beta1, const float beta2, const float eps, const float wd,
                        const int decoupled, const float c1, const float c2, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    float param = p[i];
    float grad = g[i];
    if (decoupled) param -= lr * wd * param;
    else grad += wd * param;
    const float mi = beta1 * m[i] + (1.0f - beta1) * grad;
    const float vi = beta2 * v[i] + (1.0f - beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = param - lr * (mi / c1) / (sqrt(vi / c2) + eps);
}

__kernel void sumsq_partial(__global const float *x, __global float *partial, const int n) {
    const int b = (int)get_global_id(0);
    const int start = b * SUMSQ_BLOCK;
    if (start >= n) return;
    const int end = min(start + SUMSQ_BLOCK, n);
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int i = start;
    for (; i + 3 < end; i += 4) {
        s0 = fma(x[i], x[i], s0);
        s1 = fma(x[i + 1], x[i + 1], s1);
        s2 = fma(x[i + 2], x[i + 2], s2);
        s3 = fma(x[i + 3], x[i + 3], s3);
    }
    for (; i < end; ++i) s0 = fma(x[i], x[i], s0);
    partial[b] = (s0 + s1) + (s2 + s3);
}

__kernel void scale_inplace(__global float *x, const float s, const int n) {
    const int i = (int)get_global_id(0);
    if (i < n) x[i] *= s;
}
