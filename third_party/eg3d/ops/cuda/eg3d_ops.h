// Parameter blocks and launchers shared by eg3d_ops.cpp (the PyTorch binding,
// compiled by the host compiler) and eg3d_ops_kernels.cu (the kernels,
// compiled by nvcc). This header deliberately includes no PyTorch headers so
// that the .cu file compiles quickly and on its own.
#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

namespace eg3d_ops {

// Element types understood by the kernels (all arithmetic happens in fp32).
enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Activation ids; they match `Activation.cuda_id` in eg3d/ops/bias_act.py.
enum Act : int {
  kLinear = 1,
  kRelu = 2,
  kLrelu = 3,
  kTanh = 4,
  kSigmoid = 5,
  kElu = 6,
  kSelu = 7,
  kSoftplus = 8,
  kSwish = 9,
};

// y = clamp(act(x + b) * gain)             (mode 0, forward)
// out = dy * gain * act'(x + b) * inside   (mode 1, gradient wrt x, = wrt x + b)
//
// x, dy and out share one dense layout, walked linearly in memory order; the
// bias index of the element at linear position i is (i / bias_step) % bias_size
// where bias_step is the stride (in elements) of the bias dimension.
struct BiasActParams {
  const void* x = nullptr;
  const void* b = nullptr;   // nullptr: no bias
  const void* dy = nullptr;  // mode 1 only
  void* out = nullptr;
  int64_t numel = 0;
  int64_t bias_size = 1;
  int64_t bias_step = 1;
  int act = kLinear;
  float alpha = 0.f;
  float gain = 1.f;
  float clamp = -1.f;        // < 0: no clamping
  int clamp_inclusive = 1;   // gradient passes where |pre-clamp| == clamp (torch.clamp's convention)
  int mode = 0;
};

// Depthwise upfirdn2d for one filter shared by all channels:
//   y[n, c, oy, ox] = sum_{ky, kx} taps[ky, kx] * U[oy*down_y + ky - pad_y0, ox*down_x + kx - pad_x0]
// where U is x upsampled by zero insertion (U[u, v] = x[u/up_y, v/up_x] when
// both divide exactly, else 0; zero outside the image). `taps` is a contiguous
// float32 [fh, fw] correlation kernel with the gain already applied.
// Strides are in elements; tensors may have any strides.
struct UpfirdnParams {
  const void* x = nullptr;
  const float* taps = nullptr;
  void* y = nullptr;
  int n = 0, c = 0;
  int in_h = 0, in_w = 0;
  int out_h = 0, out_w = 0;
  int64_t x_stride[4] = {0, 0, 0, 0};  // n, c, h, w
  int64_t y_stride[4] = {0, 0, 0, 0};
  int up_x = 1, up_y = 1, down_x = 1, down_y = 1;
  int pad_x0 = 0, pad_y0 = 0;
  int f_w = 1, f_h = 1;
  int channels_last = 0;  // generic kernel's thread order: 0 = (n, c, y, x), 1 = (n, y, x, c)
  int force_generic = 0;  // 1: skip the tiled fast path (tests)
};

// Launch on `stream`; return the launch status (cudaGetLastError()).
cudaError_t launch_bias_act(const BiasActParams& p, int dtype, cudaStream_t stream);
cudaError_t launch_upfirdn2d(const UpfirdnParams& p, int dtype, cudaStream_t stream);

}  // namespace eg3d_ops
