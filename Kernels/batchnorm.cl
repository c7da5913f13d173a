/* Batch normalization in training (PyTorch's BatchNorm1d/2d on the batch's statistics) over x viewed
 * as [N, C, S]: per-channel mean and biased variance over the N · S values of each channel, each
 * from partial sums over one (example, channel) plane and then over the N planes (two passes: the
 * sum, then the centered squares), y = (x − mean[c]) · rstd[c] · weight[c] + bias[c], and the
 * backward through the statistics as PyTorch's:
 *   dβ = Σ dy,  dγ = Σ dy · x̂,  dx = weight · rstd · (dy − dβ / M − x̂ · dγ / M),  x̂ = (x − mean) · rstd,
 * M = N · S. No host round trip: the statistics stay on the device.
 */

/* partial[c · N + n] = Σ_s x[n, c, s] (squares == 0), or Σ_s (x[n, c, s] − mean[c])² (squares == 1). */
__kernel void bn_plane_sums(__global const float *x, __global const float *mean, __global float *partial,
                            const int N, const int C, const int S, const int squares) {
    const int n = (int)get_global_id(0), c = (int)get_global_id(1);
    if (n >= N || c >= C) return;
    const __global float *p = x + ((size_t)n * C + c) * S;
    float acc = 0.0f;
    if (squares) {
        const float m = mean[c];
        for (int s = 0; s < S; ++s) { const float d = p[s] - m; acc += d * d; }
    } else {
        for (int s = 0; s < S; ++s) acc += p[s];
    }
    partial[(size_t)c * N + n] = acc;
}

/* Stage 0: mean[c] = Σ_n partial / M. Stage 1 (partial holding centered squares): rstd[c] = 1/√(var + eps)
   with the biased variance, and unbiased[c] = var · M / (M − 1), what the running statistics take. */
__kernel void bn_channel_stats(__global const float *partial, __global float *mean, __global float *rstd, __global float *unbiased,
                               const int N, const int C, const float count, const float eps, const int stage) {
    const int c = (int)get_global_id(0);
    if (c >= C) return;
    const __global float *p = partial + (size_t)c * N;
    float acc = 0.0f;
    for (int n = 0; n < N; ++n) acc += p[n];
    if (stage == 0) {
        mean[c] = acc / count;
    } else {
        const float variance = acc / count;
        rstd[c] = 1.0f / sqrt(variance + eps);
        unbiased[c] = variance * (count / (count - 1.0f));
    }
}

/* y = (x − mean[c]) · rstd[c], times weight[c] (affine & 1), plus bias[c] (affine & 2); one row (n, c) of S per global row. */
__kernel void bn_normalize(__global const float *x, __global const float *mean, __global const float *rstd,
                           __global const float *weight, __global const float *bias, __global float *y,
                           const int rows, const int C, const int S, const int affine) {
    const int s = (int)get_global_id(0), row = (int)get_global_id(1);
    if (s >= S || row >= rows) return;
    const int c = row % C;
    const size_t i = (size_t)row * S + s;
    float v = (x[i] - mean[c]) * rstd[c];
    if (affine & 1) v *= weight[c];
    if (affine & 2) v += bias[c];
    y[i] = v;
}

/* Per (example, channel) plane: Σ_s dy and Σ_s dy · x̂, into partial_dy[c · N + n] and partial_dyx[c · N + n]. */
__kernel void bn_grad_partials(__global const float *x, __global const float *dy, __global const float *mean, __global const float *rstd,
                               __global float *partial_dy, __global float *partial_dyx, const int N, const int C, const int S) {
    const int n = (int)get_global_id(0), c = (int)get_global_id(1);
    if (n >= N || c >= C) return;
    const size_t base = ((size_t)n * C + c) * S;
    const float m = mean[c], r = rstd[c];
    float a = 0.0f, b = 0.0f;
    for (int s = 0; s < S; ++s) {
        const float g = dy[base + s];
        a += g;
        b += g * (x[base + s] - m) * r;
    }
    partial_dy[(size_t)c * N + n] = a;
    partial_dyx[(size_t)c * N + n] = b;
}

/* sum_dy[c] = Σ_n partial_dy (dβ), sum_dyx[c] = Σ_n partial_dyx (dγ). */
__kernel void bn_grad_sums(__global const float *partial_dy, __global const float *partial_dyx, __global float *sum_dy,
                           __global float *sum_dyx, const int N, const int C) {
    const int c = (int)get_global_id(0);
    if (c >= C) return;
    float a = 0.0f, b = 0.0f;
    for (int n = 0; n < N; ++n) { a += partial_dy[(size_t)c * N + n]; b += partial_dyx[(size_t)c * N + n]; }
    sum_dy[c] = a;
    sum_dyx[c] = b;
}

/* dx = weight[c] · rstd[c] · (dy − Σdy / M − x̂ · Σ(dy · x̂) / M) (weight 1 unless affine & 1). */
__kernel void bn_backward_input(__global const float *x, __global const float *dy, __global const float *mean, __global const float *rstd,
                                __global const float *weight, __global const float *sum_dy, __global const float *sum_dyx, __global float *dx,
                                const int rows, const int C, const int S, const float count, const int affine) {
    const int s = (int)get_global_id(0), row = (int)get_global_id(1);
    if (s >= S || row >= rows) return;
    const int c = row % C;
    const size_t i = (size_t)row * S + s;
    const float r = rstd[c], g = (affine & 1) ? weight[c] * r : r;
    const float xhat = (x[i] - mean[c]) * r;
    dx[i] = g * (dy[i] - sum_dy[c] / count - xhat * sum_dyx[c] / count);
}
