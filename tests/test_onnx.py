"""ONNX export: both exporters, dynamic shapes, deploy-time folding, onnxruntime parity on real photos."""
import json
import subprocess
import sys

import onnx
import pytest
import timm
import torch
from timm.utils.model import reparameterize_model

from timm_fractalbrain.onnx_export import export_onnx, load_model, parity_report, read_metadata, validate_onnx


def _trained_like(name, num_classes=10):
    """A model with non-trivial BatchNorm statistics, so that folding has something to fold."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.eval()


@pytest.mark.parametrize('name', ['fractalbrainnet_small', 'fractalbrainnet_medium'])
def test_reparameterized_model_matches_unfolded_within_1e5(name):
    model = _trained_like(name)
    folded = reparameterize_model(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.stem.modules())
    n_asp = sum(m.fused is not None for m in folded.modules() if hasattr(m, 'fused_kernel'))
    assert n_asp == 1 + 2 * len(model.stages) - len(model.stages)  # stem + one per stage
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=0, atol=1e-5)
    assert sum(p.numel() for p in folded.parameters()) < sum(p.numel() for p in model.parameters())


def test_asp_folded_kernel_equals_branch_formula():
    from timm_fractalbrain import AdaptiveScaleProcessor

    asp = AdaptiveScaleProcessor(8)
    x = torch.randn(1, 8, 9, 7)
    weight, bias = asp.fused_kernel()
    branches = torch.cat([asp.local_processor(x), asp.regional_processor(x), asp.global_processor(x)], 1)
    torch.testing.assert_close(torch.nn.functional.conv2d(x, weight, bias, padding=2), asp.fusion(branches),
                               rtol=1e-5, atol=1e-5)


# every variant x exporter x folding combination except plain medium with dynamo, the slowest export (about a
# minute on 2 cores); its folded twin and the TorchScript exports of medium cover the same graph pieces
EXPORT_CASES = [
    ('fractalbrainnet_small', 'dynamo', False), ('fractalbrainnet_small', 'dynamo', True),
    ('fractalbrainnet_small', 'torchscript', False), ('fractalbrainnet_small', 'torchscript', True),
    ('fractalbrainnet_medium', 'dynamo', True),
    ('fractalbrainnet_medium', 'torchscript', False), ('fractalbrainnet_medium', 'torchscript', True),
]


@pytest.mark.parametrize('name,exporter,reparam', EXPORT_CASES)
def test_export_passes_checker_and_parity_bar(name, exporter, reparam, tmp_path):
    model = _trained_like(name)
    path = export_onnx(model, str(tmp_path / 'm.onnx'), img_size=64, dynamic_size=True, reparam=reparam,
                       exporter=exporter)
    onnx.checker.check_model(str(path), full_check=True)
    rows = parity_report(str(path), model, sizes=(64, 96), batch_sizes=(1, 3))
    assert len(rows) == 4
    for r in rows:
        assert r['top1_agree'], r
        assert r['max_abs_diff'] <= r['bar'], r
    graph_input = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert graph_input[0].dim_param and graph_input[2].dim_param and graph_input[3].dim_param


def test_metadata_props_carry_the_preprocessing(tmp_path):
    model = timm.create_model('test_fractalbrainnet', num_classes=10, pretrained_cfg_overlay=dict(
        label_names=[str(i) for i in range(10)], mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))).eval()
    path = export_onnx(model, str(tmp_path / 't.onnx'), img_size=32, exporter='torchscript')
    meta = read_metadata(str(path))
    assert meta['variant'] == 'test_fractalbrainnet'
    assert meta['input_size'] == [3, 32, 32] and meta['mean'] == [0.5] * 3 and meta['std'] == [0.25] * 3
    assert meta['interpolation'] == 'bicubic' and meta['crop_pct'] == pytest.approx(0.95)
    assert meta['label_names'] == [str(i) for i in range(10)]
    graph_input = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert graph_input[0].dim_param and graph_input[2].dim_value == 32  # batch dynamic, size fixed


def test_onnx_validation_on_a_folder_equals_pytorch_accuracy(tmp_path):
    from timm.data import create_dataset, create_loader

    from timm_fractalbrain.data import write_digits_folder

    root = write_digits_folder(tmp_path / 'digits', img_size=32, limit=40)
    model = _trained_like('test_fractalbrainnet')
    path = export_onnx(model, str(tmp_path / 't.onnx'), img_size=32, exporter='torchscript')
    res = validate_onnx(str(path), str(root), 'validation', batch_size=16)
    cfg = model.pretrained_cfg
    loader = create_loader(create_dataset('', root=str(root / 'validation')), input_size=(3, 32, 32), batch_size=16,
                           use_prefetcher=False, interpolation=cfg['interpolation'], mean=cfg['mean'], std=cfg['std'],
                           crop_pct=cfg['crop_pct'])
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    assert res['images'] == 40
    assert res['top1'] == pytest.approx(100.0 * correct / 40)


def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'timm_fractalbrain.onnx_export', *args], capture_output=True,
                          text=True, timeout=600)


def test_cli_export_with_check(tmp_path):
    out = tmp_path / 'small.onnx'
    proc = _cli('--model', 'test_fractalbrainnet', '--output', str(out), '--img-size', '32', '--dynamic-size',
                '--exporter', 'torchscript', '--reparam', '--check')
    assert proc.returncode == 0, proc.stderr
    assert 'parity: ok' in proc.stdout and out.is_file()


@pytest.mark.parametrize('args,message', [
    (['--model', 'fractalbrainnet_huge'], 'Unknown model'),
    (['--model', 'test_fractalbrainnet', '--opset', '12'], 'Opset 12 is too old'),
    (['--model', 'test_fractalbrainnet', '--output', '/nonexistent-dir/x.onnx'], 'not writable'),
])
def test_cli_bad_input_is_a_clean_error_without_output(args, message, tmp_path):
    if '--output' not in args:
        args = args + ['--output', str(tmp_path / 'x.onnx')]
    proc = _cli(*args, '--exporter', 'torchscript')
    assert proc.returncode == 2
    assert message in proc.stderr and 'Traceback' not in proc.stderr
    assert not list(tmp_path.iterdir())


def test_cli_checkpoint_that_does_not_fit_is_refused(tmp_path):
    from safetensors.torch import save_file

    ckpt = tmp_path / 'w.safetensors'
    save_file(timm.create_model('fractalbrainnet_small', num_classes=10).state_dict(), str(ckpt))
    out = tmp_path / 'x.onnx'
    proc = _cli('--model', 'fractalbrainnet_medium', '--checkpoint', str(ckpt), '--output', str(out))
    assert proc.returncode == 2 and 'does not fit' in proc.stderr and 'Traceback' not in proc.stderr
    assert not out.exists()


def test_checkpoint_class_count_is_taken_from_the_checkpoint(tmp_path):
    src = timm.create_model('test_fractalbrainnet', num_classes=7)
    path = tmp_path / 'w.pth'
    torch.save({'state_dict': src.state_dict(), 'epoch': 3}, str(path))
    model = load_model('test_fractalbrainnet', str(path))
    assert model.num_classes == 7
    torch.testing.assert_close(model.head.fc.weight, src.head.fc.weight)


def test_input_channels_differing_from_model_are_refused_by_validate(tmp_path):
    model = timm.create_model('test_fractalbrainnet', in_chans=1).eval()
    path = export_onnx(model, str(tmp_path / 'g.onnx'), img_size=32, exporter='torchscript')
    from timm_fractalbrain.onnx_export import ExportError
    with pytest.raises(ExportError, match='expects 1 input channel'):
        validate_onnx(str(path), str(tmp_path))
    assert json.loads(json.dumps(read_metadata(str(path))['input_size'])) == [1, 32, 32]
