// shap.cl — the device side of Shapley-value estimation: building perturbed inputs from coalitions
// and averaging model outputs over the background.
//
// Kernels:
//   shap_perturb        out[s, i, n, d] = mask[s, group[d]] ? x[i, d] : background[n, d]
//                       for s < S coalitions, i < I instances sharing the batch, n < N background rows,
//                       d < D input elements. mask is [S, M] (uchar, 1 = feature present), group maps
//                       each input element to its feature in 0..<M (grid superpixels, user segments,
//                       tabular columns, or groups of columns); an element whose group is −1 always
//                       comes from x. Global (D, N, S·I); any local size. Overwrites out.
//   shap_reduce         v[s, o] = Σ_n w[n] · y[s, n, o]  (w already normalized to sum 1)
//                       for the model outputs y [S, N, O]; one work-item per (o, s). Global (O, S).
//                       Overwrites v. With I instances per batch the host passes S·I as S: v [S, I, O].
//   shap_perturb_rows   out[r, d] = mask[r, group[d]] ? x[inst[r], d] : background[row[r], d]
//                       for r < R rows, each with its own coalition, instance and background row (one
//                       draw of a stochastic game: the background row sampled per coalition).
//                       Global (D, R); any local size. Overwrites out.
// Layouts: row-major; x [I, D]; background [N, D]; out [S, I, N, D]; y [S·I, N, O]; v [S·I, O].
// No tunables: both kernels are memory-bound; PoCL vectorizes shap_perturb across d.

__kernel void shap_perturb(__global const uchar *mask, __global const float *x, __global const float *background,
                           __global const int *group, __global float *out,
                           const int S, const int N, const int D, const int M, const int I) {
    const int d = (int)get_global_id(0);
    const int n = (int)get_global_id(1);
    const int si = (int)get_global_id(2);
    if (d >= D || n >= N || si >= S * I) return;
    const int s = si / I, i = si - s * I;
    const int g = group[d];
    const int present = g < 0 || mask[(size_t)s * M + g] != 0;
    out[((size_t)si * N + n) * D + d] = present ? x[(size_t)i * D + d] : background[(size_t)n * D + d];
}

__kernel void shap_perturb_rows(__global const uchar *mask, __global const int *inst, __global const int *row,
                                __global const float *x, __global const float *background, __global const int *group,
                                __global float *out, const int R, const int D, const int M) {
    const int d = (int)get_global_id(0);
    const int r = (int)get_global_id(1);
    if (d >= D || r >= R) return;
    const int g = group[d];
    const int present = g < 0 || mask[(size_t)r * M + g] != 0;
    out[(size_t)r * D + d] = present ? x[(size_t)inst[r] * D + d] : background[(size_t)row[r] * D + d];
}

__kernel void shap_reduce(__global const float *y, __global const float *w, __global float *v,
                          const int S, const int N, const int O) {
    const int o = (int)get_global_id(0);
    const int s = (int)get_global_id(1);
    if (o >= O || s >= S) return;
    const __global float *row = y + (size_t)s * N * O + o;
    float sum = 0.0f;
    for (int n = 0; n < N; ++n) sum = fma(w[n], row[(size_t)n * O], sum);
    v[(size_t)s * O + o] = sum;
}
