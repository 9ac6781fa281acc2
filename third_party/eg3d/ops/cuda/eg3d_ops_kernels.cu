// CUDA kernels for eg3d.ops: fused bias + activation (forward and first
// derivative) and upfirdn2d (upsample, pad, FIR filter, downsample).
//
// Every kernel loads fp32/fp16/bf16 elements, computes in fp32 and stores in
// the element type. Only CUDA runtime headers are included (no PyTorch), see
// eg3d_ops.h.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "eg3d_ops.h"

namespace eg3d_ops {
namespace {

constexpr int kThreads = 256;

// ---------------------------------------------------------------------------
// Element conversion (explicit intrinsics: PyTorch builds define
// __CUDA_NO_HALF_CONVERSIONS__ / __CUDA_NO_BFLOAT16_CONVERSIONS__).

template <typename T>
__device__ __forceinline__ float load_f(const T* p, int64_t i);
template <>
__device__ __forceinline__ float load_f<float>(const float* p, int64_t i) {
  return __ldg(p + i);
}
template <>
__device__ __forceinline__ float load_f<__half>(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
template <>
__device__ __forceinline__ float load_f<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

template <typename T>
__device__ __forceinline__ void store_f(T* p, int64_t i, float v);
template <>
__device__ __forceinline__ void store_f<float>(float* p, int64_t i, float v) {
  p[i] = v;
}
template <>
__device__ __forceinline__ void store_f<__half>(__half* p, int64_t i, float v) {
  p[i] = __float2half_rn(v);
}
template <>
__device__ __forceinline__ void store_f<__nv_bfloat16>(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// ---------------------------------------------------------------------------
// bias_act

constexpr float kSeluScale = 1.0507009873554804934193349852946f;
constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
constexpr float kSoftplusThreshold = 20.f;  // F.softplus default (beta = 1)

__device__ __forceinline__ float sigmoid_f(float z) { return 1.f / (1.f + expf(-z)); }

// act(z); NaN propagates like the PyTorch functions.
__device__ __forceinline__ float act_forward(int act, float z, float alpha) {
  switch (act) {
    case kRelu: return z < 0.f ? 0.f : z;
    case kLrelu: return z < 0.f ? z * alpha : z;
    case kTanh: return tanhf(z);
    case kSigmoid: return sigmoid_f(z);
    case kElu: return z > 0.f ? z : expm1f(z);
    case kSelu: return kSeluScale * (z > 0.f ? z : kSeluAlpha * expm1f(z));
    case kSoftplus: return z > kSoftplusThreshold ? z : log1pf(expf(z));
    case kSwish: return z * sigmoid_f(z);
    default: return z;  // linear
  }
}

// act'(z), with PyTorch autograd's choice at the kinks:
// relu'(0) = 0, leaky_relu'(0) = alpha, elu/selu use the z <= 0 branch at 0.
__device__ __forceinline__ float act_derivative(int act, float z, float alpha) {
  switch (act) {
    case kRelu: return z > 0.f ? 1.f : 0.f;
    case kLrelu: return z > 0.f ? 1.f : alpha;
    case kTanh: {
      float y = tanhf(z);
      return 1.f - y * y;
    }
    case kSigmoid: {
      float s = sigmoid_f(z);
      return s * (1.f - s);
    }
    case kElu: return z > 0.f ? 1.f : expf(z);
    case kSelu: return z > 0.f ? kSeluScale : kSeluScale * kSeluAlpha * expf(z);
    case kSoftplus: {
      if (z > kSoftplusThreshold) return 1.f;
      float e = expf(z);
      return e / (e + 1.f);
    }
    case kSwish: {
      float s = sigmoid_f(z);
      return s + z * s * (1.f - s);
    }
    default: return 1.f;  // linear
  }
}

// One element: mode 0 returns y, mode 1 returns dz (see BiasActParams).
__device__ __forceinline__ float bias_act_element(const BiasActParams& p, float z, float dy) {
  const bool clamping = p.clamp >= 0.f;
  if (p.mode == 0) {
    float y = act_forward(p.act, z, p.alpha) * p.gain;
    if (clamping) {  // comparisons keep NaN as NaN, like torch.clamp
      if (y > p.clamp) y = p.clamp;
      else if (y < -p.clamp) y = -p.clamp;
    }
    return y;
  }
  float g = dy * p.gain * act_derivative(p.act, z, p.alpha);
  if (clamping) {
    const float y = act_forward(p.act, z, p.alpha) * p.gain;
    const bool inside = p.clamp_inclusive ? (y >= -p.clamp && y <= p.clamp) : (y > -p.clamp && y < p.clamp);
    if (!inside) g = 0.f;
  }
  return g;
}

// Scalar version: any size and alignment, one element per step.
template <typename T, typename IndexT>
__global__ void __launch_bounds__(kThreads) bias_act_kernel(BiasActParams p) {
  const T* x = static_cast<const T*>(p.x);
  const T* b = static_cast<const T*>(p.b);
  const T* dy = static_cast<const T*>(p.dy);
  T* out = static_cast<T*>(p.out);
  const IndexT numel = static_cast<IndexT>(p.numel);
  const IndexT bias_size = static_cast<IndexT>(p.bias_size);
  const IndexT bias_step = static_cast<IndexT>(p.bias_step);
  const IndexT stride = static_cast<IndexT>(blockDim.x) * gridDim.x;
  for (IndexT i = static_cast<IndexT>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
    float z = load_f<T>(x, i);
    if (b != nullptr) z += load_f<T>(b, (i / bias_step) % bias_size);
    const float d = p.mode == 1 ? load_f<T>(dy, i) : 0.f;
    store_f<T>(out, i, bias_act_element(p, z, d));
  }
}

// Vector version: 16-byte loads and stores (4 fp32 or 8 fp16/bf16 elements).
// Requires numel % V == 0 and 16-byte aligned x, dy, out. When the bias step
// is a multiple of V, the V elements of a vector share one bias value.
template <typename T>
__device__ __forceinline__ float value_f(T v);
template <>
__device__ __forceinline__ float value_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ float value_f<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float value_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T, typename IndexT>
__global__ void __launch_bounds__(kThreads) bias_act_vec_kernel(BiasActParams p) {
  constexpr int V = 16 / sizeof(T);
  const uint4* x = static_cast<const uint4*>(p.x);
  const uint4* dy = static_cast<const uint4*>(p.dy);
  const T* b = static_cast<const T*>(p.b);
  uint4* out = static_cast<uint4*>(p.out);
  const IndexT nvec = static_cast<IndexT>(p.numel / V);
  const IndexT bias_size = static_cast<IndexT>(p.bias_size);
  const IndexT bias_step = static_cast<IndexT>(p.bias_step);
  const bool shared_bias = (p.bias_step % V) == 0;
  const IndexT stride = static_cast<IndexT>(blockDim.x) * gridDim.x;
  for (IndexT v = static_cast<IndexT>(blockIdx.x) * blockDim.x + threadIdx.x; v < nvec; v += stride) {
    const IndexT i0 = v * V;
    const uint4 xr = x[v];
    uint4 dr = make_uint4(0, 0, 0, 0);
    if (p.mode == 1) dr = dy[v];
    const T* xe = reinterpret_cast<const T*>(&xr);
    const T* de = reinterpret_cast<const T*>(&dr);
    uint4 yr;
    T* ye = reinterpret_cast<T*>(&yr);
    float bias = 0.f;
    if (b != nullptr && shared_bias) bias = load_f<T>(b, (i0 / bias_step) % bias_size);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float z = value_f<T>(xe[k]);
      if (b != nullptr) z += shared_bias ? bias : load_f<T>(b, ((i0 + k) / bias_step) % bias_size);
      const float d = p.mode == 1 ? value_f<T>(de[k]) : 0.f;
      ye[k] = from_f<T>(bias_act_element(p, z, d));
    }
    out[v] = yr;
  }
}

inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

template <typename T>
cudaError_t bias_act_launch_typed(const BiasActParams& p, cudaStream_t stream) {
  if (p.numel <= 0) return cudaSuccess;
  constexpr int V = 16 / sizeof(T);
  const bool vec = p.numel % V == 0 && aligned16(p.x) && aligned16(p.out) && (p.mode == 0 || aligned16(p.dy));
  const int64_t per_thread = vec ? 2 * V : 4;  // the kernels stride over the rest
  int64_t blocks = (p.numel + int64_t(kThreads) * per_thread - 1) / (int64_t(kThreads) * per_thread);
  if (blocks > (int64_t(1) << 20)) blocks = int64_t(1) << 20;
  const bool small = p.numel <= INT_MAX / 2;
  if (vec && small) {
    bias_act_vec_kernel<T, uint32_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  } else if (vec) {
    bias_act_vec_kernel<T, int64_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  } else if (small) {
    bias_act_kernel<T, uint32_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  } else {
    bias_act_kernel<T, int64_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

// ---------------------------------------------------------------------------
// upfirdn2d

constexpr int kMaxSharedTaps = 8192;  // 32 KiB of taps in shared memory; larger filters read global memory

template <typename T, typename IndexT>
__global__ void __launch_bounds__(kThreads) upfirdn2d_kernel(UpfirdnParams p) {
  extern __shared__ float shared_taps[];
  const int ntaps = p.f_h * p.f_w;
  const float* taps = p.taps;
  if (ntaps <= kMaxSharedTaps) {
    for (int k = threadIdx.x; k < ntaps; k += blockDim.x) shared_taps[k] = __ldg(p.taps + k);
    __syncthreads();
    taps = shared_taps;
  }

  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const IndexT total = static_cast<IndexT>(p.n) * p.c * p.out_h * p.out_w;
  const IndexT stride = static_cast<IndexT>(blockDim.x) * gridDim.x;

  for (IndexT i = static_cast<IndexT>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    int n, c, oy, ox;
    IndexT t = i;
    if (p.channels_last) {
      c = static_cast<int>(t % p.c); t /= p.c;
      ox = static_cast<int>(t % p.out_w); t /= p.out_w;
      oy = static_cast<int>(t % p.out_h); t /= p.out_h;
      n = static_cast<int>(t);
    } else {
      ox = static_cast<int>(t % p.out_w); t /= p.out_w;
      oy = static_cast<int>(t % p.out_h); t /= p.out_h;
      c = static_cast<int>(t % p.c); t /= p.c;
      n = static_cast<int>(t);
    }

    // Row of the upsampled image under tap ky = 0; the taps that land on a
    // stored pixel (not an inserted zero, not outside) are every up-th one
    // starting from the first with a non-negative multiple of up.
    const int uy0 = oy * p.down_y - p.pad_y0;
    int ky0 = uy0 < 0 ? -uy0 : 0;
    {
      int r = (uy0 + ky0) % p.up_y;
      if (r) ky0 += p.up_y - r;
    }
    const int iy0 = (uy0 + ky0) / p.up_y;
    const int ux0 = ox * p.down_x - p.pad_x0;
    int kx0 = ux0 < 0 ? -ux0 : 0;
    {
      int r = (ux0 + kx0) % p.up_x;
      if (r) kx0 += p.up_x - r;
    }
    const int ix0 = (ux0 + kx0) / p.up_x;

    const T* xp = x + n * p.x_stride[0] + c * p.x_stride[1];
    float acc = 0.f;
    for (int ky = ky0, iy = iy0; ky < p.f_h && iy < p.in_h; ky += p.up_y, ++iy) {
      const T* row = xp + iy * p.x_stride[2];
      const float* trow = taps + ky * p.f_w;
      for (int kx = kx0, ix = ix0; kx < p.f_w && ix < p.in_w; kx += p.up_x, ++ix) {
        acc += trow[kx] * load_f<T>(row, ix * p.x_stride[3]);
      }
    }
    store_f<T>(y, n * p.y_stride[0] + c * p.y_stride[1] + oy * p.y_stride[2] + ox * p.y_stride[3], acc);
  }
}

// Tiled variant for the common StyleGAN2 geometries: the same up/down on both
// axes and a 4x4 filter (setup_filter([1, 3, 3, 1])). A block computes a TH x TW
// output tile of one (n, c) plane: it stages the input region the tile reads
// (zeros outside the image, which also realises the padding) in shared memory
// as fp32, then every thread computes outputs with fully unrolled tap loops.
__device__ __forceinline__ int floor_div(int a, int b) { return a < 0 ? -((-a + b - 1) / b) : a / b; }

template <typename T, int UP, int DOWN, int F, int TW, int TH>
__global__ void __launch_bounds__(kThreads) upfirdn2d_tiled_kernel(UpfirdnParams p) {
  constexpr int RH = ((TH - 1) * DOWN + F - 1) / UP + 2;  // staged input rows (upper bound)
  constexpr int RW = ((TW - 1) * DOWN + F - 1) / UP + 2;
  constexpr int KT = (F + UP - 1) / UP;  // taps per axis that can land on stored pixels
  __shared__ float s_taps[F * F];
  __shared__ float s_in[RH][RW];

  for (int k = threadIdx.x; k < F * F; k += blockDim.x) s_taps[k] = __ldg(p.taps + k);

  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int planes = p.n * p.c;
  const int oy_t = blockIdx.y * TH;
  const int ox_t = blockIdx.x * TW;
  const int ry0 = floor_div(oy_t * DOWN - p.pad_y0, UP);
  const int rx0 = floor_div(ox_t * DOWN - p.pad_x0, UP);

  for (int plane = blockIdx.z; plane < planes; plane += gridDim.z) {
    const int n = plane / p.c;
    const int c = plane - n * p.c;
    const T* xp = x + n * p.x_stride[0] + c * p.x_stride[1];
    __syncthreads();  // the previous plane's readers are done (and s_taps is filled)
    for (int idx = threadIdx.x; idx < RH * RW; idx += blockDim.x) {
      const int r = idx / RW;
      const int q = idx - r * RW;
      const int iy = ry0 + r;
      const int ix = rx0 + q;
      float v = 0.f;
      if (iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w) v = load_f<T>(xp, iy * p.x_stride[2] + ix * p.x_stride[3]);
      s_in[r][q] = v;
    }
    __syncthreads();

    for (int o = threadIdx.x; o < TH * TW; o += blockDim.x) {
      const int ty = o / TW;
      const int tx = o - ty * TW;
      const int oy = oy_t + ty;
      const int ox = ox_t + tx;
      if (oy >= p.out_h || ox >= p.out_w) continue;
      const int uy0 = oy * DOWN - p.pad_y0;
      const int ux0 = ox * DOWN - p.pad_x0;
      const int ky0 = UP == 1 ? 0 : ((-uy0) % UP + UP) % UP;  // first tap on a stored row
      const int kx0 = UP == 1 ? 0 : ((-ux0) % UP + UP) % UP;
      const int lr = (uy0 + ky0) / UP - ry0;  // exact: uy0 + ky0 is a multiple of UP
      const int lc = (ux0 + kx0) / UP - rx0;
      float acc = 0.f;
#pragma unroll
      for (int j = 0; j < KT; ++j) {
        const int ky = ky0 + j * UP;
        if (UP == 1 || ky < F) {
#pragma unroll
          for (int i = 0; i < KT; ++i) {
            const int kx = kx0 + i * UP;
            if (UP == 1 || kx < F) acc += s_taps[ky * F + kx] * s_in[lr + j][lc + i];
          }
        }
      }
      store_f<T>(y, n * p.y_stride[0] + c * p.y_stride[1] + oy * p.y_stride[2] + ox * p.y_stride[3], acc);
    }
  }
}

template <typename T, int UP, int DOWN, int TW, int TH>
cudaError_t upfirdn2d_launch_tiled(const UpfirdnParams& p, cudaStream_t stream) {
  const int64_t planes = int64_t(p.n) * p.c;
  dim3 grid((p.out_w + TW - 1) / TW, (p.out_h + TH - 1) / TH, static_cast<unsigned>(planes < 65535 ? planes : 65535));
  if (grid.y > 65535) return cudaErrorInvalidConfiguration;
  upfirdn2d_tiled_kernel<T, UP, DOWN, 4, TW, TH><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

// Which tiled instantiation serves p, if any.
template <typename T>
bool try_launch_tiled(const UpfirdnParams& p, cudaStream_t stream, cudaError_t* err) {
  if (p.f_w != 4 || p.f_h != 4 || p.up_x != p.up_y || p.down_x != p.down_y) return false;
  if ((int64_t(p.n) * p.c) >= (int64_t(1) << 31) || (p.out_h + 15) / 16 > 65535) return false;
  const int up = p.up_x, down = p.down_x;
  if (up == 1 && down == 1) *err = upfirdn2d_launch_tiled<T, 1, 1, 64, 16>(p, stream);
  else if (up == 2 && down == 1) *err = upfirdn2d_launch_tiled<T, 2, 1, 64, 32>(p, stream);
  else if (up == 1 && down == 2) *err = upfirdn2d_launch_tiled<T, 1, 2, 32, 16>(p, stream);
  else return false;
  return true;
}

template <typename T>
cudaError_t upfirdn2d_launch_typed(const UpfirdnParams& p, cudaStream_t stream) {
  const int64_t total = int64_t(p.n) * p.c * p.out_h * p.out_w;
  if (total <= 0) return cudaSuccess;
  cudaError_t tiled_err = cudaSuccess;
  if (!p.force_generic && try_launch_tiled<T>(p, stream, &tiled_err)) return tiled_err;
  const int ntaps = p.f_h * p.f_w;
  const size_t shmem = ntaps <= kMaxSharedTaps ? size_t(ntaps) * sizeof(float) : 0;
  int64_t blocks = (total + kThreads - 1) / kThreads;
  if (blocks > (int64_t(1) << 20)) blocks = int64_t(1) << 20;
  if (total <= INT_MAX / 2) {
    upfirdn2d_kernel<T, uint32_t><<<static_cast<unsigned>(blocks), kThreads, shmem, stream>>>(p);
  } else {
    upfirdn2d_kernel<T, int64_t><<<static_cast<unsigned>(blocks), kThreads, shmem, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_bias_act(const BiasActParams& p, int dtype, cudaStream_t stream) {
  switch (dtype) {
    case kFloat32: return bias_act_launch_typed<float>(p, stream);
    case kFloat16: return bias_act_launch_typed<__half>(p, stream);
    case kBFloat16: return bias_act_launch_typed<__nv_bfloat16>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launch_upfirdn2d(const UpfirdnParams& p, int dtype, cudaStream_t stream) {
  switch (dtype) {
    case kFloat32: return upfirdn2d_launch_typed<float>(p, stream);
    case kFloat16: return upfirdn2d_launch_typed<__half>(p, stream);
    case kBFloat16: return upfirdn2d_launch_typed<__nv_bfloat16>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace eg3d_ops
