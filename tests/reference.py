"""The plain formulation of FractalBrainNet, written with torch.nn.functional from a model's parameters.

It follows the SPEC's statement of the math directly: NCHW tensors, four separate band convs with the mask from
F.interpolate, the three ASP branches concatenated and fused by the 1x1 conv, BatchNorm as its own step, the
join's gate conv over the concatenated branches, attention written out per head. The model's fast paths
(channels_last, one band conv, composed 5x5 ASP kernel, BatchNorm folded into convs in eval, split join conv,
in-place residuals, fused SDPA) are checked against it.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from timm_fractalbrain.fractalbrainnet import (
    AdaptiveScaleProcessor,
    CerebralDynamicsModule,
    FractalBrainNet,
    FractalNeuralBlock,
    GlobalAttention,
)


def batch_norm(bn, x: Tensor, training: bool) -> Tensor:
    # running statistics are cloned so that the reference never updates the model's buffers
    return F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias, training, 0.,
                        bn.eps)


def cerebral(mod: CerebralDynamicsModule, x: Tensor) -> Tensor:
    """Four separate C -> C/4 band convs, the mask via F.interpolate, LayerNorm over C, residual."""
    C = mod.channels
    q = C // 4
    m = F.interpolate(mod.fractal_pattern[None, None].to(x.dtype), size=x.shape[-2:], mode='bilinear',
                      align_corners=False)
    w, b = mod.bands.weight, mod.bands.bias
    alpha = F.conv2d(x, w[:q], b[:q]) * m
    beta = F.conv2d(x, w[q:2 * q], b[q:2 * q]) * (1 - m)
    gamma = F.conv2d(x, w[2 * q:3 * q], b[2 * q:3 * q]) * m * 0.5
    theta = F.conv2d(x, w[3 * q:], b[3 * q:]) * torch.sin(m * math.pi)
    integrated = F.conv2d(torch.cat([alpha, beta, gamma, theta], dim=1), mod.integration.weight,
                          mod.integration.bias)
    normed = F.layer_norm(integrated.permute(0, 2, 3, 1), (C,), mod.norm.weight, mod.norm.bias, mod.norm.eps)
    return normed.permute(0, 3, 1, 2) + x


def asp(mod: AdaptiveScaleProcessor, x: Tensor, training: bool) -> Tensor:
    """cat[1x1, 3x3, 5x5 branches] -> 1x1 fusion -> BatchNorm -> GELU -> + x."""
    branches = torch.cat([
        F.conv2d(x, mod.local_processor.weight, mod.local_processor.bias),
        F.conv2d(x, mod.regional_processor.weight, mod.regional_processor.bias, padding=1),
        F.conv2d(x, mod.global_processor.weight, mod.global_processor.bias, padding=2),
    ], dim=1)
    return F.gelu(batch_norm(mod.norm, F.conv2d(branches, mod.fusion.weight), training)) + x


def attention(mod: GlobalAttention, x: Tensor) -> Tensor:
    """Per-head softmax attention written out, keys / values from F.adaptive_avg_pool2d of the normed map."""
    B, C, H, W = x.shape
    tokens = F.layer_norm(x.flatten(2).transpose(1, 2), (C,), mod.norm.weight, mod.norm.bias, mod.norm.eps)
    pooled = F.adaptive_avg_pool2d(tokens.transpose(1, 2).reshape(B, C, H, W), mod.kv_grid).flatten(2).transpose(1, 2)
    q = tokens @ mod.q.weight.t() + mod.q.bias
    kv = pooled @ mod.kv.weight.t() + mod.kv.bias
    k, v = kv[..., :C], kv[..., C:]
    heads = []
    d = C // mod.num_heads
    for h in range(mod.num_heads):
        s = slice(h * d, (h + 1) * d)
        attn = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(d), dim=-1)
        heads.append(attn @ v[..., s])
    out = torch.cat(heads, dim=-1) @ mod.proj.weight.t() + mod.proj.bias
    return x + out.transpose(1, 2).reshape(B, C, H, W)


def block(blk: FractalNeuralBlock, x: Tensor, training: bool) -> Tensor:
    """FractalNet's expansion rule without drop-path: level 1 conv -> BN -> cerebral -> GELU, else the join."""
    if blk.deep is None:
        y = batch_norm(blk.norm, F.conv2d(x, blk.conv.weight, padding=1), training)
        return F.gelu(cerebral(blk.cerebral, y))
    deep = block(blk.deep[1], block(blk.deep[0], x, training), training)
    sb = blk.shallow
    shallow = F.conv2d(x, sb.conv.weight, sb.conv.bias, padding=1)
    shallow = F.gelu(batch_norm(sb.norm, cerebral(sb.cerebral, shallow), training))
    j = blk.join
    hidden = F.gelu(F.conv2d(torch.cat([deep, shallow], dim=1), j.fc1.weight, j.fc1.bias))
    gates = torch.sigmoid(F.conv2d(hidden, j.fc2.weight, j.fc2.bias))
    return gates[:, :1] * deep + gates[:, 1:] * shallow


def forward_features(model: FractalBrainNet, x: Tensor) -> Tensor:
    training = model.training
    stem = model.stem
    x = F.gelu(batch_norm(stem.norm, F.conv2d(x, stem.conv.weight, stride=2, padding=3), training))
    x = asp(stem.asp, x, training)
    for stage in model.stages:
        ds = stage.downsample
        if not isinstance(ds, torch.nn.Identity):
            x = F.gelu(batch_norm(ds.norm, F.conv2d(x, ds.conv.weight, stride=2, padding=1), training))
        x = asp(stage.asp, block(stage.block, x, training), training)
    return attention(model.global_attn, x)


def forward(model: FractalBrainNet, x: Tensor) -> Tensor:
    """The whole network, pooled head included (avg pool, meta learner, two-layer classifier)."""
    f = forward_features(model, x).mean(dim=(2, 3))
    meta = model.head.meta
    f = f + meta.scale * F.linear(F.gelu(F.linear(f, meta.fc1.weight, meta.fc1.bias)), meta.fc2.weight,
                                  meta.fc2.bias)
    h = F.gelu(F.linear(f, model.head.fc1.weight, model.head.fc1.bias))
    return F.linear(h, model.head.fc.weight, model.head.fc.bias)
