"""Fractal patterns used as feature masks by FractalBrainNet.

Every pattern is a deterministic 2-D map with values in [0, 1], computed with NumPy on the CPU (whole-array
operations, no per-pixel Python loops) and returned as a float32 tensor of shape (height, width). Rows run
along the vertical (imaginary) axis and columns along the horizontal (real) axis, as in an image.
"""
from enum import Enum
from functools import lru_cache
from typing import Union

import numpy as np
import torch

__all__ = ['FractalPatternType', 'FractalPatternGenerator', 'resolve_pattern_type']


class FractalPatternType(str, Enum):
    """The fractal patterns a FractalBrainNet can be built with."""
    MANDELBROT = 'mandelbrot'
    JULIA = 'julia'
    SIERPINSKI = 'sierpinski'
    CANTOR = 'cantor'
    DRAGON_CURVE = 'dragon_curve'


def resolve_pattern_type(pattern: Union[str, FractalPatternType]) -> FractalPatternType:
    """Turn a pattern name (case-insensitive) or enum member into a `FractalPatternType`.

    Raises:
        ValueError: the name is not one of the five patterns; the message lists the valid names.
    """
    if isinstance(pattern, FractalPatternType):
        return pattern
    name = str(pattern).strip().lower()
    for member in FractalPatternType:
        if name in (member.value, member.name.lower()):
            return member
    valid = ', '.join(repr(m.value) for m in FractalPatternType)
    raise ValueError(f'Unknown fractal pattern {pattern!r}; valid patterns are {valid}.')


def _escape_time(z: np.ndarray, c: np.ndarray, max_iter: int) -> np.ndarray:
    """Count, for each point, the iterations of z <- z^2 + c during which |z| <= 2 (at most max_iter).

    A point stops being iterated once it escapes, so the count is its escape index capped at max_iter.
    """
    z = z.astype(np.complex128).copy()
    c = np.broadcast_to(c, z.shape).astype(np.complex128)
    count = np.zeros(z.shape, dtype=np.int64)
    active = np.ones(z.shape, dtype=bool)
    for _ in range(max_iter):
        active &= np.abs(z) <= 2.0
        if not active.any():
            break
        z[active] = z[active] ** 2 + c[active]
        count += active
    return count


def dragon_turns(iterations: int) -> np.ndarray:
    """Turn sequence of the Heighway dragon after `iterations` folds: +1 is a left turn, -1 a right turn.

    Turn k (1-based) is decided by the bit just above the lowest set bit of k (the regular paper-folding
    sequence). The sequence has 2**iterations - 1 turns.
    """
    k = np.arange(1, 2 ** iterations, dtype=np.int64)
    lowest = k & -k
    return np.where((k & (lowest << 1)) == 0, 1, -1).astype(np.int64)


def dragon_vertices(iterations: int) -> np.ndarray:
    """Integer lattice vertices (x, y) of the Heighway dragon with 2**iterations unit segments."""
    headings = np.concatenate([[0], np.cumsum(dragon_turns(iterations))]) % 4
    steps = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.int64)[headings]
    return np.concatenate([np.zeros((1, 2), dtype=np.int64), np.cumsum(steps, axis=0)])


class FractalPatternGenerator:
    """Generators for the five fractal patterns (static methods, all returning float32 CPU tensors)."""

    @staticmethod
    def mandelbrot_connectivity(width: int, height: int, max_iter: int = 100) -> torch.Tensor:
        """Escape-time count / max_iter of z <- z^2 + c, z0 = 0, c over [-2.5, 1.5] x [-1.5, 1.5]."""
        real = np.linspace(-2.5, 1.5, width)
        imag = np.linspace(-1.5, 1.5, height)
        c = real[None, :] + 1j * imag[:, None]
        count = _escape_time(np.zeros_like(c), c, max_iter)
        return torch.from_numpy((count / max_iter).astype(np.float32))

    @staticmethod
    def julia_connectivity(
            width: int,
            height: int,
            c_real: float = -0.7,
            c_imag: float = 0.27015,
            max_iter: int = 100,
    ) -> torch.Tensor:
        """Escape-time count / max_iter of z <- z^2 + c, c fixed, z0 over [-2, 2] x [-2, 2]."""
        real = np.linspace(-2.0, 2.0, width)
        imag = np.linspace(-2.0, 2.0, height)
        z0 = real[None, :] + 1j * imag[:, None]
        count = _escape_time(z0, np.asarray(complex(c_real, c_imag)), max_iter)
        return torch.from_numpy((count / max_iter).astype(np.float32))

    @staticmethod
    def sierpinski_connectivity(size: int) -> torch.Tensor:
        """Sierpinski triangle as Pascal's triangle mod 2: cell (i, j) is 1 where j <= i and C(i, j) is odd.

        By Lucas' theorem C(i, j) is odd exactly when the bits of j are a subset of the bits of i.
        """
        i = np.arange(size)[:, None]
        j = np.arange(size)[None, :]
        return torch.from_numpy(((j <= i) & ((i & j) == j)).astype(np.float32))

    @staticmethod
    def cantor_connectivity(size: int, depth: int = 0) -> torch.Tensor:
        """2-D Cantor dust: the product of two 1-D Cantor sets sampled at the pixel centres.

        Args:
            size: Side of the square map.
            depth: Number of middle-third removals; 0 picks the deepest level whose gaps are still at least
                one pixel wide (3**depth <= size).
        """
        if depth <= 0:
            depth = max(1, int(np.floor(np.log(size) / np.log(3) + 1e-9)))
        centres = (np.arange(size) + 0.5) / size
        keep = np.ones(size, dtype=bool)
        for level in range(1, depth + 1):
            keep &= np.floor(centres * 3 ** level).astype(np.int64) % 3 != 1
        return torch.from_numpy((keep[:, None] & keep[None, :]).astype(np.float32))

    @staticmethod
    def dragon_curve_connectivity(size: int, iterations: int = 0, samples_per_segment: int = 4) -> torch.Tensor:
        """Heighway dragon curve rasterised onto a size x size grid (1 on the curve, 0 elsewhere).

        Args:
            size: Side of the square map.
            iterations: Number of folds; 0 picks 2 * log2(size) - 4 (at least 4), so a unit segment spans
                about two to four pixels and the curve stays readable.
            samples_per_segment: Points drawn along each unit segment so that the raster stays connected.
        """
        if iterations <= 0:
            iterations = max(4, 2 * int(np.ceil(np.log2(size))) - 4)
        verts = dragon_vertices(iterations).astype(np.float64)
        t = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)
        start, step = verts[:-1], np.diff(verts, axis=0)
        points = (start[:, None, :] + t[None, :, None] * step[:, None, :]).reshape(-1, 2)
        points = np.concatenate([points, verts[-1:]])
        lo = points.min(axis=0)
        extent = (points.max(axis=0) - lo).max()
        cells = np.rint((points - lo) / extent * (size - 1)).astype(np.int64)
        grid = np.zeros((size, size), dtype=np.float32)
        grid[cells[:, 1], cells[:, 0]] = 1.0
        return torch.from_numpy(grid)

    @classmethod
    def generate(cls, pattern: Union[str, FractalPatternType], resolution: int) -> torch.Tensor:
        """The pattern at resolution x resolution, with the seed's default parameters (a fresh CPU copy)."""
        return _cached_pattern(resolve_pattern_type(pattern), int(resolution)).clone()


@lru_cache(maxsize=32)
def _cached_pattern(pattern: FractalPatternType, resolution: int) -> torch.Tensor:
    if resolution < 2:
        raise ValueError(f'pattern_resolution must be at least 2, got {resolution}.')
    gen = FractalPatternGenerator
    # NOTE: the default device may be 'meta' (model built under `with torch.device('meta')`); NumPy keeps
    # the computation on the CPU regardless.
    if pattern is FractalPatternType.MANDELBROT:
        out = gen.mandelbrot_connectivity(resolution, resolution)
    elif pattern is FractalPatternType.JULIA:
        out = gen.julia_connectivity(resolution, resolution)
    elif pattern is FractalPatternType.SIERPINSKI:
        out = gen.sierpinski_connectivity(resolution)
    elif pattern is FractalPatternType.CANTOR:
        out = gen.cantor_connectivity(resolution)
    else:
        out = gen.dragon_curve_connectivity(resolution)
    return out
