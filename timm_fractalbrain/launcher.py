"""Run one of timm's scripts (validate.py, inference.py, benchmark.py, onnx_export.py, ...) with the
FractalBrainNet models registered.

    fractalbrain-timm SCRIPT.py [SCRIPT ARGS...]

timm's scripts have no plugin discovery and, apart from train.py's --device-modules, no way to import a
plugin. This launcher imports timm_fractalbrain, then runs SCRIPT.py as __main__ with its own arguments.
Before it starts the script it checks what it can check cheaply and explains the fix:
  * --num-classes against the number of class folders in the training split under --data-dir;
  * checkpoints named by --checkpoint / --initial-checkpoint / --resume / --pretrained-path: readable without
    executing code, and (for a fractalbrainnet --model) fitting that variant and class count.

Distributed training on CPU: timm's train.py wraps the model with DistributedDataParallel(device_ids=[device])
also when the device is the CPU, which PyTorch refuses. Under the launcher such a call drops the CPU device_ids
(the meaning PyTorch gives to a CPU module without them), so this works:

    torchrun --nproc_per_node=2 -m timm_fractalbrain.launcher train.py --device cpu ...
"""
import argparse
import os
import runpy
import sys
from pathlib import Path
from typing import List, Optional

from timm_fractalbrain.checkpoint import (
    CheckpointError,
    check_state_dict,
    load_checkpoint_file,
    state_dict_from_checkpoint,
)

_CHECKPOINT_FLAGS = ('--checkpoint', '--initial-checkpoint', '--resume', '--pretrained-path')


class LaunchError(Exception):
    pass


def allow_cpu_device_ids_in_ddp() -> None:
    """Make DistributedDataParallel(cpu_module, device_ids=[cpu]) behave as DistributedDataParallel(cpu_module).

    Only that exact case changes (every device id a CPU device); GPU device ids and other arguments pass through.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel

    original = DistributedDataParallel.__init__
    if getattr(original, '_fractalbrain_cpu_ids', False):
        return

    def __init__(self, module, device_ids=None, *args, **kwargs):
        if device_ids and all(torch.device(d).type == 'cpu' for d in device_ids):
            device_ids = None
        original(self, module, device_ids, *args, **kwargs)

    __init__._fractalbrain_cpu_ids = True
    DistributedDataParallel.__init__ = __init__


def _preflight(script_args: List[str]) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--model', '-m')
    parser.add_argument('--num-classes', type=int)
    parser.add_argument('--in-chans', type=int)
    parser.add_argument('--data-dir')
    parser.add_argument('--train-split', default='train')
    for flag in _CHECKPOINT_FLAGS:
        parser.add_argument(flag)
    args, _ = parser.parse_known_args(script_args)

    if args.num_classes and args.data_dir:
        split_dir = Path(args.data_dir) / args.train_split
        if split_dir.is_dir():
            classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
            if classes and len(classes) != args.num_classes:
                raise LaunchError(
                    f'--num-classes {args.num_classes} disagrees with the dataset: {split_dir} has {len(classes)} '
                    f'class folders ({", ".join(classes[:12])}{", ..." if len(classes) > 12 else ""}); '
                    f'pass --num-classes {len(classes)}.')

    for flag in _CHECKPOINT_FLAGS:
        path = getattr(args, flag.lstrip('-').replace('-', '_'))
        if not path:
            continue
        try:
            checkpoint = load_checkpoint_file(path)
            if args.model and 'fractalbrainnet' in args.model and flag != '--resume':
                import timm
                import torch

                kwargs = {}
                if args.num_classes:
                    kwargs['num_classes'] = args.num_classes
                if args.in_chans:
                    kwargs['in_chans'] = args.in_chans
                with torch.device('meta'):
                    model = timm.create_model(args.model, **kwargs)
                state = state_dict_from_checkpoint(checkpoint)
                if flag == '--pretrained-path':
                    # timm adapts the classifier and first conv of pretrained weights, only the trunk must fit
                    cfg = model.pretrained_cfg
                    state = {k: v for k, v in state.items()
                             if not k.startswith((cfg['classifier'], cfg['first_conv']))}
                    model_state = {k for k in model.state_dict()
                                   if not k.startswith((cfg['classifier'], cfg['first_conv']))}
                    missing = sorted(model_state - set(state))
                    if missing:
                        raise CheckpointError(
                            f'The checkpoint does not fit {args.model}: missing keys ({len(missing)}): '
                            + '; '.join(missing[:10]) + '. Check that --model names the trained variant.')
                else:
                    check_state_dict(model, state, what=f'checkpoint {path}')
        except CheckpointError as e:
            raise LaunchError(f'{flag} {path}: {e}') from None


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__.strip())
        return 0 if argv else 2
    script, script_args = argv[0], argv[1:]
    if not os.path.isfile(script):
        print(f'fractalbrain-timm: script {script!r} not found; give the path to a timm script such as '
              'validate.py from your timm checkout.', file=sys.stderr)
        return 2

    import timm_fractalbrain  # noqa: F401  (registers the models)

    try:
        _preflight(script_args)
    except LaunchError as e:
        print(f'fractalbrain-timm: {e}', file=sys.stderr)
        return 2

    allow_cpu_device_ids_in_ddp()
    script_path = os.path.abspath(script)
    sys.argv = [script_path] + script_args
    sys.path.insert(0, os.path.dirname(script_path))
    try:
        runpy.run_path(script_path, run_name='__main__')
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
