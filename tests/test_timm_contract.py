"""The timm model contract, through nothing but timm's own entry points."""
import pytest
import timm
import torch
from safetensors.torch import save_file

import timm_fractalbrain
from timm_fractalbrain import FractalPatternType, create_fractal_brain_net

VARIANTS = ['fractalbrainnet_small', 'fractalbrainnet_medium', 'fractalbrainnet_large', 'fractalbrainnet_xlarge']
SEED_PARAMS_M = {  # the seed's table, in millions at 1000 classes
    'fractalbrainnet_small': 0.61, 'fractalbrainnet_medium': 15.2,
    'fractalbrainnet_large': 253, 'fractalbrainnet_xlarge': 876,
}


def _meta_model(name, **kwargs):
    with torch.device('meta'):
        return timm.create_model(name, **kwargs)


def test_import_registers_every_variant():
    listed = timm.list_models('*fractalbrainnet*')
    assert set(VARIANTS + ['test_fractalbrainnet']) <= set(listed)
    assert timm.list_models(module='fractalbrainnet')


@pytest.mark.parametrize('name', VARIANTS)
def test_parameter_count_matches_seed_table(name):
    n = sum(p.numel() for p in _meta_model(name).parameters()) / 1e6
    assert n == pytest.approx(SEED_PARAMS_M[name], rel=0.01)


@pytest.mark.parametrize('name,levels,base,res', [
    ('fractalbrainnet_small', (2, 3), 32, 16), ('fractalbrainnet_medium', (2, 3, 4), 64, 32),
    ('fractalbrainnet_large', (2, 3, 4, 5), 96, 64), ('fractalbrainnet_xlarge', (3, 4, 5, 6), 128, 128),
])
def test_variant_config_and_shapes_on_meta(name, levels, base, res):
    model = _meta_model(name).eval()
    assert model.fractal_levels == levels
    assert [s.block.level for s in model.stages] == list(levels)
    chans = [base * 2 ** min(i, 4) for i in range(len(levels))]
    assert model.feature_info[1:] == [
        dict(num_chs=c, reduction=2 ** (i + 1), module=f'stages.{i}') for i, c in enumerate(chans)]
    cd = next(m for m in model.modules() if isinstance(m, timm_fractalbrain.CerebralDynamicsModule))
    assert cd.fractal_pattern.shape == (res, res)
    x = torch.empty(1, 3, 224, 224, device='meta')
    feats = model.forward_features(x)
    assert tuple(feats.shape[-2:]) == model.pretrained_cfg['pool_size']
    assert model(x).shape == (1, 1000)


def test_large_runs_a_real_forward_at_small_input():
    model = timm.create_model('fractalbrainnet_large', num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize('name', VARIANTS + ['test_fractalbrainnet'])
def test_pretrained_cfg_is_complete_and_points_at_no_weights(name):
    cfg = _meta_model(name).pretrained_cfg
    for key in ('input_size', 'pool_size', 'crop_pct', 'interpolation', 'mean', 'std', 'first_conv', 'classifier',
                'license', 'paper_ids'):
        assert cfg.get(key) not in (None, ''), key
    assert 'arXiv:1605.07648' in cfg['paper_ids']
    assert not cfg.get('hf_hub_id') and not cfg.get('url') and not cfg.get('file')
    state = _meta_model(name).state_dict()
    assert cfg['first_conv'] + '.weight' in state and cfg['classifier'] + '.weight' in state


def test_fractal_maps_are_never_stored_in_checkpoints():
    model = timm.create_model('test_fractalbrainnet')
    buffers = [n for n, _ in model.named_buffers() if n.endswith('fractal_pattern')]
    assert len(buffers) == sum(isinstance(m, timm_fractalbrain.CerebralDynamicsModule) for m in model.modules()) > 0
    assert not [k for k in model.state_dict() if 'fractal_pattern' in k]


def test_to_empty_then_init_weights_restores_the_fractal_maps():
    model = timm.create_model('test_fractalbrainnet', device='meta')
    model = model.to_empty(device='cpu')
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.fill_(float('nan'))
    model.init_weights()
    reference = timm_fractalbrain.FractalPatternGenerator.generate('mandelbrot', 8)
    for name, buf in model.named_buffers():
        if name.endswith('fractal_pattern'):
            assert torch.equal(buf, reference)
    assert torch.isfinite(model.eval()(torch.randn(1, 3, 32, 32))).all()


@pytest.mark.parametrize('pattern', [FractalPatternType.SIERPINSKI, 'sierpinski', 'SIERPINSKI'])
def test_fractal_pattern_kwarg_accepts_string_or_enum(pattern):
    model = timm.create_model('test_fractalbrainnet', fractal_pattern=pattern)
    expected = timm_fractalbrain.FractalPatternGenerator.sierpinski_connectivity(8)
    assert torch.equal(model.stages[0].block.shallow.cerebral.fractal_pattern, expected)


def test_unknown_pattern_and_size_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid patterns are 'mandelbrot'"):
        timm.create_model('test_fractalbrainnet', fractal_pattern='koch')
    with pytest.raises(ValueError, match='valid sizes are small, medium, large, xlarge'):
        create_fractal_brain_net('huge')


def test_create_fractal_brain_net_is_an_alias_of_create_model():
    torch.manual_seed(0)
    a = create_fractal_brain_net('small', num_classes=10, fractal_pattern=FractalPatternType.JULIA)
    torch.manual_seed(0)
    b = timm.create_model('fractalbrainnet_small', num_classes=10, fractal_pattern='julia')
    assert type(a) is type(b) and a.pretrained_cfg == b.pretrained_cfg
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_head_api_shapes():
    model = timm.create_model('test_fractalbrainnet', num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (2, model.num_features, 16, 16)
    pre = model.forward_head(feats, pre_logits=True)
    assert pre.shape == (2, model.head_hidden_size) and model.head_hidden_size == model.num_features // 2
    assert model.get_classifier() is model.head.fc and model.get_classifier().out_features == 7
    torch.testing.assert_close(model.get_classifier()(pre), model(x))

    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.num_classes == 3
    model.reset_classifier(0)
    torch.testing.assert_close(model(x), pre)
    model.reset_classifier(0, '')
    assert model(x).shape == (2, model.head_hidden_size, 16, 16)
    model.reset_classifier(4, 'max')
    assert model(x).shape == (2, 4)


def test_unpooled_head_applies_the_same_layers_per_position():
    model = timm.create_model('test_fractalbrainnet', num_classes=5, global_pool='').eval()
    x = torch.randn(1, 3, 64, 64)
    out = model(x)
    feats = model.forward_features(x)
    pooled = timm.create_model('test_fractalbrainnet', num_classes=5, global_pool='avg').eval()
    pooled.load_state_dict(model.state_dict())
    # a 1x1 feature map makes pooling the identity, so both heads compute the same numbers there
    torch.testing.assert_close(out[0, :, 3, 4], pooled.forward_head(feats[:, :, 3:4, 4:5])[0])


@pytest.mark.parametrize('out_indices', [None, (1, 2)])
def test_features_only_matches_forward_intermediates(out_indices):
    kwargs = {} if out_indices is None else dict(out_indices=out_indices)
    torch.manual_seed(0)
    feat_model = timm.create_model('fractalbrainnet_small', features_only=True, **kwargs).eval()
    torch.manual_seed(0)
    model = timm.create_model('fractalbrainnet_small').eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = feat_model(x)
        _, inter = model.forward_intermediates(x, indices=list(out_indices) if out_indices else None)
    expected_idx = out_indices or (0, 1, 2)
    assert len(feats) == len(expected_idx) >= 2
    assert feat_model.feature_info.channels() == [model.feature_info[i]['num_chs'] for i in expected_idx]
    for f, g, i in zip(feats, inter, expected_idx):
        red = model.feature_info[i]['reduction']
        assert f.shape[-2:] == (64 // red, 64 // red)
        torch.testing.assert_close(f, g)


def test_forward_intermediates_final_equals_forward_features_and_stop_early():
    model = timm.create_model('fractalbrainnet_medium').eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [t.shape[1] for t in inter] == [64, 64, 128, 256]
        early = model.forward_intermediates(x, indices=[1], stop_early=True, intermediates_only=True)
        torch.testing.assert_close(early[0], inter[1])
        pruned_idx = model.prune_intermediate_layers([2])
        assert len(model.stages) == 2 and pruned_idx == [2]
        torch.testing.assert_close(model.forward_features(x), inter[2])


def test_in_chans_and_classifier_adaptation_of_pretrained_weights(tmp_path):
    source = timm.create_model('test_fractalbrainnet', num_classes=10)
    path = tmp_path / 'weights.safetensors'
    save_file(source.state_dict(), str(path))
    model = timm.create_model(
        'test_fractalbrainnet', pretrained=True, in_chans=1, num_classes=5,
        pretrained_cfg_overlay=dict(file=str(path), num_classes=10))
    torch.testing.assert_close(model.stem.conv.weight, source.stem.conv.weight.sum(dim=1, keepdim=True))
    assert model.head.fc.out_features == 5
    torch.testing.assert_close(model.head.fc1.weight, source.head.fc1.weight)
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 5)


def test_layer_decay_groups_follow_network_depth():
    from timm.optim import create_optimizer_v2

    model = timm.create_model('fractalbrainnet_small', num_classes=10)
    opt = create_optimizer_v2(model, 'adamw', lr=1e-3, layer_decay=0.5)
    assert sum(len(g['params']) for g in opt.param_groups) == len(list(model.parameters()))
    scale = {}
    for g in opt.param_groups:
        for p in g['params']:
            scale[id(p)] = g['lr_scale']
    names = dict((id(p), n) for n, p in model.named_parameters())
    by_name = {names[k]: v for k, v in scale.items()}
    assert by_name['stem.conv.weight'] < by_name['stages.0.block.deep.0.conv.weight'] < \
        by_name['stages.1.asp.fusion.weight'] < by_name['head.fc.weight'] == 1.0
    assert len(set(scale.values())) >= 5


def test_no_weight_decay_names_no_missing_parameters():
    model = timm.create_model('test_fractalbrainnet')
    names = {n for n, _ in model.named_parameters()}
    assert all(n in names for n in model.no_weight_decay())


def _saved_activation_bytes(model, x):
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    return total


def test_grad_checkpointing_keeps_outputs_and_gradients_and_saves_memory():
    torch.manual_seed(0)
    model = timm.create_model('fractalbrainnet_small', num_classes=10).train()
    x = torch.randn(2, 3, 64, 64)
    plain_bytes = _saved_activation_bytes(model, x)
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    model.set_grad_checkpointing(True)
    ckpt_bytes = _saved_activation_bytes(model, x)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=1e-4, atol=1e-5)
    assert ckpt_bytes < 0.6 * plain_bytes, (ckpt_bytes, plain_bytes)


@pytest.mark.parametrize('shape,match', [
    ((1, 4, 32, 32), 'built for 3 input channel'),
    ((3, 32, 32), '4-D image batch'),
    ((1, 3, 2, 32), 'too small'),
])
def test_bad_input_raises_value_error_naming_the_expectation(shape, match):
    model = timm.create_model('test_fractalbrainnet').eval()
    with pytest.raises(ValueError, match=match):
        model(torch.randn(*shape))


def test_torchscript_matches_eager_and_keeps_the_input_check():
    with timm.layers.set_layer_config(scriptable=True):
        model = timm.create_model('test_fractalbrainnet').eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 48, 40)
    torch.testing.assert_close(scripted(x), model(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(Exception, match='input channel'):
        scripted(torch.randn(1, 1, 32, 32))


def test_fx_feature_extractor_matches_eager():
    from timm.models import create_feature_extractor, get_graph_node_names

    model = timm.create_model('test_fractalbrainnet').eval()
    _, eval_nodes = get_graph_node_names(model)
    fx = create_feature_extractor(model, return_nodes=[eval_nodes[-1]])
    x = torch.randn(1, 3, 40, 56)
    torch.testing.assert_close(list(fx(x).values())[0], model(x))


def test_torch_export_with_dynamic_batch_and_size_matches_eager():
    from torch.export import Dim

    model = timm.create_model('test_fractalbrainnet').eval()
    ep = torch.export.export(
        model, (torch.randn(2, 3, 64, 64),), dynamic_shapes=({0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO},))
    for shape in [(2, 3, 48, 48), (3, 3, 96, 80), (2, 3, 33, 65)]:
        x = torch.randn(*shape)
        torch.testing.assert_close(ep.module()(x), model(x), rtol=1e-4, atol=1e-5)


def test_torch_compile_matches_eager_without_graph_breaks():
    model = timm.create_model('test_fractalbrainnet').eval()
    x = torch.randn(2, 3, 32, 32)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(model, backend='eager')
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
    # training with drop-path (random plans, in-place residuals) traces as one graph too
    train_model = timm.create_model('test_fractalbrainnet', drop_path_rate=0.2).train()
    explanation = torch._dynamo.explain(train_model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
