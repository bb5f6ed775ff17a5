"""Small layers of the Zipformer: scaled-init linear layers, BasicNorm, DoubleSwish, a memory-light softmax,
and the forms some of them take in an ONNX export (``exporting_onnx``), where onnxruntime runs them faster.

Gradient-only regularizers (identity in the forward pass) live in ``grad_regularizers.py``.
"""

import contextlib
import random
from typing import Iterator, Tuple

import torch
from torch import Tensor, nn

# DoubleSwish's derivative x -> d/dx [x * sigmoid(x - 1)] lies in [-0.0437, 1.2): stored in 8 bits over this range.
_DERIV_FLOOR = -0.043637
_DERIV_CEIL = 1.2


class _OnnxForms:
    """Whether an ONNX export writes linear layers of the feed-forward and convolution modules as NCHWc 1x1
    convolutions (the default) or as MatMul (inside ``matmul_onnx_forms``)."""

    nchwc = True


def exporting_onnx() -> bool:
    """True while ``torch.onnx.export`` runs the model; always False in TorchScript."""
    if not torch.jit.is_scripting():
        return torch.onnx.is_in_onnx_export()
    return False


def exporting_nchwc_onnx() -> bool:
    """True while ``torch.onnx.export`` runs the model outside ``matmul_onnx_forms``; False in TorchScript."""
    if not torch.jit.is_scripting():
        return exporting_onnx() and _OnnxForms.nchwc
    return False


@contextlib.contextmanager
def matmul_onnx_forms() -> Iterator[None]:
    """ONNX exports inside keep every linear layer a MatMul: for int8 dynamic quantization, as onnxruntime's
    ConvInteger is far slower than its MatMulInteger (70 M encoder: 41 against 9 ms per chunk, one thread)."""
    previous = _OnnxForms.nchwc
    _OnnxForms.nchwc = False
    try:
        yield
    finally:
        _OnnxForms.nchwc = previous


def pointwise_conv(x: Tensor, linear: nn.Linear) -> Tensor:
    """``linear`` over the channels of x (N, in_features, H, W) as a 1x1 convolution -> (N, out_features, H, W).

    For the few rows of a streaming chunk (2 to 16 frames), onnxruntime's NCHWc 1x1 convolution runs a
    384 x 1536 product 25-30% faster than its MatMul (8 rows: 111 against 151 us, one thread).
    """
    return nn.functional.conv2d(x, linear.weight[:, :, None, None], linear.bias)


def double_swish_nchwc(x: Tensor, num_channels: int) -> Tensor:
    """DoubleSwish of x (N, num_channels, H, W) in a form onnxruntime keeps in its NCHWc layout between 1x1
    convolutions: x - 1 as an inference BatchNormalization over the channels (mean 1, variance 1, eps 0), which
    it fuses with the sigmoid into a depthwise convolution. (A Sub would send the tensor back to NCHW and again
    to NCHWc.)"""
    ones = torch.ones(num_channels, dtype=x.dtype, device=x.device)
    return x * torch.sigmoid(nn.functional.batch_norm(x, ones, ones, eps=0.0))


def ScaledLinear(in_features: int, out_features: int, bias: bool = True, initial_scale: float = 1.0) -> nn.Linear:
    """An ``nn.Linear`` whose initial weight is multiplied by ``initial_scale`` and bias drawn from
    U(-0.1 * initial_scale, 0.1 * initial_scale). Nothing is rescaled at run time."""
    linear = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        linear.weight.mul_(initial_scale)
        if linear.bias is not None:
            linear.bias.uniform_(-0.1 * initial_scale, 0.1 * initial_scale)
    return linear


class BasicNorm(nn.Module):
    """LayerNorm without scale or bias: ``x * (mean(x^2 over channels) + exp(eps))^-0.5``.

    ``eps`` is a learned log-epsilon (initially log 0.25); in training, with probability 0.25, it is clamped
    to ``eps_range`` so that it drifts back when outside it.
    """

    def __init__(self, num_channels: int, eps: float = 0.25, eps_range: Tuple[float, float] = (-3.0, 3.0)) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps_min, self.eps_max = eps_range
        self.eps = nn.Parameter(torch.tensor(eps).log())

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., num_channels) float -> same shape, normalized over the last dim."""
        if x.size(-1) != self.num_channels:
            raise ValueError(f"BasicNorm expects x of shape (..., {self.num_channels}), got {list(x.shape)}")
        eps = self.eps
        if self.training:
            eps = self._random_clamp(eps)
        if exporting_onnx():
            return self._onnx_forward(x, eps)
        return x * (x.pow(2).mean(dim=-1, keepdim=True) + eps.exp()).rsqrt()

    @torch.jit.unused
    def _onnx_forward(self, x: Tensor, eps: Tensor) -> Tensor:
        """The same norm as onnxruntime's RMS-norm pattern (Pow, ReduceMean, Add, Sqrt, Div, then Mul by a
        per-channel scale, here ones), which it fuses into one SimplifiedLayerNormalization node."""
        unit_scale = torch.ones(self.num_channels, dtype=x.dtype, device=x.device)
        return x / (x.pow(2).mean(dim=-1, keepdim=True) + eps.exp()).sqrt() * unit_scale

    @torch.jit.unused
    def _random_clamp(self, eps: Tensor) -> Tensor:
        return eps.clamp(min=self.eps_min, max=self.eps_max) if random.random() < 0.25 else eps


def quantize_derivative(deriv: Tensor) -> Tensor:
    """DoubleSwish derivatives (any shape, float in [_DERIV_FLOOR, _DERIV_CEIL)) -> same shape uint8, randomly
    dithered so that ``dequantize_derivative`` is unbiased."""
    scaled = (deriv - _DERIV_FLOOR) * (255.0 / (_DERIV_CEIL - _DERIV_FLOOR)) + torch.rand_like(deriv)
    return scaled.to(torch.uint8)


def dequantize_derivative(quantized: Tensor, dtype: torch.dtype) -> Tensor:
    """uint8 from ``quantize_derivative`` -> the derivatives, within one step (1/255 of the range)."""
    return quantized.to(dtype) * ((_DERIV_CEIL - _DERIV_FLOOR) / 255.0) + _DERIV_FLOOR


class _DoubleSwishFunction(torch.autograd.Function):
    """x * sigmoid(x - 1), saving its derivative for backward instead of x: on CUDA, where memory limits the
    batch, as uint8 (icefall's trick); elsewhere as is, since the dithered quantization made the CPU forward 5x
    slower (measured: 25 ms instead of 5 for a front-end activation of 10 x 8 x 420 x 78)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x32 = x.float()
        s = torch.sigmoid(x32 - 1.0)
        y = x32 * s
        if x.requires_grad:
            deriv = y * (1.0 - s) + s
            ctx.save_for_backward(quantize_derivative(deriv) if x.is_cuda else deriv)
        return y.to(torch.float16) if torch.is_autocast_enabled() else y.to(x.dtype)

    @staticmethod
    def backward(ctx, y_grad: Tensor) -> Tensor:
        (deriv,) = ctx.saved_tensors
        if deriv.dtype == torch.uint8:
            deriv = dequantize_derivative(deriv, y_grad.dtype)
        return y_grad * deriv.to(y_grad.dtype)


class DoubleSwish(nn.Module):
    """``x * sigmoid(x - 1)``, close to swish(swish(x)); the training path saves memory in backward."""

    def forward(self, x: Tensor) -> Tensor:
        """x: any shape, float -> same shape."""
        if torch.jit.is_scripting() or torch.jit.is_tracing() or not x.requires_grad:
            return x * torch.sigmoid(x - 1.0)
        return _DoubleSwishFunction.apply(x)


class _SoftmaxFunction(torch.autograd.Function):
    """Softmax that saves only its output (fp16 under CUDA autocast) and does the backward in fp32."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        y = x.softmax(dim=dim)
        if torch.is_autocast_enabled():
            y = y.to(torch.float16)
        ctx.save_for_backward(y)
        ctx.dim = dim
        ctx.x_dtype = x.dtype
        return y

    @staticmethod
    def backward(ctx, y_grad: Tensor) -> Tuple[Tensor, None]:
        (y,) = ctx.saved_tensors
        y, y_grad = y.float(), y_grad.float()
        x_grad = y * (y_grad - (y * y_grad).sum(dim=ctx.dim, keepdim=True))
        return x_grad.to(ctx.x_dtype), None


def softmax(x: Tensor, dim: int) -> Tensor:
    """``x.softmax(dim)``; when x needs a gradient, a version that keeps only its output for backward."""
    if torch.jit.is_scripting() or torch.jit.is_tracing() or not x.requires_grad:
        return x.softmax(dim=dim)
    return _SoftmaxFunction.apply(x, dim)
