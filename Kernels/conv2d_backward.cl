// conv2d_backward.cl — the backward kernels of conv2d.cl's family, kept in their own file and
// compiled as part of conv2d.cl (which includes this file at its end): they share its layouts,
// tunables (CONV_VW, CONV_DX_*, CONV_DW_*, CONV_ROWS_KB, CONV_PADDED), GEOM arguments and micro-tile
// macros, and are built with the same -D values. Not a program of its own.
//
// Kernels and when each runs:
//   conv2d_backward_input   dx = transposed convolution of dy, register-tiled like the CPU forward:
//                           CONV_VW·CONV_DX_KV input channels × CONV_DX_NP input pixels per work-item, weights
//                           packed by conv2d_pack_weight_t as [C / KB][R·S·K][KB]. Overwrites dx.
//   conv2d_backward_input_rows  dx for stride 1 and at most 4 input channels (first layers on images):
//                           8 consecutive pixels of a row of dx × CONV_ROWS_KB channels per work-item,
//                           vectorized over the pixels. Overwrites dx.
//   conv2d_backward_weight  dw as a GEMM over depth N·P·Q: CONV_VW·CONV_DW_KV output channels × CONV_DW_NP weight
//                           columns (c, r, s) per work-item, over dy packed by conv2d_pack_dy as
//                           [K / KB][N·P·Q][KB]. The batch is split into chunks of `images` images
//                           (third global dimension); each chunk overwrites its own slice of `partial`
//                           [chunks][K][C·R·S], and conv2d_reduce_chunks sums the slices into dw
//                           (overwrites dw). No atomics, no races.
//   conv2d_backward_bias    db[k] = Σ over n, p, q of dy, per chunk of images into `partial` [chunks][K],
//                           summed by conv2d_reduce_chunks into db. Overwrites db.
//   conv2d_pack_weight_t, conv2d_pack_dy   one work-item per packed float (dy: per pixel × channel
//                           block); panels are zero-padded past C or K, so the micro-tiles never test
//                           channel bounds in their inner loops.
//   conv2d_reduce_chunks    sums per-chunk partial results (dw, db).
// The backward kernels are register-tiled and barrier-free; they run on every device. Every gradient
// is overwritten; autograd accumulates across uses on the host side.

// ---------------------------------------------------------------------------------------------
// Packing for the backward kernels (one work-item per packed element).

// wt[cb][rs·K + k][lane] = w[k][cb·KB + lane][rs], zero past C.
__kernel void conv2d_pack_weight_t(__global const float *w, __global float *wt, const int K, const int C, const int RS) {
    const int i = (int)get_global_id(0);
    const int D = K * RS;
    const int total = (C + CONV_DX_KB - 1) / CONV_DX_KB * CONV_DX_KB * D;
    if (i >= total) return;
    const int row = i / CONV_DX_KB, lane = i - row * CONV_DX_KB;
    const int cb = row / D, d = row - cb * D;
    const int c = cb * CONV_DX_KB + lane;
    const int rs = d / K, k = d - rs * K;
    wt[i] = c < C ? w[(k * C + c) * RS + rs] : 0.0f;
}

// dyp[kb][n·PQ + pq][lane] = dy[n][kb·KB + lane][pq], zero past K. Global (N·PQ, K / KB): neighbouring
// work-items read neighbouring pixels of each channel plane.
__kernel void conv2d_pack_dy(__global const float *dy, __global float *dyp, const int N, const int K, const int PQ) {
    const int t = (int)get_global_id(0);
    const int kb = (int)get_global_id(1);
    const int T = N * PQ;
    if (t >= T || kb * CONV_DW_KB >= K) return;
    const int n = t / PQ, pq = t - n * PQ;
    __global float *out = dyp + ((size_t)kb * T + t) * CONV_DW_KB;
    #pragma unroll
    for (int l = 0; l < CONV_DW_KB; ++l) {
        const int k = kb * CONV_DW_KB + l;
        out[l] = k < K ? dy[(size_t)(n * K + k) * PQ + pq] : 0.0f;
    }
}

// ---------------------------------------------------------------------------------------------
// Backward with respect to the input: dx[n][c][h][w] = Σ_{k,r,s} w[k][c][r][s] · dy[n][k][p][q]
// where p·sh = h + ph − r·dh and q·sw = w + pw − s·dw. Overwrites dx.

__kernel void conv2d_backward_input(__global const float *dy, __global const float *wt, __global const float *zero,
                                    __global float *dx, GEOM) {
    const int PQ = P * Q, HW = H * W, NHW = N * HW;
    const int col0 = (int)get_global_id(0) * CONV_DX_NP;
    const int cb = (int)get_global_id(1);
    if (col0 >= NHW || cb * CONV_DX_KB >= C) return;

    int dybase[CONV_DX_NP], hh[CONV_DX_NP], ww[CONV_DX_NP];
    #pragma unroll
    for (int j = 0; j < CONV_DX_NP; ++j) {
        const int col = min(col0 + j, NHW - 1);
        const int n = col / HW, hw = col - n * HW;
        const int h = hw / W;
        hh[j] = h + ph;
        ww[j] = hw - h * W + pw;
        dybase[j] = n * K * PQ;
    }
    floatV acc[CONV_DX_NP][CONV_DX_KV];
    ZERO_ACC(acc, CONV_DX_NP, CONV_DX_KV);
    const __global float *panel = wt + (size_t)cb * (R * S * K) * CONV_DX_KB;
    for (int r = 0; r < R; ++r) {
        for (int s = 0; s < S; ++s) {
            const __global float *src[CONV_DX_NP];
            int stride[CONV_DX_NP];
            int live = 0;
            #pragma unroll
            for (int j = 0; j < CONV_DX_NP; ++j) {
                const int tp = hh[j] - r * dh, tq = ww[j] - s * dw;
                const int p = tp / sh, q = tq / sw;
                const bool inside = tp >= 0 && tq >= 0 && p * sh == tp && q * sw == tq && p < P && q < Q;
                src[j] = inside ? dy + dybase[j] + p * Q + q : zero;
                stride[j] = inside ? PQ : 0;
                live |= inside;
            }
            // No pixel of the tile meets an output through this tap (image border, stride gaps): skip it.
            if (!live) {
                panel += K * CONV_DX_KB;
                continue;
            }
            for (int k = 0; k < K; ++k) {
                MICRO_STEP(acc, panel, src, stride, k, CONV_DX_NP, CONV_DX_KV);
                panel += CONV_DX_KB;
            }
        }
    }
    #pragma unroll
    for (int j = 0; j < CONV_DX_NP; ++j) {
        const int col = col0 + j;
        if (col >= NHW) break;
        const int n = col / HW, hw = col - n * HW;
        #pragma unroll
        for (int v = 0; v < CONV_DX_KV; ++v) {
            float lanes[CONV_VW];
            vstoreV(acc[j][v], 0, lanes);
            #pragma unroll
            for (int l = 0; l < CONV_VW; ++l) {
                const int c = cb * CONV_DX_KB + v * CONV_VW + l;
                if (c < C) dx[(n * C + c) * HW + hw] = lanes[l];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backward with respect to the input for few input channels and stride 1: 8 consecutive pixels of one
// row of dx × CONV_ROWS_KB input channels per work-item, vectorized over the pixels (the micro-tile
// kernel above vectorizes over channels, and with C = 1 leaves all but one lane of each vector idle).
// dx[n][c][h][w0 + l] = Σ_{k,r,s} w[k][c][r][s] · dy[n][k][h + ph − r·dh][w0 + l + pw − s·dw], each dy
// read as one float8 row segment (lane by lane where it crosses the edge of dy). Global
// (ceil(W / 8), N·H, ceil(C / CONV_ROWS_KB)). Overwrites dx.

__kernel void conv2d_backward_input_rows(__global const float *dy, __global const float *w, __global float *dx, GEOM) {
    const int w0 = (int)get_global_id(0) * 8;
    const int nh = (int)get_global_id(1);
    const int c0 = (int)get_global_id(2) * CONV_ROWS_KB;
    if (w0 >= W || nh >= N * H || c0 >= C) return;
    (void)sh;  // stride 1 (the host's condition)
    (void)sw;
    const int n = nh / H, h = nh - n * H;
    const int PQ = P * Q, RS = R * S;
    float8 acc[CONV_ROWS_KB];
    #pragma unroll
    for (int j = 0; j < CONV_ROWS_KB; ++j) acc[j] = (float8)(0.0f);
    const __global float *image = dy + (size_t)n * K * PQ;
    const int CRS = C * RS;
    // Weight offsets of the block's channels; channels past C repeat the last one (computed, never stored).
    int woff[CONV_ROWS_KB];
    #pragma unroll
    for (int j = 0; j < CONV_ROWS_KB; ++j) woff[j] = min(c0 + j, C - 1) * RS;
    for (int r = 0; r < R; ++r) {
        const int p = h + ph - r * dh;
        if (p < 0 || p >= P) continue;
        for (int s = 0; s < S; ++s) {
            const int q0 = w0 + pw - s * dw;
            const __global float *tap = w + r * S + s;
            if (q0 >= 0 && q0 + 8 <= Q) {
                // The whole segment lies inside dy's row: one vector load per output channel k.
                const __global float *src = image + p * Q + q0;
                for (int k = 0; k < K; ++k) {
                    const float8 v = vload8(0, src + k * PQ);
                    #pragma unroll
                    for (int j = 0; j < CONV_ROWS_KB; ++j) acc[j] = fma((float8)(tap[k * CRS + woff[j]]), v, acc[j]);
                }
            } else {
                // The segment crosses an edge of the row: load the 8 floats around it (the neighbouring
                // row's, still inside dy) and zero the lanes outside the row; lane by lane only where
                // the load would leave dy (its first and last row).
                const int lo = max(0, -q0), hi = min(8, Q - q0);
                if (lo >= hi) continue;
                const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
                const int8 keep = (lane >= (int8)(lo)) & (lane < (int8)(hi));
                const int total = N * K * PQ;
                int at = n * K * PQ + p * Q + q0;
                for (int k = 0; k < K; ++k, at += PQ) {
                    float8 v;
                    if (at >= 0 && at + 8 <= total) {
                        v = select((float8)(0.0f), vload8(0, dy + at), keep);
                    } else {
                        float lanes[8];
                        #pragma unroll
                        for (int l = 0; l < 8; ++l) lanes[l] = l >= lo && l < hi ? dy[at + l] : 0.0f;
                        v = vload8(0, lanes);
                    }
                    #pragma unroll
                    for (int j = 0; j < CONV_ROWS_KB; ++j) acc[j] = fma((float8)(tap[k * CRS + woff[j]]), v, acc[j]);
                }
            }
        }
    }
    const bool full = w0 + 8 <= W;
    #pragma unroll
    for (int j = 0; j < CONV_ROWS_KB; ++j) {
        const int c = c0 + j;
        if (c >= C) break;
        __global float *out = dx + ((size_t)(n * C + c) * H + h) * W + w0;
        if (full) {
            vstore8(acc[j], 0, out);
        } else {
            float lanes[8];
            vstore8(acc[j], 0, lanes);
            for (int l = 0; l < W - w0; ++l) out[l] = lanes[l];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backward with respect to the weight, one chunk of `images` images per third global index:
// partial[chunk][k][c·RS + rs] = Σ_{n in chunk, p, q} dy[n][k][p][q] · x[n][c][p·sh − ph + r·dh][q·sw − pw + s·dw].

__kernel void conv2d_backward_weight(__global const float *x, __global const float *dyp, __global float *partial,
                                     const int images, GEOM) {
    const int RS = R * S, D = C * RS, PQ = P * Q, HW = H * W, CHW = C * HW, T = N * PQ;
    const int col0 = (int)get_global_id(0) * CONV_DW_NP;
    const int kb = (int)get_global_id(1);
    const int chunk = (int)get_global_id(2);
    const int nBegin = chunk * images;
    if (col0 >= D || kb * CONV_DW_KB >= K || nBegin >= N) return;
    const int nEnd = min(N, nBegin + images);

    int off[CONV_DW_NP];
#if CONV_PADDED
    int rr[CONV_DW_NP], ss[CONV_DW_NP];
#endif
    #pragma unroll
    for (int j = 0; j < CONV_DW_NP; ++j) {
        const int e = min(col0 + j, D - 1);
        const int c = e / RS, rs = e - c * RS;
        const int r = rs / S, s = rs - r * S;
        off[j] = c * HW + r * dh * W + s * dw;
#if CONV_PADDED
        rr[j] = r * dh;
        ss[j] = s * dw;
#endif
    }
    floatV acc[CONV_DW_NP][CONV_DW_KV];
    ZERO_ACC(acc, CONV_DW_NP, CONV_DW_KV);
    const __global float *panel = dyp + ((size_t)kb * T + (size_t)nBegin * PQ) * CONV_DW_KB;
    for (int n = nBegin; n < nEnd; ++n) {
        for (int p = 0; p < P; ++p) {
            const int ih0 = p * sh - ph;
            for (int q = 0; q < Q; ++q) {
                const int iw0 = q * sw - pw;
                const int xb = n * CHW + ih0 * W + iw0;
                floatV dv[CONV_DW_KV];
                #pragma unroll
                for (int v = 0; v < CONV_DW_KV; ++v) dv[v] = vloadV(v, panel);
                panel += CONV_DW_KB;
                #pragma unroll
                for (int j = 0; j < CONV_DW_NP; ++j) {
#if CONV_PADDED
                    const int ih = ih0 + rr[j], iw = iw0 + ss[j];
                    const float xs = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[xb + off[j]] : 0.0f;
#else
                    const float xs = x[xb + off[j]];
#endif
                    const floatV xv = (floatV)(xs);
                    #pragma unroll
                    for (int v = 0; v < CONV_DW_KV; ++v) acc[j][v] = fma(xv, dv[v], acc[j][v]);
                }
            }
        }
    }
    __global float *out = partial + (size_t)chunk * K * D;
    #pragma unroll
    for (int j = 0; j < CONV_DW_NP; ++j) {
        const int e = col0 + j;
        if (e >= D) break;
        #pragma unroll
        for (int v = 0; v < CONV_DW_KV; ++v) {
            float lanes[CONV_VW];
            vstoreV(acc[j][v], 0, lanes);
            #pragma unroll
            for (int l = 0; l < CONV_VW; ++l) {
                const int k = kb * CONV_DW_KB + v * CONV_VW + l;
                if (k < K) out[k * D + e] = lanes[l];
            }
        }
    }
}

// dw[i] = Σ_chunk partial[chunk][i] for i < count. Overwrites dw.
__kernel void conv2d_reduce_chunks(__global const float *partial, __global float *dw, const int count, const int chunks) {
    const int i = (int)get_global_id(0);
    if (i >= count) return;
    float sum = 0.0f;
    for (int c = 0; c < chunks; ++c) sum += partial[(size_t)c * count + i];
    dw[i] = sum;
}

// partial[chunk][k] = Σ_{n in chunk, pq} dy[n][k][pq]. Global (K, chunks of `images` images); the
// chunks are then summed by conv2d_reduce_chunks into db (overwritten).
__kernel void conv2d_backward_bias(__global const float *dy, __global float *partial, const int N, const int K, const int PQ,
                                   const int images) {
    const int k = (int)get_global_id(0);
    const int chunk = (int)get_global_id(1);
    if (k >= K || chunk * images >= N) return;
    const int nEnd = min(N, (chunk + 1) * images);
    float sum = 0.0f;
    for (int n = chunk * images; n < nEnd; ++n) {
        const __global float *plane = dy + (size_t)(n * K + k) * PQ;
        // Four independent partial sums, so the adds do not wait on each other.
        float a = 0.0f, b = 0.0f, c = 0.0f, d = 0.0f;
        int i = 0;
        for (; i + 4 <= PQ; i += 4) {
            a += plane[i];
            b += plane[i + 1];
            c += plane[i + 2];
            d += plane[i + 3];
        }
        for (; i < PQ; ++i) a += plane[i];
        sum += (a + b) + (c + d);
    }
    partial[(size_t)chunk * K + k] = sum;
}
