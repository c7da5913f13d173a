// pool.cl — 2-D max, average and global average pooling and their backward passes.
//
// Layouts (row-major): x [N, C, H, W] seen as `planes` = N·C planes of H × W; y [N, C, P, Q] with
// P = (H + 2·ph − kh) / sh + 1 and Q likewise (floor, like PyTorch with ceil_mode = false), or the
// host's ceil-mode P and Q, whose last windows may reach past the padded input: every kernel but
// maxpool2x2_forward and the POOL_UNPADDED forward clips windows to the input.
//
// Kernels (one work-item per output element of the kernel, 1-D, any local size; the max- and
// average-pool forwards and the scatter run over a 3-D range, (Q, P, planes) or, with
// POOL_PLANES_FIRST, (planes, Q, P) rounded up to whole work-groups along planes; see
// FOR_EACH_OUTPUT_PLANE):
//   maxpool2d_forward        y = window maximum; padding counts as −∞. Also writes, per output, the
//                            argmax as an offset ih·W + iw inside its plane (−1 if a window saw no
//                            pixel); ties keep the first pixel in row-major window order; NaN wins.
//   maxpool2d_backward       dx[pixel] = Σ dy over the windows containing the pixel whose argmax is
//                            that pixel. One work-item per input pixel gathers from the (at most
//                            ⌈kh/sh⌉·⌈kw/sw⌉) windows that contain it: overlapping windows
//                            (kernel > stride) never race. Overwrites dx.
//   maxpool2x2_forward       the 2×2, stride 2, unpadded case (every CNN's pooling) with explicit vectors:
//                            a work-item computes 8 outputs of a row from two float8 pairs of the two
//                            input rows, even and odd lanes split by swizzles. Same results and argmax
//                            rule as maxpool2d_forward. Global (ceil(Q / 8), P, planes), one work-group
//                            per plane. (2.6 → 2.0 ms per training step of the reference CNN at batch 64.)
//   maxpool2d_backward_scatter  the same when windows do not overlap (stride ≥ kernel, the common
//                            2×2 / stride 2): one work-item per output writes dy to its argmax pixel, so
//                            no two work-items write one pixel; dx must be zero beforehand. Several times
//                            faster on PoCL than the gather, whose data-dependent loops do not vectorize.
//   avgpool2d_forward        y = window sum / divisor, the divisor as POOL_DIVISOR says (below).
//   avgpool2d_backward       dx[pixel] = Σ over windows containing the pixel of dy / divisor, gathered
//                            per pixel as above. Overwrites dx.
//   global_avgpool_forward   y[plane] = mean of the plane (one work-item per plane).
//   global_avgpool_backward  dx[plane][i] = dy[plane] / (H·W). Overwrites dx.
// Geometry arguments (POOL_GEOM): planes, H, W, P, Q, kh, kw, sh, sw, ph, pw.
// Remainders are written as a − (a / b)·b (Oclgrind cannot check the `freeze` a paired `%` becomes).
// Specializations (-D, set by the host per call): POOL_UNPADDED = 1 when padding is zero (no window
// reaches outside the image, so the forward loops need no bounds checks); POOL_KH, POOL_KW > 0 fix the
// window size at compile time so the loops unroll (0: read kh, kw from the arguments); POOL_PLANES_FIRST
// and POOL_PLANE_STRIDE choose the range (FOR_EACH_OUTPUT_PLANE). POOL_DIVISOR
// is the average-pooling divisor, as PyTorch's: 0 kh·kw (count_include_pad = true, every window inside
// the padded input); 1 the window clipped to the padded input (count_include_pad = true with ceil-mode
// windows past it); 2 the window clipped to the input (count_include_pad = false).
// No tunables: these kernels are memory-bound and PoCL vectorizes them across work-items.

#ifndef POOL_UNPADDED
#define POOL_UNPADDED 0
#endif
#ifndef POOL_KH
#define POOL_KH 0
#endif
#ifndef POOL_KW
#define POOL_KW 0
#endif
#ifndef POOL_DIVISOR
#define POOL_DIVISOR 0
#endif
#ifndef POOL_PLANES_FIRST
#define POOL_PLANES_FIRST 0
#endif
#ifndef POOL_PLANE_STRIDE
#define POOL_PLANE_STRIDE 0
#endif
#if POOL_KH > 0
#define WINDOW_H POOL_KH
#else
#define WINDOW_H kh
#endif
#if POOL_KW > 0
#define WINDOW_W POOL_KW
#else
#define WINDOW_W kw
#endif

#define POOL_GEOM const int planes, const int H, const int W, const int P, const int Q, const int kh, const int kw, \
                  const int sh, const int sw, const int ph, const int pw

// Where a work-item's output is. By default a 3-D range (Q, P, planes): no divisions to find an
// output's position, and no loop around the body, so PoCL vectorizes the work-item loop (a loop over
// planes there kept it scalar: 20 → 8 ms for a 3×3 max pooling of 331,776 outputs). With
// POOL_PLANE_STRIDE, for more planes than the third axis holds on some GPU drivers (65,535
// work-groups), the planes past the range are taken in strides. With POOL_PLANES_FIRST, for small
// planes, the range is (planes, Q, P): neighbouring work-items pool the same window of neighbouring
// planes, so the vectorized loop runs over many planes instead of a plane's few outputs.
#if POOL_PLANES_FIRST
#define FOR_EACH_OUTPUT_PLANE                                                                    \
    const int q = (int)get_global_id(1), p = (int)get_global_id(2), plane = (int)get_global_id(0); \
    if (q < Q && p < P && plane < planes)
#elif POOL_PLANE_STRIDE
#define FOR_EACH_OUTPUT_PLANE                                                          \
    const int q = (int)get_global_id(0), p = (int)get_global_id(1);                  \
    if (q < Q && p < P)                                                              \
        for (int plane = (int)get_global_id(2); plane < planes; plane += (int)get_global_size(2))
#else
#define FOR_EACH_OUTPUT_PLANE                                                                    \
    const int q = (int)get_global_id(0), p = (int)get_global_id(1), plane = (int)get_global_id(2); \
    if (q < Q && p < P && plane < planes)
#endif

__kernel void maxpool2d_forward(__global const float *x, __global float *y, __global int *argmax, POOL_GEOM) {
    FOR_EACH_OUTPUT_PLANE {
        const int i = (plane * P + p) * Q + q;
        const int h0 = p * sh - ph, w0 = q * sw - pw;
        const __global float *src = x + (size_t)plane * H * W;
        float best = -INFINITY;
        int bestIndex = -1;
#if POOL_UNPADDED
        // Every window lies inside the image. Branch-free (selects): a pixel replaces the best when it
        // is the first, larger, or NaN over a number (5.5 against 6–7 ms with branches for a 3×3
        // pooling of 331,776 outputs; with padding below, branches were faster, 15–17 against 19–22).
        #pragma unroll
        for (int r = 0; r < WINDOW_H; ++r) {
            #pragma unroll
            for (int s = 0; s < WINDOW_W; ++s) {
                const int index = (h0 + r) * W + w0 + s;
                const float v = src[index];
                const bool take = bestIndex < 0 || v > best || (isnan(v) && !isnan(best));
                best = take ? v : best;
                bestIndex = take ? index : bestIndex;
            }
        }
#else
        for (int r = 0; r < WINDOW_H; ++r) {
            const int ih = h0 + r;
            if (ih < 0 || ih >= H) continue;
            for (int s = 0; s < WINDOW_W; ++s) {
                const int iw = w0 + s;
                if (iw < 0 || iw >= W) continue;
                const float v = src[ih * W + iw];
                if (bestIndex < 0 || v > best || (isnan(v) && !isnan(best))) {
                    best = v;
                    bestIndex = ih * W + iw;
                }
            }
        }
#endif
        y[i] = best;
        argmax[i] = bestIndex;
    }
}

// The windows [pBegin, pEnd) × [qBegin, qEnd) that contain pixel (h, w).
#define WINDOWS_CONTAINING(h, w)                                          \
    const int pBegin = (h) + ph < kh ? 0 : ((h) + ph - kh) / sh + 1;      \
    const int pEnd = min(((h) + ph) / sh + 1, P);                         \
    const int qBegin = (w) + pw < kw ? 0 : ((w) + pw - kw) / sw + 1;      \
    const int qEnd = min(((w) + pw) / sw + 1, Q)

__kernel void maxpool2d_backward(__global const float *dy, __global const int *argmax, __global float *dx, POOL_GEOM) {
    const int i = (int)get_global_id(0);
    if (i >= planes * H * W) return;
    const int plane = i / (H * W), hw = i - plane * (H * W);
    const int h = hw / W, w = hw - h * W;
    WINDOWS_CONTAINING(h, w);
    const size_t base = (size_t)plane * P * Q;
    float sum = 0.0f;
    for (int p = pBegin; p < pEnd; ++p)
        for (int q = qBegin; q < qEnd; ++q)
            if (argmax[base + p * Q + q] == hw) sum += dy[base + p * Q + q];
    dx[i] = sum;
}

// Candidate (v, index) replaces (best, bestIndex) lane by lane when it is larger, or NaN over a number.
#define TAKE8(v, index)                                                                  \
    {                                                                                    \
        const int8 take_ = isgreater(v, best) | (isnan(v) & ~isnan(best));               \
        best = select(best, v, take_);                                                   \
        bestIndex = select(bestIndex, index, take_);                                     \
    }

__kernel void maxpool2x2_forward(__global const float *x, __global float *y, __global int *argmax, POOL_GEOM) {
    const int q0 = (int)get_global_id(0) * 8, p = (int)get_global_id(1), plane = (int)get_global_id(2);
    if (q0 >= Q || p >= P || plane >= planes) return;
    const __global float *row0 = x + (size_t)plane * H * W + (2 * p) * W + 2 * q0;
    const __global float *row1 = row0 + W;
    const int i0 = (plane * P + p) * Q + q0;
    // Offsets inside the plane of the four window pixels of each of the 8 outputs.
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    const int8 top = (2 * p) * W + 2 * (q0 + lane);
    if (q0 + 8 <= Q) {
        const float8 a0 = vload8(0, row0), a1 = vload8(1, row0);
        const float8 b0 = vload8(0, row1), b1 = vload8(1, row1);
        const float8 topLeft = (float8)(a0.s0246, a1.s0246), topRight = (float8)(a0.s1357, a1.s1357);
        const float8 bottomLeft = (float8)(b0.s0246, b1.s0246), bottomRight = (float8)(b0.s1357, b1.s1357);
        // Row-major window order: the first of equal values wins (strictly greater replaces).
        float8 best = topLeft;
        int8 bestIndex = top;
        TAKE8(topRight, top + 1);
        TAKE8(bottomLeft, top + W);
        TAKE8(bottomRight, top + W + 1);
        vstore8(best, 0, y + i0);
        vstore8(bestIndex, 0, argmax + i0);
        return;
    }
    for (int l = 0; l < Q - q0; ++l) {
        const int o = 2 * l;
        float best = row0[o];
        int bestIndex = (2 * p) * W + 2 * (q0 + l);
        const float c[3] = {row0[o + 1], row1[o], row1[o + 1]};
        const int at[3] = {bestIndex + 1, bestIndex + W, bestIndex + W + 1};
        for (int k = 0; k < 3; ++k) {
            if (c[k] > best || (isnan(c[k]) && !isnan(best))) { best = c[k]; bestIndex = at[k]; }
        }
        y[i0 + l] = best;
        argmax[i0 + l] = bestIndex;
    }
}

__kernel void maxpool2d_backward_scatter(__global const float *dy, __global const int *argmax, __global float *dx, POOL_GEOM) {
    // The forward's range.
    FOR_EACH_OUTPUT_PLANE {
        const int i = (plane * P + p) * Q + q;
        const int index = argmax[i];
        if (index >= 0) dx[(size_t)plane * H * W + index] = dy[i];
    }
}

// The divisor of average-pooling window (p, q), as POOL_DIVISOR says.
inline float avg_divisor(const int p, const int q, const int H, const int W, const int kh, const int kw,
                         const int sh, const int sw, const int ph, const int pw) {
#if POOL_DIVISOR == 0
    return (float)(kh * kw);
#else
    const int h0 = p * sh - ph, w0 = q * sw - pw;
    const int h1 = min(h0 + kh, H + ph), w1 = min(w0 + kw, W + pw);
#if POOL_DIVISOR == 1
    return (float)((h1 - h0) * (w1 - w0));
#else
    return (float)((min(h1, H) - max(h0, 0)) * (min(w1, W) - max(w0, 0)));
#endif
#endif
}

__kernel void avgpool2d_forward(__global const float *x, __global float *y, POOL_GEOM) {
    // The max-pool forward's range.
    FOR_EACH_OUTPUT_PLANE {
        const int i = (plane * P + p) * Q + q;
        const int h0 = p * sh - ph, w0 = q * sw - pw;
        const __global float *src = x + (size_t)plane * H * W;
        float sum = 0.0f;
        #pragma unroll
        for (int r = 0; r < WINDOW_H; ++r) {
            #pragma unroll
            for (int s = 0; s < WINDOW_W; ++s) {
#if POOL_UNPADDED
                sum += src[(h0 + r) * W + w0 + s];
#else
                // Branch-free: pixels outside the image add zero.
                const int ih = h0 + r, iw = w0 + s;
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                const float v = src[inside ? ih * W + iw : 0];
                sum += inside ? v : 0.0f;
#endif
            }
        }
        y[i] = sum / avg_divisor(p, q, H, W, kh, kw, sh, sw, ph, pw);
    }
}

__kernel void avgpool2d_backward(__global const float *dy, __global float *dx, POOL_GEOM) {
    const int i = (int)get_global_id(0);
    if (i >= planes * H * W) return;
    const int plane = i / (H * W), hw = i - plane * (H * W);
    const int h = hw / W, w = hw - h * W;
    WINDOWS_CONTAINING(h, w);
    const size_t base = (size_t)plane * P * Q;
    float sum = 0.0f;
#if POOL_DIVISOR == 0
    for (int p = pBegin; p < pEnd; ++p)
        for (int q = qBegin; q < qEnd; ++q) sum += dy[base + p * Q + q];
    dx[i] = sum / (float)(kh * kw);
#else
    for (int p = pBegin; p < pEnd; ++p)
        for (int q = qBegin; q < qEnd; ++q) sum += dy[base + p * Q + q] / avg_divisor(p, q, H, W, kh, kw, sh, sw, ph, pw);
    dx[i] = sum;
#endif
}

__kernel void global_avgpool_forward(__global const float *x, __global float *y, const int planes, const int HW) {
    const int i = (int)get_global_id(0);
    if (i >= planes) return;
    const __global float *src = x + (size_t)i * HW;
    float sum = 0.0f;
    for (int j = 0; j < HW; ++j) sum += src[j];
    y[i] = sum / (float)HW;
}

__kernel void global_avgpool_backward(__global const float *dy, __global float *dx, const int planes, const int HW) {
    const int i = (int)get_global_id(0);
    if (i >= planes * HW) return;
    dx[i] = dy[i / HW] / (float)HW;
}
