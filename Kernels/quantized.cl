/* Integer inference for int8 quantization (the quantized family).
 *
 * Activations are uint8 with a zero point (real = scale · (q − z)), weights int8 symmetric per output
 * channel (real = scale[c] · q, q in −127…127), products accumulated in int32 with the bias quantized
 * to int32 at scale_x · scale_w[c], and the sum requantized to the output's uint8 in fixed point as
 * gemmlowp and TensorFlow Lite do: q_y = clamp(z_y + round(acc · M[c]), lo, 255) where the real
 * multiplier M[c] = scale_x · scale_w[c] / scale_y is held as an int32 Q31 mantissa and a power-of-two
 * exponent (MultiplyByQuantizedMultiplier). No float touches the integer path, so the results are
 * the same on every device and at every vector width. `lo` is 0, or z_y for a fused ReLU.
 */

/* round(a · b / 2³¹) with ties away from zero, saturating the one overflow (gemmlowp's
   SaturatingRoundingDoublingHighMul). */
inline int q_high_mul(const int a, const int b) {
    if (a == b && a == INT_MIN) return INT_MAX;
    const long ab = (long)a * (long)b;
    const long nudge = ab >= 0 ? (1L << 30) : (1L - (1L << 30));
    return (int)((ab + nudge) / (1L << 31));
}

/* x / 2^e rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT), 0 ≤ e ≤ 31. */
inline int q_divide_pot(const int x, const int e) {
    const int mask = (int)((1L << e) - 1);
    const int remainder = x & mask;
    const int threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* acc · M, M = multiplier · 2^(shift − 31) (TFLite's MultiplyByQuantizedMultiplier; a positive
   shift is applied before the multiply, saturating). */
inline int q_requantize(const int acc, const int multiplier, const int shift) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const long widened = (long)acc << left;
    const int x = (int)clamp(widened, (long)INT_MIN, (long)INT_MAX);
    return q_divide_pot(q_high_mul(x, multiplier), right);
}

/* q = clamp(rint(x · (1 / scale)) + z, 0, 255): float to uint8 (ties to even, as torch.quantize_per_tensor). */
__kernel void quantize_u8(__global const float *x, __global uchar *q, const float inv_scale, const int zero_point, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    q[i] = (uchar)clamp((int)rint(x[i] * inv_scale) + zero_point, 0, 255);
}

/* x = scale · (q − z). */
__kernel void dequantize_u8(__global const uchar *q, __global float *x, const float scale, const int zero_point, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    x[i] = scale * (float)((int)q[i] - zero_point);
}

/* The integer GEMM: rows of x [M, K] (uint8, zero point zx) times the columns of wt [K, N8] (the int8
   weights transposed, N padded to a multiple of 8 with zeros), plus bias [N8] (int32), requantized per
   column. 4 rows × 8 columns per work-item, accumulated as int8 vectors (outer products, as the float
   GEMM's register tiles), K taken 4 at a time. Output [M, N] row-major when P == 0; with P > 0 the
   rows are (image, pixel) pairs of a convolution and the output is NCHW: y[((m / P) · N + n) · P + m % P]. */
/* The int32 sums of a 4-row × 8-column tile: rows m0… of x [M, K] (uint8, zero point zx) times columns
   n0… of wt [K, N8], starting from `start` (the int32 bias, or zero). */
inline void q_tile(__global const uchar *x, __global const char *wt, const int M, const int N8, const int K, const int zx,
                   const int m0, const int n0, const int8 start, int8 *acc) {
    /* Rows past the end repeat the last; they are never written. */
    const __global uchar *x0 = x + (size_t)m0 * K;
    const __global uchar *x1 = x + (size_t)min(m0 + 1, M - 1) * K;
    const __global uchar *x2 = x + (size_t)min(m0 + 2, M - 1) * K;
    const __global uchar *x3 = x + (size_t)min(m0 + 3, M - 1) * K;
    const __global char *w = wt + n0;
    int8 acc0 = start, acc1 = start, acc2 = start, acc3 = start;
    const int4 z = (int4)zx;
    int k = 0;
    for (; k + 4 <= K; k += 4) {
        const int8 w0 = convert_int8(vload8(0, w + (size_t)k * N8)), w1 = convert_int8(vload8(0, w + (size_t)(k + 1) * N8));
        const int8 w2 = convert_int8(vload8(0, w + (size_t)(k + 2) * N8)), w3 = convert_int8(vload8(0, w + (size_t)(k + 3) * N8));
        int4 a = convert_int4(vload4(0, x0 + k)) - z;
        acc0 += a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3;
        a = convert_int4(vload4(0, x1 + k)) - z;
        acc1 += a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3;
        a = convert_int4(vload4(0, x2 + k)) - z;
        acc2 += a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3;
        a = convert_int4(vload4(0, x3 + k)) - z;
        acc3 += a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3;
    }
    for (; k < K; ++k) {
        const int8 wk = convert_int8(vload8(0, w + (size_t)k * N8));
        acc0 += ((int)x0[k] - zx) * wk;
        acc1 += ((int)x1[k] - zx) * wk;
        acc2 += ((int)x2[k] - zx) * wk;
        acc3 += ((int)x3[k] - zx) * wk;
    }
    acc[0] = acc0; acc[1] = acc1; acc[2] = acc2; acc[3] = acc3;
}

/* Where output (row m, column n) goes: [M, N] row-major when P == 0, else NCHW with P pixels per image. */
inline size_t q_at(const int m, const int n, const int N, const int P) {
    if (P == 0) return (size_t)m * N + n;
    /* The remainder by hand: a division and a remainder of the same operands become LLVM's `freeze`,
       which Oclgrind cannot run. */
    const int image = m / P;
    return ((size_t)image * N + n) * P + (m - image * P);
}

__kernel void qgemm_u8i8(__global const uchar *x, __global const char *wt, __global const int *bias,
                         __global const int *multiplier, __global const int *shift, __global uchar *y,
                         const int M, const int N, const int N8, const int K, const int P, const int zx, const int zy, const int lo) {
    const int n0 = (int)get_global_id(0) * 8, m0 = (int)get_global_id(1) * 4;
    if (n0 >= N || m0 >= M) return;
    int8 acc[4];
    q_tile(x, wt, M, N8, K, zx, m0, n0, vload8(0, bias + n0), acc);
    const int8 mult = vload8(0, multiplier + n0), sh = vload8(0, shift + n0);
    int lanes[8];
    for (int r = 0; r < 4; ++r) {
        const int m = m0 + r;
        if (m >= M) break;
        /* Lane by lane: an 8-lane version with long8 arithmetic gave PoCL's results but not Oclgrind's. */
        int ms[8], ss[8];
        vstore8(acc[r], 0, lanes); vstore8(mult, 0, ms); vstore8(sh, 0, ss);
        for (int j = 0; j < 8 && n0 + j < N; ++j) y[q_at(m, n0 + j, N, P)] = (uchar)clamp(q_requantize(lanes[j], ms[j], ss[j]) + zy, lo, 255);
    }
}

/* Dynamic quantization's GEMM: the same int32 sums, dequantized to float — y = sum · (sx · scale[n]) + bias[n]
   (scale: the weights' per-channel scales, sx the input's, the bias in float), a ReLU when `relu` — as
   PyTorch's dynamically quantized Linear. */
__kernel void qgemm_u8i8_f32(__global const uchar *x, __global const char *wt, __global const float *scale,
                             __global const float *bias, __global float *y,
                             const int M, const int N, const int N8, const int K, const int P, const int zx, const float sx, const int relu) {
    const int n0 = (int)get_global_id(0) * 8, m0 = (int)get_global_id(1) * 4;
    if (n0 >= N || m0 >= M) return;
    int8 acc[4];
    q_tile(x, wt, M, N8, K, zx, m0, n0, (int8)0, acc);
    const float8 s = sx * vload8(0, scale + n0), b = vload8(0, bias + n0);
    float lanes[8];
    for (int r = 0; r < 4; ++r) {
        const int m = m0 + r;
        if (m >= M) break;
        float8 v = convert_float8(acc[r]) * s + b;
        if (relu) v = fmax(v, (float8)0.0f);
        vstore8(v, 0, lanes);
        for (int j = 0; j < 8 && n0 + j < N; ++j) y[q_at(m, n0 + j, N, P)] = lanes[j];
    }
}

/* The columns of a convolution: cols [B · OH · OW, C · KH · KW] from x [B, C, H, W] (uint8), one row
   (output pixel) per work-item, written in order; padded positions take the zero point (a real zero,
   which adds nothing). */
__kernel void qim2col_u8(__global const uchar *x, __global uchar *cols, const int C, const int H, const int W, const int OH, const int OW,
                         const int KH, const int KW, const int SH, const int SW, const int PH, const int PW, const int DH, const int DW,
                         const int zx, const int rows) {
    const int m = (int)get_global_id(0);
    if (m >= rows) return;
    /* Remainders by hand (see q_at). */
    const int b = m / (OH * OW), p = m - b * (OH * OW);
    const int oy = p / OW, ox = p - oy * OW;
    const int y0 = oy * SH - PH, x0 = ox * SW - PW;
    __global uchar *out = cols + (size_t)m * C * KH * KW;
    const __global uchar *xb = x + (size_t)b * C * H * W;
    for (int c = 0; c < C; ++c) {
        for (int ky = 0; ky < KH; ++ky) {
            const int iy = y0 + ky * DH;
            for (int kx = 0; kx < KW; ++kx) {
                const int ix = x0 + kx * DW;
                *out++ = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xb[((size_t)c * H + iy) * W + ix] : (uchar)zx;
            }
        }
    }
}

/* 2×2-style max pooling of uint8 values (monotone in the real value, so the quantization passes through). */
__kernel void qmaxpool2d_u8(__global const uchar *x, __global uchar *y, const int H, const int W, const int OH, const int OW,
                            const int K, const int S, const int planes) {
    const int p = (int)get_global_id(0), c = (int)get_global_id(1);
    if (p >= OH * OW || c >= planes) return;
    const int oy = p / OW, ox = p - oy * OW;
    const __global uchar *xc = x + (size_t)c * H * W;
    uchar best = 0;
    for (int ky = 0; ky < K; ++ky) {
        for (int kx = 0; kx < K; ++kx) {
            const int iy = oy * S + ky, ix = ox * S + kx;
            if (iy < H && ix < W) best = max(best, xc[(size_t)iy * W + ix]);
        }
    }
    y[(size_t)c * OH * OW + p] = best;
}

/* y = a + b in integers (TensorFlow Lite's uint8 Add): each input, less its zero point, shifted left
   20 bits and scaled by its multiplier s_in / (2 · max(s_a, s_b)), the sum scaled by
   2 · max(s_a, s_b) / (2²⁰ · s_y) into the output's quantization; `lo` is 0, or z_y for a fused ReLU. */
__kernel void qadd_u8(__global const uchar *a, __global const uchar *b, __global uchar *y,
                      const int za, const int ma, const int sa, const int zb, const int mb, const int sb,
                      const int zy, const int my, const int sy, const int lo, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const int xa = q_requantize(((int)a[i] - za) * (1 << 20), ma, sa);
    const int xb = q_requantize(((int)b[i] - zb) * (1 << 20), mb, sb);
    y[i] = (uchar)clamp(q_requantize(xa + xb, my, sy) + zy, lo, 255);
}

/* ReLU of uint8 values: max(q, z) (the real zero is exact, so the quantization passes through). */
__kernel void qrelu_u8(__global const uchar *x, __global uchar *y, const int z, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    y[i] = max(x[i], (uchar)z);
}
