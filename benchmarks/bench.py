"""Side-by-side speed benchmark: FractalBrainNet eager, deploy path, torch.compile, onnxruntime and a training step,
with timm peers and (optionally) the original FractalBrainNet program, all measured in one run.

    python benchmarks/bench.py [--models fractalbrainnet_small fractalbrainnet_medium] [--img-size 224]
                               [--batch-sizes 1 16] [--train-img-size 128] [--threads 2] [--repeats 5]
                               [--modes eager deploy bf16 compile onnx train] [--peers resnet50 convnext_nano]
                               [--seed-program PATH/TO/FractalBrainNet-v2.py]

Every case is timed in rounds: each round runs every case once (warm), in alternating order, and the median
over rounds is reported, so that load on a shared machine hits all cases alike. Ratios are taken within the
run. Speed is never asserted in tests; this script only prints.

Modes:
  eager    model.eval() forward, default memory format
  deploy   timm.utils.model.reparameterize_model + channels_last
  bf16     the deploy model under torch.autocast('cpu', dtype=torch.bfloat16) (not the same math: bfloat16)
  compile  torch.compile of the eager model
  onnx     onnxruntime (CPU provider) on a dynamo export of the reparameterized model
  train    forward, backward and an SGD step in train mode (at --train-img-size)
The conv roofline is the best GFLOP/s of a 3x3 conv (64 -> 64 channels, 56 x 56, channels_last) measured here.
Against the original program, 'ceiling' is the ratio our model would reach if every multiply-accumulate it executes
ran at the conv roofline and nothing else took time: the most any same-math float32 implementation of our
formulation can gain on this machine.
"""
import argparse
import copy
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F


def _timeit(fn: Callable[[], None], inner: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def conv_roofline_gflops(repeats: int = 5) -> float:
    x = torch.randn(16, 64, 56, 56).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
    flops = 2 * 16 * 56 * 56 * 64 * 64 * 9
    with torch.no_grad():
        F.conv2d(x, w, padding=1)
        best = min(_timeit(lambda: F.conv2d(x, w, padding=1)) for _ in range(repeats))
    return flops / best / 1e9


def _seed_model(path: str, size: str):
    spec = importlib.util.spec_from_file_location('fractalbrain_seed_program', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_fractal_brain_net(size, num_classes=1000)


def _gmacs(model, x) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2e9


def build_cases(args) -> Dict[str, Dict]:
    import timm
    from timm.utils.model import reparameterize_model

    import timm_fractalbrain  # noqa: F401

    cases: Dict[str, Dict] = {}
    names = list(args.models) + list(args.peers)
    for name in names:
        torch.manual_seed(0)
        model = timm.create_model(name).eval()
        # the deploy path (folded copy, channels_last), shared by the float32 and bfloat16 cases of every batch size
        dep = reparameterize_model(model).to(memory_format=torch.channels_last)
        for bs in args.batch_sizes:
            x = torch.randn(bs, 3, args.img_size, args.img_size)
            xc = x.contiguous(memory_format=torch.channels_last)
            gmacs = _gmacs(model, x)
            if 'eager' in args.modes:
                cases[f'{name} eager bs{bs}'] = dict(fn=_infer(model, x), images=bs, gmacs=gmacs, name=name,
                                                       mode='eager', bs=bs)
            if 'deploy' in args.modes:
                cases[f'{name} deploy bs{bs}'] = dict(fn=_infer(dep, xc), images=bs, gmacs=gmacs, name=name,
                                                        mode='deploy', bs=bs)
            if 'bf16' in args.modes:
                cases[f'{name} bf16 bs{bs}'] = dict(fn=_infer(dep, xc, torch.bfloat16), images=bs, gmacs=gmacs,
                                                      name=name, mode='bf16', bs=bs)
            if 'compile' in args.modes:
                comp = torch.compile(copy.deepcopy(model))
                with torch.no_grad():
                    comp(x)
                cases[f'{name} compile bs{bs}'] = dict(fn=_infer(comp, x), images=bs, gmacs=gmacs, name=name,
                                                         mode='compile', bs=bs)
            if 'onnx' in args.modes:
                cases[f'{name} onnx bs{bs}'] = dict(fn=_onnx(model, x, args.img_size), images=bs, gmacs=gmacs,
                                                      name=name, mode='onnx', bs=bs)
        if 'train' in args.modes:
            bs = args.train_batch_size
            xt = torch.randn(bs, 3, args.train_img_size, args.train_img_size)
            cases[f'{name} train bs{bs}@{args.train_img_size}'] = dict(
                fn=_train_step_model(timm.create_model(name).train(), xt), images=bs,
                gmacs=3 * _gmacs(model, xt), name=name, mode='train', bs=bs)
    if args.seed_program:
        for name in args.models:
            size = name.rsplit('_', 1)[-1]
            seed = _seed_model(args.seed_program, size).eval()
            for bs in args.batch_sizes:
                x = torch.randn(bs, 3, args.img_size, args.img_size)
                gmacs = _gmacs(seed, x)
                cases[f'seed-{size} eager bs{bs}'] = dict(fn=_infer(seed, x), images=bs, gmacs=gmacs,
                                                           name=f'seed-{size}', mode='eager', bs=bs)
            if 'train' in args.modes:
                bs = args.train_batch_size
                xt = torch.randn(bs, 3, args.train_img_size, args.train_img_size)
                cases[f'seed-{size} train bs{bs}@{args.train_img_size}'] = dict(
                    fn=_train_step_model(_seed_model(args.seed_program, size).train(), xt), images=bs,
                    gmacs=3 * _gmacs(seed, xt), name=f'seed-{size}', mode='train', bs=bs)
    return cases


def _infer(model, x, autocast_dtype: Optional[torch.dtype] = None):
    def run():
        with torch.no_grad(), torch.autocast('cpu', dtype=autocast_dtype, enabled=autocast_dtype is not None):
            model(x)
    return run


def _train_step_model(model, x):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    y = torch.randint(0, 1000, (x.shape[0],))

    def run():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return run


def _onnx(model, x, img_size: int):
    import onnxruntime as ort

    from timm_fractalbrain.onnx_export import export_onnx

    path = os.path.join(tempfile.mkdtemp(), 'model.onnx')
    export_onnx(model, path, img_size=img_size, reparam=True, exporter='dynamo', dynamic_size=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)


def run(args) -> List[Dict]:
    torch.set_num_threads(args.threads)
    cases = build_cases(args)
    for case in cases.values():  # warm up
        case['fn']()
    times: Dict[str, List[float]] = {k: [] for k in cases}
    keys = list(cases)
    for r in range(args.repeats):
        order = keys if r % 2 == 0 else keys[::-1]
        for k in order:
            times[k].append(_timeit(cases[k]['fn']))
        print(f'  round {r + 1}/{args.repeats} done', file=sys.stderr, flush=True)
    rows = []
    for k, case in cases.items():
        med = statistics.median(times[k])
        rows.append(dict(case=k, name=case['name'], mode=case['mode'], bs=case['bs'], seconds=med,
                         img_per_s=case['images'] / med, gflops=2 * case['gmacs'] / med))
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=['fractalbrainnet_small', 'fractalbrainnet_medium'])
    parser.add_argument('--peers', nargs='*', default=['resnet50', 'convnext_nano'])
    parser.add_argument('--modes', nargs='+', default=['eager', 'deploy', 'bf16', 'compile', 'onnx', 'train'],
                        choices=['eager', 'deploy', 'bf16', 'compile', 'onnx', 'train'])
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 16])
    parser.add_argument('--train-img-size', type=int, default=128)
    parser.add_argument('--train-batch-size', type=int, default=16)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--seed-program', default=None, help='path to the original FractalBrainNet-v2.py')
    args = parser.parse_args(argv)
    if args.seed_program and not os.path.isfile(args.seed_program):
        parser.error(f'--seed-program {args.seed_program!r} does not exist')
    if args.repeats < 1 or args.threads < 1:
        parser.error('--repeats and --threads must be >= 1')

    roof = conv_roofline_gflops()
    rows = run(args)
    print(f'\n{torch.get_num_threads()} threads, conv roofline {roof:.0f} GFLOP/s (3x3 conv, channels_last)')
    print(f'{"case":<44} {"img/s":>9} {"GFLOP/s":>9} {"% roof":>7} {"vs eager":>9}')
    eager = {(r['name'], r['bs']): r['img_per_s'] for r in rows if r['mode'] == 'eager'}
    for r in rows:
        base = eager.get((r['name'], r['bs']))
        ratio = f'{r["img_per_s"] / base:.2f}x' if base and r['mode'] != 'train' else ''
        print(f'{r["case"]:<44} {r["img_per_s"]:>9.2f} {r["gflops"]:>9.1f} {100 * r["gflops"] / roof:>6.0f}% '
              f'{ratio:>9}')
    seed_rows = [r for r in rows if r['name'].startswith('seed-')]
    if seed_rows:
        print('\nagainst the original program (same shapes, same run):')
        for r in seed_rows:
            size = r['name'].split('-', 1)[1]
            ours = {x['mode']: x for x in rows if x['name'] == f'fractalbrainnet_{size}' and x['bs'] == r['bs']}
            modes = ['train'] if r['mode'] == 'train' else ['eager', 'deploy', 'bf16', 'compile', 'onnx']
            for mode in modes:
                if mode in ours:
                    print(f'  {size:<7} {mode:<8} bs{r["bs"]:<3} {ours[mode]["img_per_s"] / r["img_per_s"]:.2f}x')
            ref = ours.get(r['mode'])
            if ref is not None:
                # images per second if all of our executed multiply-accumulates ran at the conv roofline
                ceiling = roof / (ref['gflops'] / ref['img_per_s'])
                label = f'{ceiling / r["img_per_s"]:.2f}x'
                print(f'  {size:<7} {"ceiling":<8} bs{r["bs"]:<3} {label} ({r["mode"]}, float32)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
