"""End-to-end demo: build FractalBrainNet through timm, run it on real photos, analyse its fractal patterns,
classify held-out handwritten digits with the shipped `fractalbrainnet_small.digits_32` weights (accuracy and a
PNG of predictions), and optionally fine-tune a fresh model on the digits.

    python -m timm_fractalbrain.demo [--model fractalbrainnet_small] [--out output] [--epochs 0]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.data import create_transform, resolve_data_config

from timm_fractalbrain import MODEL_NAMES
from timm_fractalbrain.data import digits_tensors, write_digits_folder
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


def _shipped_digits(out_dir: Path) -> float:
    """Classify the 360 held-out digits with the shipped tag, through timm's own data pipeline."""
    from timm.data import create_dataset, create_loader

    model = timm.create_model('fractalbrainnet_small.digits_32', pretrained=True).eval()
    cfg = resolve_data_config(model=model)
    labels = model.pretrained_cfg['label_names']
    with tempfile.TemporaryDirectory() as tmp:
        root = write_digits_folder(tmp, img_size=cfg['input_size'][-1])
        dataset = create_dataset('', root=str(root / 'validation'))
        loader = create_loader(dataset, input_size=cfg['input_size'], batch_size=120, use_prefetcher=False,
                               interpolation=cfg['interpolation'], mean=cfg['mean'], std=cfg['std'],
                               crop_pct=cfg['crop_pct'])
        images, preds, targets = [], [], []
        with torch.no_grad():
            for x, y in loader:
                preds.append(model(x).argmax(1))
                targets.append(y)
                images.append(x)
    images, preds, targets = torch.cat(images), torch.cat(preds), torch.cat(targets)
    acc = (preds == targets).float().mean().item()
    print(f'\nfractalbrainnet_small.digits_32 (shipped weights, loaded offline) on the {len(targets)} held-out '
          f'digits: top-1 {100 * acc:.2f}%')
    sample = torch.arange(0, len(targets), max(len(targets) // 20, 1))[:20]
    print('  predictions (true label in brackets when wrong): ' + ' '.join(
        f'{labels[p]}{"" if p == t else "(" + labels[t] + ")"}'
        for p, t in zip(preds[sample].tolist(), targets[sample].tolist())))
    _plot_predictions(images, preds, targets, labels, cfg, out_dir / 'digits_predictions.png', acc)
    return acc


def _plot_predictions(images, preds, targets, labels, cfg, path: Path, acc: float) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    wrong = (preds != targets).nonzero().flatten().tolist()
    right = (preds == targets).nonzero().flatten().tolist()
    picks = (wrong[:6] + right[::max(len(right) // 18, 1)])[:24]
    mean = torch.tensor(cfg['mean']).view(3, 1, 1)
    std = torch.tensor(cfg['std']).view(3, 1, 1)
    fig, axes = plt.subplots(3, 8, figsize=(12, 5.2))
    for ax, i in zip(axes.flat, picks):
        img = (images[i] * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(img)
        ok = preds[i] == targets[i]
        ax.set_title(f'pred {labels[preds[i]]}' + ('' if ok else f' (true {labels[targets[i]]})'),
                     color='black' if ok else 'red', fontsize=9)
        ax.axis('off')
    for ax in list(axes.flat)[len(picks):]:
        ax.axis('off')
    fig.suptitle(f'fractalbrainnet_small.digits_32 on held-out digits: top-1 {100 * acc:.2f}% '
                 '(misclassified first, in red)')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f'  wrote {path}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='fractalbrainnet_small', choices=MODEL_NAMES + ('test_fractalbrainnet',))
    parser.add_argument('--out', default='output', help='folder for the PNG of digit predictions')
    parser.add_argument('--epochs', type=int, default=0,
                        help='also fine-tune a fresh model on the digits for this many epochs (0 skips it)')
    args = parser.parse_args(argv)
    if args.epochs < 0:
        parser.error('--epochs must be >= 0')
    _variants_table()
    _photos(args.model)
    _shipped_digits(Path(args.out))
    if args.epochs:
        _digits(args.model, args.epochs)
    return 0


if __name__ == '__main__':
    sys.exit(main())
