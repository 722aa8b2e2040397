// conv2d.cu — minicnn's convolution (and max-pool, ReLU) kernels, float32, NCHW / OIHW.
//
// Compiled at run time by minicnn/cuda.py (cupy.RawModule) and by nvcc in CI. Every kernel has
// a launcher in minicnn/cuda.py; every version is checked against the NumPy reference
// (minicnn/layers.py) by tests/test_cuda.py before python -m minicnn.bench --device cuda times it.
//
// Notation: x (N, C, H, W), w (F, C, KH, KW), b (F), out (N, F, H_out, W_out),
//   out[n,f,i,j] = b[f] + sum_{c,p,q} x[n, c, i*stride - pad + p, j*stride - pad + q] * w[f,c,p,q]
// (zero outside the image). As a matrix product ("implicit GEMM"):
//   out[f, col] = sum_k W[f, k] * X[k, col],  k = (c, p, q) in [0, K = C*KH*KW),
//   col = (n, i, j) in [0, P = N*H_out*W_out), and X[k, col] read from x on the fly.
//
// Versions of the forward pass:
//   v1  conv2d_forward_v1   naive direct: one thread per output element, every input and weight
//                           read from global memory.            grid: ceil(N*F*H_out*W_out / 256)
//   v2  conv2d_forward_v2   shared-memory tiles: a 16x16 block of threads computes a 16x16 output
//                           tile for 8 filters; the input tile (+ halo) and the weights of 8
//                           channels are staged in shared memory and reused by all threads.
//                           grid: (ceil(W_out/16), ceil(H_out/16), N * ceil(F/8))
//   v3  conv2d_forward_v3   implicit GEMM with register blocking: a block computes
//                           a 64 (filters) x 128 (pixels) tile of out through 8-deep slices of K
//                           staged in shared memory; each of its 256 threads keeps a 4x8 tile of
//                           results in registers (32 FMAs per 3 vector loads from shared memory).
//                           Split-K (grid.z) for small layers, so that enough blocks run.
//                           grid: (ceil(P/128), ceil(F/64), splits)
//   v4  conv2d_forward_v4   v3's tiles, but the reduction runs over (p, q, c) (weights as
//                           (F, KH, KW, C)), so a slice of 8 ks is one kernel tap and 8 channels:
//                           indices are decoded once per slice, not once per value; and the next
//                           slice is loaded into registers while the current one is multiplied.
//                                                     grid: (ceil(P/128), ceil(F/64), splits)
//   v5  conv2d_forward_v5   v4's loads with 128x128 tiles, 8x8 results per thread and two
//                           shared-memory buffers; for layers with at least 128 filters (v4
//                           below that). The default.  grid: (ceil(P/128), ceil(F/128), splits)
// Backward to the input: for stride 1 it is a forward convolution of dout with the kernel flipped
// in space and transposed (F <-> C), padded by K-1-pad (see tutorial.md), so the forward kernels serve it;
// conv2d_backward_data_v1 is the naive gather for any stride.
// Backward to the weights:
//   v1  conv2d_backward_weight_v1  one thread per weight, summing over all images and pixels.
//   v2  conv2d_backward_weight_v2  implicit GEMM dW[f, k] = sum_col dout[f, col] * X[k, col]:
//                                  64x64 tiles, 4x4 per thread, split over col with atomicAdd.
// Plus max-pool (first maximum wins ties, like PyTorch) and ReLU, forward and backward.
//
// Tile sizes live here only, as #defines: minicnn/cuda.py reads them from this file to size its
// grids. Compiler options: minicnn.fast.cuda.NVCC_OPTIONS, used at run time and by CI.

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define GEMM_THREADS 256  // threads per block of the implicit-GEMM kernels (v3, v4, weight v2)

// ------------------------------------------------------------------------------------------------
// v1: naive direct convolution

extern "C" __global__ void conv2d_forward_v1(
    const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
    float* __restrict__ out, int N, int C, int H, int W, int F, int KH, int KW,
    int stride, int pad, int H_out, int W_out)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;       // 0 .. N*F*H_out*W_out - 1
    if (idx >= N * F * H_out * W_out) return;
    int j = idx % W_out;
    int i = (idx / W_out) % H_out;
    int f = (idx / (W_out * H_out)) % F;
    int n = idx / (W_out * H_out * F);
    float acc = b[f];
    for (int c = 0; c < C; c++) {
        for (int p = 0; p < KH; p++) {
            int h = i * stride - pad + p;
            if (h < 0 || h >= H) continue;
            for (int q = 0; q < KW; q++) {
                int v = j * stride - pad + q;
                if (v < 0 || v >= W) continue;
                acc += x[((n * C + c) * H + h) * W + v] * w[((f * C + c) * KH + p) * KW + q];
            }
        }
    }
    out[idx] = acc;
}

// ------------------------------------------------------------------------------------------------
// v2: shared-memory tiled direct convolution

#define V2_TILE 16   // output tile side (threads per block: 16 x 16)
#define V2_FB 8      // filters per block (each thread accumulates 8 outputs)
#define V2_CB 8      // channels staged in shared memory at a time

extern "C" __global__ void conv2d_forward_v2(
    const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
    float* __restrict__ out, int N, int C, int H, int W, int F, int KH, int KW,
    int stride, int pad, int H_out, int W_out)
{
    extern __shared__ float smem[];
    const int IT_H = (V2_TILE - 1) * stride + KH;          // input rows under the output tile
    const int IT_W = (V2_TILE - 1) * stride + KW;
    float* xs = smem;                                       // [V2_CB][IT_H][IT_W]
    float* ws = smem + V2_CB * IT_H * IT_W;                 // [V2_FB][V2_CB][KH][KW]
    const int tx = threadIdx.x, ty = threadIdx.y;           // 0..15, 0..15
    const int tid = ty * V2_TILE + tx;                      // 0..255
    const int f_groups = CEIL_DIV(F, V2_FB);
    const int n = blockIdx.z / f_groups;
    const int f0 = (blockIdx.z % f_groups) * V2_FB;
    const int i = blockIdx.y * V2_TILE + ty;                // this thread's output pixel
    const int j = blockIdx.x * V2_TILE + tx;
    const int h0 = blockIdx.y * V2_TILE * stride - pad;     // input tile origin (may be < 0)
    const int v0 = blockIdx.x * V2_TILE * stride - pad;
    float acc[V2_FB];
    for (int ff = 0; ff < V2_FB; ff++) acc[ff] = 0.0f;

    for (int c0 = 0; c0 < C; c0 += V2_CB) {
        for (int e = tid; e < V2_CB * IT_H * IT_W; e += V2_TILE * V2_TILE) {
            int cc = e / (IT_H * IT_W), r = e % (IT_H * IT_W);
            int c = c0 + cc, h = h0 + r / IT_W, v = v0 + r % IT_W;
            xs[e] = (c < C && h >= 0 && h < H && v >= 0 && v < W) ? x[((n * C + c) * H + h) * W + v] : 0.0f;
        }
        for (int e = tid; e < V2_FB * V2_CB * KH * KW; e += V2_TILE * V2_TILE) {
            int ff = e / (V2_CB * KH * KW), r = e % (V2_CB * KH * KW);
            int f = f0 + ff, c = c0 + r / (KH * KW);
            ws[e] = (f < F && c < C) ? w[(f * C + c) * KH * KW + r % (KH * KW)] : 0.0f;
        }
        __syncthreads();
        for (int cc = 0; cc < V2_CB; cc++) {
            for (int p = 0; p < KH; p++) {
                for (int q = 0; q < KW; q++) {
                    float xv = xs[(cc * IT_H + ty * stride + p) * IT_W + tx * stride + q];
                    for (int ff = 0; ff < V2_FB; ff++)
                        acc[ff] += xv * ws[((ff * V2_CB + cc) * KH + p) * KW + q];
                }
            }
        }
        __syncthreads();
    }
    if (i < H_out && j < W_out) {
        for (int ff = 0; ff < V2_FB; ff++) {
            int f = f0 + ff;
            if (f < F) out[((n * F + f) * H_out + i) * W_out + j] = acc[ff] + b[f];
        }
    }
}

// ------------------------------------------------------------------------------------------------
// v3: implicit GEMM with register blocking

// Two pieces the implicit-GEMM kernels (v3, v4, v5) share.
//
// Column col = (n, i, j) of X is output pixel (i, j) of image n: its receptive field starts at
// input pixel (h_base, v_base) of image x_n. ok is false past the last column (loads read 0).
struct Column {
    bool ok;
    int h_base, v_base;
    const float* x_n;
};

__device__ __forceinline__ Column column_of(const float* x, int col, int P, int HWo, int C, int H,
                                            int W, int W_out, int stride, int pad)
{
    Column c;
    c.ok = col < P;
    const int n = c.ok ? col / HWo : 0;
    const int pix = c.ok ? col % HWo : 0;
    c.h_base = (pix / W_out) * stride - pad;
    c.v_base = (pix % W_out) * stride - pad;
    c.x_n = x + (size_t)n * C * H * W;
    return c;
}

// One result, out[n, f, pix] for column c2 = (n, pix): stored, or added atomically when the
// reduction is split over blocks (split-K, grid.z > 1: out was zeroed, each block adds its part).
__device__ __forceinline__ void store_result(float* out, int f, int c2, int F, int HWo, float value)
{
    float* dst = out + ((size_t)(c2 / HWo) * F + f) * HWo + c2 % HWo;
    if (gridDim.z == 1) *dst = value;
    else atomicAdd(dst, value);
}

#define V3_BM 64     // filters per block tile
#define V3_BN 128    // output pixels (columns) per block tile
#define V3_BK 8      // depth of one slice of the reduction
#define V3_TM 4      // filters per thread
#define V3_TN 8      // pixels per thread

extern "C" __global__ void __launch_bounds__(GEMM_THREADS) conv2d_forward_v3(
    const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
    float* __restrict__ out, int N, int C, int H, int W, int F, int KH, int KW,
    int stride, int pad, int H_out, int W_out, int k_per_split)
{
    __shared__ __align__(16) float As[V3_BK][V3_BM];        // weights, transposed: As[k][f]
    __shared__ __align__(16) float Bs[V3_BK][V3_BN];        // im2col values:       Bs[k][col]
    const int tid = threadIdx.x;                            // 0..255
    const int tx = tid % 16, ty = tid / 16;                 // thread tile: rows ty*4.., cols tx*8..
    const int KK = KH * KW, K = C * KK, HWo = H_out * W_out, P = N * HWo;
    const int f0 = blockIdx.y * V3_BM, col0 = blockIdx.x * V3_BN;
    const int k_begin = blockIdx.z * k_per_split;
    const int k_end = min(K, k_begin + k_per_split);

    // The column this thread loads into Bs is fixed for the whole loop: decode it once.
    const int load_col = tid % V3_BN;                       // 0..127
    const Column cl = column_of(x, col0 + load_col, P, HWo, C, H, W, W_out, stride, pad);

    float acc[V3_TM][V3_TN];
    for (int r = 0; r < V3_TM; r++)
        for (int t = 0; t < V3_TN; t++) acc[r][t] = 0.0f;

    for (int k0 = k_begin; k0 < k_end; k0 += V3_BK) {
        // A tile: 64 filters x 8 ks = 512 values, 2 per thread
        for (int l = 0; l < 2; l++) {
            int e = tid + GEMM_THREADS * l;
            int m = e / V3_BK, kk = e % V3_BK;
            int f = f0 + m, k = k0 + kk;
            As[kk][m] = (f < F && k < k_end) ? w[(size_t)f * K + k] : 0.0f;
        }
        // B tile: 8 ks x 128 columns = 1024 values, 4 per thread (same column, ks tid/128 + 2l)
        for (int l = 0; l < 4; l++) {
            int kk = tid / V3_BN + 2 * l;
            int k = k0 + kk;
            float val = 0.0f;
            if (cl.ok && k < k_end) {
                int c = k / KK, r = k - c * KK;
                int p = r / KW, q = r - p * KW;
                int h = cl.h_base + p, v = cl.v_base + q;
                if (h >= 0 && h < H && v >= 0 && v < W) val = cl.x_n[((size_t)c * H + h) * W + v];
            }
            Bs[kk][load_col] = val;
        }
        __syncthreads();
        #pragma unroll
        for (int kk = 0; kk < V3_BK; kk++) {
            float4 a = *reinterpret_cast<const float4*>(&As[kk][ty * V3_TM]);
            float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * V3_TN]);
            float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][tx * V3_TN + 4]);
            float av[4] = {a.x, a.y, a.z, a.w};
            float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
            #pragma unroll
            for (int r = 0; r < V3_TM; r++)
                #pragma unroll
                for (int t = 0; t < V3_TN; t++) acc[r][t] += av[r] * bv[t];
        }
        __syncthreads();
    }
    // Write the 4x8 results: out[n, f, pix]; bias added once (by split 0)
    for (int r = 0; r < V3_TM; r++) {
        int f = f0 + ty * V3_TM + r;
        if (f >= F) continue;
        float bias = (blockIdx.z == 0) ? b[f] : 0.0f;
        for (int t = 0; t < V3_TN; t++) {
            int c2 = col0 + tx * V3_TN + t;
            if (c2 >= P) continue;
            store_result(out, f, c2, F, HWo, acc[r][t] + bias);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// v4: implicit GEMM, reduction reordered to (p, q, c) and the next slice prefetched
//
// Same tiles as v3. Two changes, both about the loads rather than the arithmetic:
//  * k runs over (p, q, c) instead of (c, p, q), using weights laid out as (F, KH, KW, C)
//    ("OHWI", transposed once by the launcher). When C is a multiple of 8, one 8-deep slice of k
//    has a single kernel tap (p, q) and 8 consecutive channels: a thread decodes (p, q) and
//    checks the image border once per slice, instead of dividing for every value it loads.
//  * the next slice is read from global memory into registers while the current one is being
//    multiplied, so the GPU does not sit idle waiting for memory between slices.

#define V4_BK 8

// One thread's share of an 8-deep slice of X in v4 and v5: the values at rows kk0, kk0 + 2,
// kk0 + 4, kk0 + 6 of the slice starting at k0, in its column cl. k runs over (p, q, c).
__device__ __forceinline__ void load_x_slice(
    float (&dst)[4], const Column& cl, int k0, int k_end, int kk0, int C, int H, int W, int KW, bool aligned)
{
    const int HW = H * W;
    if (aligned) {                                          // decode the slice's tap once
        int pq = k0 / C, c0 = k0 - pq * C;
        int p = pq / KW, q = pq - p * KW;
        int h = cl.h_base + p, v = cl.v_base + q;
        bool inside = cl.ok && h >= 0 && h < H && v >= 0 && v < W;
        const float* src = inside ? cl.x_n + (size_t)(c0 + kk0) * HW + h * W + v : cl.x_n;
        for (int l = 0; l < 4; l++)
            dst[l] = (inside && k0 + kk0 + 2 * l < k_end) ? src[(size_t)2 * l * HW] : 0.0f;
    } else {                                                // general case: decode every k
        for (int l = 0; l < 4; l++) {
            int k = k0 + kk0 + 2 * l;
            float val = 0.0f;
            if (cl.ok && k < k_end) {
                int pq = k / C, c = k - pq * C;
                int p = pq / KW, q = pq - p * KW;
                int h = cl.h_base + p, v = cl.v_base + q;
                if (h >= 0 && h < H && v >= 0 && v < W) val = cl.x_n[(size_t)c * HW + h * W + v];
            }
            dst[l] = val;
        }
    }
}

extern "C" __global__ void __launch_bounds__(GEMM_THREADS) conv2d_forward_v4(
    const float* __restrict__ x, const float* __restrict__ w_ohwi, const float* __restrict__ b,
    float* __restrict__ out, int N, int C, int H, int W, int F, int KH, int KW,
    int stride, int pad, int H_out, int W_out, int k_per_split)
{
    __shared__ __align__(16) float As[V4_BK][V3_BM];        // As[k][f]
    __shared__ __align__(16) float Bs[V4_BK][V3_BN];        // Bs[k][col]
    const int tid = threadIdx.x;                            // 0..255
    const int tx = tid % 16, ty = tid / 16;
    const int K = C * KH * KW, HWo = H_out * W_out, P = N * HWo;
    const int f0 = blockIdx.y * V3_BM, col0 = blockIdx.x * V3_BN;
    const int k_begin = blockIdx.z * k_per_split;
    const int k_end = min(K, k_begin + k_per_split);
    const bool aligned = (C % V4_BK) == 0;                  // one tap per slice

    const int load_col = tid % V3_BN;                       // this thread's column in Bs
    const Column cl = column_of(x, col0 + load_col, P, HWo, C, H, W, W_out, stride, pad);
    const int kk0 = tid / V3_BN;                            // this thread's ks: kk0 + 2l

    float a_reg[2], b_reg[4];
    auto load = [&](int k0) {
        for (int l = 0; l < 2; l++) {                       // weights: 64 f x 8 k
            int e = tid + GEMM_THREADS * l;
            int f = f0 + e / V4_BK, k = k0 + e % V4_BK;
            a_reg[l] = (f < F && k < k_end) ? w_ohwi[(size_t)f * K + k] : 0.0f;
        }
        load_x_slice(b_reg, cl, k0, k_end, kk0, C, H, W, KW, aligned);
    };

    float acc[V3_TM][V3_TN];
    for (int r = 0; r < V3_TM; r++)
        for (int t = 0; t < V3_TN; t++) acc[r][t] = 0.0f;

    if (k_begin < k_end) load(k_begin);
    for (int k0 = k_begin; k0 < k_end; k0 += V4_BK) {
        for (int l = 0; l < 2; l++) {
            int e = tid + GEMM_THREADS * l;
            As[e % V4_BK][e / V4_BK] = a_reg[l];
        }
        for (int l = 0; l < 4; l++) Bs[kk0 + 2 * l][load_col] = b_reg[l];
        __syncthreads();
        if (k0 + V4_BK < k_end) load(k0 + V4_BK);           // in flight during the math below
        #pragma unroll
        for (int kk = 0; kk < V4_BK; kk++) {
            float4 a = *reinterpret_cast<const float4*>(&As[kk][ty * V3_TM]);
            float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * V3_TN]);
            float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][tx * V3_TN + 4]);
            float av[4] = {a.x, a.y, a.z, a.w};
            float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
            #pragma unroll
            for (int r = 0; r < V3_TM; r++)
                #pragma unroll
                for (int t = 0; t < V3_TN; t++) acc[r][t] += av[r] * bv[t];
        }
        __syncthreads();
    }
    for (int r = 0; r < V3_TM; r++) {
        int f = f0 + ty * V3_TM + r;
        if (f >= F) continue;
        float bias = (blockIdx.z == 0) ? b[f] : 0.0f;
        for (int t = 0; t < V3_TN; t++) {
            int c2 = col0 + tx * V3_TN + t;
            if (c2 >= P) continue;
            store_result(out, f, c2, F, HWo, acc[r][t] + bias);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// v5: v4's loads, 128x128 tiles with 8x8 results per thread, double-buffered shared memory
//
// Three changes to v4, all about how much arithmetic each load buys:
//  * a block computes 128 filters x 128 pixels, and each thread an 8x8 tile of results: per
//    step of the reduction it reads 4 float4s from shared memory (8 filter weights, 8 pixel
//    values) and does 64 multiply-adds with them, twice v4's 32 per 3 reads;
//  * two shared-memory buffers: the next slice is written into one while the other is being
//    multiplied, so each slice costs one __syncthreads instead of two;
//  * As rows are padded by 4 floats: the 8 threads that store 8 consecutive ks of one filter
//    land in 8 different banks (unpadded, 128 floats apart, they would all hit the same bank).
// A thread's 8x8 results are rows ty*4 + {0..3} and 64 + ty*4 + {0..3}, columns tx*4 + {0..3}
// and 64 + tx*4 + {0..3}: the 16 threads of a half-warp read 16 consecutive float4s.
// minicnn/cuda.py uses v5 only for layers with at least 128 filters (a 128-row tile of a
// 64-filter layer would be half empty); below that, version 5 runs v4.

#define V5_BM 128    // filters per block tile
#define V5_BN 128    // output pixels per block tile
#define V5_BK 8      // depth of one slice of the reduction
#define V5_PAD 4     // floats of padding after each row of As

extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 2) conv2d_forward_v5(
    const float* __restrict__ x, const float* __restrict__ w_ohwi, const float* __restrict__ b,
    float* __restrict__ out, int N, int C, int H, int W, int F, int KH, int KW,
    int stride, int pad, int H_out, int W_out, int k_per_split)
{
    __shared__ __align__(16) float As[2][V5_BK][V5_BM + V5_PAD];   // As[buffer][k][f]
    __shared__ __align__(16) float Bs[2][V5_BK][V5_BN];            // Bs[buffer][k][col]
    const int tid = threadIdx.x;                            // 0..255
    const int tx = tid % 16, ty = tid / 16;
    const int K = C * KH * KW, HWo = H_out * W_out, P = N * HWo;
    const int f0 = blockIdx.y * V5_BM, col0 = blockIdx.x * V5_BN;
    const int k_begin = blockIdx.z * k_per_split;
    const int k_end = min(K, k_begin + k_per_split);
    const bool aligned = (C % V5_BK) == 0;

    const int load_col = tid % V5_BN;                       // this thread's column in Bs
    const Column cl = column_of(x, col0 + load_col, P, HWo, C, H, W, W_out, stride, pad);
    const int kk0 = tid / V5_BN;                            // this thread's ks: kk0 + 2l

    float a_reg[4], b_reg[4];
    auto load = [&](int k0) {                               // global memory -> registers
        for (int l = 0; l < 4; l++) {                       // weights: 128 f x 8 k
            int e = tid + GEMM_THREADS * l;
            int f = f0 + e / V5_BK, k = k0 + e % V5_BK;
            a_reg[l] = (f < F && k < k_end) ? w_ohwi[(size_t)f * K + k] : 0.0f;
        }
        load_x_slice(b_reg, cl, k0, k_end, kk0, C, H, W, KW, aligned);
    };
    auto store = [&](int buf) {                             // registers -> shared memory
        for (int l = 0; l < 4; l++) {
            int e = tid + GEMM_THREADS * l;
            As[buf][e % V5_BK][e / V5_BK] = a_reg[l];
        }
        for (int l = 0; l < 4; l++) Bs[buf][kk0 + 2 * l][load_col] = b_reg[l];
    };

    float acc[8][8];
    for (int r = 0; r < 8; r++)
        for (int t = 0; t < 8; t++) acc[r][t] = 0.0f;

    if (k_begin < k_end) {
        load(k_begin);
        store(0);
    }
    __syncthreads();
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += V5_BK) {
        const bool more = k0 + V5_BK < k_end;
        if (more) load(k0 + V5_BK);                         // in flight during the math below
        #pragma unroll
        for (int kk = 0; kk < V5_BK; kk++) {
            float4 a0 = *reinterpret_cast<const float4*>(&As[buf][kk][ty * 4]);
            float4 a1 = *reinterpret_cast<const float4*>(&As[buf][kk][64 + ty * 4]);
            float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][kk][tx * 4]);
            float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][kk][64 + tx * 4]);
            float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
            #pragma unroll
            for (int r = 0; r < 8; r++)
                #pragma unroll
                for (int t = 0; t < 8; t++) acc[r][t] += av[r] * bv[t];
        }
        if (more) store(buf ^ 1);                           // the buffer nobody reads now
        __syncthreads();
        buf ^= 1;
    }
    for (int r = 0; r < 8; r++) {
        int f = f0 + (r < 4 ? ty * 4 + r : 64 + ty * 4 + r - 4);
        if (f >= F) continue;
        float bias = (blockIdx.z == 0) ? b[f] : 0.0f;
        for (int t = 0; t < 8; t++) {
            int c2 = col0 + (t < 4 ? tx * 4 + t : 64 + tx * 4 + t - 4);
            if (c2 >= P) continue;
            store_result(out, f, c2, F, HWo, acc[r][t] + bias);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Backward to the input, any stride: dx[n,c,h,v] = sum over (f, p, q) with
// h = i*stride - pad + p, v = j*stride - pad + q for a valid output (i, j) of dout[n,f,i,j]*w[f,c,p,q]

extern "C" __global__ void conv2d_backward_data_v1(
    const float* __restrict__ dout, const float* __restrict__ w, float* __restrict__ dx,
    int N, int C, int H, int W, int F, int KH, int KW, int stride, int pad, int H_out, int W_out)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;       // 0 .. N*C*H*W - 1
    if (idx >= N * C * H * W) return;
    int v = idx % W;
    int h = (idx / W) % H;
    int c = (idx / (W * H)) % C;
    int n = idx / (W * H * C);
    float acc = 0.0f;
    for (int p = 0; p < KH; p++) {
        int hi = h + pad - p;                               // = i * stride
        if (hi < 0 || hi % stride != 0 || hi / stride >= H_out) continue;
        int i = hi / stride;
        for (int q = 0; q < KW; q++) {
            int vj = v + pad - q;
            if (vj < 0 || vj % stride != 0 || vj / stride >= W_out) continue;
            int j = vj / stride;
            for (int f = 0; f < F; f++)
                acc += dout[((n * F + f) * H_out + i) * W_out + j] * w[((f * C + c) * KH + p) * KW + q];
        }
    }
    dx[idx] = acc;
}

// ------------------------------------------------------------------------------------------------
// Backward to the weights

extern "C" __global__ void conv2d_backward_weight_v1(
    const float* __restrict__ x, const float* __restrict__ dout, float* __restrict__ dw,
    int N, int C, int H, int W, int F, int KH, int KW, int stride, int pad, int H_out, int W_out)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;       // 0 .. F*C*KH*KW - 1
    if (idx >= F * C * KH * KW) return;
    int q = idx % KW;
    int p = (idx / KW) % KH;
    int c = (idx / (KW * KH)) % C;
    int f = idx / (KW * KH * C);
    float acc = 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H_out; i++) {
            int h = i * stride - pad + p;
            if (h < 0 || h >= H) continue;
            for (int j = 0; j < W_out; j++) {
                int v = j * stride - pad + q;
                if (v < 0 || v >= W) continue;
                acc += dout[((n * F + f) * H_out + i) * W_out + j] * x[((n * C + c) * H + h) * W + v];
            }
        }
    dw[idx] = acc;
}

#define W2_BM 64     // filters per tile
#define W2_BN 64     // weight columns k = (c, p, q) per tile
#define W2_BR 16     // output pixels per slice of the reduction

extern "C" __global__ void __launch_bounds__(GEMM_THREADS) conv2d_backward_weight_v2(
    const float* __restrict__ x, const float* __restrict__ dout, float* __restrict__ dw,
    int N, int C, int H, int W, int F, int KH, int KW, int stride, int pad, int H_out, int W_out,
    int cols_per_split)
{
    __shared__ float As[W2_BR][W2_BM + 1];                  // dout slice: As[col][f]
    __shared__ float Bs[W2_BR][W2_BN + 1];                  // im2col slice: Bs[col][k]
    const int tid = threadIdx.x;                            // 0..255
    const int tx = tid % 16, ty = tid / 16;                 // results: f = ty + 16r, k = tx + 16t
    const int KK = KH * KW, K = C * KK, HWo = H_out * W_out, P = N * HWo;
    const int f0 = blockIdx.y * W2_BM, k0 = blockIdx.x * W2_BN;
    const int c_begin = blockIdx.z * cols_per_split;
    const int c_end = min(P, c_begin + cols_per_split);
    float acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = 0.0f;

    // The weight column k this thread loads is fixed: decode it once.
    const int load_k = tid % W2_BN;                         // 0..63
    const int k = k0 + load_k;
    const bool k_ok = k < K;
    const int c = k_ok ? k / KK : 0;
    const int p = k_ok ? (k % KK) / KW : 0;
    const int q = k_ok ? k % KW : 0;

    for (int s0 = c_begin; s0 < c_end; s0 += W2_BR) {
        for (int l = 0; l < 4; l++) {                       // dout: 16 cols x 64 filters
            int e = tid + GEMM_THREADS * l;
            int cc = e % W2_BR, m = e / W2_BR;
            int col = s0 + cc, f = f0 + m;
            As[cc][m] = (col < c_end && f < F) ? dout[((size_t)(col / HWo) * F + f) * HWo + col % HWo] : 0.0f;
        }
        for (int l = 0; l < 4; l++) {                       // im2col: 16 cols x 64 ks
            int cc = tid / W2_BN + 4 * l;
            int col = s0 + cc;
            float val = 0.0f;
            if (k_ok && col < c_end) {
                int n = col / HWo, pix = col % HWo;
                int h = (pix / W_out) * stride - pad + p, v = (pix % W_out) * stride - pad + q;
                if (h >= 0 && h < H && v >= 0 && v < W) val = x[(((size_t)n * C + c) * H + h) * W + v];
            }
            Bs[cc][load_k] = val;
        }
        __syncthreads();
        #pragma unroll
        for (int cc = 0; cc < W2_BR; cc++) {
            float av[4], bv[4];
            for (int r = 0; r < 4; r++) av[r] = As[cc][ty + 16 * r];
            for (int t = 0; t < 4; t++) bv[t] = Bs[cc][tx + 16 * t];
            for (int r = 0; r < 4; r++)
                for (int t = 0; t < 4; t++) acc[r][t] += av[r] * bv[t];
        }
        __syncthreads();
    }
    for (int r = 0; r < 4; r++) {
        int f = f0 + ty + 16 * r;
        if (f >= F) continue;
        for (int t = 0; t < 4; t++) {
            int kk = k0 + tx + 16 * t;
            if (kk < K) atomicAdd(&dw[(size_t)f * K + kk], acc[r][t]);   // dw was zeroed
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Max-pool and ReLU

extern "C" __global__ void maxpool2d_forward(
    const float* __restrict__ x, float* __restrict__ out, int* __restrict__ argmax,
    int N, int C, int H, int W, int kernel, int stride, int H_out, int W_out)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;       // 0 .. N*C*H_out*W_out - 1
    if (idx >= N * C * H_out * W_out) return;
    int j = idx % W_out;
    int i = (idx / W_out) % H_out;
    int nc = idx / (W_out * H_out);
    const float* plane = x + (size_t)nc * H * W;
    int best = (i * stride) * W + j * stride;
    float m = plane[best];
    for (int p = 0; p < kernel; p++)
        for (int q = 0; q < kernel; q++) {
            int at = (i * stride + p) * W + j * stride + q;
            if (plane[at] > m) { m = plane[at]; best = at; }   // strict: the first maximum wins
        }
    out[idx] = m;
    argmax[idx] = nc * H * W + best;                       // flat index into x
}

extern "C" __global__ void maxpool2d_backward(
    const float* __restrict__ dout, const int* __restrict__ argmax, float* __restrict__ dx, int total)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;       // 0 .. total - 1 (outputs)
    if (idx >= total) return;
    atomicAdd(&dx[argmax[idx]], dout[idx]);                // windows may overlap; dx was zeroed
}

extern "C" __global__ void relu_forward(const float* __restrict__ x, float* __restrict__ out, int total)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx < total) out[idx] = x[idx] > 0.0f ? x[idx] : 0.0f;
}

// guided = 1: Springenberg et al.'s guided-backprop rule (also drop negative gradients)
extern "C" __global__ void relu_backward(
    const float* __restrict__ dout, const float* __restrict__ out, float* __restrict__ dx,
    int total, int guided)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    float g = dout[idx];
    dx[idx] = (out[idx] > 0.0f && (!guided || g > 0.0f)) ? g : 0.0f;
}
