"""Export FractalBrainNet to ONNX for deployment, with a checked onnxruntime parity report.

    fractalbrain-export --model fractalbrainnet_small [--checkpoint PATH] --output model.onnx [--img-size N]
                        [--batch-size N] [--opset N] [--dynamic-size] [--reparam] [--exporter dynamo|torchscript]
                        [--check] [--fp16]

Batch size is always dynamic; height and width too with --dynamic-size. The file is written whole or not at
all, passes onnx.checker.check_model(full_check=True), and carries the deployment metadata (variant, input
size, mean / std, interpolation, crop_pct, label names) in its metadata_props. With --check, onnxruntime (CPU)
is compared against PyTorch eager of the unfolded model on scikit-image's bundled photos, at two input sizes
and two batch sizes (with --dynamic-size), and the export fails when the parity bar is missed.

    fractalbrain-export validate --onnx model.onnx --data-dir DIR [--split validation] [--batch-size N]

reports onnxruntime top-1 / top-5 on an image-folder dataset, preprocessed from the file's own metadata.
"""
import argparse
import copy
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import timm
import torch

from timm_fractalbrain.checkpoint import (
    CheckpointError,
    atomic_write,
    check_state_dict,
    load_checkpoint_file,
    shape_kwargs_from_state,
    state_dict_from_checkpoint,
)

__all__ = ['load_model', 'export_onnx', 'parity_report', 'read_metadata', 'validate_onnx', 'main']

# NOTE: LayerNormalization (opset 17) and scaled-dot-product attention are exported natively from these opsets.
MIN_OPSET = {'dynamo': 18, 'torchscript': 17}
DEFAULT_OPSET = 18


class ExportError(Exception):
    """An expected mistake (bad model name, checkpoint, path, opset, input): reported without a traceback."""


def load_model(
        model_name: str,
        checkpoint: Optional[str] = None,
        num_classes: Optional[int] = None,
        in_chans: Optional[int] = None,
        use_ema: bool = False,
) -> torch.nn.Module:
    """Create `model_name` through timm (eval mode), with weights from a train.py checkpoint, a state_dict or a
    safetensors file. The class count is taken from the checkpoint's classifier when not given."""
    if model_name not in timm.list_models() and model_name not in timm.list_pretrained():
        known = ', '.join(timm.list_models('*fractalbrainnet*'))
        raise ExportError(f'Unknown model {model_name!r}; FractalBrainNet models are: {known} '
                          '(any other timm model name works too).')
    kwargs: Dict[str, Any] = {}
    state = None
    if checkpoint:
        try:
            state = state_dict_from_checkpoint(load_checkpoint_file(checkpoint), use_ema=use_ema)
        except CheckpointError as e:
            raise ExportError(str(e)) from None
        implied = shape_kwargs_from_state(state)
        num_classes = implied.get('num_classes') if num_classes is None else num_classes
        in_chans = implied.get('in_chans') if in_chans is None else in_chans
    if num_classes is not None:
        kwargs['num_classes'] = num_classes
    if in_chans is not None:
        kwargs['in_chans'] = in_chans
    model = timm.create_model(model_name, **kwargs)
    if state is not None:
        try:
            check_state_dict(model, state, what=f'checkpoint {checkpoint}')
        except CheckpointError as e:
            raise ExportError(str(e)) from None
        model.load_state_dict(state)
    return model.eval()


def _metadata(model: torch.nn.Module, img_size: int, reparam: bool, exporter: str) -> Dict[str, str]:
    cfg = getattr(model, 'pretrained_cfg', {}) or {}
    meta = {
        'variant': str(cfg.get('architecture', type(model).__name__)),
        'pretrained_tag': str(cfg.get('tag', '') or ''),
        'input_size': json.dumps([int(model.in_chans if hasattr(model, 'in_chans') else 3), img_size, img_size]),
        'mean': json.dumps([float(v) for v in cfg.get('mean', (0.485, 0.456, 0.406))]),
        'std': json.dumps([float(v) for v in cfg.get('std', (0.229, 0.224, 0.225))]),
        'interpolation': str(cfg.get('interpolation', 'bicubic')),
        'crop_pct': str(float(cfg.get('crop_pct', 0.875))),
        'crop_mode': str(cfg.get('crop_mode', 'center')),
        'num_classes': str(int(getattr(model, 'num_classes', 0))),
        'reparameterized': str(bool(reparam)).lower(),
        'exporter': exporter,
    }
    if cfg.get('label_names'):
        meta['label_names'] = json.dumps(list(cfg['label_names']))
    return meta


def export_onnx(
        model: torch.nn.Module,
        output: str,
        img_size: Optional[int] = None,
        batch_size: int = 2,
        opset: int = DEFAULT_OPSET,
        dynamic_size: bool = False,
        reparam: bool = False,
        exporter: str = 'dynamo',
        fp16: bool = False,
) -> Path:
    """Export an eval-mode model with timm's exporter, add deployment metadata, check it, write it atomically.

    Returns the output path. The model passed in is not modified (reparameterization works on a copy).
    """
    import onnx
    from timm.utils.model import reparameterize_model
    from timm.utils.onnx import onnx_export

    if exporter not in MIN_OPSET:
        raise ExportError(f'Unknown exporter {exporter!r}; use dynamo or torchscript.')
    if opset < MIN_OPSET[exporter]:
        raise ExportError(
            f'Opset {opset} is too old for this model with the {exporter} exporter: LayerNormalization needs '
            f'opset 17 and the dynamo exporter emits opset 18 or newer; use --opset {MIN_OPSET[exporter]} or newer.')
    out_dir = Path(output).parent if str(Path(output).parent) else Path('.')
    if not out_dir.is_dir() or not os.access(out_dir, os.W_OK):
        raise ExportError(f'Cannot write {output!r}: directory {str(out_dir)!r} does not exist or is not writable.')
    cfg = getattr(model, 'pretrained_cfg', {}) or {}
    img_size = img_size or int(cfg.get('input_size', (3, 224, 224))[-1])
    in_chans = int(getattr(model, 'in_chans', 3))
    model = reparameterize_model(model.eval()) if reparam else copy.deepcopy(model).eval()
    example = torch.randn(max(batch_size, 1), in_chans, img_size, img_size)
    if fp16:
        model = model.half()
        example = example.half()
    meta = _metadata(model, img_size, reparam, exporter)
    if fp16:
        meta['dtype'] = 'float16'

    def _write(tmp_path: str) -> None:
        with tempfile.TemporaryDirectory() as work:
            raw = os.path.join(work, 'raw.onnx')
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                onnx_export(
                    model, raw, example_input=example, check=False, opset=opset, dynamic_size=dynamic_size,
                    use_dynamo=exporter == 'dynamo', input_names=['input'], output_names=['logits'],
                )
            proto = onnx.load(raw)
            del proto.metadata_props[:]
            for key, value in meta.items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.save(proto, tmp_path)
        onnx.checker.check_model(tmp_path, full_check=True)

    return atomic_write(output, _write, suffix='.onnx')


def read_metadata(onnx_path: str) -> Dict[str, Any]:
    """The deployment metadata of an exported file, decoded (lists and numbers as Python values)."""
    import onnx

    proto = onnx.load(onnx_path, load_external_data=False)
    meta: Dict[str, Any] = {p.key: p.value for p in proto.metadata_props}
    for key in ('input_size', 'mean', 'std', 'label_names'):
        if key in meta:
            meta[key] = json.loads(meta[key])
    for key in ('crop_pct',):
        if key in meta:
            meta[key] = float(meta[key])
    return meta


def _session(onnx_path: str):
    import onnxruntime as ort

    return ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])


def _photo_batch(model: torch.nn.Module, img_size: int, batch_size: int) -> torch.Tensor:
    from timm.data import create_transform, resolve_data_config

    from timm_fractalbrain.utils import skimage_photos

    cfg = resolve_data_config(dict(input_size=(3, img_size, img_size)), model=model)
    transform = create_transform(**cfg)
    images = [transform(img) for _, img in skimage_photos()]
    batch = torch.stack([images[i % len(images)] for i in range(batch_size)])
    in_chans = int(getattr(model, 'in_chans', 3))
    if in_chans != 3:
        batch = batch.mean(dim=1, keepdim=True).expand(-1, in_chans, -1, -1).contiguous()
    return batch


def parity_report(
        onnx_path: str,
        model: torch.nn.Module,
        sizes: Sequence[int],
        batch_sizes: Sequence[int] = (1, 4),
) -> List[Dict[str, Any]]:
    """onnxruntime (CPU) against PyTorch eager of `model` on scikit-image's photos, preprocessed with the model's
    own timm transform. One row per (size, batch): max abs diff, the bar 1e-4 * max(1, max |logit|), top-1
    agreement."""
    session = _session(onnx_path)
    input_name = session.get_inputs()[0].name
    fp16 = session.get_inputs()[0].type == 'tensor(float16)'
    rows = []
    for size in sizes:
        for bs in batch_sizes:
            x = _photo_batch(model, size, bs)
            with torch.no_grad():
                ref = model(x).float().numpy()
            feed = x.half().numpy() if fp16 else x.numpy()
            got = session.run(None, {input_name: feed})[0].astype(np.float32)
            diff = float(np.abs(got - ref).max())
            bar = (1e-2 if fp16 else 1e-4) * max(1.0, float(np.abs(ref).max()))
            rows.append(dict(size=size, batch=bs, max_abs_diff=diff, bar=bar,
                             top1_agree=bool((got.argmax(1) == ref.argmax(1)).all()),
                             ok=diff <= bar and bool((got.argmax(1) == ref.argmax(1)).all())))
    return rows


def validate_onnx(onnx_path: str, data_dir: str, split: str = 'validation', batch_size: int = 64,
                  workers: int = 0) -> Dict[str, float]:
    """onnxruntime top-1 / top-5 on an image folder, preprocessed from the file's metadata (timm transforms)."""
    from timm.data import create_dataset, create_loader

    meta = read_metadata(onnx_path)
    if int(meta['input_size'][0]) != 3:
        raise ExportError(
            f'{onnx_path} expects {meta["input_size"][0]} input channel(s) but image folders load RGB (3 channels); '
            'export a model with in_chans=3 or convert the images yourself.')
    root = Path(data_dir) / split if (Path(data_dir) / split).is_dir() else Path(data_dir)
    if not root.is_dir():
        raise ExportError(f'Dataset folder {str(root)!r} does not exist.')
    dataset = create_dataset('', root=str(root))
    loader = create_loader(
        dataset, input_size=tuple(meta['input_size']), batch_size=batch_size, use_prefetcher=False,
        interpolation=meta.get('interpolation', 'bicubic'), mean=tuple(meta['mean']), std=tuple(meta['std']),
        crop_pct=meta.get('crop_pct', 0.875), num_workers=workers,
    )
    session = _session(onnx_path)
    input_name = session.get_inputs()[0].name
    fp16 = session.get_inputs()[0].type == 'tensor(float16)'
    correct1 = correct5 = total = 0
    start = time.time()
    for x, y in loader:
        out = session.run(None, {input_name: (x.half() if fp16 else x).numpy()})[0]
        top5 = np.argsort(-out, axis=1)[:, :5]
        correct1 += int((top5[:, 0] == y.numpy()).sum())
        correct5 += int((top5 == y.numpy()[:, None]).any(axis=1).sum())
        total += len(y)
    return dict(top1=100.0 * correct1 / total, top5=100.0 * correct5 / total, images=total,
                seconds=time.time() - start)


def _print_parity(rows: List[Dict[str, Any]]) -> bool:
    print(f'{"size":>5} {"batch":>5} {"max|diff|":>11} {"bar":>9} {"top-1":>6}')
    for r in rows:
        print(f'{r["size"]:>5} {r["batch"]:>5} {r["max_abs_diff"]:>11.3e} {r["bar"]:>9.1e} '
              f'{"same" if r["top1_agree"] else "DIFF":>6}')
    return all(r['ok'] for r in rows)


def _export_main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog='fractalbrain-export', description='Export a timm model to ONNX.')
    parser.add_argument('--model', '-m', required=True, help='model name, e.g. fractalbrainnet_small')
    parser.add_argument('--checkpoint', default=None, help='train.py checkpoint, state_dict or .safetensors')
    parser.add_argument('--use-ema', action='store_true', help='export the checkpoint\'s EMA weights')
    parser.add_argument('--num-classes', type=int, default=None)
    parser.add_argument('--in-chans', type=int, default=None)
    parser.add_argument('--output', '-o', required=True, help='output .onnx file')
    parser.add_argument('--img-size', type=int, default=None, help='export (and parity) input size')
    parser.add_argument('--batch-size', '-b', type=int, default=2, help='example batch (batch is always dynamic)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument('--dynamic-size', action='store_true', help='dynamic height and width')
    parser.add_argument('--reparam', action='store_true', help='fold BatchNorm and AdaptiveScaleProcessor first')
    parser.add_argument('--exporter', choices=sorted(MIN_OPSET), default='dynamo')
    parser.add_argument('--check', action='store_true', help='onnxruntime parity report on real photos')
    parser.add_argument('--fp16', action='store_true', help='export in float16')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    if args.img_size is not None and args.img_size < 8:
        parser.error('--img-size must be >= 8')

    model = load_model(args.model, args.checkpoint, args.num_classes, args.in_chans, args.use_ema)
    img_size = args.img_size or int(model.pretrained_cfg['input_size'][-1])
    start = time.time()
    path = export_onnx(model, args.output, img_size, args.batch_size, args.opset, args.dynamic_size, args.reparam,
                       args.exporter, args.fp16)
    print(f'wrote {path} ({path.stat().st_size / 2 ** 20:.1f} MiB, {args.exporter}, opset {args.opset}'
          f'{", reparameterized" if args.reparam else ""}) in {time.time() - start:.1f}s; onnx checker: ok')
    if args.check:
        sizes = [img_size, img_size + 32] if args.dynamic_size else [img_size]
        rows = parity_report(str(path), model.float(), sizes, (1, 4))
        if not _print_parity(rows):
            print('parity FAILED: onnxruntime does not match PyTorch within the bar', file=sys.stderr)
            return 1
        print('parity: ok')
    return 0


def _validate_main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog='fractalbrain-export validate',
                                     description='onnxruntime top-1 on an image-folder dataset.')
    parser.add_argument('--onnx', required=True)
    parser.add_argument('--data-dir', required=True)
    parser.add_argument('--split', default='validation')
    parser.add_argument('--batch-size', '-b', type=int, default=64)
    args = parser.parse_args(argv)
    if not Path(args.onnx).is_file():
        raise ExportError(f'ONNX file {args.onnx!r} does not exist.')
    res = validate_onnx(args.onnx, args.data_dir, args.split, args.batch_size)
    print(f'onnxruntime: top-1 {res["top1"]:.2f}%  top-5 {res["top5"]:.2f}%  on {res["images"]} images '
          f'({res["seconds"]:.1f}s)')
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import timm_fractalbrain  # noqa: F401  (registers the models)

    try:
        if argv and argv[0] == 'validate':
            return _validate_main(argv[1:])
        return _export_main(argv)
    except ExportError as e:
        print(f'fractalbrain-export: error: {e}', file=sys.stderr)
        return 2
    except OSError as e:
        print(f'fractalbrain-export: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
