// layout.cl — data movement: axis permutation and strided row copies (concat, slice).
//
// Kernels (1-D unless said, one work-item per element written, any local size; every work-item guards its index):
//   permute_f32(x, y, n, d0..d5, s0..s5)
//       y is row-major with shape [d0, …, d5] (rank < 6 is padded with leading 1s); element
//       (c0, …, c5) of y is x[Σ ck · sk], where sk is x's stride along the axis that became axis k.
//       The inverse permutation is the same kernel with other arguments (the backward); a stride
//       of 0 repeats an axis of size 1 (Tensor.broadcast(to:)).
//   copy_rows_f32(src, dst, rows, width, srcStride, srcOffset, dstStride, dstOffset)
//       dst[r·dstStride + dstOffset + j] = src[r·srcStride + srcOffset + j] for r < rows, j < width.
//       Concat writes each input into its columns of [outer, Σ len·inner]; slice reads its columns;
//       their backwards do the reverse (slice's backward fills dx with zeros first). With COPY_ROWS_2D
//       defined it runs over a 2-D range (column, row) instead: no division per element.
// Remainders are written as a − (a / b)·b (Oclgrind cannot check the `freeze` a paired `%` becomes).
// No tunables: these kernels are memory-bound.

__kernel void permute_f32(__global const float *x, __global float *y, const int n,
                          const int d0, const int d1, const int d2, const int d3, const int d4, const int d5,
                          const int s0, const int s1, const int s2, const int s3, const int s4, const int s5) {
    const int e = (int)get_global_id(0);
    if (e >= n) return;
    int rest = e, q;
    size_t src = 0;
    q = rest / d5; src += (size_t)(rest - q * d5) * s5; rest = q;
    q = rest / d4; src += (size_t)(rest - q * d4) * s4; rest = q;
    q = rest / d3; src += (size_t)(rest - q * d3) * s3; rest = q;
    q = rest / d2; src += (size_t)(rest - q * d2) * s2; rest = q;
    q = rest / d1; src += (size_t)(rest - q * d1) * s1; rest = q;
    src += (size_t)rest * s0;
    (void)d0;
    y[e] = x[src];
}

__kernel void copy_rows_f32(__global const float *src, __global float *dst, const int rows, const int width,
                            const int srcStride, const int srcOffset, const int dstStride, const int dstOffset) {
#ifdef COPY_ROWS_2D
    const int j = (int)get_global_id(0), r = (int)get_global_id(1);
    if (j >= width || r >= rows) return;
#else
    const int e = (int)get_global_id(0);
    if (e >= rows * width) return;
    const int r = e / width, j = e - r * width;
#endif
    dst[(size_t)r * dstStride + dstOffset + j] = src[(size_t)r * srcStride + srcOffset + j];
}
