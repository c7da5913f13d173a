// attention.cl — fused scaled dot-product attention, O = softmax(Q·Kᵀ·scale + mask)·V, forward and
// backward in the FlashAttention-2 scheme: the T×T scores never reach global memory.
//
// Layouts: rows of ATT_D floats addressed through strides, so that Q, K and V can be read straight out
// of a packed projection [B, T, 3, H, d] and O written as [B, T, H, d] without permutes. Row i of head
// z (batch z / heads, head z mod heads) of an input starts at offset + b·inB + h·inH + i·inT (Q, K, V
// share the strides, each with its own offset; dQ, dK, dV are written the same way), and of O and dO
// at b·outB + h·outH + i·outT. Contiguous [B, H, T, d] tensors are inB = H·T·d, inH = T·d, inT = d.
// L (the per-row log-sum-exp saved by the forward) and Dl (the rows of dO·O) are [B·H][T]; P, the
// optional probabilities, is [B·H][T][T].
//
// Masks: `causal` = 1 hides key j from query i when j > i; `lens`, when `hasLens` = 1, holds per batch
// element the number of valid keys (keys at or past it are padding). A query row that sees no key
// gets output 0, L = +∞ and zero gradients (every p = exp(s − L) is 0).
//
// Kernels and when each runs:
//   attention_forward        every forward pass. A work-group of ATT_BQ work-items owns ATT_BQ query rows
//                            of one head; each work-item keeps its query row, running max m, running sum l
//                            and output accumulator in private memory and walks the keys in tiles of
//                            ATT_BK rows of K and V staged in local memory by the whole group (online
//                            softmax: on a new maximum the sums are rescaled by exp(m_old − m_new)).
//                            Writes O and L = m + log(l). Global (ceil(T / ATT_BQ)·ATT_BQ, BH), local (ATT_BQ, 1).
//   attention_delta          Dl[i] = dO_i·O_i, first step of the backward. One work-item per row; global (T, BH).
//   attention_backward_dq    dQ_i = scale · Σ_j p_ij (dO_i·V_j − Dl_i) K_j with p_ij = exp(s_ij − L_i) recomputed;
//                            K and V tiles in local memory as in the forward. Same launch shape.
//   attention_backward_dkv   dV_j = Σ_i p_ij dO_i and dK_j = scale · Σ_i p_ij (dO_i·V_j − Dl_i) Q_i: one work-item
//                            per key row, tiles of ATT_BQ rows of Q and dO (and their L, Dl) in local memory.
//                            Global (ceil(T / ATT_BQ)·ATT_BQ, BH), local (ATT_BQ, 1). dQ, dK, dV are overwritten.
//   attention_forward_cpu, attention_backward_dq_cpu, attention_backward_dkv_cpu
//                            the same three passes shaped for CPUs (PoCL), when ATT_D is a multiple of 8 but not
//                            of 16 (the tiled kernels below take the multiples of 16: 2–3× faster): one
//                            work-item per row, no local memory and no barriers, the row and its accumulators
//                            held as ATT_D / 8 float8 registers, keys visited in blocks of 8 so the softmax's
//                            exponentials run as one float8 exp. Global (T, BH), local (1, 1). (The local-memory
//                            kernels above ran at 5% of the FMA peak on PoCL: their private arrays live in memory.)
//   attention_probabilities  the explicit mode for explanations (never on the training path): P_ij =
//                            exp(s_ij − L_i) from a forward's L. One work-item per (row, head); global (T, BH).
// Indices are 32-bit: the host refuses tensors of 2³¹ elements or more. Any T ≥ 1 works (the last tile is
// guarded); ATT_D is the head width, set by the host per call (1…128).
//
// Tunables (-D; the host passes every one, from AttentionFamily and the tuning table, so these defaults
// only serve a file compiled alone):
//   ATT_BQ   query rows per work-group (default 32)
//   ATT_BK   key rows per local-memory tile (default 32)

#ifndef ATT_D
#define ATT_D 64
#endif
#ifndef ATT_BQ
#define ATT_BQ 32
#endif
#ifndef ATT_BK
#define ATT_BK 32
#endif

// The layout arguments every kernel takes after its own.
#define ATT_LAYOUT const int inB, const int inH, const int inT, const int qOff, const int kOff, const int vOff, \
                   const int outB, const int outH, const int outT
// Start of row i of head z in an input (add the tensor's offset) and in the output.
#define ATT_IN(z, i) ((size_t)((z) / heads) * inB + (size_t)((z) - ((z) / heads) * heads) * inH + (size_t)(i) * inT)
#define ATT_OUT(z, i) ((size_t)((z) / heads) * outB + (size_t)((z) - ((z) / heads) * heads) * outH + (size_t)(i) * outT)

// Number of keys query i of head z may see (keys 0 … limit − 1).
inline int attention_limit(const int i, const int t, const int causal, const int hasLens, __global const int* lens,
                           const int z, const int heads) {
    int limit = t;
    if (hasLens) limit = min(limit, lens[z / heads]);
    if (causal) limit = min(limit, i + 1);
    return max(limit, 0);
}

__kernel void attention_forward(__global const float* q, __global const float* k, __global const float* v,
                                __global float* o, __global float* lse, const int t, const int heads, const float scale,
                                const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    __local float kt[ATT_BK * ATT_D];
    __local float vt[ATT_BK * ATT_D];
    const int li = get_local_id(0);
    const int i = get_global_id(0);
    const int z = get_global_id(1);
    const int live = i < t;
    const int limit = live ? attention_limit(i, t, causal, hasLens, lens, z, heads) : 0;
    // The group's largest limit: tiles past it are skipped by every work-item.
    const int lastRow = min(t - 1, (int)(get_group_id(0) * ATT_BQ + ATT_BQ - 1));
    const int groupLimit = attention_limit(lastRow, t, causal, hasLens, lens, z, heads);
    float qi[ATT_D], acc[ATT_D];
    for (int c = 0; c < ATT_D; ++c) {
        qi[c] = live ? q[qOff + ATT_IN(z, i) + c] * scale : 0.0f;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < groupLimit; j0 += ATT_BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = li; e < ATT_BK * ATT_D; e += ATT_BQ) {
            const int jj = e / ATT_D, c = e - jj * ATT_D, j = j0 + jj;
            kt[e] = j < t ? k[kOff + ATT_IN(z, j) + c] : 0.0f;
            vt[e] = j < t ? v[vOff + ATT_IN(z, j) + c] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = min(ATT_BK, limit - j0);
        if (n <= 0) continue;
        float s[ATT_BK];
        float tileMax = -INFINITY;
        for (int jj = 0; jj < n; ++jj) {
            float dot = 0.0f;
            for (int c = 0; c < ATT_D; ++c) dot = fma(qi[c], kt[jj * ATT_D + c], dot);
            s[jj] = dot;
            tileMax = fmax(tileMax, dot);
        }
        const float mNew = fmax(m, tileMax);
        const float correction = exp(m - mNew);  // 0 on the first tile (m = −∞)
        l *= correction;
        for (int c = 0; c < ATT_D; ++c) acc[c] *= correction;
        for (int jj = 0; jj < n; ++jj) {
            const float p = exp(s[jj] - mNew);
            l += p;
            for (int c = 0; c < ATT_D; ++c) acc[c] = fma(p, vt[jj * ATT_D + c], acc[c]);
        }
        m = mNew;
    }
    if (!live) return;
    const float inverse = l > 0.0f ? 1.0f / l : 0.0f;
    for (int c = 0; c < ATT_D; ++c) o[ATT_OUT(z, i) + c] = acc[c] * inverse;
    lse[(size_t)z * t + i] = l > 0.0f ? m + log(l) : INFINITY;
}

__kernel void attention_delta(__global const float* o, __global const float* dout, __global float* delta, const int t,
                              const int heads, ATT_LAYOUT) {
    const int i = get_global_id(0), z = get_global_id(1);
    if (i >= t) return;
    const size_t row = ATT_OUT(z, i);
    float sum = 0.0f;
    for (int c = 0; c < ATT_D; ++c) sum = fma(o[row + c], dout[row + c], sum);
    delta[(size_t)z * t + i] = sum;
}

__kernel void attention_backward_dq(__global const float* q, __global const float* k, __global const float* v,
                                    __global const float* dout, __global const float* lse, __global const float* delta,
                                    __global float* dq, const int t, const int heads, const float scale,
                                    const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    __local float kt[ATT_BK * ATT_D];
    __local float vt[ATT_BK * ATT_D];
    const int li = get_local_id(0);
    const int i = get_global_id(0);
    const int z = get_global_id(1);
    const int live = i < t;
    const int limit = live ? attention_limit(i, t, causal, hasLens, lens, z, heads) : 0;
    const int lastRow = min(t - 1, (int)(get_group_id(0) * ATT_BQ + ATT_BQ - 1));
    const int groupLimit = attention_limit(lastRow, t, causal, hasLens, lens, z, heads);
    float qi[ATT_D], doi[ATT_D], acc[ATT_D];
    for (int c = 0; c < ATT_D; ++c) {
        qi[c] = live ? q[qOff + ATT_IN(z, i) + c] * scale : 0.0f;
        doi[c] = live ? dout[ATT_OUT(z, i) + c] : 0.0f;
        acc[c] = 0.0f;
    }
    const float li_lse = live ? lse[(size_t)z * t + i] : INFINITY;
    const float di = live ? delta[(size_t)z * t + i] : 0.0f;
    for (int j0 = 0; j0 < groupLimit; j0 += ATT_BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = li; e < ATT_BK * ATT_D; e += ATT_BQ) {
            const int jj = e / ATT_D, c = e - jj * ATT_D, j = j0 + jj;
            kt[e] = j < t ? k[kOff + ATT_IN(z, j) + c] : 0.0f;
            vt[e] = j < t ? v[vOff + ATT_IN(z, j) + c] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = min(ATT_BK, limit - j0);
        for (int jj = 0; jj < n; ++jj) {
            float s = 0.0f, dp = 0.0f;
            for (int c = 0; c < ATT_D; ++c) {
                s = fma(qi[c], kt[jj * ATT_D + c], s);
                dp = fma(doi[c], vt[jj * ATT_D + c], dp);
            }
            const float ds = exp(s - li_lse) * (dp - di);
            for (int c = 0; c < ATT_D; ++c) acc[c] = fma(ds, kt[jj * ATT_D + c], acc[c]);
        }
    }
    if (!live) return;
    for (int c = 0; c < ATT_D; ++c) dq[qOff + ATT_IN(z, i) + c] = acc[c] * scale;
}

__kernel void attention_backward_dkv(__global const float* q, __global const float* k, __global const float* v,
                                     __global const float* dout, __global const float* lse, __global const float* delta,
                                     __global float* dk, __global float* dv, const int t, const int heads, const float scale,
                                     const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    __local float qt[ATT_BQ * ATT_D];
    __local float dot_[ATT_BQ * ATT_D];
    __local float lt[ATT_BQ];
    __local float dt[ATT_BQ];
    const int li = get_local_id(0);
    const int j = get_global_id(0);
    const int z = get_global_id(1);
    const int keys = hasLens ? min(t, lens[z / heads]) : t;
    const int live = j < t;
    const int valid = live && j < keys;
    float kj[ATT_D], vj[ATT_D], dkj[ATT_D], dvj[ATT_D];
    for (int c = 0; c < ATT_D; ++c) {
        kj[c] = live ? k[kOff + ATT_IN(z, j) + c] : 0.0f;
        vj[c] = live ? v[vOff + ATT_IN(z, j) + c] : 0.0f;
        dkj[c] = 0.0f;
        dvj[c] = 0.0f;
    }
    // With the causal mask only queries i ≥ j see key j: start at the group's first key row.
    const int firstKey = get_group_id(0) * ATT_BQ;
    const int start = causal ? firstKey : 0;
    for (int i0 = start; i0 < t; i0 += ATT_BQ) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = li; e < ATT_BQ * ATT_D; e += ATT_BQ) {
            const int ii = e / ATT_D, c = e - ii * ATT_D, i = i0 + ii;
            qt[e] = i < t ? q[qOff + ATT_IN(z, i) + c] * scale : 0.0f;
            dot_[e] = i < t ? dout[ATT_OUT(z, i) + c] : 0.0f;
        }
        lt[li] = i0 + li < t ? lse[(size_t)z * t + i0 + li] : INFINITY;
        dt[li] = i0 + li < t ? delta[(size_t)z * t + i0 + li] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!valid) continue;
        const int n = min(ATT_BQ, t - i0);
        for (int ii = 0; ii < n; ++ii) {
            if (causal && i0 + ii < j) continue;
            float s = 0.0f, dp = 0.0f;
            for (int c = 0; c < ATT_D; ++c) {
                s = fma(qt[ii * ATT_D + c], kj[c], s);
                dp = fma(dot_[ii * ATT_D + c], vj[c], dp);
            }
            const float p = exp(s - lt[ii]);
            const float ds = p * (dp - dt[ii]);
            for (int c = 0; c < ATT_D; ++c) {
                dvj[c] = fma(p, dot_[ii * ATT_D + c], dvj[c]);
                dkj[c] = fma(ds, qt[ii * ATT_D + c], dkj[c]);
            }
        }
    }
    if (!live) return;
    // qt already carries the scale, so dK = Σ ds · (scale · Q) needs nothing more.
    for (int c = 0; c < ATT_D; ++c) {
        dk[kOff + ATT_IN(z, j) + c] = dkj[c];
        dv[vOff + ATT_IN(z, j) + c] = dvj[c];
    }
}

__kernel void attention_probabilities(__global const float* q, __global const float* k, __global const float* lse,
                                      __global float* p, const int t, const int heads, const float scale,
                                      const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    const int i = get_global_id(0), z = get_global_id(1);
    if (i >= t) return;
    const int limit = attention_limit(i, t, causal, hasLens, lens, z, heads);
    const float li = lse[(size_t)z * t + i];
    __global float* row = p + ((size_t)z * t + i) * t;
    for (int j = 0; j < t; ++j) {
        float value = 0.0f;
        if (j < limit) {
            float s = 0.0f;
            for (int c = 0; c < ATT_D; ++c) s = fma(q[qOff + ATT_IN(z, i) + c] * scale, k[kOff + ATT_IN(z, j) + c], s);
            value = exp(s - li);
        }
        row[j] = value;
    }
}

// ---------------------------------------------------------------------------------------------
// CPU-shaped kernels (ATT_D a multiple of 8).

#define ATT_DV (ATT_D / 8)

inline float att_hsum(const float8 v) {
    const float4 a = v.lo + v.hi;
    const float2 b = a.lo + a.hi;
    return b.x + b.y;
}

// Σ over the row of a·b, for a row held in registers and one read from memory.
#define ATT_DOT(regs, ptr, out) do { float8 acc_ = (float8)(0.0f); \
    for (int c_ = 0; c_ < ATT_DV; ++c_) acc_ = fma(regs[c_], vload8(c_, ptr), acc_); out = att_hsum(acc_); } while (0)

__kernel void attention_forward_cpu(__global const float* q, __global const float* k, __global const float* v,
                                    __global float* o, __global float* lse, const int t, const int heads, const float scale,
                                    const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    const int i = get_global_id(0), z = get_global_id(1);
    if (i >= t) return;
    const int limit = attention_limit(i, t, causal, hasLens, lens, z, heads);
    float8 qi[ATT_DV], acc[ATT_DV];
    for (int c = 0; c < ATT_DV; ++c) {
        qi[c] = vload8(c, q + qOff + ATT_IN(z, i)) * scale;
        acc[c] = (float8)(0.0f);
    }
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < limit; j0 += 8) {
        float sv[8];
        for (int jj = 0; jj < 8; ++jj) {
            float dot = -INFINITY;
            if (j0 + jj < limit) ATT_DOT(qi, k + kOff + ATT_IN(z, j0 + jj), dot);
            sv[jj] = dot;
        }
        const float8 s = vload8(0, sv);
        const float4 m4 = fmax(s.lo, s.hi);
        const float2 m2 = fmax(m4.lo, m4.hi);
        const float mNew = fmax(m, fmax(m2.x, m2.y));
        const float correction = exp(m - mNew);
        const float8 p = exp(s - mNew);  // 0 in lanes past the limit (−∞)
        l = fma(l, correction, att_hsum(p));
        float pv[8];
        vstore8(p, 0, pv);
        for (int c = 0; c < ATT_DV; ++c) acc[c] *= correction;
        const int n = min(8, limit - j0);
        for (int jj = 0; jj < n; ++jj) {
            __global const float* vr = v + vOff + ATT_IN(z, j0 + jj);
            for (int c = 0; c < ATT_DV; ++c) acc[c] = fma((float8)(pv[jj]), vload8(c, vr), acc[c]);
        }
        m = mNew;
    }
    const float inverse = l > 0.0f ? 1.0f / l : 0.0f;
    for (int c = 0; c < ATT_DV; ++c) vstore8(acc[c] * inverse, c, o + ATT_OUT(z, i));
    lse[(size_t)z * t + i] = l > 0.0f ? m + log(l) : INFINITY;
}

__kernel void attention_backward_dq_cpu(__global const float* q, __global const float* k, __global const float* v,
                                        __global const float* dout, __global const float* lse, __global const float* delta,
                                        __global float* dq, const int t, const int heads, const float scale,
                                        const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    const int i = get_global_id(0), z = get_global_id(1);
    if (i >= t) return;
    const int limit = attention_limit(i, t, causal, hasLens, lens, z, heads);
    float8 qi[ATT_DV], doi[ATT_DV], acc[ATT_DV];
    for (int c = 0; c < ATT_DV; ++c) {
        qi[c] = vload8(c, q + qOff + ATT_IN(z, i)) * scale;
        doi[c] = vload8(c, dout + ATT_OUT(z, i));
        acc[c] = (float8)(0.0f);
    }
    const float li = lse[(size_t)z * t + i], di = delta[(size_t)z * t + i];
    // Keys in blocks of 8: the probabilities of a block come from one float8 exp.
    for (int j0 = 0; j0 < limit; j0 += 8) {
        const int n = min(8, limit - j0);
        float sv[8], dpv[8];
        for (int jj = 0; jj < 8; ++jj) {
            float s = -INFINITY, dp = 0.0f;
            if (jj < n) {
                ATT_DOT(qi, k + kOff + ATT_IN(z, j0 + jj), s);
                ATT_DOT(doi, v + vOff + ATT_IN(z, j0 + jj), dp);
            }
            sv[jj] = s;
            dpv[jj] = dp;
        }
        float dsv[8];
        vstore8(exp(vload8(0, sv) - li) * (vload8(0, dpv) - di), 0, dsv);
        for (int jj = 0; jj < n; ++jj) {
            __global const float* kr = k + kOff + ATT_IN(z, j0 + jj);
            for (int c = 0; c < ATT_DV; ++c) acc[c] = fma((float8)(dsv[jj]), vload8(c, kr), acc[c]);
        }
    }
    for (int c = 0; c < ATT_DV; ++c) vstore8(acc[c] * scale, c, dq + qOff + ATT_IN(z, i));
}

__kernel void attention_backward_dkv_cpu(__global const float* q, __global const float* k, __global const float* v,
                                         __global const float* dout, __global const float* lse, __global const float* delta,
                                         __global float* dk, __global float* dv, const int t, const int heads, const float scale,
                                         const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    const int j = get_global_id(0), z = get_global_id(1);
    if (j >= t) return;
    const int keys = hasLens ? min(t, lens[z / heads]) : t;
    float8 kj[ATT_DV], vj[ATT_DV], dkj[ATT_DV], dvj[ATT_DV];
    for (int c = 0; c < ATT_DV; ++c) {
        kj[c] = vload8(c, k + kOff + ATT_IN(z, j)) * scale;  // s = (scale·k)·q
        vj[c] = vload8(c, v + vOff + ATT_IN(z, j));
        dkj[c] = (float8)(0.0f);
        dvj[c] = (float8)(0.0f);
    }
    // Queries in blocks of 8 (those that see key j: i ≥ j under the causal mask), one float8 exp per block.
    for (int i0 = causal ? j : 0; i0 < t && j < keys; i0 += 8) {
        const int n = min(8, t - i0);
        float sv[8], dpv[8], lv[8], dl[8];
        for (int ii = 0; ii < 8; ++ii) {
            float s = 0.0f, dp = 0.0f, l = INFINITY, d = 0.0f;
            if (ii < n) {
                const int i = i0 + ii;
                ATT_DOT(kj, q + qOff + ATT_IN(z, i), s);
                ATT_DOT(vj, dout + ATT_OUT(z, i), dp);
                l = lse[(size_t)z * t + i];
                d = delta[(size_t)z * t + i];
            }
            sv[ii] = s;
            dpv[ii] = dp;
            lv[ii] = l;
            dl[ii] = d;
        }
        const float8 p = exp(vload8(0, sv) - vload8(0, lv));  // 0 past t (L = +∞)
        float pv[8], dsv[8];
        vstore8(p, 0, pv);
        vstore8(p * (vload8(0, dpv) - vload8(0, dl)), 0, dsv);
        for (int ii = 0; ii < n; ++ii) {
            __global const float* qr = q + qOff + ATT_IN(z, i0 + ii);
            __global const float* dor = dout + ATT_OUT(z, i0 + ii);
            for (int c = 0; c < ATT_DV; ++c) {
                dvj[c] = fma((float8)(pv[ii]), vload8(c, dor), dvj[c]);
                dkj[c] = fma((float8)(dsv[ii]), vload8(c, qr), dkj[c]);
            }
        }
    }
    for (int c = 0; c < ATT_DV; ++c) {
        vstore8(dkj[c] * scale, c, dk + kOff + ATT_IN(z, j));
        vstore8(dvj[c], c, dv + vOff + ATT_IN(z, j));
    }
}

// ---------------------------------------------------------------------------------------------
// Tiled CPU kernels (ATT_D a multiple of 16): every product is a GEMM micro-tile of 4 rows × 16
// columns held in 8 float8 accumulators (the matmul kernel's shape), on tiles of 16 queries × 16 keys.
//
//   attention_pack_panels     writes rows of K (or V) as transposed panels pt[z][b][c][16] = X[z][16·b + l][c],
//                             zero past T, so that a tile's scores are a micro-tile over a contiguous panel.
//                             One work-item per panel; global (ceil(T / 16), BH).
//   attention_forward_tiled   one work-item per 16 query rows: per key block, S = Q·Kᵀ (panels), the online
//                             softmax row by row, then O = O·correction + P·V, O held in private memory.
//                             Global (ceil(T / 16), BH), local (1, 1).
//   attention_backward_tiled  one work-item per head, so that it owns dQ, dK and dV of the head and every
//                             product runs once (FlashAttention-2's count: S, dP = dO·Vᵀ, dV += Pᵀ·dO,
//                             dK += dSᵀ·Q, dQ += dS·K). Key blocks outer (dK, dV in private memory), query
//                             blocks inner (dQ accumulated in place, zeroed first). Global (BH), local (1).
// Rows past T read row T − 1 (so every load is in bounds) and are never stored; their probabilities are 0.

#define ATT_TC (ATT_D / 16)

inline float att_hmax(const float8 v) {
    const float4 a = fmax(v.lo, v.hi);
    const float2 b = fmax(a.lo, a.hi);
    return fmax(b.x, b.y);
}

// x0[r], x1[r] += Σ_c a_r[c] · panel[c][0…15] for the rows a0…a3 (pointers to ATT_D floats).
#define ATT_PANEL_TILE(a0, a1, a2, a3, panel, x0, x1) do { \
    for (int c_ = 0; c_ < ATT_D; ++c_) { \
        const float8 b0_ = vload8(0, (panel) + c_ * 16), b1_ = vload8(1, (panel) + c_ * 16); \
        float8 a_ = (float8)((a0)[c_]); x0[0] = fma(a_, b0_, x0[0]); x1[0] = fma(a_, b1_, x1[0]); \
        a_ = (float8)((a1)[c_]); x0[1] = fma(a_, b0_, x0[1]); x1[1] = fma(a_, b1_, x1[1]); \
        a_ = (float8)((a2)[c_]); x0[2] = fma(a_, b0_, x0[2]); x1[2] = fma(a_, b1_, x1[2]); \
        a_ = (float8)((a3)[c_]); x0[3] = fma(a_, b0_, x0[3]); x1[3] = fma(a_, b1_, x1[3]); \
    } } while (0)

// y0[r_], y1[r_] += Σ_{n_ = 0…15} w[wRow·16 + wCol] · rowAt(n_)[0…15], wRow and wCol being expressions in r_
// (the accumulator row, 0…3) and n_: (g·4 + r_, n_) takes four rows of the 16 × 16 tile w, (n_, g·4 + r_)
// four rows of its transpose, times 16 rows of 16 floats.
#define ATT_ROWS_TILE(w, wRow, wCol, rowAt, y0, y1) do { \
    for (int n_ = 0; n_ < 16; ++n_) { \
        __global const float* row_ = rowAt(n_); \
        const float8 b0_ = vload8(0, row_), b1_ = vload8(1, row_); \
        _Pragma("unroll") for (int r_ = 0; r_ < 4; ++r_) { \
            const float8 a_ = (float8)((w)[(wRow) * 16 + (wCol)]); \
            y0[r_] = fma(a_, b0_, y0[r_]); y1[r_] = fma(a_, b1_, y1[r_]); \
        } \
    } } while (0)

// Four rows of 16 floats, `stride` floats apart, to and from the accumulators y0, y1.
#define ATT_LOAD_ROWS(y0, y1, ptr, stride) do { _Pragma("unroll") for (int r_ = 0; r_ < 4; ++r_) { \
    y0[r_] = vload8(0, (ptr) + r_ * (stride)); y1[r_] = vload8(1, (ptr) + r_ * (stride)); } } while (0)
#define ATT_STORE_ROWS(y0, y1, ptr, stride) do { _Pragma("unroll") for (int r_ = 0; r_ < 4; ++r_) { \
    vstore8(y0[r_], 0, (ptr) + r_ * (stride)); vstore8(y1[r_], 1, (ptr) + r_ * (stride)); } } while (0)

__kernel void attention_pack_panels(__global const float* x, __global float* pt, const int off, const int t,
                                    const int heads, ATT_LAYOUT) {
    const int b = get_global_id(0), z = get_global_id(1);
    const int blocks = (t + 15) / 16;
    if (b >= blocks) return;
    __global float* out = pt + ((size_t)z * blocks + b) * (ATT_D * 16);
    for (int l = 0; l < 16; ++l) {
        const int j = b * 16 + l;
        if (j < t) {
            __global const float* row = x + off + ATT_IN(z, j);
            for (int c = 0; c < ATT_D; ++c) out[c * 16 + l] = row[c];
        } else {
            for (int c = 0; c < ATT_D; ++c) out[c * 16 + l] = 0.0f;
        }
    }
}

__kernel void attention_forward_tiled(__global const float* q, __global const float* kp, __global const float* v,
                                      __global float* o, __global float* lse, const int t, const int heads, const float scale,
                                      const int causal, const int hasLens, __global const int* lens, ATT_LAYOUT) {
    const int qb = get_global_id(0), z = get_global_id(1);
    const int i0 = qb * 16;
    if (i0 >= t) return;
    const int blocks = (t + 15) / 16;
    const int groupLimit = attention_limit(min(t - 1, i0 + 15), t, causal, hasLens, lens, z, heads);
    __global const float* qz = q + qOff + ATT_IN(z, 0);
    __global const float* vz = v + vOff + ATT_IN(z, 0);
    float acc[16 * ATT_D];  // the block's output rows
    float pb[16 * 16];      // the tile's probabilities
    float m[16], l[16], corr[16];
    int lim[16];
    for (int r = 0; r < 16; ++r) {
        lim[r] = i0 + r < t ? attention_limit(i0 + r, t, causal, hasLens, lens, z, heads) : 0;
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (int e = 0; e < 16 * ATT_D; e += 8) vstore8((float8)(0.0f), 0, acc + e);
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    for (int kb = 0; kb * 16 < groupLimit; ++kb) {
        const int j0 = kb * 16;
        __global const float* panel = kp + ((size_t)z * blocks + kb) * (ATT_D * 16);
        for (int g = 0; g < 4; ++g) {
            const int r0 = g * 4;
            float8 x0[4], x1[4];
            for (int r = 0; r < 4; ++r) x0[r] = x1[r] = (float8)(0.0f);
            ATT_PANEL_TILE(qz + (size_t)min(i0 + r0, t - 1) * inT, qz + (size_t)min(i0 + r0 + 1, t - 1) * inT,
                           qz + (size_t)min(i0 + r0 + 2, t - 1) * inT, qz + (size_t)min(i0 + r0 + 3, t - 1) * inT,
                           panel, x0, x1);
            #pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int row = r0 + r;
                const int8 cut = (int8)(lim[row] - j0);
                const float8 s0 = select((float8)(-INFINITY), x0[r] * scale, lane < cut);
                const float8 s1 = select((float8)(-INFINITY), x1[r] * scale, lane + 8 < cut);
                const float mNew = fmax(m[row], att_hmax(fmax(s0, s1)));
                // A row that has seen no key yet (m = −∞ still) keeps p = 0 and l = 0.
                float c = 1.0f;
                float8 p0 = (float8)(0.0f), p1 = (float8)(0.0f);
                if (mNew > -INFINITY) {
                    c = exp(m[row] - mNew);
                    p0 = exp(s0 - mNew);
                    p1 = exp(s1 - mNew);
                }
                l[row] = fma(l[row], c, att_hsum(p0 + p1));
                m[row] = mNew;
                corr[row] = c;
                vstore8(p0, 0, pb + row * 16);
                vstore8(p1, 1, pb + row * 16);
            }
        }
        // O = O·correction + P·V over the block's 16 keys.
        #define ATT_V_ROW(n) (vz + (size_t)min(j0 + (n), t - 1) * inT + cc * 16)
        for (int g = 0; g < 4; ++g) {
            for (int cc = 0; cc < ATT_TC; ++cc) {
                float8 y0[4], y1[4];
                float* rows = acc + g * 4 * ATT_D + cc * 16;
                ATT_LOAD_ROWS(y0, y1, rows, ATT_D);
                #pragma unroll
                for (int r = 0; r < 4; ++r) {
                    y0[r] *= corr[g * 4 + r];
                    y1[r] *= corr[g * 4 + r];
                }
                ATT_ROWS_TILE(pb, g * 4 + r_, n_, ATT_V_ROW, y0, y1);
                ATT_STORE_ROWS(y0, y1, rows, ATT_D);
            }
        }
        #undef ATT_V_ROW
    }
    for (int r = 0; r < 16 && i0 + r < t; ++r) {
        const float inverse = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        __global float* out = o + ATT_OUT(z, i0 + r);
        for (int c = 0; c < ATT_D; c += 8) vstore8(vload8(0, acc + r * ATT_D + c) * inverse, 0, out + c);
        lse[(size_t)z * t + i0 + r] = l[r] > 0.0f ? m[r] + log(l[r]) : INFINITY;
    }
}

__kernel void attention_backward_tiled(__global const float* q, __global const float* k, __global const float* kp,
                                       __global const float* vp, __global const float* dout, __global const float* lse,
                                       __global const float* delta, __global float* dq, __global float* dk, __global float* dv,
                                       const int t, const int heads, const float scale, const int causal, const int hasLens,
                                       __global const int* lens, ATT_LAYOUT) {
    const int z = get_global_id(0);
    const int blocks = (t + 15) / 16;
    const int keys = hasLens ? min(t, lens[z / heads]) : t;
    __global const float* qz = q + qOff + ATT_IN(z, 0);
    __global const float* kz = k + kOff + ATT_IN(z, 0);
    __global const float* doz = dout + ATT_OUT(z, 0);
    __global float* dqz = dq + qOff + ATT_IN(z, 0);
    __global float* dkz = dk + kOff + ATT_IN(z, 0);
    __global float* dvz = dv + vOff + ATT_IN(z, 0);
    __global const float* lz = lse + (size_t)z * t;
    __global const float* dz = delta + (size_t)z * t;
    for (int i = 0; i < t; ++i)
        for (int c = 0; c < ATT_D; c += 8) vstore8((float8)(0.0f), 0, dqz + (size_t)i * inT + c);
    float dka[16 * ATT_D], dva[16 * ATT_D];  // the key block's dK and dV rows
    float pb[16 * 16], db[16 * 16];          // the tile's P and scale·dS, [query][key]
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    for (int kb = 0; kb < blocks; ++kb) {
        const int j0 = kb * 16;
        for (int e = 0; e < 16 * ATT_D; e += 8) {
            vstore8((float8)(0.0f), 0, dka + e);
            vstore8((float8)(0.0f), 0, dva + e);
        }
        __global const float* kpanel = kp + ((size_t)z * blocks + kb) * (ATT_D * 16);
        __global const float* vpanel = vp + ((size_t)z * blocks + kb) * (ATT_D * 16);
        // Keys past the valid ones get zero gradients; under the causal mask only queries i ≥ j0 see the block.
        for (int i0 = causal ? j0 : 0; i0 < t && j0 < keys; i0 += 16) {
            for (int g = 0; g < 4; ++g) {
                const int r0 = i0 + g * 4;
                float8 x0[4], x1[4], y0[4], y1[4];
                for (int r = 0; r < 4; ++r) x0[r] = x1[r] = y0[r] = y1[r] = (float8)(0.0f);
                ATT_PANEL_TILE(qz + (size_t)min(r0, t - 1) * inT, qz + (size_t)min(r0 + 1, t - 1) * inT,
                               qz + (size_t)min(r0 + 2, t - 1) * inT, qz + (size_t)min(r0 + 3, t - 1) * inT,
                               kpanel, x0, x1);
                ATT_PANEL_TILE(doz + (size_t)min(r0, t - 1) * outT, doz + (size_t)min(r0 + 1, t - 1) * outT,
                               doz + (size_t)min(r0 + 2, t - 1) * outT, doz + (size_t)min(r0 + 3, t - 1) * outT,
                               vpanel, y0, y1);
                #pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int i = r0 + r, row = g * 4 + r;
                    const int live = i < t;
                    const float li = live ? lz[i] : INFINITY, di = live ? dz[i] : 0.0f;
                    const int8 cut = (int8)((live ? attention_limit(i, t, causal, hasLens, lens, z, heads) : 0) - j0);
                    const float8 p0 = select((float8)(0.0f), exp(x0[r] * scale - li), lane < cut);
                    const float8 p1 = select((float8)(0.0f), exp(x1[r] * scale - li), lane + 8 < cut);
                    vstore8(p0, 0, pb + row * 16);
                    vstore8(p1, 1, pb + row * 16);
                    vstore8(p0 * (y0[r] - di) * scale, 0, db + row * 16);
                    vstore8(p1 * (y1[r] - di) * scale, 1, db + row * 16);
                }
            }
            // dV rows += Pᵀ·dO and dK rows += dSᵀ·Q, four keys × 16 columns at a time.
            #define ATT_DO_ROW(n) (doz + (size_t)min(i0 + (n), t - 1) * outT + cc * 16)
            #define ATT_Q_ROW(n) (qz + (size_t)min(i0 + (n), t - 1) * inT + cc * 16)
            for (int g = 0; g < 4; ++g) {
                for (int cc = 0; cc < ATT_TC; ++cc) {
                    float8 y0[4], y1[4];
                    float* dvr = dva + g * 4 * ATT_D + cc * 16;
                    float* dkr = dka + g * 4 * ATT_D + cc * 16;
                    ATT_LOAD_ROWS(y0, y1, dvr, ATT_D);
                    ATT_ROWS_TILE(pb, n_, g * 4 + r_, ATT_DO_ROW, y0, y1);
                    ATT_STORE_ROWS(y0, y1, dvr, ATT_D);
                    ATT_LOAD_ROWS(y0, y1, dkr, ATT_D);
                    ATT_ROWS_TILE(db, n_, g * 4 + r_, ATT_Q_ROW, y0, y1);
                    ATT_STORE_ROWS(y0, y1, dkr, ATT_D);
                }
            }
            #undef ATT_DO_ROW
            #undef ATT_Q_ROW
            // dQ rows += dS·K over the block's keys.
            #define ATT_K_ROW(n) (kz + (size_t)min(j0 + (n), t - 1) * inT + cc * 16)
            for (int g = 0; g < 4; ++g) {
                for (int cc = 0; cc < ATT_TC; ++cc) {
                    float8 y0[4], y1[4];
                    #pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        __global const float* row = dqz + (size_t)min(i0 + g * 4 + r, t - 1) * inT + cc * 16;
                        y0[r] = vload8(0, row);
                        y1[r] = vload8(1, row);
                    }
                    ATT_ROWS_TILE(db, g * 4 + r_, n_, ATT_K_ROW, y0, y1);
                    #pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        if (i0 + g * 4 + r < t) {
                            __global float* row = dqz + (size_t)(i0 + g * 4 + r) * inT + cc * 16;
                            vstore8(y0[r], 0, row);
                            vstore8(y1[r], 1, row);
                        }
                    }
                }
            }
            #undef ATT_K_ROW
        }
        for (int jj = 0; jj < 16 && j0 + jj < t; ++jj) {
            __global float* kr = dkz + (size_t)(j0 + jj) * inT;
            __global float* vr = dvz + (size_t)(j0 + jj) * inT;
            for (int c = 0; c < ATT_D; c += 8) {
                vstore8(vload8(0, dka + jj * ATT_D + c), 0, kr + c);
                vstore8(vload8(0, dva + jj * ATT_D + c), 0, vr + c);
            }
        }
    }
}
