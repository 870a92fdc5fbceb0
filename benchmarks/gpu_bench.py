"""GPU throughput: FractalBrainNet against timm peers with AMP bf16, channels_last and torch.compile.

    python benchmarks/gpu_bench.py [--models fractalbrainnet_small fractalbrainnet_medium resnet50 convnext_tiny]
                                   [--batch-size 64] [--train-batch-size 32] [--img-size 224] [--iters 20]

For each model: inference (eval, bf16 autocast, channels_last) eager and compiled, and a training step (forward,
backward, SGD; bf16 autocast, channels_last) eager and compiled. Timed with CUDA synchronisation after warm-up;
prints images/s and each FractalBrainNet's throughput relative to the peers in the same run.
"""
import argparse
import sys
import time

import torch
import torch.nn.functional as F


def _time(fn, iters: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+',
                        default=['fractalbrainnet_small', 'fractalbrainnet_medium', 'resnet50', 'convnext_tiny'])
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--train-batch-size', type=int, default=32)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--no-compile', action='store_true')
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error('no CUDA device')

    import timm

    import timm_fractalbrain  # noqa: F401

    torch.backends.cudnn.benchmark = True
    print(f'{torch.cuda.get_device_name()}, torch {torch.__version__}, timm {timm.__version__}, bf16 autocast, '
          f'channels_last, {args.img_size} px', flush=True)
    rows = {}
    for name in args.models:
        model = timm.create_model(name).cuda().to(memory_format=torch.channels_last)
        x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device='cuda').to(
            memory_format=torch.channels_last)
        xt = x[:args.train_batch_size]
        y = torch.randint(0, 1000, (args.train_batch_size,), device='cuda')
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        variants = [('eager', model)]
        if not args.no_compile:
            variants.append(('compile', torch.compile(model)))
        for label, m in variants:
            def infer(m=m, x=x):
                with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
                    m(x)

            def train(m=m, opt=opt, xt=xt, y=y):
                with torch.autocast('cuda', dtype=torch.bfloat16):
                    loss = F.cross_entropy(m(xt), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            try:
                model.eval()
                t_inf = _time(infer, args.iters)
                model.train()
                t_train = _time(train, args.iters)
            except Exception as e:  # report and go on: one failing variant must not lose the others' numbers
                print(f'{name:<24} {label:<8} failed: {type(e).__name__}: {str(e)[:200]}', flush=True)
                continue
            rows[(name, label)] = (args.batch_size / t_inf, args.train_batch_size / t_train)
            print(f'{name:<24} {label:<8} infer {rows[(name, label)][0]:>9.1f} img/s   '
                  f'train {rows[(name, label)][1]:>8.1f} img/s', flush=True)
        torch.cuda.empty_cache()
    peers = [m for m in args.models if 'fractalbrainnet' not in m]
    for (name, label), (inf, tr) in rows.items():
        if 'fractalbrainnet' in name:
            for peer in peers:
                if (peer, label) in rows:
                    p_inf, p_tr = rows[(peer, label)]
                    print(f'{name} / {peer} ({label}): infer {inf / p_inf:.2f}x, train {tr / p_tr:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
