"""FractalNet drop-path: global columns, local joins, eval determinism, every parameter in every step."""
import copy

import pytest
import timm
import torch
import torch.nn as nn

from timm_fractalbrain import FractalNeuralBlock
from timm_fractalbrain.fractalbrainnet import FractalJoin, sample_columns


def _block(level=3, drop_prob=0.5):
    blk = FractalNeuralBlock(level, 8, 8, 'mandelbrot', pattern_resolution=8, drop_prob=drop_prob).train()
    with torch.no_grad():  # random gates so that both join inputs matter
        for m in blk.modules():
            if isinstance(m, FractalJoin):
                nn.init.normal_(m.fc2.weight, std=0.5)
    return blk


def _conv3x3s(blk):
    return [m for m in blk.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize('level', [2, 3])
def test_column_k_holds_two_to_the_k_minus_one_convs(level):
    blk = _block(level)
    assert len(_conv3x3s(blk)) == 2 ** level - 1
    for k in range(1, level + 1):
        assert len(blk.column_convs(k)) == 2 ** (k - 1)


@pytest.mark.parametrize('k', [1, 2, 3])
def test_global_column_k_runs_exactly_that_path(k):
    blk = _block(3)
    x = torch.randn(4, 8, 10, 10)
    column = torch.full((4,), k)
    out = blk(x, column)
    on_path = {id(c) for c in blk.column_convs(k)}

    off = copy.deepcopy(blk)
    with torch.no_grad():
        for conv in _conv3x3s(off):
            if id(conv) not in {id(c) for c in off.column_convs(k)}:
                conv.weight.normal_(std=3.)
    torch.testing.assert_close(off(x, column), out, rtol=0, atol=0)

    on = copy.deepcopy(blk)
    with torch.no_grad():
        on.column_convs(k)[0].weight.normal_(std=3.)
    assert not torch.allclose(on(x, column), out)
    assert len(on_path) == 2 ** (k - 1)


def test_global_column_above_block_level_keeps_the_deepest_column():
    blk = _block(2)
    x = torch.randn(3, 8, 6, 6)
    torch.testing.assert_close(blk(x, torch.full((3,), 5)), blk(x, torch.full((3,), 2)), rtol=0, atol=0)


def test_local_drop_path_never_drops_both_inputs_of_a_join():
    blk = _block(3, drop_prob=0.9)
    seen = []

    def hook(mod, args, out):
        deep, shallow = args
        deep_alive = deep.flatten(1).abs().amax(1) > 0
        shallow_alive = shallow.flatten(1).abs().amax(1) > 0
        seen.append((deep_alive, shallow_alive))

    for m in blk.modules():
        if isinstance(m, FractalJoin):
            m.register_forward_hook(hook)
    for _ in range(5):
        blk(torch.randn(64, 8, 6, 6), torch.zeros(64, dtype=torch.long))
    deep_alive = torch.cat([d for d, _ in seen])
    shallow_alive = torch.cat([s for _, s in seen])
    assert (deep_alive | shallow_alive).all()
    # with p = 0.9 most joins lose one input, so the rule was exercised
    assert (~deep_alive).float().mean() > 0.3 and (~shallow_alive).float().mean() > 0.3


def test_join_output_is_rescaled_by_two_over_kept_inputs():
    blk = _block(2, drop_prob=0.5)
    x = torch.randn(2, 8, 6, 6)
    deep = blk.deep[1](blk.deep[0](x))
    shallow = blk.shallow(x)
    # column 1 keeps the shallow branch only: join(0, shallow) * 2
    expected = blk.join(torch.zeros_like(deep), shallow) * 2
    torch.testing.assert_close(blk(x, torch.ones(2, dtype=torch.long)), expected)


def test_eval_is_deterministic_and_ignores_drop_path():
    model = timm.create_model('test_fractalbrainnet', drop_path_rate=0.5).eval()
    plain = timm.create_model('test_fractalbrainnet', drop_path_rate=0.).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(x)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, plain(x), rtol=0, atol=0)


def test_training_with_drop_path_is_random():
    model = timm.create_model('test_fractalbrainnet', drop_path_rate=0.5).train()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x))


@pytest.mark.parametrize('column', [0, 1, 2])
def test_every_parameter_gets_a_gradient_in_every_drop_path_mode(column, monkeypatch):
    import timm_fractalbrain.fractalbrainnet as fbn

    model = timm.create_model('test_fractalbrainnet', drop_path_rate=0.9, num_classes=5).train()
    monkeypatch.setattr(
        fbn, 'sample_columns', lambda b, n, r, device: torch.full((b,), column, dtype=torch.long, device=device))
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_sample_columns_mixes_local_and_global_half_and_half():
    cols = sample_columns(20000, 3, 0.5, torch.device('cpu'))
    assert abs((cols == 0).float().mean().item() - 0.5) < 0.02
    for k in (1, 2, 3):
        assert abs((cols == k).float().mean().item() - 0.5 / 3) < 0.02
    assert cols.max() == 3
