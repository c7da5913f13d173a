// matmul.cl — single-precision GEMM, C = op(A)·op(B) (+ bias over columns) (then ReLU), batched,
// and the small helpers of its backward passes.
//
// Layouts (row-major): op(A) is M×K, op(B) is K×N, C is M×N. Operands are addressed through element
// strides, so a transpose is only a different pair of strides:
//   op(A)[m][k] = A[m·sam + k·sak]     (sam, sak) = (K, 1), or (1, M) when A is stored transposed [K, M]
//   op(B)[k][n] = B[k·sbk + n·sbn]     (sbk, sbn) = (N, 1), or (1, K) when B is stored transposed [N, K]
// A batch of GEMMs is the last global dimension; batch `z` reads A + z·batchA, B + z·batchB and writes
// C + z·M·N (a batch stride of 0 shares one operand across the batch). bias [N] is added to every row of C when
// `hasBias` is 1; `relu` = 1 then applies max(·, 0). C is overwritten (no accumulation).
//
// Remainders are written as a − (a / b)·b: Oclgrind's uninitialized-memory checker cannot run the
// `freeze` that the compiler inserts when it pairs a `/` with a `%` of the same operands.
//
// Kernels and when each runs:
//   matmul_pack_b      writes op(B) as column panels [batch][ceil(N / NR)][K][NR] (NR = MM_NV·MM_VW columns),
//                      zero-padded past N, so the CPU micro-tile reads one contiguous stream of B. One
//                      work-item per panel and MM_PACK_ROWS rows of K (whole-vector copies when B is
//                      untransposed and the row lies inside N); global (ceil(N / NR)·chunks, batches). The
//                      CPU GEMM reads batch z's panels at bp + z·batchBp (0 when B is shared by the batch).
//   matmul_pack_a      (MM_PACKED_A = 1) writes op(A) as row panels [batch][ceil(M / MM_MR)][K][MM_MR], zero
//                      past M, so the micro-tile reads A as one contiguous stream too. One work-item per panel
//                      and MM_PACK_ROWS rows of K.
//   matmul_cpu         CPU-shaped GEMM (when the device is a CPU, i.e. PoCL): no barriers, no local
//                      memory. Each work-item computes an MM_MR × NR tile of C in MM_MR·MM_NV accumulators
//                      of floatN (N = MM_VW, the device's vector width: 8 for AVX2, 16 for AVX-512): per
//                      step of K it loads MM_NV vectors of the packed B panel and broadcasts MM_MR elements
//                      of op(A), from the packed A panel, or (with MM_PACKED_A = 0) read in place (rows past
//                      M clamped to row M − 1, never stored). The default 6 × 2·8 is the BLIS AVX2 shape
//                      (12 accumulators, 2 B vectors and a broadcast in AVX2's 16 registers); AVX-512 has 32
//                      registers of 16 floats, where 8 × 2·16 ran 2048³ at 208 GFLOP/s against 183 for
//                      6 × 2·8 on a Zen 4 EPYC (2 cores). Packing A gains about 8% at 2048³ on one AVX2
//                      core (189 vs 205 ms) for 1.5% of packing time. Work-items are ordered so that PoCL's
//                      consecutive work-groups share data: row tiles are grouped in blocks of MM_MB tiles
//                      (a block of A stays in cache), and inside a block the row tiles of one column panel
//                      are consecutive (the B panel stays in cache). Global (tiles, batches), local (1, 1).
//   matmul_gpu         GPU-shaped GEMM (any other device): a work-group computes an MM_TM × MM_TN tile,
//                      walking K in MM_TK slices of op(A) and op(B) staged in local memory; each
//                      work-item keeps an MM_WM × MM_WN register block. Local (MM_TN / MM_WN,
//                      MM_TM / MM_WM), global (ceil(N / MM_TN)·lx, ceil(M / MM_TM)·ly, batches).
//   matmul_relu_mask   dz = y > 0 ? dy : 0 (backward of the fused ReLU, from the saved output).
//   matmul_column_sums out[n] = Σ_m x[m][n] (bias gradient; also sums a batch of [K·N] gradients into
//                      one when B was broadcast). One work-item per column. Overwrites out.
// Indices are 32-bit: the host refuses operands of 2³¹ elements or more. Any M, N, K ≥ 1 works: the
// tails are guarded (GPU tiles load zeros past the edges; CPU panels are zero-padded past N).
//
// Tunables (-D; the host passes every one, from GEMMFamily and the tuning table, so these defaults
// only serve a file compiled alone):
//   MM_VW                      CPU: floats per vector of the micro-tile, 4, 8 or 16 (default 8)
//   MM_NV                      CPU: vectors per row of the micro-tile (default 2)
//   MM_MR                      CPU: rows of the micro-tile (default 6)
//   MM_MB                      CPU: row tiles per block of the work-item order (default 32)
//   MM_PACKED_A                CPU: 1 packs op(A) into row panels first (default), 0 reads A in place
//   MM_PACK_ROWS               CPU: rows of K per packing work-item (default 32)
//   MM_TM, MM_TN, MM_TK        GPU: work-group tile and K slice (defaults 64, 64, 16)
//   MM_WM, MM_WN               GPU: register block per work-item (defaults 4, 4)

#ifndef MM_MB
#define MM_MB 32
#endif
#ifndef MM_PACKED_A
#define MM_PACKED_A 1
#endif
#ifndef MM_PACK_ROWS
#define MM_PACK_ROWS 32
#endif
#ifndef MM_TM
#define MM_TM 64
#endif
#ifndef MM_TN
#define MM_TN 64
#endif
#ifndef MM_TK
#define MM_TK 16
#endif
#ifndef MM_WM
#define MM_WM 4
#endif
#ifndef MM_WN
#define MM_WN 4
#endif

#ifndef MM_VW
#define MM_VW 8
#endif
#ifndef MM_MR
#define MM_MR 6
#endif
#if MM_VW != 4 && MM_VW != 8 && MM_VW != 16
#error "MM_VW must be 4, 8 or 16"
#endif
#ifndef MM_NV
#define MM_NV 2
#endif
#define MM_NR (MM_NV * MM_VW)
#define MM_CAT_(a, b) a##b
#define MM_CAT(a, b) MM_CAT_(a, b)
#define floatV MM_CAT(float, MM_VW)
#define vloadV MM_CAT(vload, MM_VW)
#define vstoreV MM_CAT(vstore, MM_VW)

// ---------------------------------------------------------------------------------------------
// Packing: bp[z][nb][k][l] = op(B_z)[k][nb·16 + l], zero past N.

__kernel void matmul_pack_b(__global const float *b, __global float *bp, const int K, const int N,
                            const int sbk, const int sbn, const int batchB) {
    const int i = (int)get_global_id(0);
    const int z = (int)get_global_id(1);
    const int nBlocks = (N + MM_NR - 1) / MM_NR;
    const int kChunks = (K + MM_PACK_ROWS - 1) / MM_PACK_ROWS;
    if (i >= nBlocks * kChunks) return;
    const int nb = i / kChunks, k0 = (i - nb * kChunks) * MM_PACK_ROWS;
    const int k1 = min(k0 + MM_PACK_ROWS, K);
    __global float *out = bp + (z * nBlocks * K + nb * K) * MM_NR;
    const __global float *bz = b + z * batchB;
    if (sbn == 1 && (nb + 1) * MM_NR <= N) {
        // Whole rows of untransposed B: two vector copies per row of the panel.
        for (int k = k0; k < k1; ++k) {
            const __global float *row = bz + k * sbk + nb * MM_NR;
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) vstoreV(vloadV(v, row), MM_NV * k + v, out);
        }
        return;
    }
    for (int k = k0; k < k1; ++k) {
        #pragma unroll
        for (int l = 0; l < MM_NR; ++l) {
            const int n = nb * MM_NR + l;
            out[k * MM_NR + l] = n < N ? bz[k * sbk + n * sbn] : 0.0f;
        }
    }
}

// ap[z][mt][k][r] = op(A_z)[mt·6 + r][k], zero past M (for MM_PACKED_A).
__kernel void matmul_pack_a(__global const float *a, __global float *ap, const int M, const int K,
                            const int sam, const int sak, const int batchA) {
    const int i = (int)get_global_id(0);
    const int z = (int)get_global_id(1);
    const int mTiles = (M + MM_MR - 1) / MM_MR;
    const int kChunks = (K + MM_PACK_ROWS - 1) / MM_PACK_ROWS;
    if (i >= mTiles * kChunks) return;
    const int mt = i / kChunks, k0 = (i - mt * kChunks) * MM_PACK_ROWS;
    const int k1 = min(k0 + MM_PACK_ROWS, K);
    __global float *out = ap + (z * mTiles * K + mt * K) * MM_MR;
    const __global float *az = a + z * batchA;
    #pragma unroll
    for (int r = 0; r < MM_MR; ++r) {
        const int m = mt * MM_MR + r;
        if (m < M) {
            for (int k = k0; k < k1; ++k) out[k * MM_MR + r] = az[m * sam + k * sak];
        } else {
            for (int k = k0; k < k1; ++k) out[k * MM_MR + r] = 0.0f;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CPU-shaped GEMM over packed B panels.

__kernel void matmul_cpu(__global const float *a, const int sam, const int sak, const int batchA,
                         __global const float *bp, const int batchBp, __global const float *bias, const int hasBias,
                         const int relu, __global float *c, const int M, const int N, const int K) {
    const int t = (int)get_global_id(0);
    const int z = (int)get_global_id(1);
    const int mTiles = (M + MM_MR - 1) / MM_MR, nTiles = (N + MM_NR - 1) / MM_NR;
    if (t >= mTiles * nTiles) return;
    // Work-item order: blocks of MM_MB row tiles; inside a block, column panel by column panel.
    const int blockSize = MM_MB * nTiles;
    const int block = t / blockSize, inBlock = t - block * blockSize;
    const int rows = min(MM_MB, mTiles - block * MM_MB);
    const int nt = inBlock / rows;
    const int mt = block * MM_MB + (inBlock - nt * rows);
    const int m0 = mt * MM_MR, n0 = nt * MM_NR;

    const __global float *pb = bp + z * batchBp + nt * K * MM_NR;
    floatV acc[MM_MR][MM_NV];
    #pragma unroll
    for (int r = 0; r < MM_MR; ++r) {
        #pragma unroll
        for (int v = 0; v < MM_NV; ++v) acc[r][v] = (floatV)(0.0f);
    }
#if MM_PACKED_A
    (void)sam;  // A is packed: its strides were used by matmul_pack_a
    (void)sak;
    const __global float *pa = a + z * batchA + mt * K * MM_MR;
    for (int k = 0; k < K; ++k) {
        floatV bv[MM_NV];
        #pragma unroll
        for (int v = 0; v < MM_NV; ++v) bv[v] = vloadV(v, pb);
        pb += MM_NR;
        #pragma unroll
        for (int r = 0; r < MM_MR; ++r) {
            const floatV av = (floatV)(pa[r]);
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]);
        }
        pa += MM_MR;
    }
#else
    const __global float *ar[MM_MR];
    #pragma unroll
    for (int r = 0; r < MM_MR; ++r) ar[r] = a + z * batchA + min(m0 + r, M - 1) * sam;
    int ka = 0;
    for (int k = 0; k < K; ++k) {
        floatV bv[MM_NV];
        #pragma unroll
        for (int v = 0; v < MM_NV; ++v) bv[v] = vloadV(v, pb);
        pb += MM_NR;
        #pragma unroll
        for (int r = 0; r < MM_MR; ++r) {
            const floatV av = (floatV)(ar[r][ka]);
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]);
        }
        ka += sak;
    }
#endif

    floatV biasV[MM_NV];
    const bool fullWidth = n0 + MM_NR <= N;
    #pragma unroll
    for (int v = 0; v < MM_NV; ++v) biasV[v] = (floatV)(0.0f);
    if (hasBias) {
        if (fullWidth) {
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) biasV[v] = vloadV(v, bias + n0);
        } else {
            float lanes[MM_NR];
            #pragma unroll
            for (int l = 0; l < MM_NR; ++l) lanes[l] = n0 + l < N ? bias[n0 + l] : 0.0f;
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) biasV[v] = vloadV(v, lanes);
        }
    }
    __global float *cz = c + z * M * N;
    #pragma unroll
    for (int r = 0; r < MM_MR; ++r) {
        const int m = m0 + r;
        if (m >= M) break;
        __global float *row = cz + m * N + n0;
        floatV out[MM_NV];
        #pragma unroll
        for (int v = 0; v < MM_NV; ++v) out[v] = acc[r][v] + biasV[v];
        if (relu) {
            // max(v, 0) that lets NaN through, as PyTorch's ReLU does.
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) out[v] = select(out[v], (floatV)(0.0f), out[v] < (floatV)(0.0f));
        }
        if (fullWidth) {
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) vstoreV(out[v], v, row);
        } else {
            float lanes[MM_NR];
            #pragma unroll
            for (int v = 0; v < MM_NV; ++v) vstoreV(out[v], v, lanes);
            for (int l = 0; l < N - n0; ++l) row[l] = lanes[l];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GPU-shaped GEMM: local tiles aT[TK][TM] of op(A) and bT[TK][TN] of op(B).

__kernel void matmul_gpu(__global const float *a, const int sam, const int sak, const int batchA,
                         __global const float *b, const int sbk, const int sbn, const int batchB,
                         __global const float *bias, const int hasBias, const int relu,
                         __global float *c, const int M, const int N, const int K) {
    __local float aTile[MM_TK][MM_TM];
    __local float bTile[MM_TK][MM_TN];
    const int LX = MM_TN / MM_WN, LY = MM_TM / MM_WM;
    const int lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    const int tid = ly * LX + lx;
    const int z = (int)get_global_id(2);
    const int m0 = (int)get_group_id(1) * MM_TM, n0 = (int)get_group_id(0) * MM_TN;
    const __global float *az = a + z * batchA;
    const __global float *bz = b + z * batchB;

    float acc[MM_WM][MM_WN];
    #pragma unroll
    for (int i = 0; i < MM_WM; ++i)
        #pragma unroll
        for (int j = 0; j < MM_WN; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += MM_TK) {
        // Consecutive work-items load along whichever of m or k is contiguous in memory.
        for (int e = tid; e < MM_TK * MM_TM; e += LX * LY) {
            int kk, mm;
            if (sak == 1) { mm = e / MM_TK; kk = e - mm * MM_TK; } else { kk = e / MM_TM; mm = e - kk * MM_TM; }
            const int m = m0 + mm, k = k0 + kk;
            aTile[kk][mm] = (m < M && k < K) ? az[m * sam + k * sak] : 0.0f;
        }
        for (int e = tid; e < MM_TK * MM_TN; e += LX * LY) {
            int kk, nn;
            if (sbn == 1) { kk = e / MM_TN; nn = e - kk * MM_TN; } else { nn = e / MM_TK; kk = e - nn * MM_TK; }
            const int n = n0 + nn, k = k0 + kk;
            bTile[kk][nn] = (n < N && k < K) ? bz[k * sbk + n * sbn] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        #pragma unroll 4
        for (int kk = 0; kk < MM_TK; ++kk) {
            float ar[MM_WM], br[MM_WN];
            #pragma unroll
            for (int i = 0; i < MM_WM; ++i) ar[i] = aTile[kk][ly + i * LY];
            #pragma unroll
            for (int j = 0; j < MM_WN; ++j) br[j] = bTile[kk][lx + j * LX];
            #pragma unroll
            for (int i = 0; i < MM_WM; ++i)
                #pragma unroll
                for (int j = 0; j < MM_WN; ++j) acc[i][j] = fma(ar[i], br[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    __global float *cz = c + z * M * N;
    #pragma unroll
    for (int i = 0; i < MM_WM; ++i) {
        const int m = m0 + ly + i * LY;
        if (m >= M) continue;
        #pragma unroll
        for (int j = 0; j < MM_WN; ++j) {
            const int n = n0 + lx + j * LX;
            if (n >= N) continue;
            float v = acc[i][j] + (hasBias ? bias[n] : 0.0f);
            if (relu && v < 0.0f) v = 0.0f;  // NaN passes through, as in PyTorch
            cz[m * N + n] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backward helpers.

// dz[i] = y[i] > 0 ? dy[i] : 0 for i < n.
__kernel void matmul_relu_mask(__global const float *y, __global const float *dy, __global float *dz, const int n) {
    const int i = (int)get_global_id(0);
    if (i < n) dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// out[j] = Σ_{i < rows} x[i·cols + j] for j < cols. Overwrites out.
__kernel void matmul_column_sums(__global const float *x, __global float *out, const int rows, const int cols) {
    const int j = (int)get_global_id(0);
    if (j >= cols) return;
    // Four independent partial sums, so the adds do not wait on each other.
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int i = 0;
    for (; i + 4 <= rows; i += 4) {
        s0 += x[i * cols + j];
        s1 += x[(i + 1) * cols + j];
        s2 += x[(i + 2) * cols + j];
        s3 += x[(i + 3) * cols + j];
    }
    for (; i < rows; ++i) s0 += x[i * cols + j];
    out[j] = (s0 + s1) + (s2 + s3);
}
