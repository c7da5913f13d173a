// peak.cl — probes of a device's arithmetic and memory ceilings, the "share of measured peak" that
// benchmarks quote.
//
// Kernels:
//   fma_peak   each work-item runs PEAK_CHAINS independent chains of PEAK_ITERS fused multiply-adds
//              on floatPEAK_WIDTH vectors (2 · PEAK_WIDTH · PEAK_CHAINS · PEAK_ITERS FLOPs per
//              work-item) and writes one float, so nothing is optimized away. Independent chains
//              hide the FMA latency; on a CPU (PoCL, local size 1) float8 fills an AVX2 register and
//              float16 an AVX-512 one; width 1 with many work-items suits a GPU. The host runs every
//              width and keeps the best, so the peak is the device's, not one width's.
//   copy_peak  out[i] = in[i] over float4 elements: read + write bandwidth (8 · 4 bytes per element).
// Tunables (-D): PEAK_WIDTH (1, 4, 8 or 16; default 8), PEAK_CHAINS (default 8), PEAK_ITERS (default 4096).

#ifndef PEAK_WIDTH
#define PEAK_WIDTH 8
#endif
#ifndef PEAK_CHAINS
#define PEAK_CHAINS 8
#endif
#ifndef PEAK_ITERS
#define PEAK_ITERS 4096
#endif

#define PEAK_SUM4(v) ((v).s0 + (v).s1 + (v).s2 + (v).s3)
#define PEAK_SUM8(v) (PEAK_SUM4((v).lo) + PEAK_SUM4((v).hi))
#if PEAK_WIDTH == 16
typedef float16 peak_t;
#define PEAK_SUM(v) (PEAK_SUM8((v).lo) + PEAK_SUM8((v).hi))
#elif PEAK_WIDTH == 8
typedef float8 peak_t;
#define PEAK_SUM(v) PEAK_SUM8(v)
#elif PEAK_WIDTH == 4
typedef float4 peak_t;
#define PEAK_SUM(v) PEAK_SUM4(v)
#else
typedef float peak_t;
#define PEAK_SUM(v) (v)
#endif

__kernel void fma_peak(__global float *out, const float a, const float b) {
    const int gid = (int)get_global_id(0);
    peak_t acc[PEAK_CHAINS];
    for (int c = 0; c < PEAK_CHAINS; ++c) acc[c] = (peak_t)((float)(gid + c) * 1e-7f);
    const peak_t va = (peak_t)a, vb = (peak_t)b;
    for (int i = 0; i < PEAK_ITERS; ++i) {
#pragma unroll
        for (int c = 0; c < PEAK_CHAINS; ++c) acc[c] = fma(acc[c], va, vb);
    }
    peak_t total = acc[0];
    for (int c = 1; c < PEAK_CHAINS; ++c) total += acc[c];
    out[gid] = PEAK_SUM(total);
}

__kernel void copy_peak(__global const float4 *in, __global float4 *out, const int n) {
    const int i = (int)get_global_id(0);
    if (i < n) out[i] = in[i];
}
