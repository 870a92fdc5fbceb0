"""Pictures of a FractalBrainNet: fractal patterns, per-stage activity maps, join gates, training curves.

    fractalbrain-viz --model NAME [--checkpoint PATH | --pretrained] --image PATH --out DIR
        writes DIR/patterns.png, DIR/stages.png, DIR/gates.png and DIR/analysis.json

    fractalbrain-viz curves SUMMARY.csv [SUMMARY.csv ...] [--labels A B ...] --out FILE.png
        plots loss and top-1 curves from timm train.py summary.csv files
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F

__all__ = ['render_model', 'plot_curves', 'main']


class VizError(Exception):
    """An expected mistake (bad image, model, path): reported without a traceback, exit code 2."""


def _plt():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _out_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VizError(f'Cannot create output directory {path!r}: {e.strerror}.') from None
    if not os.access(out, os.W_OK):
        raise VizError(f'Output directory {path!r} is not writable.')
    return out


def _load_image(path: str):
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise VizError(f'Image {path!r} does not exist.')
    try:
        with Image.open(path) as img:
            return img.convert('RGB')
    except (UnidentifiedImageError, OSError) as e:
        raise VizError(f'Image {path!r} cannot be read as an image ({type(e).__name__}).') from None


def _build_model(name: str, checkpoint: Optional[str], pretrained: bool):
    import timm

    from timm_fractalbrain.onnx_export import ExportError, load_model

    arch = name.split('.')[0]
    if 'fractalbrainnet' not in arch or arch not in timm.list_models('*fractalbrainnet*'):
        known = ', '.join(timm.list_models('*fractalbrainnet*') + timm.list_pretrained('*fractalbrainnet*'))
        raise VizError(f'Unknown model {name!r}; FractalBrainNet models are: {known}.')
    if checkpoint:
        try:
            return load_model(name, checkpoint)
        except ExportError as e:
            raise VizError(str(e)) from None
    try:
        return timm.create_model(name, pretrained=pretrained).eval()
    except RuntimeError as e:
        raise VizError(f'Cannot create {name!r}: {e}') from None


def _stage_sizes(model, img_size: int) -> List[int]:
    return [max(1, -(-img_size // info['reduction'])) for info in model.feature_info[1:]]


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=100)
    _plt().close(fig)


def plot_patterns(model, img_size: int, path: Path) -> None:
    from timm_fractalbrain.patterns import FractalPatternGenerator, FractalPatternType

    plt = _plt()
    cd = next(m for m in model.modules() if hasattr(m, 'pattern_resolution'))
    res = cd.pattern_resolution
    sizes = _stage_sizes(model, img_size)
    fig, axes = plt.subplots(len(FractalPatternType), 1 + len(sizes),
                             figsize=(2.3 * (1 + len(sizes)), 2.3 * len(FractalPatternType)), squeeze=False)
    for row, ptype in enumerate(FractalPatternType):
        pattern = FractalPatternGenerator.generate(ptype, res)
        maps = [pattern] + [F.interpolate(pattern[None, None], size=(s, s), mode='bilinear',
                                          align_corners=False)[0, 0] for s in sizes]
        for col, m in enumerate(maps):
            ax = axes[row, col]
            ax.imshow(m.numpy(), cmap='magma', vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            used = ' (used)' if ptype == cd.pattern_type else ''
            ax.set_title(f'{ptype.value}{used}\n{res}x{res}' if col == 0 else f'stage {col - 1}: {sizes[col - 1]}x'
                         f'{sizes[col - 1]}', fontsize=8)
    fig.suptitle(f'Fractal patterns at resolution {res}, and as resized to each stage ({img_size} px input)')
    fig.tight_layout()
    _save(fig, path)


def _join_gates(model, x) -> List[Dict[str, Any]]:
    from timm_fractalbrain.fractalbrainnet import FractalJoin

    records: List[Dict[str, Any]] = []
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, FractalJoin):
            def hook(m, args, out, name=name):
                gates = m.gates(*args)
                a, b = gates[:, 0], gates[:, 1]
                records.append(dict(name=name, deep_weight=(a / (a + b).clamp(min=1e-12))[0]))
            hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return records


def render_model(model, image, out_dir: Path) -> Dict[str, Any]:
    """Write patterns.png, stages.png, gates.png and analysis.json for one image; return the analysis dict."""
    from timm.data import create_transform, resolve_data_config

    plt = _plt()
    model = model.eval()
    cfg = resolve_data_config(model=model)
    x = create_transform(**cfg)(image).unsqueeze(0)
    if model.in_chans != 3:
        x = x.mean(1, keepdim=True).expand(-1, model.in_chans, -1, -1)
    img_size = x.shape[-1]

    plot_patterns(model, img_size, out_dir / 'patterns.png')

    analysis = model.analyze_fractal_patterns(x)
    maps = analysis['stage_maps']
    hier = analysis['hierarchical_organization']
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(3.2 * (1 + len(maps)), 3.6), squeeze=False)
    axes[0, 0].imshow(image.resize((img_size, img_size)))
    axes[0, 0].set_title(f'input ({img_size} px)', fontsize=9)
    for i, m in enumerate(maps):
        ax = axes[0, i + 1]
        im = ax.imshow(m[0, 0].numpy(), cmap='viridis')
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(f'stage {i}: {m.shape[-2]}x{m.shape[-1]}\ncomplexity {analysis["pattern_complexity"][i]:.3f}',
                     fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f'{model.pretrained_cfg.get("architecture")}: stage maps (channel mean); correlation '
                 f'{hier["correlation"]:.3f}, hierarchy score {hier["hierarchy_score"]:.3f}')
    fig.tight_layout()
    _save(fig, out_dir / 'stages.png')

    gates = _join_gates(model, x)
    # colour scale symmetric around the mean join (0.5), as wide as the largest deviation in this image
    spread = max([float((g['deep_weight'] - 0.5).abs().max()) for g in gates] + [0.01])
    fig, axes = plt.subplots(1, len(gates), figsize=(3.2 * len(gates), 3.6), squeeze=False)
    for ax, g in zip(axes.flat, gates):
        w = g['deep_weight']
        im = ax.imshow(w.numpy(), cmap='coolwarm', vmin=0.5 - spread, vmax=0.5 + spread)
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(f'{g["name"].replace(".block", "")}\nmean deep weight {w.mean():.3f}', fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle('Join gates: weight of the deep branch a / (a + b) per pixel (red: deep, blue: shallow)')
    fig.tight_layout()
    _save(fig, out_dir / 'gates.png')

    result = {
        'model': model.pretrained_cfg.get('architecture'),
        'tag': model.pretrained_cfg.get('tag'),
        'input_size': list(x.shape[1:]),
        'fractal_pattern': next(m for m in model.modules() if hasattr(m, 'pattern_type')).pattern_type.value,
        'stage_map_sizes': [list(m.shape[-2:]) for m in maps],
        'pattern_complexity': analysis['pattern_complexity'],
        'hierarchical_organization': hier,
        'join_mean_deep_weight': {g['name']: float(g['deep_weight'].mean()) for g in gates},
    }
    if model.num_classes:
        with torch.no_grad():
            probs = model(x).softmax(-1)[0]
        top = int(probs.argmax())
        labels = model.pretrained_cfg.get('label_names')
        result['prediction'] = dict(index=top, label=labels[top] if labels else None, prob=float(probs[top]))
    (out_dir / 'analysis.json').write_text(json.dumps(result, indent=2))
    return result


def _read_summary(path: str) -> Dict[str, List[float]]:
    from timm_fractalbrain.utils import read_train_summary

    try:
        rows = read_train_summary(path, 'epoch')
    except ValueError as e:
        raise VizError(str(e)) from None
    cols: Dict[str, List[float]] = {k: [] for k in rows[0]}
    for row in rows:
        for k, v in row.items():
            try:
                cols[k].append(float(v))
            except (TypeError, ValueError):
                cols[k].append(float('nan'))
    return cols


def plot_curves(summaries: List[str], labels: Optional[List[str]], out: str) -> Path:
    """Loss and top-1 curves of one or more train.py summary.csv files in one PNG."""
    plt = _plt()
    labels = labels or [Path(s).parent.name or Path(s).stem for s in summaries]
    if len(labels) != len(summaries):
        raise VizError(f'{len(labels)} labels for {len(summaries)} summary files.')
    data = [_read_summary(s) for s in summaries]
    out_path = Path(out)
    _out_dir(str(out_path.parent) if str(out_path.parent) else '.')
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for label, cols in zip(labels, data):
        epochs = [e + 1 for e in cols['epoch']]
        line, = ax_loss.plot(epochs, cols.get('train_loss', []), label=f'{label} train')
        if 'eval_loss' in cols:
            ax_loss.plot(epochs, cols['eval_loss'], '--', color=line.get_color(), label=f'{label} val')
        if 'eval_top1' in cols:
            best = max(cols['eval_top1'])
            ax_acc.plot(epochs, cols['eval_top1'], color=line.get_color(),
                        label=f'{label} (last {cols["eval_top1"][-1]:.2f}%, best {best:.2f}%)')
    ax_loss.set_xlabel('epoch')
    ax_loss.set_ylabel('loss')
    ax_loss.legend(fontsize=8)
    ax_acc.set_xlabel('epoch')
    ax_acc.set_ylabel('validation top-1 (%)')
    ax_acc.legend(fontsize=8)
    ax_acc.grid(alpha=0.3)
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == 'curves':
            parser = argparse.ArgumentParser(prog='fractalbrain-viz curves', description='train.py curves')
            parser.add_argument('summaries', nargs='+')
            parser.add_argument('--labels', nargs='+', default=None)
            parser.add_argument('--out', required=True)
            args = parser.parse_args(argv[1:])
            print(f'wrote {plot_curves(args.summaries, args.labels, args.out)}')
            return 0
        parser = argparse.ArgumentParser(prog='fractalbrain-viz', description=__doc__.split('\n\n')[0])
        parser.add_argument('--model', '-m', required=True)
        group = parser.add_mutually_exclusive_group()
        group.add_argument('--checkpoint', default=None)
        group.add_argument('--pretrained', action='store_true')
        parser.add_argument('--image', required=True)
        parser.add_argument('--out', required=True)
        args = parser.parse_args(argv)
        import timm_fractalbrain  # noqa: F401

        image = _load_image(args.image)
        out_dir = _out_dir(args.out)
        model = _build_model(args.model, args.checkpoint, args.pretrained)
        result = render_model(model, image, out_dir)
        print(f'wrote {out_dir}/patterns.png, stages.png, gates.png, analysis.json')
        print(json.dumps({k: result[k] for k in ('pattern_complexity', 'hierarchical_organization')}, indent=1))
        return 0
    except VizError as e:
        print(f'fractalbrain-viz: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
