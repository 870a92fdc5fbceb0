"""FractalBrainNet models for timm.

Importing this package registers `fractalbrainnet_small`, `fractalbrainnet_medium`, `fractalbrainnet_large`,
`fractalbrainnet_xlarge` (and the tiny `test_fractalbrainnet`) with timm, so that
`timm.create_model('fractalbrainnet_medium')` works like any first-party timm model.
"""
from typing import Any, Union

import timm

from .fractalbrainnet import (
    AdaptiveScaleProcessor,
    CerebralDynamicsModule,
    FractalBrainNet,
    FractalNeuralBlock,
    GlobalAttention,
)
from .patterns import FractalPatternGenerator, FractalPatternType, resolve_pattern_type

__version__ = '0.1.0'

MODEL_SIZES = ('small', 'medium', 'large', 'xlarge')
MODEL_NAMES = tuple(f'fractalbrainnet_{s}' for s in MODEL_SIZES)

__all__ = [
    'AdaptiveScaleProcessor', 'CerebralDynamicsModule', 'FractalBrainNet', 'FractalNeuralBlock', 'GlobalAttention',
    'FractalPatternGenerator', 'FractalPatternType', 'MODEL_NAMES', 'MODEL_SIZES', 'create_fractal_brain_net',
]


def create_fractal_brain_net(
        model_size: str = 'medium',
        num_classes: int = 10,
        fractal_pattern: Union[str, FractalPatternType] = FractalPatternType.MANDELBROT,
        **kwargs: Any,
) -> FractalBrainNet:
    """The seed's helper, kept as a thin alias of `timm.create_model('fractalbrainnet_<size>', ...)`.

    Raises:
        ValueError: unknown model size or fractal pattern; the message lists the valid ones.
    """
    if model_size not in MODEL_SIZES:
        raise ValueError(f'Unknown model size {model_size!r}; valid sizes are {", ".join(MODEL_SIZES)}.')
    return timm.create_model(
        f'fractalbrainnet_{model_size}',
        num_classes=num_classes,
        fractal_pattern=resolve_pattern_type(fractal_pattern),
        **kwargs,
    )
