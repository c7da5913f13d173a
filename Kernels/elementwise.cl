// elementwise.cl — element-by-element kernels over float32 vectors.
//
// Kernels:
//   fill_f32(y, value, n)        y[i] = value                     for i < n
//   copy_f32(x, y, n)            y[i] = x[i]                      for i < n
//   axpy_f32(alpha, x, y, n)     y[i] = alpha * x[i] + y[i]       for i < n  (y accumulates, +=)
//   affine_f32(x, y, a, b, n)    y[i] = a·x[i] + b                (scale, add a scalar)
//   unary_f32(x, y, op, n)       y = op(x): 0 relu, 1 gelu (erf form), 2 gelu (tanh form), 3 tanh,
//                                4 sigmoid, 5 exp, 6 log, 7 sqrt, 8 erf, 9 reciprocal (1/x)
//   unary_backward_f32(x, y, dy, dx, op, n)   dx = dy · op'(x), from x or the saved output y
//   activation_f32(x, y, op, alpha, beta, n)   y = op(x) with parameters, PyTorch's definitions:
//                                0 leaky relu (x > 0 ? x : alpha·x), 1 elu (x > 0 ? x : alpha·(eˣ − 1)),
//                                2 silu (x·sigmoid(x)), 3 hardswish (x·min(max(x + 3, 0), 6) / 6),
//                                4 hardtanh (x clamped to [alpha, beta]), 5 hardsigmoid (alpha·x + beta
//                                clamped to [0, 1]); the parameters an op does not use are ignored
//   activation_backward_f32(x, dy, dx, op, alpha, beta, n)   dx = dy · op'(x), with PyTorch's side
//                                at the kinks: leaky relu and elu take the negative side at 0,
//                                hardswish the middle piece at ±3, hardtanh and hardsigmoid the flat
//                                pieces at their corners
//   binary_f32(a, b, out, op, n, inner, bcount)
//                                out[i] = a[i] op b[(i / inner) % bcount]: 0 add, 1 sub, 2 mul, 3 div,
//                                4 pow (a^b), and with the operands' roles swapped (b stays the one
//                                broadcast) 5 rsub (b − a), 6 rdiv (b / a), 7 rpow (b^a).
//                                Equal shapes: inner 1, bcount n. b over trailing dims: inner 1,
//                                bcount = b's size. b over a channel axis of [N, C, H, W]: inner H·W,
//                                bcount C.
//   binary_backward_a_f32(a, b, dy, da, op, n, inner, bcount)   da = dy · ∂(a op b)/∂a
//   binary_backward_b_f32(a, b, dy, db, op, n, inner, bcount)   db[j] = Σ over the elements that
//                                read b[j] of dy · ∂(a op b)/∂b; one work-item per j (no atomics)
//   fake_quantize_f32(x, y, scale, zero_point, qmin, qmax, n)
//                                y = (clamp(rint(x / scale) + zero_point, qmin, qmax) − zero_point) · scale:
//                                ONNX's QuantizeLinear then DequantizeLinear (round half to even,
//                                saturation), PyTorch's fake_quantize_per_tensor_affine
//   fake_quantize_backward_f32(x, dy, dx, scale, zero_point, qmin, qmax, n)
//                                dx = dy where the rounded value lies in [qmin, qmax], else 0 (the
//                                straight-through estimator of PyTorch's backward)
// Backward kernels overwrite their outputs.
//
// Layout: flat, contiguous float arrays; offsets are the caller's (pass sub-buffers).
// Launch, 1-D, any global size ≥ the work, any local size (or none): fill/copy/axpy take one
// work-item per PRISM_VEC elements; affine, unary, activation and binary forward and the backward of a take
// one work-item per element; binary_backward_b takes one work-item per element of b (bcount).
// Every kernel handles every n: each work-item guards its indices, so the last, partial vector
// and surplus work-items are harmless. The host guarantees n = outer · bcount · inner.
// Remainders are written as a − (a / b)·b (Oclgrind cannot check the `freeze` a paired `%` becomes).
// Tunables:
//   PRISM_VEC   elements per work-item (default 1). A CPU device (PoCL) vectorizes across work-items
//               itself, so 1 is right there; GPUs may prefer 4.

#ifndef PRISM_VEC
#define PRISM_VEC 1
#endif

__kernel void fill_f32(__global float *y, const float value, const int n) {
    const int base = (int)get_global_id(0) * PRISM_VEC;
    for (int k = 0; k < PRISM_VEC; ++k) {
        const int i = base + k;
        if (i < n) y[i] = value;
    }
}

__kernel void copy_f32(__global const float *x, __global float *y, const int n) {
    const int base = (int)get_global_id(0) * PRISM_VEC;
    for (int k = 0; k < PRISM_VEC; ++k) {
        const int i = base + k;
        if (i < n) y[i] = x[i];
    }
}

__kernel void axpy_f32(const float alpha, __global const float *x, __global float *y, const int n) {
    const int base = (int)get_global_id(0) * PRISM_VEC;
    for (int k = 0; k < PRISM_VEC; ++k) {
        const int i = base + k;
        if (i < n) y[i] = fma(alpha, x[i], y[i]);
    }
}

__kernel void affine_f32(__global const float *x, __global float *y, const float a, const float b, const int n) {
    const int i = (int)get_global_id(0);
    if (i < n) y[i] = fma(a, x[i], b);
}

// UNARY_OP, when defined (the host does), fixes the op code of unary_f32 / unary_backward_f32 at
// compile time, so the switch folds away and PoCL vectorizes the one remaining function.
#ifdef UNARY_OP
#define UNARY_CODE UNARY_OP
#else
#define UNARY_CODE op
#endif

#ifndef M_SQRT1_2_F
#define M_SQRT1_2_F 0.70710678118654752f
#endif
#define M_SQRT2_OVER_PI_F 0.79788456080286536f

// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, about two float32 ulps near ±1):
// a polynomial in 1/(1 + p|x|) and one exp, which PoCL vectorizes, where the built-in erf ran as a
// scalar library call per element (GELU took 10× the time of ReLU).
inline float prism_erf(const float x) {
    const float a = fabs(x);
    const float t = 1.0f / fma(0.3275911f, a, 1.0f);
    const float poly = t * fma(t, fma(t, fma(t, fma(t, 1.061405429f, -1.453152027f), 1.421413741f), -0.284496736f), 0.254829592f);
    const float r = 1.0f - poly * exp(-a * a);
    return copysign(r, x);
}

__kernel void unary_f32(__global const float *x, __global float *y, const int op, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
    float r;
    switch (UNARY_CODE) {
    case 0: r = v < 0.0f ? 0.0f : v; break;  // NaN passes through, as in PyTorch
    case 1: r = 0.5f * v * (1.0f + prism_erf(v * M_SQRT1_2_F)); break;
    case 2: r = 0.5f * v * (1.0f + tanh(M_SQRT2_OVER_PI_F * (v + 0.044715f * v * v * v))); break;
    case 3: r = tanh(v); break;
    case 4: r = 1.0f / (1.0f + exp(-v)); break;
    case 5: r = exp(v); break;
    case 6: r = log(v); break;
    case 7: r = sqrt(v); break;
    case 8: r = prism_erf(v); break;
    default: r = 1.0f / v; break;
    }
    y[i] = r;
}

__kernel void unary_backward_f32(__global const float *x, __global const float *y, __global const float *dy,
                                 __global float *dx, const int op, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float v = x[i], g = dy[i];
    float d;
    switch (UNARY_CODE) {
    case 0: d = v > 0.0f ? 1.0f : 0.0f; break;
    case 1: d = 0.5f * (1.0f + prism_erf(v * M_SQRT1_2_F)) + v * 0.39894228040143268f * exp(-0.5f * v * v); break;
    case 2: {
        const float u = M_SQRT2_OVER_PI_F * (v + 0.044715f * v * v * v);
        const float t = tanh(u);
        d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * M_SQRT2_OVER_PI_F * (1.0f + 3.0f * 0.044715f * v * v);
        break;
    }
    case 3: { const float t = y[i]; d = 1.0f - t * t; break; }
    case 4: { const float s = y[i]; d = s * (1.0f - s); break; }
    case 5: d = y[i]; break;
    case 6: d = 1.0f / v; break;
    case 7: d = 0.5f / y[i]; break;
    case 8: d = 1.12837916709551257f * exp(-v * v); break;  // 2/√π · e^(−x²)
    default: { const float r = y[i]; d = -r * r; break; }
    }
    dx[i] = g * d;
}

// eˣ − 1 without cancellation near 0: for |x| < ½ its Taylor series to x⁸ (truncation below 2·10⁻⁸
// relative), else exp(x) − 1 (no cancellation there). Both are plain arithmetic and exp, which PoCL
// vectorizes, where the built-in expm1 ran as a scalar library call per element (ELU took 20× the
// time of LeakyReLU; so did a form with log).
inline float prism_expm1(const float x) {
    const float series = x * fma(x, fma(x, fma(x, fma(x, fma(x, fma(x, fma(x, 2.48015873e-5f, 1.98412698e-4f), 1.38888889e-3f),
                                                                 8.33333333e-3f), 4.16666667e-2f), 1.66666667e-1f), 0.5f), 1.0f);
    return fabs(x) < 0.5f ? series : exp(x) - 1.0f;
}

// ACTIVATION_OP, when defined (the host does), fixes the op code of activation_f32 /
// activation_backward_f32 at compile time, as UNARY_OP does for unary_f32.
#ifdef ACTIVATION_OP
#define ACTIVATION_CODE ACTIVATION_OP
#else
#define ACTIVATION_CODE op
#endif

__kernel void activation_f32(__global const float *x, __global float *y, const int op, const float alpha, const float beta,
                             const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
    float r;
    switch (ACTIVATION_CODE) {
    case 0: r = v > 0.0f ? v : alpha * v; break;  // NaN passes through
    case 1: r = v > 0.0f ? v : alpha * prism_expm1(v); break;
    case 2: r = v / (1.0f + exp(-v)); break;
    case 3: r = v * fmin(fmax(v + 3.0f, 0.0f), 6.0f) / 6.0f; break;
    case 4: r = v < alpha ? alpha : (v > beta ? beta : v); break;  // NaN passes through
    default: { const float t = fma(alpha, v, beta); r = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t); break; }
    }
    y[i] = r;
}

__kernel void activation_backward_f32(__global const float *x, __global const float *dy, __global float *dx, const int op,
                                      const float alpha, const float beta, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float v = x[i], g = dy[i];
    float d;
    switch (ACTIVATION_CODE) {
    case 0: d = v > 0.0f ? 1.0f : alpha; break;
    case 1: d = v > 0.0f ? 1.0f : alpha * exp(v); break;
    case 2: { const float s = 1.0f / (1.0f + exp(-v)); d = s * (1.0f + v * (1.0f - s)); break; }
    case 3: d = v < -3.0f ? 0.0f : (v <= 3.0f ? v / 3.0f + 0.5f : 1.0f); break;
    case 4: d = v > alpha && v < beta ? 1.0f : 0.0f; break;
    default: { const float t = fma(alpha, v, beta); d = t > 0.0f && t < 1.0f ? alpha : 0.0f; break; }
    }
    dx[i] = g * d;
}

inline float binary_op(const float a, const float b, const int op) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return pow(a, b);
    case 5: return b - a;
    case 6: return b / a;
    default: return pow(b, a);
    }
}

// ∂(a^b)/∂a = b·a^(b−1) (0 where b = 0) and ∂(a^b)/∂b = a^b·ln a (0 where a = 0 and b ≥ 0), as PyTorch.
inline float pow_grad_base(const float a, const float b) { return b == 0.0f ? 0.0f : b * pow(a, b - 1.0f); }
inline float pow_grad_exponent(const float a, const float b) { return a == 0.0f && b >= 0.0f ? 0.0f : pow(a, b) * log(a); }

// BINARY_OP, when defined (the host does), fixes the op code of binary_f32 and binary_backward_a_f32
// at compile time, as UNARY_OP does for unary_f32; BINARY_SAME_SHAPE, when defined (the host does
// for operands of one shape: inner 1, bcount n), reads b[i] without the index arithmetic, whose
// integer divisions PoCL cannot vectorize.
#ifdef BINARY_OP
#define BINARY_CODE BINARY_OP
#else
#define BINARY_CODE op
#endif
// BINARY_RELU, when defined, applies max(·, 0) to binary_f32's result (NaN passes): a residual Add
// followed by a ReLU in one pass (the host records the ReLU's mask for the backward).
// BINARY_ROWS, when defined (the host does for b broadcast over inner > 1 elements, e.g. a
// per-channel operand of [N, C, H, W]), runs binary_f32 and binary_backward_a_f32 over a 3-D range
// (inner, bcount, outer), rounded up to whole work-groups along the first two: element (j, c, o)
// reads b[c], with no integer division (two per element otherwise, which PoCL does not vectorize).
#if defined(BINARY_ROWS)
#define BINARY_POSITION(i, bi)                                                                   \
    const int j_ = (int)get_global_id(0), bi = (int)get_global_id(1), o_ = (int)get_global_id(2); \
    if (j_ >= inner || bi >= bcount) return;                                                     \
    const int i = (o_ * bcount + bi) * inner + j_
#elif defined(BINARY_SAME_SHAPE)
#define BINARY_POSITION(i, bi)                                                            \
    const int i = (int)get_global_id(0);                                                  \
    if (i >= n) return;                                                                   \
    const int bi = i
#else
#define BINARY_POSITION(i, bi)                                                            \
    const int i = (int)get_global_id(0);                                                  \
    if (i >= n) return;                                                                   \
    const int bi = i / inner - (i / inner / bcount) * bcount
#endif

__kernel void binary_f32(__global const float *a, __global const float *b, __global float *out, const int op,
                         const int n, const int inner, const int bcount) {
    BINARY_POSITION(i, bi);
#ifdef BINARY_RELU
    const float v = binary_op(a[i], b[bi], BINARY_CODE);
    out[i] = v < 0.0f ? 0.0f : v;  // ReLU after the op; NaN passes, as in unary_f32's relu
#else
    out[i] = binary_op(a[i], b[bi], BINARY_CODE);
#endif
}

__kernel void binary_backward_a_f32(__global const float *a, __global const float *b, __global const float *dy,
                                    __global float *da, const int op, const int n, const int inner, const int bcount) {
    BINARY_POSITION(i, bi);
    const float g = dy[i];
    const float x = a[i], y = b[bi];
    switch (BINARY_CODE) {
    case 0: case 1: da[i] = g; break;
    case 2: da[i] = g * y; break;
    case 3: da[i] = g / y; break;
    case 4: da[i] = g * pow_grad_base(x, y); break;
    case 5: da[i] = -g; break;
    case 6: da[i] = -g * y / (x * x); break;
    default: da[i] = g * pow_grad_exponent(y, x); break;
    }
}

__kernel void binary_backward_b_f32(__global const float *a, __global const float *b, __global const float *dy,
                                    __global float *db, const int op, const int n, const int inner, const int bcount) {
    const int j = (int)get_global_id(0);
    if (j >= bcount) return;
    const int outer = n / (inner * bcount);
    const float bj = b[j];
    float sum = 0.0f;
    for (int o = 0; o < outer; ++o) {
        const int base = (o * bcount + j) * inner;
        for (int k = 0; k < inner; ++k) {
            const float g = dy[base + k], x = a[base + k];
            switch (op) {
            case 0: case 5: sum += g; break;
            case 1: sum -= g; break;
            case 2: sum += g * x; break;
            case 3: sum -= g * x / (bj * bj); break;
            case 4: sum += g * pow_grad_exponent(x, bj); break;
            case 6: sum += g / x; break;
            default: sum += g * pow_grad_base(bj, x); break;
            }
        }
    }
    db[j] = sum;
}

__kernel void fake_quantize_f32(__global const float *x, __global float *y, const float scale, const float zero_point,
                                const float qmin, const float qmax, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float q = clamp(rint(x[i] / scale) + zero_point, qmin, qmax);
    y[i] = (q - zero_point) * scale;
}

__kernel void fake_quantize_backward_f32(__global const float *x, __global const float *dy, __global float *dx, const float scale,
                                         const float zero_point, const float qmin, const float qmax, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const float q = rint(x[i] / scale) + zero_point;
    dx[i] = (q >= qmin && q <= qmax) ? dy[i] : 0.0f;
}

