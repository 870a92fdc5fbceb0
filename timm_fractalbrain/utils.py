"""Small helpers shared by the demo and the command-line tools."""
from typing import Tuple

import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ['params_and_gmacs', 'skimage_photos']


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
