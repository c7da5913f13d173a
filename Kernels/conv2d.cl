// conv2d.cl — 2-D convolution (cross-correlation, like PyTorch's Conv2d) and its backward passes,
// all as implicit GEMMs: the input patches are gathered on the fly, no im2col buffer is built.
//
// Layouts (row-major): input x [N, C, H, W]; weight w [K, C, R, S]; bias [K]; output y [N, K, P, Q]
// with P = (H + 2·ph − dh·(R − 1) − 1) / sh + 1 and Q likewise. Geometry arguments (GEOM) are
// N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw in that order.
//
// Remainders are written as a − (a / b)·b: Oclgrind's uninitialized-memory checker cannot run the
// `freeze` that the compiler inserts when it pairs a `/` with a `%` of the same operands.
//
// Kernels and when each runs:
//   conv2d_forward_rows     CPU forward for shallow inputs (stride 1, no padding or dilation, C·R·S ≤ 32,
//                           e.g. a first layer on images): each work-item computes 8 consecutive output
//                           pixels of one row (a float8) for CONV_ROWS_KB channels, reading the input rows
//                           as float8 and storing whole float8 rows of y. The micro-tile kernel below
//                           spends most of its time in its scattered epilogue when the depth is this small.
//                           A work-item walks CONV_ROWS_NP output rows. Global (ceil(Q / 8),
//                           N·ceil(P / CONV_ROWS_NP), ceil(K / CONV_ROWS_KB)), local chosen by the driver.
//   conv2d_forward_rows_pool  the same shallow geometries with ReLU and 2×2 / stride 2 max pooling fused (the
//                           inference path, CONV_POOL below): a work-item walks one pooled output row, and
//                           for each pooled pixel accumulates its four window pixels × CONV_VW·CONV_FWD_KV channels
//                           (weights packed by conv2d_pack_weight, x broadcast), then writes the window
//                           maximum. Global (P / 2, N, channel blocks), local (1, 1, 1): one work-item per
//                           group ran conv1 of the reference CNN in 0.9 s per 102,400 images, PoCL's own choice
//                           in 1.4 s.
//   conv2d_forward_gpu      GPU-shaped forward (any device that is not a CPU): a work-group computes
//                           a CONV_TM × CONV_TN tile of y seen as [K] × [N·P·Q]; depth C·R·S is walked
//                           in CONV_TD slices staged in local memory (weights and gathered input),
//                           each work-item keeps a CONV_WM × CONV_WN register block.
//                           Local size (CONV_TN / CONV_WN, CONV_TM / CONV_WM).
//   conv2d_forward_cpu      CPU-shaped forward (PoCL): no barriers, no local memory. Each work-item
//                           computes CONV_FWD_KV vectors of CONV_VW output channels (KB = CONV_VW·CONV_FWD_KV
//                           channels) × CONV_FWD_NP output pixels in registers, over a weight panel
//                           packed by conv2d_pack_weight as [K / KB][R·S·C][KB] (zero rows past K).
//                           Global (pixel blocks, channel blocks).
//   The backward kernels (conv2d_backward_input, conv2d_backward_input_rows, conv2d_backward_weight,
//   conv2d_backward_bias, conv2d_pack_weight_t, conv2d_pack_dy, conv2d_reduce_chunks) are in
//   conv2d_backward.cl, included at the end of this file: one program, one set of -D values.
//   conv2d_pack_weight  one work-item per packed float; panels are zero-padded past K, so the
//                       micro-tiles never test channel bounds in their inner loops.
//   The grouped convolutions live in conv2d_grouped.cl.
// Indices are 32-bit: the host refuses tensors of 2³¹ elements or more.
//
// Padding: the backward-input kernel (and the CPU forward when compiled with CONV_PADDED=1) switch each
// (r, s) step's source pointer to a one-element zero buffer (stride 0) for pixels that fall outside the
// image, so the inner loop has no branches. conv2d_backward_weight checks bounds per load only when
// compiled with CONV_PADDED=1. Without padding every gathered pixel is inside the image.
//
// Tunables (-D; the host passes every one, from Conv2DFamily and the tuning table, so these defaults
// only serve a file compiled alone):
//   CONV_VW     floats per vector of the micro-tile kernels (forward, pooled rows, both backward): 4, 8
//               or 16, the device's native width (default 8; the row kernels' pixel vectors stay 8 wide)
//   CONV_FWD_KV, CONV_FWD_NP   forward micro-tile: vectors of CONV_VW output channels × output pixels
//                              (default 2 × 6: 16 channels × 6 pixels in 12 accumulators, which with the
//                              2 weight vectors and a broadcast fit AVX2's 16 registers; 4 × 4 spilled
//                              and ran conv2 at 36 ms against 23 ms on one core)
//   CONV_DX_KV, CONV_DX_NP     backward-input micro-tile (default 2 × 6: 16 channels × 6 pixels; the
//                              host asks for 1 × 8 when C ≤ 8)
//   CONV_DW_KV, CONV_DW_NP     backward-weight micro-tile (default 2 × 6: 16 channels × 6 columns)
//   CONV_ROWS_KB, CONV_ROWS_NP channels and output rows per work-item of conv2d_forward_rows (8, 4)
//   CONV_RELU   1: the forward kernels apply max(·, 0) (NaN passes through) after the bias, so a
//               Conv2D followed by ReLU needs no separate pass (the host sets it per call)
//   CONV_POOL   1: conv2d_forward_cpu also max-pools its output over 2×2 windows with stride 2 (floor
//               mode, NaN wins) and writes y [N, K, P / 2, Q / 2] only: the inference path of Conv2D → ReLU →
//               MaxPool2D(2), which never writes or re-reads the full-size activation (for shallow inputs
//               conv2d_forward_rows_pool does the same). It then walks pooled pixels × their four window
//               taps as its columns and needs CONV_FWD_NP to be a multiple of 4. Inference only: no argmax
//               is kept for a backward pass.
//   CONV_PADDED 1 when ph or pw is non-zero (selects the checked loads of conv2d_forward_cpu and
//               conv2d_backward_weight; the host sets it per call)
//   CONV_TM, CONV_TN, CONV_TD, CONV_WM, CONV_WN   GPU-shaped tile sizes (defaults 32, 32, 8, 2, 2)
// Every kernel guards its tails: any N, C, H, W, K, R, S, stride, padding and dilation works.

#ifndef CONV_VW
#define CONV_VW 8
#endif
#if CONV_VW != 4 && CONV_VW != 8 && CONV_VW != 16
#error "CONV_VW must be 4, 8 or 16"
#endif
#define CONV_CAT_(a, b) a##b
#define CONV_CAT(a, b) CONV_CAT_(a, b)
#define floatV CONV_CAT(float, CONV_VW)
#define vloadV CONV_CAT(vload, CONV_VW)
#define vstoreV CONV_CAT(vstore, CONV_VW)
#ifndef CONV_FWD_KV
#define CONV_FWD_KV 2
#endif
#ifndef CONV_FWD_NP
#define CONV_FWD_NP 6
#endif
#ifndef CONV_DX_KV
#define CONV_DX_KV 2
#endif
#ifndef CONV_DX_NP
#define CONV_DX_NP 6
#endif
#ifndef CONV_DW_KV
#define CONV_DW_KV 2
#endif
#ifndef CONV_DW_NP
#define CONV_DW_NP 6
#endif
#ifndef CONV_PADDED
#define CONV_PADDED 0
#endif
#ifndef CONV_RELU
#define CONV_RELU 0
#endif
#if CONV_RELU
#define CONV_ACTIVATE(v) relu_keep_nan(v)
#else
#define CONV_ACTIVATE(v) (v)
#endif
inline float relu_keep_nan(const float v) { return v < 0.0f ? 0.0f : v; }
#ifndef CONV_POOL
#define CONV_POOL 0
#endif
#if CONV_POOL && (CONV_FWD_NP % 4 != 0)
#error "CONV_POOL needs CONV_FWD_NP to be a multiple of 4: a work-item must hold whole 2x2 windows"
#endif
// Lane-wise maximum in which NaN wins (max-pooling's rule in pool.cl).
inline floatV max_keep_nanV(const floatV a, const floatV b) { return select(select(b, a, isgreater(a, b)), a, isnan(a)); }
#ifndef CONV_ROWS_KB
#define CONV_ROWS_KB 8
#endif
#ifndef CONV_ROWS_NP
#define CONV_ROWS_NP 4
#endif
#ifndef CONV_TM
#define CONV_TM 32
#endif
#ifndef CONV_TN
#define CONV_TN 32
#endif
#ifndef CONV_TD
#define CONV_TD 8
#endif
#ifndef CONV_WM
#define CONV_WM 2
#endif
#ifndef CONV_WN
#define CONV_WN 2
#endif

#define CONV_FWD_KB (CONV_VW * CONV_FWD_KV)
#define CONV_DX_KB (CONV_VW * CONV_DX_KV)
#define CONV_DW_KB (CONV_VW * CONV_DW_KV)

#define GEOM const int N, const int C, const int H, const int W, const int K, const int R, const int S, \
             const int P, const int Q, const int sh, const int sw, const int ph, const int pw, const int dh, const int dw

// ---------------------------------------------------------------------------------------------
// Packing (one work-item per packed element).

// wp[kb][rs·C + c][lane] = w[kb·KB + lane][c][rs], zero past K.
__kernel void conv2d_pack_weight(__global const float *w, __global float *wp, const int K, const int C, const int RS) {
    const int i = (int)get_global_id(0);
    const int D = C * RS;
    const int total = (K + CONV_FWD_KB - 1) / CONV_FWD_KB * CONV_FWD_KB * D;
    if (i >= total) return;
    const int row = i / CONV_FWD_KB, lane = i - row * CONV_FWD_KB;
    const int kb = row / D, d = row - kb * D;
    const int k = kb * CONV_FWD_KB + lane;
    const int rs = d / C, c = d - rs * C;
    wp[i] = k < K ? w[(k * C + c) * RS + rs] : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// Register micro-tile helpers shared by the CPU-shaped kernels.

#define ZERO_ACC(acc, NP, KV)                                              \
    _Pragma("unroll")                                              \
    for (int j_ = 0; j_ < NP; ++j_)                           \
        for (int v_ = 0; v_ < KV; ++v_) acc[j_][v_] = (floatV)(0.0f)

// acc[j][v] += src[j][idx·stride[j]] · panel[v] over one depth step.
#define MICRO_STEP(acc, panel, src, stride, idx, NP, KV)                                   \
    {                                                                              \
        floatV wv_[KV];                                                       \
        _Pragma("unroll")                                                          \
        for (int v_ = 0; v_ < KV; ++v_) wv_[v_] = vloadV(v_, (panel));        \
        _Pragma("unroll")                                                          \
        for (int j_ = 0; j_ < NP; ++j_) {                                     \
            const floatV xv_ = (floatV)(src[j_][(idx) * stride[j_]]);              \
            _Pragma("unroll")                                                                  \
            for (int v_ = 0; v_ < KV; ++v_) acc[j_][v_] = fma(xv_, wv_[v_], acc[j_][v_]); \
        }                                                                          \
    }

// ---------------------------------------------------------------------------------------------
// Forward, CPU-shaped.

__kernel void conv2d_forward_cpu(__global const float *x, __global const float *wp, __global const float *bias,
                                 const int hasBias, __global const float *zero, __global float *y, GEOM) {
    const int PQ = P * Q, HW = H * W, NPQ = N * PQ;
#if CONV_POOL
    // Columns are pooled pixels × their 2×2 window: column 4·u + t is tap t (row t >> 1, column t & 1)
    // of pooled pixel u over [N, P / 2, Q / 2]. CONV_FWD_NP is a multiple of 4, so a work-item holds
    // whole windows.
    const int P2 = P / 2, Q2 = Q / 2, PQ2 = P2 * Q2;
    const int columns = 4 * N * PQ2;
#else
    const int columns = NPQ;
#endif
    const int col0 = (int)get_global_id(0) * CONV_FWD_NP;
    const int kb = (int)get_global_id(1);
    if (col0 >= columns || kb * CONV_FWD_KB >= K) return;

    int xbase[CONV_FWD_NP], ih0[CONV_FWD_NP], iw0[CONV_FWD_NP];
    #pragma unroll
    for (int j = 0; j < CONV_FWD_NP; ++j) {
        const int col = min(col0 + j, columns - 1);
#if CONV_POOL
        const int u = col >> 2, t = col & 3;
        const int n = u / PQ2, uu = u - n * PQ2;
        const int pp = uu / Q2;
        const int p = 2 * pp + (t >> 1), q = 2 * (uu - pp * Q2) + (t & 1);
#else
        const int n = col / PQ, pq = col - n * PQ;
        const int p = pq / Q, q = pq - p * Q;
#endif
        ih0[j] = p * sh - ph;
        iw0[j] = q * sw - pw;
        xbase[j] = n * C * HW;
    }
    floatV acc[CONV_FWD_NP][CONV_FWD_KV];
    ZERO_ACC(acc, CONV_FWD_NP, CONV_FWD_KV);
    const __global float *panel = wp + (size_t)kb * (R * S * C) * CONV_FWD_KB;
    for (int r = 0; r < R; ++r) {
        for (int s = 0; s < S; ++s) {
            const __global float *src[CONV_FWD_NP];
            int stride[CONV_FWD_NP];
            #pragma unroll
            for (int j = 0; j < CONV_FWD_NP; ++j) {
                const int ih = ih0[j] + r * dh, iw = iw0[j] + s * dw;
#if CONV_PADDED
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                src[j] = inside ? x + xbase[j] + ih * W + iw : zero;
                stride[j] = inside ? HW : 0;
#else
                src[j] = x + xbase[j] + ih * W + iw;
                stride[j] = HW;
#endif
            }
            for (int c = 0; c < C; ++c) {
                MICRO_STEP(acc, panel, src, stride, c, CONV_FWD_NP, CONV_FWD_KV);
                panel += CONV_FWD_KB;
            }
        }
    }
#if CONV_POOL
    // The window maximum (NaN wins, as in pool.cl), then bias and activation: both are monotone, so
    // this equals pooling the activated convolution.
    #pragma unroll
    for (int j = 0; j < CONV_FWD_NP; j += 4) {
        const int u = (col0 + j) >> 2;
        if (4 * u >= columns) break;
        const int n = u / PQ2, uu = u - n * PQ2;
        #pragma unroll
        for (int v = 0; v < CONV_FWD_KV; ++v) {
            const floatV m = max_keep_nanV(max_keep_nanV(acc[j][v], acc[j + 1][v]), max_keep_nanV(acc[j + 2][v], acc[j + 3][v]));
            float lanes[CONV_VW];
            vstoreV(m, 0, lanes);
            #pragma unroll
            for (int l = 0; l < CONV_VW; ++l) {
                const int k = kb * CONV_FWD_KB + v * CONV_VW + l;
                if (k < K) y[(n * K + k) * PQ2 + uu] = CONV_ACTIVATE(lanes[l] + (hasBias ? bias[k] : 0.0f));
            }
        }
    }
#else
    #pragma unroll
    for (int j = 0; j < CONV_FWD_NP; ++j) {
        const int col = col0 + j;
        if (col >= NPQ) break;
        const int n = col / PQ, pq = col - n * PQ;
        #pragma unroll
        for (int v = 0; v < CONV_FWD_KV; ++v) {
            float lanes[CONV_VW];
            vstoreV(acc[j][v], 0, lanes);
            #pragma unroll
            for (int l = 0; l < CONV_VW; ++l) {
                const int k = kb * CONV_FWD_KB + v * CONV_VW + l;
                if (k < K) y[(n * K + k) * PQ + pq] = CONV_ACTIVATE(lanes[l] + (hasBias ? bias[k] : 0.0f));
            }
        }
    }
#endif
}

// ---------------------------------------------------------------------------------------------
// Forward for shallow inputs: 8 output pixels of a row × CONV_ROWS_KB channels per work-item.

// acc[0 … CONV_ROWS_KB) = the convolution of output row p, pixels q0 … q0 + 7, channels k0 … (no bias).
#define ROWS_ACCUMULATE(acc, p)                                                                   \
    {                                                                                             \
        _Pragma("unroll")                                                                         \
        for (int j_ = 0; j_ < CONV_ROWS_KB; ++j_) acc[j_] = (float8)(0.0f);                       \
        for (int c = 0; c < C; ++c) {                                                             \
            for (int r = 0; r < R; ++r) {                                                         \
                const __global float *row = x + ((n * C + c) * H + (p) + r) * W + q0;             \
                for (int s = 0; s < S; ++s) {                                                     \
                    float8 xv;                                                                    \
                    if (full) {                                                                   \
                        xv = vload8(0, row + s);                                                  \
                    } else {                                                                      \
                        float lanes_[8];                                                          \
                        _Pragma("unroll")                                                         \
                        for (int l = 0; l < 8; ++l) lanes_[l] = q0 + l < Q ? row[s + l] : 0.0f;   \
                        xv = vload8(0, lanes_);                                                   \
                    }                                                                             \
                    const int tap = (c * R + r) * S + s;                                          \
                    _Pragma("unroll")                                                             \
                    for (int j_ = 0; j_ < CONV_ROWS_KB; ++j_) {                                   \
                        const float wv = k0 + j_ < K ? w[(k0 + j_) * taps + tap] : 0.0f;          \
                        acc[j_] = fma((float8)(wv), xv, acc[j_]);                                 \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

__kernel void conv2d_forward_rows(__global const float *x, __global const float *w, __global const float *bias,
                                  const int hasBias, __global float *y, GEOM) {
    const int q0 = (int)get_global_id(0) * 8;
    const int rowBlocks = (P + CONV_ROWS_NP - 1) / CONV_ROWS_NP;
    const int nb = (int)get_global_id(1);
    const int k0 = (int)get_global_id(2) * CONV_ROWS_KB;
    if (q0 >= Q || nb >= N * rowBlocks || k0 >= K) return;
    const int n = nb / rowBlocks, p0 = (nb - n * rowBlocks) * CONV_ROWS_NP;
    // With stride 1 and no padding W = Q + S − 1, so a full block's reads q0 + s … q0 + s + 7 stay
    // inside the row; the last, partial block reads lane by lane.
    const bool full = q0 + 8 <= Q;
    const int taps = C * R * S;
    for (int p = p0; p < min(p0 + CONV_ROWS_NP, P); ++p) {
        float8 acc[CONV_ROWS_KB];
        ROWS_ACCUMULATE(acc, p);
        #pragma unroll
        for (int j = 0; j < CONV_ROWS_KB; ++j) {
            const int k = k0 + j;
            if (k >= K) break;
            float8 v = acc[j] + (float8)(hasBias ? bias[k] : 0.0f);
#if CONV_RELU
            v = select(v, (float8)(0.0f), v < (float8)(0.0f));  // NaN passes through
#endif
            __global float *out = y + ((n * K + k) * P + p) * Q + q0;
            if (full) {
                vstore8(v, 0, out);
            } else {
                float lanes[8];
                vstore8(v, 0, lanes);
                for (int l = 0; l < Q - q0; ++l) out[l] = lanes[l];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Forward for shallow inputs with the 2×2 max pooling fused: one pooled row per work-item.

__kernel void conv2d_forward_rows_pool(__global const float *x, __global const float *wp, __global const float *bias,
                                       const int hasBias, __global float *y, GEOM) {
    const int P2 = P / 2, Q2 = Q / 2, PQ2 = P2 * Q2, taps = R * S * C;
    const int pp = (int)get_global_id(0), n = (int)get_global_id(1), kb = (int)get_global_id(2);
    if (pp >= P2 || n >= N || kb * CONV_FWD_KB >= K) return;
    const __global float *panel = wp + (size_t)kb * taps * CONV_FWD_KB;
    const __global float *image = x + (size_t)n * C * H * W + (2 * pp) * W;
    floatV b[CONV_FWD_KV];
    #pragma unroll
    for (int v = 0; v < CONV_FWD_KV; ++v) {
        float lanes[CONV_VW];
        #pragma unroll
        for (int l = 0; l < CONV_VW; ++l) {
            const int k = kb * CONV_FWD_KB + v * CONV_VW + l;
            lanes[l] = hasBias && k < K ? bias[k] : 0.0f;
        }
        b[v] = vloadV(0, lanes);
    }
    // Offsets of the taps (r, s, c) in the panel's order from a window's top-left pixel (C·R·S ≤ 32).
    int offset[32];
    for (int r = 0, t = 0; r < R; ++r)
        for (int s = 0; s < S; ++s)
            for (int c = 0; c < C; ++c, ++t) offset[t] = (c * H + r) * W + s;
    for (int uq = 0; uq < Q2; ++uq) {
        // The four window pixels (2pp + t / 2, 2uq + t % 2) × KB channels.
        floatV acc[4][CONV_FWD_KV];
        ZERO_ACC(acc, 4, CONV_FWD_KV);
        const __global float *corner = image + 2 * uq;
        for (int t = 0; t < taps; ++t) {
            const __global float *px = corner + offset[t];
            const float x0 = px[0], x1 = px[1], x2 = px[W], x3 = px[W + 1];
            #pragma unroll
            for (int v = 0; v < CONV_FWD_KV; ++v) {
                const floatV wv = vloadV(t * CONV_FWD_KV + v, panel);
                acc[0][v] = fma((floatV)(x0), wv, acc[0][v]);
                acc[1][v] = fma((floatV)(x1), wv, acc[1][v]);
                acc[2][v] = fma((floatV)(x2), wv, acc[2][v]);
                acc[3][v] = fma((floatV)(x3), wv, acc[3][v]);
            }
        }
        #pragma unroll
        for (int v = 0; v < CONV_FWD_KV; ++v) {
            floatV m = max_keep_nanV(max_keep_nanV(acc[0][v], acc[1][v]), max_keep_nanV(acc[2][v], acc[3][v])) + b[v];
#if CONV_RELU
            m = select(m, (floatV)(0.0f), m < (floatV)(0.0f));  // NaN passes through
#endif
            float lanes[CONV_VW];
            vstoreV(m, 0, lanes);
            #pragma unroll
            for (int l = 0; l < CONV_VW; ++l) {
                const int k = kb * CONV_FWD_KB + v * CONV_VW + l;
                if (k < K) y[(size_t)(n * K + k) * PQ2 + pp * Q2 + uq] = lanes[l];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Forward, GPU-shaped: local-memory tiles of weights [TD][TM] and gathered input [TD][TN].

__kernel void conv2d_forward_gpu(__global const float *x, __global const float *w, __global const float *bias,
                                 const int hasBias, __global float *y, GEOM) {
    __local float wTile[CONV_TD][CONV_TM];
    __local float xTile[CONV_TD][CONV_TN];
    const int LX = CONV_TN / CONV_WN, LY = CONV_TM / CONV_WM;
    const int lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    const int tid = ly * LX + lx;
    const int m0 = (int)get_group_id(1) * CONV_TM, n0 = (int)get_group_id(0) * CONV_TN;
    const int RS = R * S, D = C * RS, PQ = P * Q, HW = H * W, NPQ = N * PQ;

    float acc[CONV_WM][CONV_WN];
    #pragma unroll
    for (int a = 0; a < CONV_WM; ++a)
        #pragma unroll
        for (int b = 0; b < CONV_WN; ++b) acc[a][b] = 0.0f;

    for (int d0 = 0; d0 < D; d0 += CONV_TD) {
        for (int i = tid; i < CONV_TD * CONV_TM; i += LX * LY) {
            const int dd = i / CONV_TM, mm = i - dd * CONV_TM;
            const int k = m0 + mm, d = d0 + dd;
            wTile[dd][mm] = (k < K && d < D) ? w[k * D + d] : 0.0f;
        }
        for (int i = tid; i < CONV_TD * CONV_TN; i += LX * LY) {
            const int dd = i / CONV_TN, nn = i - dd * CONV_TN;
            const int col = n0 + nn, d = d0 + dd;
            float value = 0.0f;
            if (col < NPQ && d < D) {
                const int n = col / PQ, pq = col - n * PQ;
                const int p = pq / Q, q = pq - p * Q;
                const int c = d / RS, rs = d - c * RS;
                const int r = rs / S, s = rs - r * S;
                const int ih = p * sh - ph + r * dh;
                const int iw = q * sw - pw + s * dw;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) value = x[(n * C + c) * HW + ih * W + iw];
            }
            xTile[dd][nn] = value;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int dd = 0; dd < CONV_TD; ++dd) {
            float wr[CONV_WM], xr[CONV_WN];
            #pragma unroll
            for (int a = 0; a < CONV_WM; ++a) wr[a] = wTile[dd][ly + a * LY];
            #pragma unroll
            for (int b = 0; b < CONV_WN; ++b) xr[b] = xTile[dd][lx + b * LX];
            #pragma unroll
            for (int a = 0; a < CONV_WM; ++a)
                #pragma unroll
                for (int b = 0; b < CONV_WN; ++b) acc[a][b] = fma(wr[a], xr[b], acc[a][b]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    #pragma unroll
    for (int a = 0; a < CONV_WM; ++a) {
        const int k = m0 + ly + a * LY;
        if (k >= K) continue;
        #pragma unroll
        for (int b = 0; b < CONV_WN; ++b) {
            const int col = n0 + lx + b * LX;
            if (col >= NPQ) continue;
            const int n = col / PQ, pq = col - n * PQ;
            y[(n * K + k) * PQ + pq] = CONV_ACTIVATE(acc[a][b] + (hasBias ? bias[k] : 0.0f));
        }
    }
}

#include "conv2d_backward.cl"
