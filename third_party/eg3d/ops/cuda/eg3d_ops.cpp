// PyTorch binding of the eg3d.ops CUDA kernels (see eg3d_ops_kernels.cu).
//
// The Python side (eg3d/ops/cuda_kernels.py) prepares the arguments: dense
// layouts, float32 taps with flip and gain applied, normalised padding. These
// functions check what they rely on, allocate the output and launch.

#include <torch/extension.h>

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "eg3d_ops.h"

namespace {

int dtype_code(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return eg3d_ops::kFloat32;
    case torch::kFloat16: return eg3d_ops::kFloat16;
    case torch::kBFloat16: return eg3d_ops::kBFloat16;
    default: TORCH_CHECK(false, "eg3d_ops: unsupported dtype ", t.scalar_type(), " (float32, float16, bfloat16 only)");
  }
  return -1;
}

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "eg3d_ops: ", what, " launch failed: ", cudaGetErrorString(err));
}

// mode 0: y = clamp(act(x + b) * gain); mode 1: dz = dy * gain * act'(x + b) * inside_clamp.
// b may be an empty tensor (no bias). x (and dy) must be dense; the output has x's strides.
torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor dy, int64_t dim, int64_t act, double alpha,
                       double gain, double clamp, bool clamp_inclusive, int64_t mode) {
  TORCH_CHECK(x.is_cuda(), "eg3d_ops.bias_act: x must be a CUDA tensor");
  TORCH_CHECK(x.is_non_overlapping_and_dense(), "eg3d_ops.bias_act: x must be dense (contiguous in some memory format)");
  TORCH_CHECK(mode == 0 || mode == 1, "eg3d_ops.bias_act: mode must be 0 or 1");
  TORCH_CHECK(x.dim() >= 1 || b.numel() == 0, "eg3d_ops.bias_act: bias needs x of rank >= 1");
  const int code = dtype_code(x);
  const bool has_bias = b.defined() && b.numel() > 0;
  if (x.dim() > 0) TORCH_CHECK(dim >= 0 && dim < x.dim(), "eg3d_ops.bias_act: dim out of range");
  if (has_bias) {
    TORCH_CHECK(b.device() == x.device(), "eg3d_ops.bias_act: b must be on x's device");
    TORCH_CHECK(b.scalar_type() == x.scalar_type(), "eg3d_ops.bias_act: b must have x's dtype");
    TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "eg3d_ops.bias_act: b must be 1-D with x.shape[dim] entries");
    TORCH_CHECK(b.is_contiguous(), "eg3d_ops.bias_act: b must be contiguous");
  }
  if (mode == 1) {
    TORCH_CHECK(dy.defined() && dy.device() == x.device() && dy.scalar_type() == x.scalar_type(),
                "eg3d_ops.bias_act: dy must match x's device and dtype");
    TORCH_CHECK(dy.sizes() == x.sizes() && dy.strides() == x.strides(), "eg3d_ops.bias_act: dy must have x's shape and strides");
  }

  const c10::cuda::CUDAGuard guard(x.device());
  torch::Tensor out = torch::empty_like(x);
  TORCH_CHECK(out.strides() == x.strides(), "eg3d_ops.bias_act: output layout differs from x");

  eg3d_ops::BiasActParams p;
  p.x = x.data_ptr();
  p.b = has_bias ? b.data_ptr() : nullptr;
  p.dy = mode == 1 ? dy.data_ptr() : nullptr;
  p.out = out.data_ptr();
  p.numel = x.numel();
  p.bias_size = has_bias ? x.size(dim) : 1;
  p.bias_step = (has_bias && x.size(dim) > 1) ? x.stride(dim) : 1;  // a size-1 dim's stride is arbitrary
  p.act = static_cast<int>(act);
  p.alpha = static_cast<float>(alpha);
  p.gain = static_cast<float>(gain);
  p.clamp = static_cast<float>(clamp);
  p.clamp_inclusive = clamp_inclusive ? 1 : 0;
  p.mode = static_cast<int>(mode);
  if (p.numel == 0) return out;
  check_launch(eg3d_ops::launch_bias_act(p, code, c10::cuda::getCurrentCUDAStream().stream()), "bias_act");
  return out;
}

// y = upfirdn2d with correlation taps `taps` ([fh, fw] float32, flip and gain applied).
// A tiled kernel serves 4x4 filters with equal up (1 or 2) and down (1 or 2) on
// both axes (not both 2); everything else, or force_generic, uses the generic kernel.
torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor taps, int64_t up_x, int64_t up_y, int64_t down_x, int64_t down_y,
                        int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1, bool channels_last,
                        bool force_generic) {
  TORCH_CHECK(x.is_cuda(), "eg3d_ops.upfirdn2d: x must be a CUDA tensor");
  TORCH_CHECK(x.dim() == 4, "eg3d_ops.upfirdn2d: x must be [N, C, H, W]");
  const int code = dtype_code(x);
  TORCH_CHECK(taps.device() == x.device(), "eg3d_ops.upfirdn2d: taps must be on x's device");
  TORCH_CHECK(taps.scalar_type() == torch::kFloat32 && taps.dim() == 2 && taps.is_contiguous(),
              "eg3d_ops.upfirdn2d: taps must be a contiguous float32 [fh, fw] tensor");
  TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "eg3d_ops.upfirdn2d: up and down must be >= 1");
  const int64_t n = x.size(0), c = x.size(1), in_h = x.size(2), in_w = x.size(3);
  const int64_t f_h = taps.size(0), f_w = taps.size(1);
  TORCH_CHECK(f_h >= 1 && f_w >= 1, "eg3d_ops.upfirdn2d: empty filter");
  const int64_t out_h = (in_h * up_y + pad_y0 + pad_y1 - f_h + down_y) / down_y;
  const int64_t out_w = (in_w * up_x + pad_x0 + pad_x1 - f_w + down_x) / down_x;
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "eg3d_ops.upfirdn2d: output would be empty");
  const int64_t big = int64_t(1) << 30;
  TORCH_CHECK(n < big && c < big && in_h * up_y < big && in_w * up_x < big && out_h * down_y < big &&
                  out_w * down_x < big && f_h * f_w < big,
              "eg3d_ops.upfirdn2d: sizes too large");

  const c10::cuda::CUDAGuard guard(x.device());
  auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  torch::Tensor y = torch::empty({n, c, out_h, out_w}, x.options().memory_format(fmt));

  eg3d_ops::UpfirdnParams p;
  p.x = x.data_ptr();
  p.taps = taps.data_ptr<float>();
  p.y = y.data_ptr();
  p.n = static_cast<int>(n);
  p.c = static_cast<int>(c);
  p.in_h = static_cast<int>(in_h);
  p.in_w = static_cast<int>(in_w);
  p.out_h = static_cast<int>(out_h);
  p.out_w = static_cast<int>(out_w);
  for (int d = 0; d < 4; ++d) {
    p.x_stride[d] = x.stride(d);
    p.y_stride[d] = y.stride(d);
  }
  p.up_x = static_cast<int>(up_x);
  p.up_y = static_cast<int>(up_y);
  p.down_x = static_cast<int>(down_x);
  p.down_y = static_cast<int>(down_y);
  p.pad_x0 = static_cast<int>(pad_x0);
  p.pad_y0 = static_cast<int>(pad_y0);
  p.f_w = static_cast<int>(f_w);
  p.f_h = static_cast<int>(f_h);
  p.channels_last = channels_last ? 1 : 0;
  p.force_generic = force_generic ? 1 : 0;
  if (y.numel() == 0 || x.numel() == 0) return y.zero_();
  check_launch(eg3d_ops::launch_upfirdn2d(p, code, c10::cuda::getCurrentCUDAStream().stream()), "upfirdn2d");
  return y;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "eg3d.ops CUDA kernels: bias_act and upfirdn2d";
  m.def("bias_act", &bias_act, "fused bias + activation + gain + clamp (mode 0) or its gradient (mode 1)",
        py::arg("x"), py::arg("b"), py::arg("dy"), py::arg("dim"), py::arg("act"), py::arg("alpha"), py::arg("gain"),
        py::arg("clamp"), py::arg("clamp_inclusive"), py::arg("mode"));
  m.def("upfirdn2d", &upfirdn2d, "upsample, pad, FIR filter (correlation taps), downsample", py::arg("x"),
        py::arg("taps"), py::arg("up_x"), py::arg("up_y"), py::arg("down_x"), py::arg("down_y"), py::arg("pad_x0"),
        py::arg("pad_x1"), py::arg("pad_y0"), py::arg("pad_y1"), py::arg("channels_last"),
        py::arg("force_generic") = false);
}
