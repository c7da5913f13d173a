// fma_peak.c — the native FMA ceiling of a CPU, to check `prism-bench peak` against.
//
// Each thread runs CHAINS independent chains of fused multiply-adds on the widest vector the build
// targets (__m512: 16 floats with -mavx512f; __m256: 8 floats with -mavx2 -mfma), so the FMA latency
// is hidden and both FMA ports stay busy. Reports the best of several runs in GFLOP/s
// (2 FLOPs per lane per FMA). Built and run by run.sh.
//
//     fma_peak [threads] [iterations]     (defaults: 2 threads, 2^24 iterations)

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12

#if defined(__AVX512F__)
#define WIDTH 16
#define ISA "avx512"
typedef __m512 vec;
#define SET1(x) _mm512_set1_ps(x)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define ADD(a, b) _mm512_add_ps(a, b)
#define FIRST(v) _mm512_cvtss_f32(v)
#elif defined(__AVX2__) && defined(__FMA__)
#define WIDTH 8
#define ISA "avx2"
typedef __m256 vec;
#define SET1(x) _mm256_set1_ps(x)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define ADD(a, b) _mm256_add_ps(a, b)
#define FIRST(v) _mm256_cvtss_f32(v)
#else
#error "build with -mavx512f or with -mavx2 -mfma"
#endif

static long iterations = 1L << 24;
static volatile float sink;

static void *run(void *arg) {
    const float seed = (float)(long)arg * 1e-7f;
    vec acc[CHAINS];
    for (int c = 0; c < CHAINS; ++c) acc[c] = SET1(seed + (float)c * 1e-7f);
    const vec a = SET1(0.999f), b = SET1(0.001f);
    for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
        for (int c = 0; c < CHAINS; ++c) acc[c] = FMA(acc[c], a, b);
    }
    vec total = acc[0];
    for (int c = 1; c < CHAINS; ++c) total = ADD(total, acc[c]);
    sink = FIRST(total);
    return NULL;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2) iterations = atol(argv[2]);
    if (threads < 1 || threads > 1024 || iterations < 1) {
        fprintf(stderr, "usage: fma_peak [threads 1-1024] [iterations >= 1]\n");
        return 2;
    }
    pthread_t *ids = malloc(sizeof(pthread_t) * (size_t)threads);
    if (!ids) return 1;
    double best = 0;
    for (int run_index = 0; run_index < 7; ++run_index) {
        const double start = seconds();
        for (long t = 0; t < threads; ++t) pthread_create(&ids[t], NULL, run, (void *)t);
        for (int t = 0; t < threads; ++t) pthread_join(ids[t], NULL);
        const double elapsed = seconds() - start;
        const double gflops = 2.0 * WIDTH * CHAINS * (double)iterations * threads / elapsed * 1e-9;
        if (gflops > best) best = gflops;
    }
    printf("%s: float%d x %d chains, %d threads: %.1f GFLOP/s\n", ISA, WIDTH, CHAINS, threads, best);
    free(ids);
    return 0;
}
