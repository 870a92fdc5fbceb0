"""analyze_fractal_patterns against statistics computed independently with NumPy."""
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F


@pytest.fixture(scope='module')
def model_and_input():
    torch.manual_seed(0)
    model = timm.create_model('fractalbrainnet_medium', num_classes=10)
    with torch.no_grad():  # non-trivial BN statistics
        model.train()(torch.randn(4, 3, 64, 64))
    return model.train(), torch.randn(3, 3, 64, 64)


def test_stage_maps_are_channel_means_of_stage_outputs(model_and_input):
    model, x = model_and_input
    analysis = model.analyze_fractal_patterns(x)
    model.eval()
    with torch.no_grad():
        _, inter = model.forward_intermediates(x)
    model.train()
    assert len(analysis['stage_maps']) == len(model.stages) == 3
    for m, feat in zip(analysis['stage_maps'], inter[1:]):
        torch.testing.assert_close(m, feat.mean(dim=1, keepdim=True))


def test_complexity_is_entropy_of_softmax_and_hierarchy_is_pearson(model_and_input):
    model, x = model_and_input
    analysis = model.analyze_fractal_patterns(x)
    maps = [m.numpy().astype(np.float64) for m in analysis['stage_maps']]
    for m, got in zip(maps, analysis['pattern_complexity']):
        ent = []
        for img in m.reshape(len(m), -1):
            p = np.exp(img - img.max())
            p /= p.sum()
            ent.append(-(p * np.log(p + 1e-8)).sum())
        assert got == pytest.approx(np.mean(ent), rel=1e-4)
    corrs = []
    for fine, coarse in zip(analysis['stage_maps'][:-1], analysis['stage_maps'][1:]):
        resized = F.interpolate(fine, size=coarse.shape[-2:], mode='bilinear', align_corners=False)
        corrs.append(np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1]
                              for a, b in zip(resized.numpy(), coarse.numpy())]))
    hier = analysis['hierarchical_organization']
    assert hier['per_level'] == pytest.approx(corrs, abs=1e-5)
    assert hier['correlation'] == pytest.approx(np.mean(corrs), abs=1e-5)
    assert hier['hierarchy_score'] == pytest.approx(1 - np.mean(corrs), abs=1e-5)


def test_analysis_restores_training_mode_and_leaves_forward_untouched(model_and_input):
    model, x = model_and_input
    model.eval()
    with torch.no_grad():
        before = model(x)
    model.train()
    model.analyze_fractal_patterns(x)
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    model.train()
