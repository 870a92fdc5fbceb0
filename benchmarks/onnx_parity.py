"""ONNX parity report: every variant x exporter x folding, on scikit-image's photos at two sizes and two batch
sizes, plus the shipped digits weights' accuracy under onnxruntime against PyTorch.

    python benchmarks/onnx_parity.py [--models fractalbrainnet_small fractalbrainnet_medium]
"""
import argparse
import os
import sys
import tempfile

import timm
import torch

import timm_fractalbrain  # noqa: F401
from timm_fractalbrain.data import write_digits_folder
from timm_fractalbrain.onnx_export import export_onnx, parity_report, validate_onnx


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=['fractalbrainnet_small', 'fractalbrainnet_medium'])
    parser.add_argument('--sizes', type=int, nargs=2, default=[224, 160])
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp()
    print(f'{"model":<24} {"exporter":<12} {"folded":<7} {"worst max|diff|":>16} {"bar":>9} {"top-1":>6}')
    for name in args.models:
        torch.manual_seed(0)
        model = timm.create_model(name).eval()
        for exporter in ('dynamo', 'torchscript'):
            for reparam in (False, True):
                path = export_onnx(model, os.path.join(work, 'm.onnx'), img_size=args.sizes[0], dynamic_size=True,
                                   reparam=reparam, exporter=exporter)
                rows = parity_report(str(path), model, args.sizes, (1, 4))
                worst = max(rows, key=lambda r: r['max_abs_diff'] / r['bar'])
                print(f'{name:<24} {exporter:<12} {str(reparam):<7} {worst["max_abs_diff"]:>16.2e} '
                      f'{worst["bar"]:>9.1e} {"same" if all(r["top1_agree"] for r in rows) else "DIFF":>6}',
                      flush=True)
    root = write_digits_folder(os.path.join(work, 'digits'), img_size=32)
    model = timm.create_model('fractalbrainnet_small.digits_32', pretrained=True).eval()
    for exporter in ('dynamo', 'torchscript'):
        path = export_onnx(model, os.path.join(work, 'd.onnx'), reparam=True, exporter=exporter)
        res = validate_onnx(str(path), str(root), 'validation', batch_size=120)
        print(f'fractalbrainnet_small.digits_32 ({exporter}, folded) onnxruntime top-1 on 360 digits: '
              f'{res["top1"]:.2f}% (PyTorch: 97.22%)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
