"""The timm APIs that train.py drives, on a folder dataset made from scikit-learn's digits."""
from argparse import Namespace

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.data import create_dataset, create_loader, resolve_data_config
from timm.models import load_checkpoint, resume_checkpoint
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import CheckpointSaver, ModelEmaV3

from timm_fractalbrain.data import write_digits_folder


@pytest.fixture(scope='module')
def digits_dir(tmp_path_factory):
    return write_digits_folder(tmp_path_factory.mktemp('digits'), img_size=32, limit=96)


def _loader(root, model, split, training):
    dataset = create_dataset('', root=str(root), split=split, is_training=training)
    cfg = resolve_data_config(dict(input_size=(3, 32, 32)), model=model)
    loader = create_loader(dataset, input_size=cfg['input_size'], batch_size=16, is_training=training,
                           use_prefetcher=False, mean=cfg['mean'], std=cfg['std'], interpolation=cfg['interpolation'],
                           crop_pct=cfg['crop_pct'], num_workers=0)
    return dataset, loader


def test_train_loop_checkpoint_and_resume_like_train_py(digits_dir, tmp_path):
    torch.manual_seed(0)
    model = timm.create_model('test_fractalbrainnet', num_classes=10, drop_path_rate=0.1)
    train_set, train_loader = _loader(digits_dir, model, 'train', True)
    val_set, val_loader = _loader(digits_dir, model, 'validation', False)
    assert len(train_set.reader.class_to_idx) == 10 and len(train_set) == 96 and len(val_set) == 96

    optimizer = create_optimizer_v2(model, 'adamw', lr=2e-3, weight_decay=0.05, layer_decay=0.75)
    assert len({g['lr_scale'] for g in optimizer.param_groups}) > 2
    scheduler, num_epochs = create_scheduler_v2(optimizer, 'cosine', num_epochs=2, warmup_epochs=0,
                                                updates_per_epoch=len(train_loader))
    ema = ModelEmaV3(model, decay=0.5)
    args = Namespace(model='test_fractalbrainnet', num_classes=10)
    saver = CheckpointSaver(model, optimizer, args=args, model_ema=ema, checkpoint_dir=str(tmp_path),
                            recovery_dir=str(tmp_path), max_history=2)

    for epoch in range(num_epochs):
        model.train()
        for step, (x, y) in enumerate(train_loader):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            ema.update(model, step=epoch * len(train_loader) + step)
            scheduler.step_update(num_updates=epoch * len(train_loader) + step + 1)
        scheduler.step(epoch + 1)
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                correct += (model(x).argmax(1) == y).sum().item()
        best_metric, best_epoch = saver.save_checkpoint(epoch, metric=correct / len(val_set))
    assert best_epoch in (0, 1)
    last = tmp_path / 'last.pth.tar'
    assert last.is_file() and not list(tmp_path.glob('tmp*'))

    # resume_checkpoint restores model, optimizer and epoch
    torch.manual_seed(1)
    model2 = timm.create_model('test_fractalbrainnet', num_classes=10)
    optimizer2 = create_optimizer_v2(model2, 'adamw', lr=2e-3, weight_decay=0.05, layer_decay=0.75)
    start_epoch = resume_checkpoint(model2, str(last), optimizer=optimizer2)
    assert start_epoch == num_epochs
    for (n, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(a, b), n
    assert optimizer2.state_dict()['state'].keys() == optimizer.state_dict()['state'].keys()

    # create_model(checkpoint_path=...) loads the EMA weights when the checkpoint has them (timm's default),
    # load_checkpoint(use_ema=False) the trained weights
    model3 = timm.create_model('test_fractalbrainnet', num_classes=10, checkpoint_path=str(last)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model3(x), ema.module.eval()(x))
        load_checkpoint(model3, str(last), use_ema=False)
        torch.testing.assert_close(model3(x), model.eval()(x))
        assert not torch.allclose(model3(x), ema.module(x))
