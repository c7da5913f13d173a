// layernorm.cl — layer normalization over the last axis with an elementwise affine, and its backward.
//
// Layout (row-major): x, y, dy, dx [rows, n]; weight γ, bias β, dγ, dβ [n]; mean, rstd [rows], written
// by the forward and read by the backward. Per row, mean μ and biased variance σ² = mean (x − μ)² in
// two passes (so a large mean does not cancel), rstd = 1 / √(σ² + eps), x̂ = (x − μ)·rstd and
// y = x̂·γ + β. `affine` flags: bit 0 γ is present, bit 1 β is present; an absent one counts as 1 (γ)
// or 0 (β) and its buffer is never read.
//
// Kernels. The forward and dx come in two shapes with the same results; LayerNormFamily (Swift) picks one:
//   layernorm_forward_rows     CPU-shaped: one work-item per row (1-D global ≥ rows, any local size), no
//                              barriers; PoCL vectorizes across rows.
//   layernorm_forward_group    GPU-shaped: one work-group of LN_GROUP work-items per row (global
//                              rows·LN_GROUP, local LN_GROUP): strided loads, sums by a local-memory tree.
//                              No row guard: with a `return` before the barriers, even one never taken,
//                              PoCL's build of these kernels corrupted the host heap. The global size
//                              is exactly rows·LN_GROUP, so every group has a row.
//   layernorm_backward_rows    dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ, from the saved mean
//   layernorm_backward_group   and rstd; one work-item / one work-group per row as above.
//   layernorm_param_partials   dγ = Σ_rows dy·x̂ and dβ = Σ_rows dy, first pass: work-item (j, b) of the 2-D
//                              global (≥ n, blocks) sums rows b·block ..< min((b+1)·block, rows) of column j
//                              into partial_w[b·n + j] and partial_b[b·n + j].
//   layernorm_param_sums       second pass: dγ[j] = Σ_b partial_w[b·n + j], dβ[j] likewise (one work-item
//                              per column, 1-D global ≥ n). The host picks block ≈ √rows, so each pass
//                              does about √rows additions per work-item.
// Every output element has exactly one writer (no atomics) and is overwritten, never accumulated.
// Tunables: LN_GROUP (work-group size of the _group kernels, a power of two; default 128).

#ifndef LN_GROUP
#define LN_GROUP 128
#endif

#if (LN_GROUP & (LN_GROUP - 1)) != 0
#error "LN_GROUP must be a power of two"
#endif

// The sum of v over the work-group (every work-item gets it). scratch has LN_GROUP floats; it may be
// reused as soon as this returns.
inline float group_sum(const float v, __local float *scratch) {
    const int lid = (int)get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LN_GROUP / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

__kernel void layernorm_forward_rows(__global const float *x, __global const float *weight, __global const float *bias,
                                     __global float *y, __global float *mean, __global float *rstd, const int rows,
                                     const int n, const float eps, const int affine) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const __global float *xr = x + (size_t)r * n;
    __global float *yr = y + (size_t)r * n;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int j = 0;
    for (; j + 3 < n; j += 4) { s0 += xr[j]; s1 += xr[j + 1]; s2 += xr[j + 2]; s3 += xr[j + 3]; }
    for (; j < n; ++j) s0 += xr[j];
    const float mu = ((s0 + s1) + (s2 + s3)) / (float)n;
    float q0 = 0.0f, q1 = 0.0f;
    for (j = 0; j + 1 < n; j += 2) {
        const float d0 = xr[j] - mu, d1 = xr[j + 1] - mu;
        q0 = fma(d0, d0, q0);
        q1 = fma(d1, d1, q1);
    }
    if (j < n) { const float d = xr[j] - mu; q0 = fma(d, d, q0); }
    const float rs = rsqrt((q0 + q1) / (float)n + eps);
    for (j = 0; j < n; ++j) {
        float v = (xr[j] - mu) * rs;
        if (affine & 1) v *= weight[j];
        if (affine & 2) v += bias[j];
        yr[j] = v;
    }
    mean[r] = mu;
    rstd[r] = rs;
}

__kernel __attribute__((reqd_work_group_size(LN_GROUP, 1, 1)))
void layernorm_forward_group(__global const float *x, __global const float *weight, __global const float *bias,
                             __global float *y, __global float *mean, __global float *rstd, const int rows, const int n,
                             const float eps, const int affine) {
    __local float scratch[LN_GROUP];
    const int r = (int)get_group_id(0), lid = (int)get_local_id(0);
    const __global float *xr = x + (size_t)r * n;
    __global float *yr = y + (size_t)r * n;
    float s = 0.0f;
    for (int j = lid; j < n; j += LN_GROUP) s += xr[j];
    const float mu = group_sum(s, scratch) / (float)n;
    float q = 0.0f;
    for (int j = lid; j < n; j += LN_GROUP) { const float d = xr[j] - mu; q = fma(d, d, q); }
    const float rs = rsqrt(group_sum(q, scratch) / (float)n + eps);
    for (int j = lid; j < n; j += LN_GROUP) {
        float v = (xr[j] - mu) * rs;
        if (affine & 1) v *= weight[j];
        if (affine & 2) v += bias[j];
        yr[j] = v;
    }
    if (lid == 0) {
        mean[r] = mu;
        rstd[r] = rs;
    }
}

__kernel void layernorm_backward_rows(__global const float *x, __global const float *weight, __global const float *mean,
                                      __global const float *rstd, __global const float *dy, __global float *dx,
                                      const int rows, const int n, const int affine) {
    const int r = (int)get_global_id(0);
    if (r >= rows) return;
    const size_t o = (size_t)r * n;
    const float mu = mean[r], rs = rstd[r];
    float sg0 = 0.0f, sg1 = 0.0f, sgx0 = 0.0f, sgx1 = 0.0f;
    int j = 0;
    for (; j + 1 < n; j += 2) {
        const float g0 = (affine & 1) ? dy[o + j] * weight[j] : dy[o + j];
        const float g1 = (affine & 1) ? dy[o + j + 1] * weight[j + 1] : dy[o + j + 1];
        sg0 += g0;
        sg1 += g1;
        sgx0 = fma(g0, (x[o + j] - mu) * rs, sgx0);
        sgx1 = fma(g1, (x[o + j + 1] - mu) * rs, sgx1);
    }
    if (j < n) {
        const float g = (affine & 1) ? dy[o + j] * weight[j] : dy[o + j];
        sg0 += g;
        sgx0 = fma(g, (x[o + j] - mu) * rs, sgx0);
    }
    const float mg = (sg0 + sg1) / (float)n, mgx = (sgx0 + sgx1) / (float)n;
    for (j = 0; j < n; ++j) {
        const float g = (affine & 1) ? dy[o + j] * weight[j] : dy[o + j];
        const float xhat = (x[o + j] - mu) * rs;
        dx[o + j] = rs * (g - mg - xhat * mgx);
    }
}

__kernel __attribute__((reqd_work_group_size(LN_GROUP, 1, 1)))
void layernorm_backward_group(__global const float *x, __global const float *weight, __global const float *mean,
                              __global const float *rstd, __global const float *dy, __global float *dx, const int rows,
                              const int n, const int affine) {
    __local float scratch[LN_GROUP];
    const int r = (int)get_group_id(0), lid = (int)get_local_id(0);
    const size_t o = (size_t)r * n;
    const float mu = mean[r], rs = rstd[r];
    float sg = 0.0f, sgx = 0.0f;
    for (int j = lid; j < n; j += LN_GROUP) {
        const float g = (affine & 1) ? dy[o + j] * weight[j] : dy[o + j];
        sg += g;
        sgx = fma(g, (x[o + j] - mu) * rs, sgx);
    }
    const float mg = group_sum(sg, scratch) / (float)n;
    const float mgx = group_sum(sgx, scratch) / (float)n;
    for (int j = lid; j < n; j += LN_GROUP) {
        const float g = (affine & 1) ? dy[o + j] * weight[j] : dy[o + j];
        const float xhat = (x[o + j] - mu) * rs;
        dx[o + j] = rs * (g - mg - xhat * mgx);
    }
}

__kernel void layernorm_param_partials(__global const float *x, __global const float *mean, __global const float *rstd,
                                       __global const float *dy, __global float *partial_w, __global float *partial_b,
                                       const int rows, const int n, const int block) {
    const int j = (int)get_global_id(0), b = (int)get_global_id(1);
    const int start = b * block;
    if (j >= n || start >= rows) return;
    const int end = min(start + block, rows);
    float sw = 0.0f, sb = 0.0f;
    for (int r = start; r < end; ++r) {
        const size_t i = (size_t)r * n + j;
        const float d = dy[i];
        sw = fma(d, (x[i] - mean[r]) * rstd[r], sw);
        sb += d;
    }
    partial_w[(size_t)b * n + j] = sw;
    partial_b[(size_t)b * n + j] = sb;
}

__kernel void layernorm_param_sums(__global const float *partial_w, __global const float *partial_b, __global float *dweight,
                                   __global float *dbias, const int n, const int blocks) {
    const int j = (int)get_global_id(0);
    if (j >= n) return;
    float sw = 0.0f, sb = 0.0f;
    for (int b = 0; b < blocks; ++b) {
        sw += partial_w[(size_t)b * n + j];
        sb += partial_b[(size_t)b * n + j];
    }
    dweight[j] = sw;
    dbias[j] = sb;
}
