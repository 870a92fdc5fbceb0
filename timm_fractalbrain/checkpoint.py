"""Loading and checking weights without executing code: safetensors, or torch.load(weights_only=True).

Accepted files: a timm train.py checkpoint (`.pth.tar`, optionally holding `state_dict_ema`), a plain
state_dict saved with torch.save, or a `.safetensors` file.
"""
import argparse
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch
import torch.nn as nn

__all__ = ['CheckpointError', 'load_checkpoint_file', 'state_dict_from_checkpoint', 'shape_kwargs_from_state',
           'check_state_dict', 'atomic_write']


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or does not fit the model."""


def load_checkpoint_file(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read a checkpoint file into a dict, never unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'Checkpoint {str(path)!r} does not exist or is not a file.')
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file
        try:
            return dict(load_file(str(path), device='cpu'))
        except Exception as e:
            raise CheckpointError(
                f'Checkpoint {str(path)!r} is not a readable safetensors file ({type(e).__name__}: {e}); '
                'it may be truncated or corrupt: download or export it again.') from None
    try:
        # NOTE: train.py checkpoints also store its argparse.Namespace of arguments; allowing that one plain
        # container class keeps weights_only loading (no arbitrary code) for them.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(str(path), map_location='cpu', weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f'Checkpoint {str(path)!r} could not be loaded with torch.load(weights_only=True) '
            f'({type(e).__name__}: {str(e).splitlines()[0][:200]}); it is corrupt, truncated, or holds more than '
            'tensors: save a state_dict or a safetensors file instead.') from None
    if not isinstance(obj, dict):
        raise CheckpointError(f'Checkpoint {str(path)!r} holds a {type(obj).__name__}, not a state_dict.')
    return obj


def state_dict_from_checkpoint(checkpoint: Dict[str, Any], use_ema: bool = False) -> Dict[str, torch.Tensor]:
    """The model weights inside a loaded checkpoint (train.py dict, EMA weights on request, or a state_dict)."""
    if use_ema:
        for key in ('state_dict_ema', 'model_ema'):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
        else:
            raise CheckpointError('--use-ema was given but the checkpoint holds no EMA weights (state_dict_ema).')
    else:
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    state = {}
    for k, v in checkpoint.items():
        if not torch.is_tensor(v):
            raise CheckpointError(f'Checkpoint entry {k!r} is a {type(v).__name__}, not a tensor.')
        state[k[len('module.'):] if k.startswith('module.') else k] = v
    return state


def shape_kwargs_from_state(state: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """`num_classes` / `in_chans` implied by a FractalBrainNet state_dict's classifier and first conv."""
    kwargs = {}
    if 'head.fc.weight' in state:
        kwargs['num_classes'] = int(state['head.fc.weight'].shape[0])
    if 'stem.conv.weight' in state:
        kwargs['in_chans'] = int(state['stem.conv.weight'].shape[1])
    return kwargs


def check_state_dict(model: nn.Module, state: Dict[str, torch.Tensor], what: str = 'checkpoint') -> None:
    """Raise a CheckpointError listing missing keys, unexpected keys and shape mismatches against `model`."""
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state)
    unexpected = sorted(k for k in state if k not in expected)
    shapes = sorted(
        f'{k}: {tuple(state[k].shape)} in the {what}, {tuple(expected[k].shape)} in the model'
        for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape))
    if not (missing or unexpected or shapes):
        return
    lines: List[str] = [f'The {what} does not fit {type(model).__name__} '
                        f'({getattr(model, "pretrained_cfg", {}).get("architecture", "?")}):']

    def _section(title: str, items: List[str]) -> None:
        if items:
            shown = items[:10] + ([f'... and {len(items) - 10} more'] if len(items) > 10 else [])
            lines.append(f'  {title} ({len(items)}): ' + '; '.join(shown))

    _section('missing keys', missing)
    _section('unexpected keys', unexpected)
    _section('shape mismatches', shapes)
    if shapes and any(k.startswith('head.fc.') for k in expected if k in state):
        lines.append('  a head.fc mismatch means another class count: pass the matching --num-classes.')
    lines.append('  Check that --model names the variant the weights were trained with.')
    raise CheckpointError('\n'.join(lines))


def atomic_write(path: Union[str, os.PathLike], write_fn, suffix: Optional[str] = None) -> Path:
    """Call write_fn(tmp_path) on a temporary file next to `path`, then rename it into place.

    The file appears whole or not at all: on any error the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path('.')
    if not directory.is_dir():
        raise OSError(f'Output directory {str(directory)!r} does not exist.')
    if not os.access(directory, os.W_OK):
        raise OSError(f'Output directory {str(directory)!r} is not writable.')
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=suffix or '.tmp', dir=str(directory))
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
