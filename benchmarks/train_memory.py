"""Peak memory of one training step (forward, backward, SGD step), with and without grad checkpointing.

    python benchmarks/train_memory.py [--models fractalbrainnet_small fractalbrainnet_medium] [--batch-size 32]
                                      [--img-size 128] [--seed-program PATH/TO/FractalBrainNet-v2.py]

Each measurement runs in a fresh process. Two numbers per case:
  * activations: bytes of the tensors autograd saves for backward (exact, independent of the allocator);
  * peak RSS: the process's peak resident memory during the step minus its resident memory just before it
    (includes gradients, optimizer state and allocator overhead).
"""
import argparse
import json
import resource
import subprocess
import sys

import torch


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _measure(model_name: str, batch_size: int, img_size: int, ckpt: bool, seed_program: str = '') -> dict:
    import timm

    import timm_fractalbrain  # noqa: F401

    torch.manual_seed(0)
    if model_name.startswith('seed-'):
        import importlib.util

        spec = importlib.util.spec_from_file_location('fractalbrain_seed_program', seed_program)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.create_fractal_brain_net(model_name.split('-', 1)[1], num_classes=10).train()
    else:
        model = timm.create_model(model_name, num_classes=10).train()
        model.set_grad_checkpointing(ckpt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch_size, 3, img_size, img_size)
    y = torch.randint(0, 10, (batch_size,))
    saved = 0

    def pack(t):
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    base = _rss_bytes()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {'activations': saved, 'peak_rss_delta': max(peak - base, 0)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=['fractalbrainnet_small', 'fractalbrainnet_medium'])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--img-size', type=int, default=128)
    parser.add_argument('--seed-program', default='', help='also measure the original FractalBrainNet-v2.py')
    parser.add_argument('--_child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(_measure(args._child[0], args.batch_size, args.img_size, args._child[1] == '1',
                                  args.seed_program)))
        return 0
    print(f'training step, batch {args.batch_size}, {args.img_size} px, CPU')
    print(f'{"model":<24} {"activations":>12} {"ckpt":>10} {"saved":>6}   {"peak RSS":>10} {"ckpt":>10} {"saved":>6}')
    names = list(args.models)
    if args.seed_program:
        names += [f'seed-{n.rsplit("_", 1)[-1]}' for n in args.models]
    for name in names:
        res = {}
        for ckpt in (0, 1):
            out = subprocess.run(
                [sys.executable, __file__, '--batch-size', str(args.batch_size), '--img-size', str(args.img_size),
                 '--seed-program', args.seed_program, '--_child', name, str(ckpt)],
                capture_output=True, text=True, check=True)
            res[ckpt] = json.loads(out.stdout.strip().splitlines()[-1])
        a0, a1 = res[0]['activations'] / 2 ** 20, res[1]['activations'] / 2 ** 20
        r0, r1 = res[0]['peak_rss_delta'] / 2 ** 20, res[1]['peak_rss_delta'] / 2 ** 20
        print(f'{name:<24} {a0:>9.0f} MiB {a1:>6.0f} MiB {100 * (1 - a1 / a0):>5.0f}%   '
              f'{r0:>7.0f} MiB {r1:>6.0f} MiB {100 * (1 - r1 / r0):>5.0f}%', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
