"""The whole network's fast paths against the plain formulation (tests/reference.py), in values and gradients."""
import pytest
import reference
import timm
import torch
import torch.nn as nn
from timm.layers import LayerNorm2d
from timm.utils.model import reparameterize_model

from timm_fractalbrain.fractalbrainnet import FractalJoin

MODELS = [('test_fractalbrainnet', 32), ('fractalbrainnet_small', 48)]


def _randomized(name: str) -> nn.Module:
    """A model whose norms, running statistics and join gates are all non-trivial (the init leaves the gates at
    0.5 and the norms at identity, which would hide mistakes in those paths)."""
    model = timm.create_model(name, num_classes=7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0., 0.2)
                m.running_var.uniform_(0.5, 2.)
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, LayerNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0., 0.2)
            if isinstance(m, FractalJoin):
                m.fc2.weight.normal_(0., 0.5)
                m.fc2.bias.normal_(0., 0.5)
    return model


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    tol = 2e-5 * max(1., expected.abs().max().item())
    torch.testing.assert_close(got, expected, atol=tol, rtol=1e-4)


@pytest.mark.parametrize('name,size', MODELS)
def test_eval_forward_equals_the_plain_formulation(name, size):
    model = _randomized(name).eval()
    x = torch.randn(3, 3, size, size + 8)
    with torch.no_grad():
        expected = reference.forward(model, x)
        _close(model(x), expected)
        # a channels_last input gives the same numbers and is left untouched
        xc = x.contiguous(memory_format=torch.channels_last)
        _close(model(xc), expected)
        assert torch.equal(xc, x)


@pytest.mark.parametrize('name,size', MODELS)
def test_deploy_path_equals_the_plain_formulation(name, size):
    model = _randomized(name).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = reference.forward(model, x)
        deploy = reparameterize_model(model).to(memory_format=torch.channels_last)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in deploy.stem.modules())
        _close(deploy(x.contiguous(memory_format=torch.channels_last)), expected)


@pytest.mark.parametrize('grad_checkpointing', [False, True])
@pytest.mark.parametrize('name,size', MODELS)
def test_training_step_equals_the_plain_formulation(name, size, grad_checkpointing):
    model = _randomized(name).train()
    model.set_grad_checkpointing(grad_checkpointing)
    x = torch.randn(4, 3, size, size, requires_grad=True)
    target = torch.randn(4, 7)

    expected = reference.forward(model, x)
    ((expected - target) ** 2).sum().backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    ref_x_grad = x.grad.clone()
    model.zero_grad()
    x.grad = None

    out = model(x)
    _close(out.detach(), expected.detach())
    ((out - target) ** 2).sum().backward()
    _close(x.grad, ref_x_grad)
    for n, p in model.named_parameters():
        assert p.grad is not None, n
        _close(p.grad, ref_grads[n])
