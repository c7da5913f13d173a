// dropout.cl — inverted dropout with a counter-based generator (no mask buffer).
//
// Generator: Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011)
// with key (seed low 32 bits, seed high 32 bits) and counter (block low, block high, 0, 0) for
// block = g / 4 of the element's index g in the stream; element g takes word g − 4·(g / 4) of its
// block's output. So the mask of an element depends only on (seed, g): the same on every device, for
// every launch shape, and the backward regenerates it instead of storing it. A tensor's element e
// has g = offset + e: a slice of a batch (one device's part in data-parallel training) passes the
// position of its first element in the whole batch and draws the whole batch's masks.
//
// Kernels:
//   dropout_f32(x, y, n, seed, threshold, scale, offset)
//       y[e] = x[e] · scale where word(offset + e) ≥ threshold, else 0; threshold = ⌊p · 2³²⌋ (so an
//       element is kept with probability 1 − p) and scale = 1 / (1 − p). One work-item per 4 elements
//       (e = 4i … 4i + 3), 1-D, any local size; surplus work-items and the last partial group are
//       guarded. With offset a multiple of 4 the 4 elements are one Philox block; otherwise each
//       element computes its own block. The backward is the same kernel applied to dy (dx overwritten).
// No tunables.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

inline uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k.x += PHILOX_W0; k.y += PHILOX_W1; }
        const uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
        const uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

__kernel void dropout_f32(__global const float *x, __global float *y, const int n, const ulong seed,
                          const uint threshold, const float scale, const ulong offset) {
    const int group = (int)get_global_id(0);
    const int start = group * 4;
    if (start >= n) return;
    const uint2 key = (uint2)((uint)seed, (uint)(seed >> 32));
    if ((offset & 3) == 0) {
        const ulong block = (offset >> 2) + (ulong)group;
        const uint4 r = philox4x32_10((uint4)((uint)block, (uint)(block >> 32), 0u, 0u), key);
        const uint words[4] = {r.x, r.y, r.z, r.w};
        for (int k = 0; k < 4; ++k) {
            const int e = start + k;
            if (e < n) y[e] = words[k] >= threshold ? x[e] * scale : 0.0f;
        }
    } else {
        // Each element's own block: g = offset + e, word g mod 4 of block g / 4.
        for (int k = 0; k < 4; ++k) {
            const int e = start + k;
            if (e >= n) break;
            const ulong g = offset + (ulong)e;
            const ulong block = g >> 2;
            const uint4 r = philox4x32_10((uint4)((uint)block, (uint)(block >> 32), 0u, 0u), key);
            const uint words[4] = {r.x, r.y, r.z, r.w};
            y[e] = words[(int)(g & 3)] >= threshold ? x[e] * scale : 0.0f;
        }
    }
}
