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
  const bool clamping = p.clamp >= 0.f;

  for (IndexT i = static_cast<IndexT>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
    float z = load_f<T>(x, i);
    if (b != nullptr) z += load_f<T>(b, (i / bias_step) % bias_size);
    if (p.mode == 0) {
      float y = act_forward(p.act, z, p.alpha) * p.gain;
      if (clamping) {  // comparisons keep NaN as NaN, like torch.clamp
        if (y > p.clamp) y = p.clamp;
        else if (y < -p.clamp) y = -p.clamp;
      }
      store_f<T>(out, i, y);
    } else {
      float g = load_f<T>(dy, i) * p.gain * act_derivative(p.act, z, p.alpha);
      if (clamping) {
        float y = act_forward(p.act, z, p.alpha) * p.gain;
        bool inside = p.clamp_inclusive ? (y >= -p.clamp && y <= p.clamp) : (y > -p.clamp && y < p.clamp);
        if (!inside) g = 0.f;
      }
      store_f<T>(out, i, g);
    }
  }
}

template <typename T>
cudaError_t bias_act_launch_typed(const BiasActParams& p, cudaStream_t stream) {
  if (p.numel <= 0) return cudaSuccess;
  // About four elements per thread; the kernel strides over the rest.
  int64_t blocks = (p.numel + int64_t(kThreads) * 4 - 1) / (int64_t(kThreads) * 4);
  if (blocks > (int64_t(1) << 20)) blocks = int64_t(1) << 20;
  if (p.numel <= INT_MAX / 2) {
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

template <typename T>
cudaError_t upfirdn2d_launch_typed(const UpfirdnParams& p, cudaStream_t stream) {
  const int64_t total = int64_t(p.n) * p.c * p.out_h * p.out_w;
  if (total <= 0) return cudaSuccess;
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
