// conv2d_grouped.cl — grouped 2-D convolutions (PyTorch's Conv2d with `groups`) and their backward
// passes. Layouts as conv2d.cl: input x [N, C, H, W]; weight w [K, C / G, R, S]; output y [N, K, P, Q];
// output channel k reads input channels [g·C/G, (g + 1)·C/G) for g = k / (K / G). GEOM's C and K
// count every channel; its arguments are N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, then the
// number of groups G.
//
// Remainders are written as a − (a / b)·b (see conv2d.cl: Oclgrind's uninitialized-memory checker).
//
// Kernels and when each runs (the host's rule: `Conv2DGroupedFamily.preference`):
//   conv2d_grouped_expand_weight   writes the block-diagonal dense weight wd [K, C, R, S] of a
//                           grouped weight (zeros outside the groups), so that a convolution with few
//                           groups runs as one dense convolution of conv2d.cl: G times the arithmetic on
//                           the register-tiled kernels, far faster than the direct loops below for
//                           small G. One work-item per element of wd; overwrites it.
//   conv2d_grouped_gather_weight   its backward: dw [K, C / G, R, S] = the diagonal blocks of the dense
//                           weight's gradient dwd [K, C, R, S]. One work-item per element of dw.
//   conv2d_grouped_forward, conv2d_grouped_backward_input, conv2d_grouped_backward_weight
//                           direct loops for many thin groups (depthwise and the like): one work-item
//                           per output element (y, dx, dw), 1-D, any local size; the backward input
//                           gathers (no atomics) and every output is overwritten. No fused ReLU: the
//                           host applies it separately.
// Indices are 32-bit: the host refuses tensors of 2³¹ elements or more.
//
// Tunables (-D; the host passes every one, from Conv2DGroupedFamily):
//   CONV_GROUP_KB output channels per work-item of conv2d_grouped_forward (1, 2 or 4; the host sets it
//               per call to the largest that divides the channels per group, so depthwise stays at 1)

#ifndef CONV_GROUP_KB
#define CONV_GROUP_KB 1
#endif

#define GEOM const int N, const int C, const int H, const int W, const int K, const int R, const int S, \
             const int P, const int Q, const int sh, const int sw, const int ph, const int pw, const int dh, const int dw

// wd[k, c, r, s] = w[k, c − g·C/G, r, s] when input channel c is in output channel k's group g, else 0.
__kernel void conv2d_grouped_expand_weight(__global const float *w, __global float *wd, const int K, const int C,
                                           const int RS, const int groups) {
    const int i = (int)get_global_id(0);
    if (i >= K * C * RS) return;
    const int cg = C / groups, kg = K / groups;
    int t = i / RS;
    const int rs = i - t * RS;
    const int c = t - (t / C) * C;
    const int k = t / C;
    const int c0 = (k / kg) * cg;
    wd[i] = (c >= c0 && c < c0 + cg) ? w[((size_t)k * cg + (c - c0)) * RS + rs] : 0.0f;
}

// dw[k, c, r, s] = dwd[k, g·C/G + c, r, s] for output channel k's group g.
__kernel void conv2d_grouped_gather_weight(__global const float *dwd, __global float *dw, const int K, const int C,
                                           const int RS, const int groups) {
    const int cg = C / groups, kg = K / groups;
    const int i = (int)get_global_id(0);
    if (i >= K * cg * RS) return;
    int t = i / RS;
    const int rs = i - t * RS;
    const int c = t - (t / cg) * cg;
    const int k = t / cg;
    dw[i] = dwd[((size_t)k * C + (k / kg) * cg + c) * RS + rs];
}

// Grouped convolution, direct: y[n, k, p, q] = bias[k] + Σ over the group's channels c, r, s.
__kernel void conv2d_grouped_forward(__global const float *x, __global const float *w, __global const float *bias,
                                     const int hasBias, __global float *y, GEOM, const int groups) {
    // One work-item per output pixel and CONV_GROUP_KB output channels of one group (the host picks
    // a block size that divides the group's K / groups): each input tap is loaded once for the block.
    const int cg = C / groups, kg = K / groups, blocks = K / CONV_GROUP_KB;
    const int i = (int)get_global_id(0);
    if (i >= N * blocks * P * Q) return;
    int t = i / Q;
    const int q = i - t * Q;
    const int p = t - (t / P) * P;
    t = t / P;
    const int k0 = (t - (t / blocks) * blocks) * CONV_GROUP_KB;
    const int n = t / blocks;
    const int c0 = (k0 / kg) * cg;
    float sum[CONV_GROUP_KB];
    for (int j = 0; j < CONV_GROUP_KB; ++j) sum[j] = hasBias ? bias[k0 + j] : 0.0f;
    for (int c = 0; c < cg; ++c) {
        const __global float *plane = x + ((size_t)n * C + c0 + c) * H * W;
        const __global float *taps = w + ((size_t)k0 * cg + c) * R * S;
        for (int r = 0; r < R; ++r) {
            const int ih = p * sh - ph + r * dh;
            if (ih < 0 || ih >= H) continue;
            for (int s = 0; s < S; ++s) {
                const int iw = q * sw - pw + s * dw;
                if (iw < 0 || iw >= W) continue;
                const float v = plane[ih * W + iw];
                for (int j = 0; j < CONV_GROUP_KB; ++j) sum[j] = fma(taps[(size_t)j * cg * R * S + r * S + s], v, sum[j]);
            }
        }
    }
    for (int j = 0; j < CONV_GROUP_KB; ++j) y[(((size_t)n * K + k0 + j) * P + p) * Q + q] = sum[j];
}

// dx[n, c, h, w] = Σ over the group's output channels k and the taps (r, s) whose window covers (h, w).
__kernel void conv2d_grouped_backward_input(__global const float *dy, __global const float *w, __global float *dx,
                                            GEOM, const int groups) {
    const int i = (int)get_global_id(0);
    if (i >= N * C * H * W) return;
    const int cg = C / groups, kg = K / groups;
    int t = i / W;
    const int iw = i - t * W;
    const int ih = t - (t / H) * H;
    t = t / H;
    const int ci = t - (t / C) * C;
    const int n = t / C;
    const int g = ci / cg, c = ci - g * cg;
    float sum = 0.0f;
    for (int kk = 0; kk < kg; ++kk) {
        const int k = g * kg + kk;
        const __global float *grad = dy + ((size_t)n * K + k) * P * Q;
        const __global float *taps = w + ((size_t)k * cg + c) * R * S;
        for (int r = 0; r < R; ++r) {
            const int ty = ih + ph - r * dh;
            if (ty < 0) continue;
            const int p = ty / sh;
            if (p * sh != ty || p >= P) continue;
            for (int s = 0; s < S; ++s) {
                const int tx = iw + pw - s * dw;
                if (tx < 0) continue;
                const int q = tx / sw;
                if (q * sw == tx && q < Q) sum = fma(taps[r * S + s], grad[p * Q + q], sum);
            }
        }
    }
    dx[i] = sum;
}

// dw[k, c, r, s] = Σ over n, p, q of dy[n, k, p, q] · x[n, group channel c, p·sh − ph + r·dh, q·sw − pw + s·dw].
__kernel void conv2d_grouped_backward_weight(__global const float *x, __global const float *dy, __global float *dwt,
                                             GEOM, const int groups) {
    const int cg = C / groups, kg = K / groups;
    const int i = (int)get_global_id(0);
    if (i >= K * cg * R * S) return;
    int t = i / S;
    const int s = i - t * S;
    const int r = t - (t / R) * R;
    t = t / R;
    const int c = t - (t / cg) * cg;
    const int k = t / cg;
    const int ci = (k / kg) * cg + c;
    float sum = 0.0f;
    for (int n = 0; n < N; ++n) {
        const __global float *plane = x + ((size_t)n * C + ci) * H * W;
        const __global float *grad = dy + ((size_t)n * K + k) * P * Q;
        for (int p = 0; p < P; ++p) {
            const int ih = p * sh - ph + r * dh;
            if (ih < 0 || ih >= H) continue;
            for (int q = 0; q < Q; ++q) {
                const int iw = q * sw - pw + s * dw;
                if (iw >= 0 && iw < W) sum = fma(grad[p * Q + q], plane[ih * W + iw], sum);
            }
        }
    }
    dwt[i] = sum;
}
