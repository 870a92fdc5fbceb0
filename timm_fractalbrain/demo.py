"""End-to-end demo: build FractalBrainNet through timm, run it on real photos, analyse its fractal patterns and
fine-tune it on scikit-learn's handwritten digits.

    python -m timm_fractalbrain.demo [--model fractalbrainnet_small] [--epochs 4]
"""
import argparse
import sys
import time

import timm
import torch
import torch.nn.functional as F
from timm.data import create_transform, resolve_data_config

from timm_fractalbrain import MODEL_NAMES
from timm_fractalbrain.data import digits_tensors
from timm_fractalbrain.utils import params_and_gmacs, skimage_photos


def _variants_table() -> None:
    print('variant                    params      GMACs@224')
    for name in MODEL_NAMES:
        params, gmacs = params_and_gmacs(name)
        print(f'{name:<24} {params / 1e6:>8.2f} M {gmacs:>10.2f}')


def _photos(model_name: str) -> None:
    model = timm.create_model(model_name).eval()
    transform = create_transform(**resolve_data_config(model=model))
    photos = skimage_photos()
    batch = torch.stack([transform(img) for _, img in photos])
    with torch.no_grad():
        feats = model.forward_features(batch)
        logits = model.forward_head(feats)
    print(f'\n{model_name} on scikit-image photos {[n for n, _ in photos]}')
    print(f'  input {tuple(batch.shape)} -> forward_features {tuple(feats.shape)} -> logits {tuple(logits.shape)}')
    analysis = model.analyze_fractal_patterns(batch)
    shapes = [tuple(m.shape[-2:]) for m in analysis['stage_maps']]
    print(f'  stage maps {shapes}')
    print(f'  pattern complexity (entropy per stage): {[round(c, 3) for c in analysis["pattern_complexity"]]}')
    hier = analysis['hierarchical_organization']
    print(f'  hierarchy: correlation {hier["correlation"]:.4f}, hierarchy_score {hier["hierarchy_score"]:.4f}')


def _digits(model_name: str, epochs: int, batch_size: int = 64, lr: float = 2e-3) -> float:
    torch.manual_seed(0)
    model = timm.create_model(model_name, num_classes=10)
    cfg = model.pretrained_cfg
    train_x, train_y, val_x, val_y = digits_tensors(32, cfg['mean'], cfg['std'])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps_per_epoch = (len(train_x) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    print(f'\nfine-tuning {model_name} on scikit-learn digits (32 px, {len(train_x)} train / {len(val_x)} val)')
    start = time.time()
    acc = 0.
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x))
        total = 0.
        for i in range(0, len(train_x), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            acc = (model(val_x).argmax(1) == val_y).float().mean().item()
        print(f'  epoch {epoch + 1}/{epochs}  train loss {total / len(train_x):.3f}  val top-1 {100 * acc:.1f}%'
              f'  ({time.time() - start:.0f}s)', flush=True)
    return acc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='fractalbrainnet_small', choices=MODEL_NAMES + ('test_fractalbrainnet',))
    parser.add_argument('--epochs', type=int, default=4, help='digits fine-tuning epochs (0 skips it)')
    args = parser.parse_args(argv)
    if args.epochs < 0:
        parser.error('--epochs must be >= 0')
    _variants_table()
    _photos(args.model)
    if args.epochs:
        _digits(args.model, args.epochs)
    return 0


if __name__ == '__main__':
    sys.exit(main())
