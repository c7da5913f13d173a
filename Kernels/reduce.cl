// reduce.cl — sum and max along one axis or over every element, and their backwards.
//
// Layout: the input, row-major, is seen as [outer, len, inner] with the reduced axis in the middle;
// the output is [outer, inner]. A reduction over every element is outer = inner = 1, len = n.
//
// Kernels (1-D, any local size; every work-item guards its index):
//   reduce_axis_f32(x, y, argmax, outer, len, inner, op, scale)
//                      one work-item per output element: op 0 y = scale · Σ_l x[o, l, i] (sum, or
//                      mean with scale = 1/len); op 1 y = max_l x[o, l, i] and argmax = its first l
//                      (ties keep the first; NaN wins, the first NaN).
//   sum_blocks_f32(x, y, n, block)
//                      y[b] = Σ x[b·block ..< min((b+1)·block, n)]: one level of the all-elements sum.
//                      The host applies it to the partials again until one value is left (no atomics).
//   max_blocks_f32(x, xi, y, yi, n, block, indexed)
//                      y[b] = max of the block and yi[b] its position: the index within x, or with
//                      indexed = 1 the carried index xi[k] (levels after the first). Ties keep the
//                      smallest index, NaN wins, as in reduce_axis_f32.
//   reduce_axis_backward_f32(dy, argmax, dx, outer, len, inner, op, scale)
//                      one work-item per input element: op 0 dx[o, l, i] = scale · dy[o, i];
//                      op 1 dx[o, l, i] = dy[o, i] where l = argmax[o, i], else 0. Overwrites dx.
// Accumulation is float with four partial sums per work-item. Remainders are written as
// a − (a / b)·b (Oclgrind cannot check the `freeze` a paired `%` becomes). No tunables: the host
// picks the block so the all-elements sum takes about √n work-items per level.

inline bool max_takes(const float v, const float best) {
    return v > best || (isnan(v) && !isnan(best));
}

__kernel void reduce_axis_f32(__global const float *x, __global float *y, __global int *argmax, const int outer,
                              const int len, const int inner, const int op, const float scale) {
    const int t = (int)get_global_id(0);
    if (t >= outer * inner) return;
    const int o = t / inner, i = t - o * inner;
    const __global float *src = x + (size_t)o * len * inner + i;
    if (op == 0) {
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        int l = 0;
        for (; l + 3 < len; l += 4) {
            s0 += src[(size_t)l * inner];
            s1 += src[(size_t)(l + 1) * inner];
            s2 += src[(size_t)(l + 2) * inner];
            s3 += src[(size_t)(l + 3) * inner];
        }
        for (; l < len; ++l) s0 += src[(size_t)l * inner];
        y[t] = ((s0 + s1) + (s2 + s3)) * scale;
    } else {
        float best = src[0];
        int index = 0;
        for (int l = 1; l < len; ++l) {
            const float v = src[(size_t)l * inner];
            if (max_takes(v, best)) { best = v; index = l; }
        }
        y[t] = best;
        argmax[t] = index;
    }
}

__kernel void sum_blocks_f32(__global const float *x, __global float *y, const int n, const int block) {
    const int b = (int)get_global_id(0);
    const int start = b * block;
    if (start >= n) return;
    const int end = min(start + block, n);
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int k = start;
    for (; k + 3 < end; k += 4) { s0 += x[k]; s1 += x[k + 1]; s2 += x[k + 2]; s3 += x[k + 3]; }
    for (; k < end; ++k) s0 += x[k];
    y[b] = (s0 + s1) + (s2 + s3);
}

__kernel void max_blocks_f32(__global const float *x, __global const int *xi, __global float *y, __global int *yi,
                             const int n, const int block, const int indexed) {
    const int b = (int)get_global_id(0);
    const int start = b * block;
    if (start >= n) return;
    const int end = min(start + block, n);
    float best = x[start];
    int index = indexed ? xi[start] : start;
    for (int k = start + 1; k < end; ++k) {
        const float v = x[k];
        if (max_takes(v, best)) { best = v; index = indexed ? xi[k] : k; }
    }
    y[b] = best;
    yi[b] = index;
}

__kernel void reduce_axis_backward_f32(__global const float *dy, __global const int *argmax, __global float *dx,
                                       const int outer, const int len, const int inner, const int op, const float scale) {
    const int e = (int)get_global_id(0);
    if (e >= outer * len * inner) return;
    const int row = len * inner;
    const int o = e / row, rest = e - o * row;
    const int l = rest / inner, i = rest - l * inner;
    const int t = o * inner + i;
    if (op == 0) dx[e] = dy[t] * scale;
    else dx[e] = argmax[t] == l ? dy[t] : 0.0f;
}
