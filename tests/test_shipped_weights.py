"""The shipped digits weights load offline through timm and reproduce their recorded validation accuracy."""
import os

import pytest
import timm
import torch
from timm.data import create_dataset, create_loader, resolve_data_config

from timm_fractalbrain.data import DIGITS_LABELS, write_digits_folder

RECORDED_TOP1 = 97.22  # train.py's eval_top1 at its last epoch (README, "Shipped weights")


def test_digits_tag_loads_offline_with_its_metadata(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    model = timm.create_model('fractalbrainnet_small.digits_32', pretrained=True)
    cfg = model.pretrained_cfg
    assert model.num_classes == 10 and tuple(cfg['label_names']) == DIGITS_LABELS
    assert cfg['input_size'] == (3, 32, 32) and os.path.getsize(cfg['file']) < 5 * 2 ** 20
    assert not cfg.get('hf_hub_id') and not cfg.get('url')
    # the untagged name keeps the ImageNet-shaped default
    assert timm.create_model('fractalbrainnet_small').num_classes == 1000


def test_digits_tag_reproduces_recorded_accuracy(tmp_path):
    root = write_digits_folder(tmp_path / 'digits', img_size=32)
    model = timm.create_model('fractalbrainnet_small.digits_32', pretrained=True).eval()
    cfg = resolve_data_config(model=model)
    loader = create_loader(create_dataset('', root=str(root / 'validation')), input_size=cfg['input_size'],
                           batch_size=90, use_prefetcher=False, interpolation=cfg['interpolation'],
                           mean=cfg['mean'], std=cfg['std'], crop_pct=cfg['crop_pct'])
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    assert total == 360
    assert 100.0 * correct / total == pytest.approx(RECORDED_TOP1, abs=0.01)


def test_digits_tag_adapts_to_other_classes_and_one_channel():
    model = timm.create_model('fractalbrainnet_small.digits_32', pretrained=True, in_chans=1, num_classes=5)
    source = timm.create_model('fractalbrainnet_small.digits_32', pretrained=True)
    torch.testing.assert_close(model.stem.conv.weight, source.stem.conv.weight.sum(1, keepdim=True))
    torch.testing.assert_close(model.head.fc1.weight, source.head.fc1.weight)
    assert model.head.fc.out_features == 5
