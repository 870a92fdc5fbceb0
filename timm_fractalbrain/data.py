"""Real data that ships inside packages: scikit-learn's handwritten digits, as tensors or as an image folder."""
import os
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ['DIGITS_LABELS', 'digits_split', 'digits_tensors', 'write_digits_folder']

DIGITS_LABELS = tuple(str(i) for i in range(10))


def digits_split(val_count: int = 360, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed digits split: a seeded permutation, its first `val_count` images for validation.

    Returns:
        train_images, train_labels, val_images, val_labels; images are (N, 8, 8) floats in [0, 1].
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    order = np.random.default_rng(seed).permutation(len(images))
    val, train = order[:val_count], order[val_count:]
    return images[train], digits.target[train], images[val], digits.target[val]


def _upscale_rgb(images: np.ndarray, img_size: int) -> torch.Tensor:
    x = torch.from_numpy(images).unsqueeze(1)
    x = F.interpolate(x, size=(img_size, img_size), mode='bilinear', align_corners=False).clamp(0, 1)
    return x.expand(-1, 3, -1, -1).contiguous()


def digits_tensors(
        img_size: int = 32,
        mean: Tuple[float, ...] = (0.485, 0.456, 0.406),
        std: Tuple[float, ...] = (0.229, 0.224, 0.225),
        val_count: int = 360,
        seed: int = 0,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The split as normalised (N, 3, img_size, img_size) float tensors and int64 labels."""
    tr_x, tr_y, va_x, va_y = digits_split(val_count, seed)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (
        (_upscale_rgb(tr_x, img_size) - m) / s, torch.from_numpy(tr_y).long(),
        (_upscale_rgb(va_x, img_size) - m) / s, torch.from_numpy(va_y).long(),
    )


def write_digits_folder(
        root: Union[str, os.PathLike],
        img_size: int = 32,
        val_count: int = 360,
        seed: int = 0,
        limit: Optional[int] = None,
) -> Path:
    """Write the split as an ImageFolder tree (root/train/<digit>/*.png, root/validation/<digit>/*.png).

    This is the layout timm's train.py and validate.py read with `--data-dir root`.
    """
    from PIL import Image

    root = Path(root)
    tr_x, tr_y, va_x, va_y = digits_split(val_count, seed)
    for split, images, labels in (('train', tr_x, tr_y), ('validation', va_x, va_y)):
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        pixels = (_upscale_rgb(images, img_size).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for label in DIGITS_LABELS:
            (root / split / label).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(pixels, labels)):
            Image.fromarray(img).save(root / split / str(label) / f'{i:04d}.png')
    return root
