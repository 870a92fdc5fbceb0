""" FractalBrainNet

A CNN built on FractalNet's recursive expansion rule with brain-inspired parts: fractal masks that modulate
features, four "brain-wave band" 1x1 paths, multi-scale (1x1 / 3x3 / 5x5) processing, learned joins between
deep and shallow branches, global attention over spatial tokens and a meta-learning residual on the pooled
features.

Papers:
* `FractalNet: Ultra-Deep Neural Networks without Residuals` - https://arxiv.org/abs/1605.07648
  (Larsson, Maire, Shakhnarovich, ICLR 2017): expansion rule, joins and local / global drop-path.
* FractalBrainNet design: Jose R. F. Junior (2024).

Licence: Apache-2.0
"""
import math
import os
from typing import Any, Dict, List, Optional, Set, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import LayerNorm2d, SelectAdaptivePool2d, get_device_dtype, trunc_normal_, use_fused_attn
from timm.models import (
    build_model_with_cfg,
    checkpoint,
    generate_default_cfgs,
    register_model,
    register_notrace_function,
    register_notrace_module,
)
from torch import Tensor

from .data import DIGITS_LABELS
from .patterns import FractalPatternGenerator, FractalPatternType, resolve_pattern_type

__all__ = [
    'FractalBrainNet', 'FractalNeuralBlock', 'CerebralDynamicsModule', 'AdaptiveScaleProcessor', 'GlobalAttention',
    'FractalPatternType', 'FractalPatternGenerator',
]


# ---------------------------------------------------------------------------------------------------------------
# Resampling as matrices. Both are exact re-statements of F.interpolate(mode='bilinear', align_corners=False)
# and F.adaptive_avg_pool2d, written as (out, in) matrices built from torch.arange so that they trace, script
# and export with dynamic spatial sizes.
# ---------------------------------------------------------------------------------------------------------------

def bilinear_resize_matrix(out_size: int, in_size: int, device: torch.device) -> Tensor:
    """(out_size, in_size) float32 matrix M with M @ v == 1-D bilinear resize of v (align_corners=False)."""
    dst = torch.arange(out_size, device=device).to(torch.float32)
    # NOTE: same float32 operation order as PyTorch's kernel: scale = in / out, src = scale * (dst + 0.5) - 0.5
    scale = torch.full((), in_size, device=device, dtype=torch.float32) / out_size
    src = (scale * (dst + 0.5) - 0.5).clamp(min=0.)
    i0 = src.floor().to(torch.int64).clamp(max=in_size - 1)
    i1 = (i0 + 1).clamp(max=in_size - 1)
    w1 = src - i0.to(torch.float32)
    cols = torch.arange(in_size, device=device)
    m0 = (cols.unsqueeze(0) == i0.unsqueeze(1)).to(torch.float32) * (1. - w1).unsqueeze(1)
    m1 = (cols.unsqueeze(0) == i1.unsqueeze(1)).to(torch.float32) * w1.unsqueeze(1)
    return m0 + m1


def adaptive_avg_matrix(out_size: int, in_size: int, device: torch.device) -> Tensor:
    """(out_size, in_size) float32 matrix M with M @ v == 1-D adaptive average pooling of v."""
    idx = torch.arange(out_size, device=device)
    start = torch.div(idx * in_size, out_size, rounding_mode='floor')
    end = torch.div((idx + 1) * in_size + out_size - 1, out_size, rounding_mode='floor')
    pos = torch.arange(in_size, device=device)
    inside = (pos.unsqueeze(0) >= start.unsqueeze(1)) & (pos.unsqueeze(0) < end.unsqueeze(1))
    return inside.to(torch.float32) / (end - start).to(torch.float32).unsqueeze(1)


def band_modulation(pattern: Tensor, height: int, width: int) -> Tensor:
    """The fractal map resized to (height, width) as m, turned into the four band masks (4, height, width):
    alpha: m, beta: 1 - m, gamma: 0.5 * m, theta: sin(pi * m)."""
    ph, pw = pattern.shape[-2], pattern.shape[-1]
    rh = bilinear_resize_matrix(height, ph, pattern.device)
    rw = bilinear_resize_matrix(width, pw, pattern.device)
    m = rh @ pattern.to(torch.float32) @ rw.t()
    return torch.stack([m, 1. - m, 0.5 * m, torch.sin(math.pi * m)], dim=0)


@register_notrace_function
def band_mask_like(pattern: Tensor, x: Tensor) -> Tensor:
    """(1, C, H, W) modulation for the (B, C, H, W) feature map x: each of the four band masks repeated over
    its C/4 channels, in x's dtype and memory layout (channels_last for a channels_last x)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    masks = band_modulation(pattern, H, W).to(x.dtype)
    group = C // 4
    if x.is_contiguous(memory_format=torch.channels_last):
        mask = masks.permute(1, 2, 0).unsqueeze(-1).expand(H, W, 4, group)
        return mask.reshape(1, H, W, C).permute(0, 3, 1, 2)
    return masks.unsqueeze(1).expand(4, group, H, W).reshape(1, C, H, W)


def take_indices(num_features: int, indices: Optional[Union[int, List[int]]] = None) -> Tuple[List[int], int]:
    """timm's intermediate-index convention: None takes all, an int n the last n, a list those (negative from end)."""
    if indices is None:
        indices = num_features
    if isinstance(indices, int):
        if not 0 < indices <= num_features:
            raise ValueError(f'Cannot take the last {indices} of {num_features} features.')
        taken = list(range(num_features - indices, num_features))
    else:
        taken = [num_features + i if i < 0 else i for i in indices]
        bad = [i for i in taken if not 0 <= i < num_features]
        if bad:
            raise ValueError(f'Feature indices {bad} are out of range 0..{num_features - 1}.')
    return taken, max(taken)


@register_notrace_function
def check_input(x: Tensor, in_chans: int, min_size: int) -> None:
    """Raise a ValueError naming what was expected when x is not a usable (B, in_chans, H, W) image batch."""
    if x.dim() != 4:
        raise ValueError(
            'FractalBrainNet expects a 4-D image batch (B, C, H, W), got a tensor with ' + str(x.dim()) +
            ' dimension(s); add a batch dimension with x.unsqueeze(0) for a single image.')
    if x.shape[1] != in_chans:
        raise ValueError(
            'FractalBrainNet was built for ' + str(in_chans) + ' input channel(s) but got ' + str(x.shape[1]) +
            '; pass in_chans=' + str(x.shape[1]) + ' to timm.create_model or convert the images.')
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError(
            'Input of ' + str(x.shape[2]) + 'x' + str(x.shape[3]) + ' pixels is too small: this FractalBrainNet '
            'reduces the resolution ' + str(min_size) + 'x, so height and width must be at least ' + str(min_size) +
            '.')


def _skip_input_check() -> bool:
    # NOTE: symbolic shapes (torch.compile / torch.export / ONNX dynamo, torch.jit.trace) would turn the size
    # checks into shape guards, so the check only runs eagerly, in TorchScript and in FX graphs.
    if torch.jit.is_scripting():
        return False
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def sample_columns(batch_size: int, num_columns: int, global_ratio: float, device: torch.device) -> Tensor:
    """Per-sample drop-path plan: 0 means local drop-path, k > 0 means global drop-path keeping column k."""
    is_global = torch.rand(batch_size, device=device) < global_ratio
    column = torch.randint(1, num_columns + 1, (batch_size,), device=device)
    return torch.where(is_global, column, torch.zeros_like(column))


# ---------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------

@register_notrace_module  # a leaf in FX graphs, like nn.BatchNorm2d
class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that can fold its eval-mode affine map into the conv before it.

    In eval mode the modules below run conv -> BatchNorm as one conv with the folded weight and bias (computed
    on each call from the current parameters and running statistics, so it never goes stale): one pass over the
    activations less, the same math.
    """

    def fold(self, weight: Tensor, bias: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """(weight, bias) of the conv computing self(conv(x)) in eval mode, for a conv with (weight, bias)."""
        mean, var, gamma, beta = self.running_mean, self.running_var, self.weight, self.bias
        assert mean is not None and var is not None and gamma is not None and beta is not None
        scale = gamma * torch.rsqrt(var + self.eps)
        folded_weight = weight * scale.to(weight.dtype).reshape(-1, 1, 1, 1)
        if bias is None:
            folded_bias = beta - mean * scale
        else:
            folded_bias = (bias - mean) * scale + beta
        return folded_weight, folded_bias.to(weight.dtype)


def _use_eval_fold(training: bool) -> bool:
    # NOTE: the TorchScript-based ONNX exporter (jit.trace) cannot export a conv whose kernel is computed in the
    # graph, so traced graphs keep the plain conv -> BatchNorm.
    return not training and not torch.jit.is_tracing()


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: BatchNorm2d) -> nn.Conv2d:
    """A conv with bias computing bn(conv(x)) with the BatchNorm's running statistics (eval-mode math)."""
    weight, bias = bn.fold(conv.weight, conv.bias)
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.groups, bias=True, device=conv.weight.device, dtype=conv.weight.dtype,
    )
    fused.weight.copy_(weight)
    fused.bias.copy_(bias)
    return fused


class ConvNormAct(nn.Module):
    """conv (no bias) -> BatchNorm -> GELU."""

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            kernel_size: int,
            stride: int = 1,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, bias=False, **dd)
        self.norm = BatchNorm2d(out_chs, **dd)
        self.act = nn.GELU()

    def reparameterize(self) -> None:
        """Fold the BatchNorm into the conv (deploy; eval-mode math)."""
        if isinstance(self.norm, BatchNorm2d):
            self.conv = fuse_conv_bn(self.conv, self.norm)
            self.norm = nn.Identity()

    def conv_norm(self, x: Tensor) -> Tensor:
        """norm(conv(x)), as one conv with the BatchNorm folded in when in eval mode."""
        if isinstance(self.norm, BatchNorm2d) and _use_eval_fold(self.training):
            weight, bias = self.norm.fold(self.conv.weight, self.conv.bias)
            return F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding)
        return self.norm(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv_norm(x))


class Stem(ConvNormAct):
    """conv7x7 stride 2 -> BatchNorm -> GELU -> AdaptiveScaleProcessor."""

    def __init__(self, in_chans: int, out_chs: int, device=None, dtype=None):
        super().__init__(in_chans, out_chs, 7, stride=2, device=device, dtype=dtype)
        self.asp = AdaptiveScaleProcessor(out_chs, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        # NOTE: feature maps run channels_last from here on: the 1x1 convs and LayerNorm2d's permutes then touch
        # contiguous memory (no layout round trips), and every op keeps the format.
        x = x.contiguous(memory_format=torch.channels_last)
        return self.asp(self.act(self.conv_norm(x)))


class CerebralDynamicsModule(nn.Module):
    """Four "brain-wave band" 1x1 paths modulated per pixel by the fractal map, integrated, normed, residual.

    With m the fractal map resized to the input's H x W:
    out = LayerNorm(integration(cat[alpha(x) * m, beta(x) * (1 - m), gamma(x) * 0.5 m, theta(x) * sin(pi m)])) + x

    The four band convs (C -> C/4 each) are stored and run as one C -> C conv `bands`, whose output channel
    groups are alpha, beta, gamma, theta in that order.
    """

    def __init__(
            self,
            channels: int,
            fractal_pattern: Union[str, FractalPatternType] = FractalPatternType.MANDELBROT,
            pattern_resolution: int = 32,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if channels % 4:
            raise ValueError(f'CerebralDynamicsModule needs channels divisible by 4 (four bands), got {channels}.')
        self.channels = channels
        self.pattern_type = resolve_pattern_type(fractal_pattern)
        self.pattern_resolution = pattern_resolution
        self.bands = nn.Conv2d(channels, channels, 1, **dd)
        self.integration = nn.Conv2d(channels, channels, 1, **dd)
        self.norm = LayerNorm2d(channels, **dd)
        self.register_buffer(
            'fractal_pattern',
            torch.empty(pattern_resolution, pattern_resolution, device=device, dtype=dtype),
            persistent=False,
        )
        self.init_non_persistent_buffers()

    def init_non_persistent_buffers(self) -> None:
        """(Re)compute the fractal map, e.g. after `to_empty()`; it is derived from the config, not stored."""
        pattern = FractalPatternGenerator.generate(self.pattern_type, self.pattern_resolution)
        if self.fractal_pattern.device.type != 'meta':
            with torch.no_grad():
                self.fractal_pattern.copy_(pattern)

    def forward(self, x: Tensor) -> Tensor:
        mask = band_mask_like(self.fractal_pattern, x)
        # NOTE: in place on fresh outputs (not views) that autograd does not save: conv and LayerNorm keep their
        # inputs. The LayerNorm runs on the channels-last view and the residual is added to its own output.
        y = self.integration(self.bands(x).mul_(mask))
        n = self.norm
        out = F.layer_norm(y.permute(0, 2, 3, 1), n.normalized_shape, n.weight, n.bias, n.eps)
        return out.add_(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class FractalJoin(nn.Module):
    """Learned "fractal attention" join: per-pixel gates (a, b) = sigmoid(conv(GELU(conv(cat[deep, shallow]))))."""

    def __init__(self, channels: int, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        hidden = max(channels // 4, 1)
        self.fc1 = nn.Conv2d(2 * channels, hidden, 1, **dd)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, 2, 1, **dd)

    def gates(self, deep: Tensor, shallow: Tensor) -> Tensor:
        if torch.jit.is_tracing():
            hidden = self.fc1(torch.cat([deep, shallow], dim=1))
        else:
            # fc1 over cat[deep, shallow] as the sum of its two halves: the 2C-channel concatenation is never built
            C = deep.shape[1]
            hidden = F.conv2d(deep, self.fc1.weight[:, :C], self.fc1.bias)
            hidden = hidden + F.conv2d(shallow, self.fc1.weight[:, C:])
        return torch.sigmoid(self.fc2(self.act(hidden)))

    def forward(self, deep: Tensor, shallow: Tensor) -> Tensor:
        a, b = self.gates(deep, shallow).chunk(2, dim=1)
        return torch.addcmul(shallow * b, deep, a)


class ShallowBranch(nn.Module):
    """conv3x3 -> CerebralDynamics -> BatchNorm -> GELU, the one-conv column of a fractal block."""

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            fractal_pattern: FractalPatternType,
            pattern_resolution: int,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, **dd)
        self.cerebral = CerebralDynamicsModule(out_chs, fractal_pattern, pattern_resolution, **dd)
        self.norm = BatchNorm2d(out_chs, **dd)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.cerebral(self.conv(x))))


class FractalNeuralBlock(nn.Module):
    """FractalNet's expansion rule with cerebral dynamics.

    level 1: conv3x3 -> BatchNorm -> CerebralDynamics -> GELU.
    level L > 1: join(deep, shallow) with deep = two level L-1 blocks in sequence and shallow = `ShallowBranch`.
    A level-L block holds 2**L - 1 conv3x3 layers; its column k (1 <= k <= L) is the path through 2**(k-1) of them.

    Drop-path (FractalNet): in training with `drop_prob` > 0 each sample follows a plan from `forward(x, column)`:
    column 0 is local drop-path (every join drops each input with probability drop_prob, keeping at least one),
    column k > 0 is global drop-path (only column min(k, L) is kept). Both branches are always computed and
    dropped ones are multiplied by zero, so every parameter takes part in every step (safe under DDP without
    find_unused_parameters). The join's gates see the dropped branch as zeros and its output is rescaled by
    2 / (number of kept inputs), the counterpart of FractalNet's mean over the active inputs.
    """

    def __init__(
            self,
            level: int,
            in_chs: int,
            out_chs: int,
            fractal_pattern: Union[str, FractalPatternType] = FractalPatternType.MANDELBROT,
            pattern_resolution: int = 32,
            drop_prob: float = 0.,
            global_ratio: float = 0.5,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if level < 1:
            raise ValueError(f'Fractal level must be >= 1, got {level}.')
        fractal_pattern = resolve_pattern_type(fractal_pattern)
        self.level = level
        self.drop_prob = drop_prob
        self.global_ratio = global_ratio
        self.grad_checkpointing = False
        if level == 1:
            self.conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False, **dd)
            self.norm = BatchNorm2d(out_chs, **dd)
            self.cerebral = CerebralDynamicsModule(out_chs, fractal_pattern, pattern_resolution, **dd)
            self.act = nn.GELU()
            self.deep = None
            self.shallow = None
            self.join = None
        else:
            self.conv = None
            self.norm = None
            self.cerebral = None
            self.act = None
            sub = dict(
                fractal_pattern=fractal_pattern, pattern_resolution=pattern_resolution,
                drop_prob=drop_prob, global_ratio=global_ratio, **dd,
            )
            self.deep = nn.ModuleList([
                FractalNeuralBlock(level - 1, in_chs, out_chs, **sub),
                FractalNeuralBlock(level - 1, out_chs, out_chs, **sub),
            ])
            self.shallow = ShallowBranch(in_chs, out_chs, fractal_pattern, pattern_resolution, **dd)
            self.join = FractalJoin(out_chs, **dd)

    # level 1 runs conv -> BatchNorm like ConvNormAct (a level > 1 block has no norm, so reparameterize skips it)
    reparameterize = ConvNormAct.reparameterize
    conv_norm = ConvNormAct.conv_norm

    def _base(self, x: Tensor) -> Tensor:
        assert self.conv is not None and self.norm is not None and self.cerebral is not None
        assert self.act is not None
        return self.act(self.cerebral(self.conv_norm(x)))

    def forward(self, x: Tensor, column: Optional[Tensor] = None) -> Tensor:
        if self.deep is None:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                return checkpoint(self._base, x)
            return self._base(x)
        assert self.shallow is not None and self.join is not None

        drop = self.training and self.drop_prob > 0.
        child_column: Optional[Tensor] = None
        keep_deep: Optional[Tensor] = None
        keep_shallow: Optional[Tensor] = None
        if drop:
            if column is None:
                column = sample_columns(x.shape[0], self.level, self.global_ratio, x.device)
            is_global = column > 0
            col = column.clamp(max=self.level)
            p = self.drop_prob
            local_deep = torch.rand(col.shape, device=x.device) >= p
            local_shallow = torch.rand(col.shape, device=x.device) >= p
            none_kept = ~(local_deep | local_shallow)
            pick_deep = torch.rand(col.shape, device=x.device) < 0.5
            local_deep = local_deep | (none_kept & pick_deep)
            local_shallow = local_shallow | (none_kept & ~pick_deep)
            keep_deep = torch.where(is_global, col >= 2, local_deep)
            keep_shallow = torch.where(is_global, col == 1, local_shallow)
            child_column = torch.where(is_global, (col - 1).clamp(min=1), torch.zeros_like(col))

        deep = x
        for blk in self.deep:
            deep = blk(deep, child_column)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            shallow = checkpoint(self.shallow, x)
        else:
            shallow = self.shallow(x)

        if keep_deep is None or keep_shallow is None:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                return checkpoint(self.join, deep, shallow)
            return self.join(deep, shallow)

        kd = keep_deep.to(deep.dtype).view(-1, 1, 1, 1)
        ks = keep_shallow.to(deep.dtype).view(-1, 1, 1, 1)
        out = self.join(deep * kd, shallow * ks)
        return out * (2. / (kd + ks))

    def column_convs(self, k: int) -> List[nn.Conv2d]:
        """The conv3x3 layers on column k (1 <= k <= level), in order: 2**(k-1) of them."""
        if not 1 <= k <= self.level:
            raise ValueError(f'Column must be in 1..{self.level}, got {k}.')
        if self.deep is None:
            assert self.conv is not None
            return [self.conv]
        assert self.shallow is not None
        if k == 1:
            return [self.shallow.conv]
        return [c for blk in self.deep for c in blk.column_convs(k - 1)]


class AdaptiveScaleProcessor(nn.Module):
    """Local (1x1), regional (3x3) and global (5x5) convs, concatenated, fused by 1x1 -> BatchNorm -> GELU, + x."""

    def __init__(self, channels: int, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.channels = channels
        self.local_processor = nn.Conv2d(channels, channels, 1, **dd)
        self.regional_processor = nn.Conv2d(channels, channels, 3, padding=1, **dd)
        self.global_processor = nn.Conv2d(channels, channels, 5, padding=2, **dd)
        self.fusion = nn.Conv2d(3 * channels, channels, 1, bias=False, **dd)
        self.norm = BatchNorm2d(channels, **dd)
        self.act = nn.GELU()
        self.fused: Optional[nn.Conv2d] = None

    def fused_kernel(self) -> Tuple[Tensor, Tensor]:
        """(weight, bias) of the single 5x5 conv equal to fusion(cat[local(x), regional(x), global(x)]).

        Differentiable: forward() runs the processor through this kernel (25 C^2 instead of 38 C^2 multiply-
        accumulates per pixel, no 3C-channel concatenation) and gradients reach the four convs' weights.
        """
        C = self.channels
        f = self.fusion.weight.reshape(C, 3, C)
        weight = torch.einsum('oc,cikl->oikl', f[:, 2], self.global_processor.weight)
        weight = weight + F.pad(torch.einsum('oc,cikl->oikl', f[:, 1], self.regional_processor.weight), (1, 1, 1, 1))
        weight = weight + F.pad(torch.einsum('oc,cikl->oikl', f[:, 0], self.local_processor.weight), (2, 2, 2, 2))
        b_local, b_regional, b_global = \
            self.local_processor.bias, self.regional_processor.bias, self.global_processor.bias
        assert b_local is not None and b_regional is not None and b_global is not None
        return weight, f[:, 0] @ b_local + f[:, 1] @ b_regional + f[:, 2] @ b_global

    def reparameterize(self) -> None:
        """Fold the three branches, the 1x1 fusion and the BatchNorm into one 5x5 conv with bias (deploy).

        25 C^2 instead of 38 C^2 multiply-accumulates per pixel, with the same eval-mode outputs.
        """
        if self.fused is not None:
            return
        with torch.no_grad():
            weight, bias = self.fused_kernel()
        conv = nn.Conv2d(self.channels, self.channels, 5, padding=2, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
        self.fused = fuse_conv_bn(conv, self.norm)
        del self.local_processor, self.regional_processor, self.global_processor, self.fusion
        self.norm = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.fused is not None:
            return self.act(self.fused(x)).add_(x)
        if torch.jit.is_tracing():
            # NOTE: the TorchScript-based ONNX exporter cannot export a conv whose kernel is computed in the graph;
            # the branch formulation is the same math (tests check the two against each other).
            y = torch.cat([self.local_processor(x), self.regional_processor(x), self.global_processor(x)], dim=1)
            return self.act(self.norm(self.fusion(y))) + x
        weight, bias = self.fused_kernel()
        if isinstance(self.norm, BatchNorm2d) and _use_eval_fold(self.training):
            weight, bias = self.norm.fold(weight, bias)
            y = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=2)
        else:
            y = self.norm(F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=2))
        # NOTE: in place on GELU's fresh output, which its backward does not need
        return self.act(y).add_(x)


class GlobalAttention(nn.Module):
    """Pre-norm multi-head attention over the spatial tokens of a feature map, with a residual.

    Queries are all H*W tokens; keys and values come from the normed map average-pooled to a fixed
    kv_grid x kv_grid grid (as PVT v2 does), so the cost grows linearly with H*W.
    """
    fused_attn: torch.jit.Final[bool]

    def __init__(
            self,
            dim: int,
            num_heads: int = 8,
            kv_grid: int = 7,
            attn_drop: float = 0.,
            proj_drop: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'GlobalAttention dim {dim} must be divisible by num_heads {num_heads}.')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.kv_grid = kv_grid
        self.fused_attn = use_fused_attn()
        self.norm = nn.LayerNorm(dim, **dd)
        self.q = nn.Linear(dim, dim, **dd)
        self.kv = nn.Linear(dim, 2 * dim, **dd)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, **dd)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        # NOTE: norm the channels-last view before merging H and W: the normed tensor is contiguous, so the merge
        # is a plain view and export with dynamic sizes needs no stride guards.
        tokens = self.norm(x.permute(0, 2, 3, 1)).flatten(1, 2)  # B, N, C
        q = self.q(tokens).reshape(B, H * W, self.num_heads, self.head_dim).transpose(1, 2)

        g = self.kv_grid
        ph = adaptive_avg_matrix(g, H, x.device)
        pw = adaptive_avg_matrix(g, W, x.device)
        # (g*g, H*W) pooling matrix: the separable adaptive average pool applied to the token sequence
        pool = (ph.unsqueeze(1).unsqueeze(3) * pw.unsqueeze(0).unsqueeze(2)).reshape(g * g, H * W)
        pooled = pool.to(x.dtype) @ tokens  # B, g*g, C
        kv = self.kv(pooled).reshape(B, g * g, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)

        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = self.attn_drop(attn.softmax(dim=-1))
            out = attn @ v
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, H * W, C)))
        return x + out.reshape(B, H, W, C).permute(0, 3, 1, 2)


class MetaLearner(nn.Module):
    """Residual "continuous learning" MLP on the pooled features: f + scale * MLP(f), MLP C -> C/4 -> GELU -> C."""

    def __init__(self, dim: int, scale: float = 0.1, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.scale = scale
        self.fc1 = nn.Linear(dim, max(dim // 4, 1), **dd)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(max(dim // 4, 1), dim, **dd)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.fc2(self.act(self.fc1(x)))


class FractalBrainHead(nn.Module):
    """pool -> meta learner -> dropout -> Linear(C, C/2) -> GELU -> dropout -> Linear(C/2, num_classes).

    Without pooling (global_pool='') the same layers run on every spatial position and the output stays 4-D.
    `reset(..., reset_other=True)` keeps only pooling and the classifier (used when pruning features).
    """

    def __init__(
            self,
            in_features: int,
            num_classes: int,
            pool_type: str = 'avg',
            drop_rate: float = 0.,
            meta_learner: bool = True,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.in_features = in_features
        self.hidden_size = in_features // 2
        self.global_pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=bool(pool_type))
        self.spatial = not pool_type
        self.meta = MetaLearner(in_features, **dd) if meta_learner else nn.Identity()
        self.drop1 = nn.Dropout(drop_rate)
        self.fc1 = nn.Linear(in_features, self.hidden_size, **dd)
        self.act = nn.GELU()
        self.drop2 = nn.Dropout(drop_rate / 2)
        self.fc = nn.Linear(self.hidden_size, num_classes, **dd) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int, pool_type: Optional[str] = None, reset_other: bool = False,
              in_features: Optional[int] = None):
        dd = get_device_dtype(self)
        if pool_type is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=bool(pool_type)).train(self.training)
            self.spatial = not pool_type
        if reset_other:
            self.meta = nn.Identity()
            self.fc1 = nn.Identity()
            self.act = nn.Identity()
            self.in_features = in_features if in_features is not None else self.in_features
            self.hidden_size = self.in_features
        self.fc = nn.Linear(self.hidden_size, num_classes, **dd) if num_classes > 0 else nn.Identity()
        self.fc.train(self.training)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.global_pool(x)
        if self.spatial:
            x = x.permute(0, 2, 3, 1)
        x = self.act(self.fc1(self.drop1(self.meta(x))))
        x = self.drop2(x)
        if not pre_logits:
            x = self.fc(x)
        if self.spatial:
            x = x.permute(0, 3, 1, 2)
        return x


# ---------------------------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------------------------

class FractalStage(nn.Module):
    """[downsample (conv3x3 stride 2 -> BN -> GELU)] -> FractalNeuralBlock -> AdaptiveScaleProcessor."""

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            level: int,
            downsample: bool,
            fractal_pattern: FractalPatternType,
            pattern_resolution: int,
            drop_prob: float = 0.,
            global_ratio: float = 0.5,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = ConvNormAct(in_chs, in_chs, 3, stride=2, **dd) if downsample else nn.Identity()
        self.block = FractalNeuralBlock(
            level, in_chs, out_chs, fractal_pattern, pattern_resolution, drop_prob, global_ratio, **dd)
        self.asp = AdaptiveScaleProcessor(out_chs, **dd)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        for m in self.block.modules():
            if isinstance(m, FractalNeuralBlock):
                m.grad_checkpointing = enable

    def forward(self, x: Tensor, column: Optional[Tensor] = None) -> Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint(self.downsample, x)
            x = self.block(x, column)
            return checkpoint(self.asp, x)
        x = self.downsample(x)
        x = self.block(x, column)
        return self.asp(x)


class FractalBrainNet(nn.Module):
    """FractalBrainNet.

    stem (conv7x7/2 -> BN -> GELU -> AdaptiveScaleProcessor) -> stages (FractalStage, channels
    base * 2**min(i, 4), a stride-2 downsample at the start of every stage after the first) -> global attention
    over spatial tokens (forward_features ends here) -> head (pool -> meta learner -> MLP classifier).

    How it runs (same math as the plain formulation in tests/reference.py, checked in values and gradients):
    feature maps are channels_last from the stem on; the four band convs are one conv; each
    AdaptiveScaleProcessor runs as its composed 5x5 kernel; in eval mode every conv -> BatchNorm pair runs as one
    conv with the BatchNorm folded in (recomputed per call, so it follows weight updates); the join's gate conv
    reads deep and shallow without concatenating them; residuals are added in place where autograd allows.
    """

    def __init__(
            self,
            fractal_levels: Tuple[int, ...] = (2, 3, 4),
            base_channels: int = 64,
            fractal_pattern: Union[str, FractalPatternType] = FractalPatternType.MANDELBROT,
            pattern_resolution: int = 32,
            num_heads: int = 8,
            kv_grid: int = 7,
            enable_continuous_learning: bool = True,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = 'avg',
            drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            global_drop_ratio: float = 0.5,
            device=None,
            dtype=None,
    ):
        """
        Args:
            fractal_levels: Fractal level of each stage's block.
            base_channels: Channels of the stem and the first stage.
            fractal_pattern: Fractal map used by every CerebralDynamicsModule (name or FractalPatternType).
            pattern_resolution: Side of the fractal map before it is resized to each feature map.
            num_heads: Heads of the global attention.
            kv_grid: Keys / values of the global attention are pooled to kv_grid x kv_grid.
            enable_continuous_learning: Add the meta-learner residual MLP on the pooled features.
            num_classes: Classifier outputs (0 removes the classifier).
            in_chans: Input image channels.
            global_pool: Global pooling type ('' keeps the spatial map).
            drop_rate: Classifier dropout (the second classifier dropout uses half of it).
            drop_path_rate: FractalNet local drop-path probability per join input (0 disables drop-path).
            global_drop_ratio: Share of samples trained with global drop-path (one column) when drop-path is on.
        """
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if not fractal_levels:
            raise ValueError('fractal_levels must name at least one stage.')
        if base_channels % 4:
            raise ValueError(f'base_channels must be divisible by 4, got {base_channels}.')
        fractal_pattern = resolve_pattern_type(fractal_pattern)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.drop_path_rate = drop_path_rate
        self.global_drop_ratio = global_drop_ratio
        self.fractal_levels = tuple(fractal_levels)
        self.fractal_pattern = fractal_pattern
        self.max_level = max(self.fractal_levels)
        self.grad_checkpointing = False

        self.stem = Stem(in_chans, base_channels, **dd)
        self.feature_info = [dict(num_chs=base_channels, reduction=2, module='stem')]

        stages = []
        prev_chs = base_channels
        reduction = 2
        for i, level in enumerate(self.fractal_levels):
            chs = base_channels * 2 ** min(i, 4)
            if i > 0:
                reduction *= 2
            stages.append(FractalStage(
                prev_chs, chs, level, downsample=i > 0, fractal_pattern=fractal_pattern,
                pattern_resolution=pattern_resolution, drop_prob=drop_path_rate, global_ratio=global_drop_ratio,
                **dd,
            ))
            self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f'stages.{i}'))
            prev_chs = chs
        self.stages = nn.Sequential(*stages)
        self.min_input_size = reduction

        self.num_features = prev_chs
        self.global_attn = GlobalAttention(prev_chs, num_heads=num_heads, kv_grid=kv_grid, **dd)
        self.head = FractalBrainHead(
            prev_chs, num_classes, pool_type=global_pool, drop_rate=drop_rate,
            meta_learner=enable_continuous_learning, **dd,
        )
        self.head_hidden_size = self.head.hidden_size
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Initialise every parameter ("neuroplasticity" init) and recompute the fractal-map buffers."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, LayerNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                if isinstance(m, nn.BatchNorm2d):
                    m.reset_running_stats()
            elif isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            if hasattr(m, 'init_non_persistent_buffers'):
                m.init_non_persistent_buffers()
        for m in self.modules():
            if isinstance(m, FractalJoin):
                # NOTE: gates start at sigmoid(0) = 0.5 each, FractalNet's mean join; a fan-out init of this
                # 2-channel conv would saturate the sigmoids and switch branches off at random before training.
                nn.init.zeros_(m.fc2.weight)
                nn.init.zeros_(m.fc2.bias)
        # NOTE: the two classifier Linears keep PyTorch's fan-in scaled default init (as a classifier made by
        # reset_classifier does); two stacked std 0.02 layers starve the gradients (README, "Why the seed's
        # program barely learns").
        for fc in (self.head.fc1, self.head.fc):
            if isinstance(fc, nn.Linear):
                fc.reset_parameters()

    @torch.jit.ignore
    def no_weight_decay(self) -> Set[str]:
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(
            stem=r'^stem\.',
            blocks=r'^stages\.(\d+)' if coarse else [
                (r'^stages\.(\d+)\.downsample', (0,)),
                (r'^stages\.(\d+)\.block', (1,)),
                (r'^stages\.(\d+)\.asp', (2,)),
                (r'^global_attn', (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        for stage in self.stages:
            stage.set_grad_checkpointing(enable)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def _column_plan(self, x: Tensor) -> Optional[Tensor]:
        if self.training and self.drop_path_rate > 0.:
            return sample_columns(x.shape[0], self.max_level, self.global_drop_ratio, x.device)
        return None

    def _stem(self, x: Tensor) -> Tensor:
        if not _skip_input_check():
            check_input(x, self.in_chans, self.min_input_size)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint(self.stem, x)
        return self.stem(x)

    def forward_intermediates(
            self,
            x: Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[Tensor], Tuple[Tensor, List[Tensor]]]:
        """Forward features that returns intermediates (index 0 is the stem, index i + 1 is stage i).

        Args:
            x: Input image tensor.
            indices: Take last n features if int, all if None, select matching indices if sequence.
            norm: Apply the global attention (the post-stage block) to the last intermediate.
            stop_early: Stop iterating over stages when the last desired intermediate is reached.
            output_fmt: Shape of intermediate feature outputs (only 'NCHW').
            intermediates_only: Only return intermediate features.
        """
        assert output_fmt == 'NCHW', 'Output format must be NCHW.'
        intermediates = []
        taken, max_index = take_indices(len(self.stages) + 1, indices)
        last_idx = len(self.stages)
        column = self._column_plan(x)

        x = self._stem(x)
        if 0 in taken:
            intermediates.append(x)

        if torch.jit.is_scripting() or not stop_early:
            stages = self.stages
        else:
            stages = self.stages[:max_index]
        feat_idx = 0
        for stage in stages:
            feat_idx += 1
            x = stage(x, column)
            if feat_idx in taken:
                if norm and feat_idx == last_idx:
                    intermediates.append(self.global_attn(x))
                else:
                    intermediates.append(x)

        if intermediates_only:
            return intermediates
        if feat_idx == last_idx:
            x = self.global_attn(x)
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Prune the stages (and post-stage attention / head) not needed for the given intermediates."""
        taken, max_index = take_indices(len(self.stages) + 1, indices)
        prune_end = max_index < len(self.stages)
        if prune_norm or prune_end:
            self.global_attn = nn.Identity()
        self.stages = self.stages[:max_index]
        if prune_end:
            self.num_features = self.feature_info[max_index]['num_chs']
            self.head.reset(0, '', reset_other=True, in_features=self.num_features)
            self.head_hidden_size = self.head.hidden_size
            self.num_classes = 0
        elif prune_head:
            self.head.reset(0, '', reset_other=True)
            self.head_hidden_size = self.head.hidden_size
            self.num_classes = 0
        return taken

    def forward_features(self, x: Tensor) -> Tensor:
        column = self._column_plan(x)
        x = self._stem(x)
        for stage in self.stages:
            x = stage(x, column)
        return self.global_attn(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        return self.forward_head(x)

    @torch.jit.ignore
    @torch.no_grad()
    def analyze_fractal_patterns(self, x: Tensor) -> Dict[str, Any]:
        """Per-stage activity maps and the seed's two statistics about them, from an eval-mode forward.

        Returns a dict with
            'fractal_pattern': the model's fractal map (R, R),
            'stage_maps': per stage, the channel mean of its output, (B, 1, h, w),
            'pattern_complexity': per stage, the entropy of the softmax over each image's map (mean over batch),
            'hierarchical_organization': dict with 'per_level' (Pearson correlation between consecutive stage
                maps, the finer one resized to the coarser, mean over batch), 'correlation' (their mean) and
                'hierarchy_score' (1 - correlation).
        The model's train / eval mode is restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            stage_idx = list(range(1, len(self.stages) + 1))
            feats = self.forward_intermediates(x, indices=stage_idx, intermediates_only=True)
        finally:
            self.train(was_training)
        maps = [f.float().mean(dim=1, keepdim=True) for f in feats]
        complexity = []
        for m in maps:
            prob = m.flatten(1).softmax(dim=1)
            complexity.append(float((-(prob * torch.log(prob + 1e-8)).sum(dim=1)).mean()))
        per_level = []
        for fine, coarse in zip(maps[:-1], maps[1:]):
            fine_r = F.interpolate(fine, size=coarse.shape[-2:], mode='bilinear', align_corners=False)
            a = fine_r.flatten(1) - fine_r.flatten(1).mean(dim=1, keepdim=True)
            b = coarse.flatten(1) - coarse.flatten(1).mean(dim=1, keepdim=True)
            denom = a.norm(dim=1) * b.norm(dim=1)
            corr = torch.where(denom > 0, (a * b).sum(dim=1) / denom.clamp(min=1e-12), torch.zeros_like(denom))
            per_level.append(float(corr.mean()))
        correlation = sum(per_level) / len(per_level) if per_level else 0.
        first_cd = next(m for m in self.modules() if isinstance(m, CerebralDynamicsModule))
        return {
            'fractal_pattern': first_cd.fractal_pattern.detach().cpu(),
            'stage_maps': maps,
            'pattern_complexity': complexity,
            'hierarchical_organization': {
                'per_level': per_level,
                'correlation': correlation,
                'hierarchy_score': 1. - correlation,
            },
        }


def checkpoint_filter_fn(state_dict: Dict[str, Tensor], model: FractalBrainNet) -> Dict[str, Tensor]:
    """Unwrap train.py / EMA / DDP checkpoints and drop fractal-map copies that older exports stored."""
    for key in ('state_dict_ema', 'state_dict', 'model'):
        if key in state_dict and isinstance(state_dict[key], dict):
            state_dict = state_dict[key]
            break
    out = {}
    for k, v in state_dict.items():
        if k.startswith('module.'):
            k = k[len('module.'):]
        if k.endswith('fractal_pattern'):
            continue
        out[k] = v
    return out


def _cfg(pool_size: Tuple[int, int] = (28, 28), **kwargs: Any) -> Dict[str, Any]:
    return {
        'url': '',
        'num_classes': 1000,
        'input_size': (3, 224, 224),
        'pool_size': pool_size,
        'crop_pct': 0.875,
        'interpolation': 'bicubic',
        'mean': IMAGENET_DEFAULT_MEAN,
        'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'stem.conv',
        'classifier': 'head.fc',
        'paper_ids': 'arXiv:1605.07648',
        'paper_name': 'FractalNet: Ultra-Deep Neural Networks without Residuals',
        'license': 'apache-2.0',
        **kwargs,
    }


_WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights')

default_cfgs = generate_default_cfgs({
    # Trained with timm's train.py on scikit-learn's digits (README, "Shipped weights"); ships in the package.
    'fractalbrainnet_small.digits_32': _cfg(
        file=os.path.join(_WEIGHTS_DIR, 'fractalbrainnet_small_digits_32.safetensors'),
        num_classes=10, input_size=(3, 32, 32), pool_size=(8, 8), crop_pct=0.875,
        label_names=DIGITS_LABELS, description='scikit-learn digits, 32 px RGB, top-1 97.22% (360 val images)',
    ),
    # NOTE: '*' (listed after the tag with weights) keeps the ImageNet-shaped config (1000 classes, 224 px, no
    # weights) the default; otherwise timm makes the digits tag (10 classes, 32 px) the default.
    'fractalbrainnet_small.untrained*': _cfg(pool_size=(56, 56)),
    'fractalbrainnet_medium': _cfg(pool_size=(28, 28)),
    'fractalbrainnet_large': _cfg(pool_size=(14, 14)),
    'fractalbrainnet_xlarge': _cfg(pool_size=(14, 14)),
    'test_fractalbrainnet': _cfg(input_size=(3, 64, 64), pool_size=(16, 16), crop_pct=0.95),
})


def _create_fractalbrainnet(variant: str, pretrained: bool = False, **kwargs: Any) -> FractalBrainNet:
    num_feats = 1 + len(kwargs.get('fractal_levels', (2, 3, 4)))
    out_indices = kwargs.pop('out_indices', tuple(range(num_feats)))
    return build_model_with_cfg(
        FractalBrainNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, flatten_sequential=True),
        **kwargs,
    )


@register_model
def fractalbrainnet_small(pretrained: bool = False, **kwargs: Any) -> FractalBrainNet:
    model_args = dict(fractal_levels=(2, 3), base_channels=32, pattern_resolution=16)
    return _create_fractalbrainnet('fractalbrainnet_small', pretrained, **dict(model_args, **kwargs))


@register_model
def fractalbrainnet_medium(pretrained: bool = False, **kwargs: Any) -> FractalBrainNet:
    model_args = dict(fractal_levels=(2, 3, 4), base_channels=64, pattern_resolution=32)
    return _create_fractalbrainnet('fractalbrainnet_medium', pretrained, **dict(model_args, **kwargs))


@register_model
def fractalbrainnet_large(pretrained: bool = False, **kwargs: Any) -> FractalBrainNet:
    model_args = dict(fractal_levels=(2, 3, 4, 5), base_channels=96, pattern_resolution=64)
    return _create_fractalbrainnet('fractalbrainnet_large', pretrained, **dict(model_args, **kwargs))


@register_model
def fractalbrainnet_xlarge(pretrained: bool = False, **kwargs: Any) -> FractalBrainNet:
    model_args = dict(fractal_levels=(3, 4, 5, 6), base_channels=128, pattern_resolution=128)
    return _create_fractalbrainnet('fractalbrainnet_xlarge', pretrained, **dict(model_args, **kwargs))


@register_model
def test_fractalbrainnet(pretrained: bool = False, **kwargs: Any) -> FractalBrainNet:
    model_args = dict(fractal_levels=(2, 2), base_channels=16, pattern_resolution=8, num_heads=4, kv_grid=4)
    return _create_fractalbrainnet('test_fractalbrainnet', pretrained, **dict(model_args, **kwargs))
