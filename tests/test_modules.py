"""Building blocks against plain formulations of the same math."""
import pytest
import reference
import torch
import torch.nn.functional as F

from timm_fractalbrain import AdaptiveScaleProcessor, CerebralDynamicsModule, FractalPatternGenerator, GlobalAttention
from timm_fractalbrain.fractalbrainnet import adaptive_avg_matrix, bilinear_resize_matrix


@pytest.mark.parametrize('out_size,in_size', [(112, 32), (7, 32), (32, 32), (5, 3), (1, 9), (9, 1), (48, 16)])
def test_bilinear_matrix_equals_f_interpolate(out_size, in_size):
    img = torch.rand(1, 1, in_size, in_size + 3)
    expected = F.interpolate(img, size=(out_size, out_size + 2), mode='bilinear', align_corners=False)
    got = bilinear_resize_matrix(out_size, in_size, img.device) @ img[0, 0] @ \
        bilinear_resize_matrix(out_size + 2, in_size + 3, img.device).t()
    torch.testing.assert_close(got, expected[0, 0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('out_size,in_size', [(7, 56), (7, 28), (7, 13), (7, 4), (4, 9), (1, 5)])
def test_adaptive_avg_matrix_equals_f_adaptive_avg_pool(out_size, in_size):
    img = torch.rand(2, 3, in_size, in_size + 1)
    expected = F.adaptive_avg_pool2d(img, (out_size, out_size))
    got = adaptive_avg_matrix(out_size, in_size, img.device) @ img @ adaptive_avg_matrix(
        out_size, in_size + 1, img.device).t()
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('pattern', ['mandelbrot', 'sierpinski', 'dragon_curve'])
@pytest.mark.parametrize('size', [(16, 16), (13, 21)])
def test_fused_cerebral_dynamics_equals_four_conv_formula(pattern, size):
    mod = CerebralDynamicsModule(16, pattern, pattern_resolution=8)
    with torch.no_grad():
        mod.norm.weight.normal_()
        mod.norm.bias.normal_()
    x = torch.randn(2, 16, *size)
    torch.testing.assert_close(mod(x), reference.cerebral(mod, x), atol=1e-5, rtol=1e-5)


def test_cerebral_dynamics_buffer_is_the_pattern_and_not_persistent():
    mod = CerebralDynamicsModule(8, 'julia', pattern_resolution=16)
    assert torch.equal(mod.fractal_pattern, FractalPatternGenerator.julia_connectivity(16, 16))
    assert 'fractal_pattern' not in mod.state_dict()


def test_cerebral_dynamics_rejects_channels_not_divisible_by_four():
    with pytest.raises(ValueError, match='divisible by 4'):
        CerebralDynamicsModule(6)


def test_adaptive_scale_processor_is_the_concat_fuse_formula():
    mod = AdaptiveScaleProcessor(8).eval()
    with torch.no_grad():
        mod.norm.running_mean.normal_()
        mod.norm.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 8, 11, 9)
    torch.testing.assert_close(mod(x), reference.asp(mod, x, training=False), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('size', [(14, 14), (5, 9), (3, 3)])
@pytest.mark.parametrize('fused', [True, False])
def test_global_attention_attends_over_pooled_spatial_tokens(size, fused):
    mod = GlobalAttention(32, num_heads=4, kv_grid=7).eval()
    mod.fused_attn = fused
    for p in mod.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 32, *size)
    torch.testing.assert_close(mod(x), reference.attention(mod, x), atol=1e-5, rtol=1e-4)


def test_global_attention_mixes_information_across_positions():
    mod = GlobalAttention(16, num_heads=2, kv_grid=4).eval()
    for p in mod.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(1, 16, 8, 8)
    x2 = x.clone()
    x2[..., 7, 7] += 3 * torch.randn(16)  # change one far corner
    delta = (mod(x2) - mod(x))[..., 0, 0].abs().max()
    assert delta > 1e-3  # the opposite corner sees it: attention is global, not per position


def test_adaptive_scale_processor_gradients_equal_the_branch_formula():
    mod = AdaptiveScaleProcessor(8).train()
    x = torch.randn(2, 8, 10, 9, requires_grad=True)
    target = torch.randn(2, 8, 10, 9)
    ((mod(x) - target) ** 2).sum().backward()
    fast = {n: p.grad.clone() for n, p in mod.named_parameters()}
    fast_x = x.grad.clone()
    mod.zero_grad()
    x.grad = None
    plain = reference.asp(mod, x, training=True)
    ((plain - target) ** 2).sum().backward()
    for n, p in mod.named_parameters():
        torch.testing.assert_close(fast[n], p.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast_x, x.grad, rtol=1e-4, atol=1e-4)
