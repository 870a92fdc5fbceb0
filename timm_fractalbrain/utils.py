"""Small helpers shared by the demo and the command-line tools."""
import csv
import os
from typing import Dict, List, Tuple

import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ['params_and_gmacs', 'read_train_summary', 'skimage_photos']


def params_and_gmacs(model_name: str, img_size: int = 224, **kwargs) -> Tuple[int, float]:
    """Parameter count and multiply-accumulates (GMACs, convs and matmuls) of one image, measured on the meta
    device so that even the largest variant costs no memory."""
    with torch.device('meta'):
        model = timm.create_model(model_name, **kwargs).eval()
        x = torch.empty(1, model.in_chans, img_size, img_size)
        with FlopCounterMode(display=False) as counter:
            model(x)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2e9


def skimage_photos():
    """scikit-image's bundled colour photos as (name, PIL image) pairs."""
    from PIL import Image
    from skimage import data

    names = ('astronaut', 'chelsea', 'coffee', 'rocket')
    return [(name, Image.fromarray(getattr(data, name)()).convert('RGB')) for name in names]


def read_train_summary(path: str, required: str = 'epoch') -> List[Dict[str, str]]:
    """The rows of a timm train.py summary.csv.

    Raises:
        ValueError: the file is missing, empty, or has no `required` column; the message names the file.
    """
    if not os.path.isfile(path):
        raise ValueError(f'Summary file {path!r} does not exist.')
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    if not rows or required not in rows[0]:
        raise ValueError(f'{path!r} is not a timm train.py summary.csv (no {required} column).')
    return rows
